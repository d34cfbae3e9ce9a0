#!/usr/bin/env bash
# Installs everything the dev stack and the tests need, through the project's own files only:
# Debian packages, the Python venv (.venv, via uv with its download cache), npm packages (node_modules,
# npm's cache) and the Go-built tools (.dev/bin, built once per version into ~/.cache/mintplane).
# Idempotent and quick when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
t0=$SECONDS
step() { printf '\n==> %s\n' "$*" >&2; }

# Toolchains the machine ships, wherever its PATH left them.
for dir in /usr/local/go/bin "$HOME/go/bin"; do
  [[ -d $dir && ":$PATH:" != *":$dir:"* ]] && export PATH="$PATH:$dir"
done
for tool in go node npm; do
  command -v "$tool" >/dev/null || { echo "install: $tool not found on PATH" >&2; exit 1; }
done

step "system packages (PostgreSQL, Redis, RabbitMQ)"
bash scripts/install-system-deps.sh

step "Python environment (.venv)"
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
[[ -x .venv/bin/uv ]] || .venv/bin/python -m pip install --quiet "uv>=0.5"
stamp=.venv/.mintplane-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  .venv/bin/uv pip install --quiet --python .venv/bin/python -e '.[dev]'
  echo "$want" > "$stamp"
fi

# The rarity tests' reference: the open-rarity package pins pydantic<2.3, so it lives in its own venv and
# the tests run it as a subprocess (tests/fixtures/rarity/open_rarity_reference.py).
step "rarity reference venv (.dev/reference-venv, open-rarity)"
reference=.dev/reference-venv
if [[ "$(cat "$reference/.mintplane-installed" 2>/dev/null)" != "open-rarity==0.7.5" ]]; then
  [[ -x $reference/bin/python ]] || .venv/bin/uv venv --quiet --python .venv/bin/python "$reference"
  .venv/bin/uv pip install --quiet --python "$reference/bin/python" "open-rarity==0.7.5"
  echo "open-rarity==0.7.5" > "$reference/.mintplane-installed"
fi

step "npm packages (anvil, solc, OpenZeppelin)"
want=$(sha256sum package-lock.json | cut -c1-16)
if [[ "$(cat node_modules/.mintplane-installed 2>/dev/null)" != "$want" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.mintplane-installed
fi

step "Go tools (etcd, kube-apiserver, kube-controller-manager, kubectl, FerretDB, helm)"
bash scripts/build-go-tools.sh

printf '\ninstall done in %ss\n' "$((SECONDS - t0))" >&2
