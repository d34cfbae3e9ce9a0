#!/usr/bin/env bash
# Copies the CRDs of record (crds/*.yaml) into the Helm chart (charts/mintplane/crds/), which must ship the
# same files byte for byte (tests/unit/test_chart_crds_in_sync.py checks it). Files the source no longer
# has are removed from the chart. `--check` changes nothing and exits 1 when the two folders differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/crds"
dst="$root/charts/mintplane/crds"
check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

shopt -s nullglob
sources=("$src"/*.yaml)
if ((${#sources[@]} == 0)); then
  echo "sync-chart-crds: no CRDs in $src" >&2
  exit 1
fi

if $check; then
  if diff -r "$src" "$dst" >/dev/null 2>&1; then
    echo "chart CRDs are in sync with crds/"
    exit 0
  fi
  echo "chart CRDs differ from crds/ (run scripts/sync-chart-crds.sh):" >&2
  diff -rq "$src" "$dst" >&2 || true
  exit 1
fi

mkdir -p "$dst"
for stale in "$dst"/*; do
  [[ -e "$src/$(basename "$stale")" ]] || { rm -f -- "$stale"; echo "removed $(basename "$stale")"; }
done
for file in "${sources[@]}"; do
  if ! cmp -s "$file" "$dst/$(basename "$file")"; then
    cp -- "$file" "$dst/"
    echo "copied $(basename "$file")"
  fi
done
echo "chart CRDs are in sync with crds/"
