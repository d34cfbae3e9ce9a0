#!/usr/bin/env bash
# Regenerate the Python gRPC stubs of proto/mintplane/api/** into services/mintplane/api/**.
#
#   scripts/gen-proto.sh           regenerate the committed stubs in place
#   scripts/gen-proto.sh --check   regenerate into a temporary directory and fail (exit 1), listing the
#                                  stale files, if the committed stubs differ; the tree is not touched
#
# Output per proto file: <name>_pb2.py and <name>_pb2.pyi (mypy-protobuf); for files that declare a service
# also <name>_pb2_grpc.py and <name>_pb2_grpc.pyi (mypy-protobuf's mypy_grpc); plus an empty __init__.py
# in every generated package directory below services/mintplane/api/ (never in services/mintplane/ or
# services/mintplane/api/ themselves: `mintplane` and `mintplane.api` stay PEP 420 namespaces).
#
# The generated tree is a pure function of the .proto files and the pinned generator versions
# (grpcio-tools, mypy-protobuf): the same inputs give byte-identical output.
#
# Environment: PYTHON (default .venv/bin/python), the interpreter that has grpcio-tools and mypy-protobuf.
set -euo pipefail

usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
}

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gen-proto: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A relative PYTHON path given by the caller is relative to the caller's directory; the default is the
# repository's virtualenv.
if [[ -n "${PYTHON:-}" && "$PYTHON" == */* && "$PYTHON" != /* ]]; then
    PYTHON="$PWD/$PYTHON"
fi
PYTHON="${PYTHON:-$root/.venv/bin/python}"
cd "$root"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "gen-proto: python interpreter not found: $PYTHON (set PYTHON=...)" >&2
    exit 2
fi

# The protoc plugins (protoc-gen-mypy, protoc-gen-mypy_grpc) live next to the interpreter's scripts.
scripts_dir="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="$scripts_dir:$root/.venv/bin:$PATH"
for plugin in protoc-gen-mypy protoc-gen-mypy_grpc; do
    if ! command -v "$plugin" >/dev/null 2>&1; then
        echo "gen-proto: $plugin not found (install mypy-protobuf into the environment of $PYTHON)" >&2
        exit 2
    fi
done

# Well-known types (google/protobuf/*.proto) bundled with grpcio-tools.
wkt_include="$("$PYTHON" -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"

proto_dir="proto"
out_rel="services/mintplane/api"

# Sorted, NUL-safe list of the .proto files, relative to proto/ (their import paths).
mapfile -d '' protos < <(cd "$proto_dir" && find mintplane -type f -name '*.proto' -print0 | LC_ALL=C sort -z)
if [[ ${#protos[@]} -eq 0 ]]; then
    echo "gen-proto: no .proto files under $proto_dir/" >&2
    exit 2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/gen-proto.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
gen="$tmp/out"
mkdir "$gen"

# Files that declare a service get gRPC stubs too; the others (common/v1) only messages.
service_protos=()
for f in "${protos[@]}"; do
    if grep -Eq '^[[:space:]]*service[[:space:]]+[A-Za-z_]' "$proto_dir/$f"; then
        service_protos+=("$f")
    fi
done

# Runs grpc_tools.protoc with proto/ and the well-known types on the include path. mypy-protobuf reports
# every file it writes on stderr; that chatter is dropped, anything else (errors, warnings) is shown.
protoc() {
    local log="$tmp/protoc.log" rc=0
    "$PYTHON" -m grpc_tools.protoc -I "$proto_dir" -I "$wkt_include" "$@" 2>"$log" || rc=$?
    grep -v '^Writing mypy to ' "$log" >&2 || true
    rm -f "$log"
    if [[ $rc -ne 0 ]]; then
        echo "gen-proto: protoc failed (exit $rc)" >&2
        exit "$rc"
    fi
}

# Generate into a fresh directory, then compare or install. Generation never writes into the tree directly,
# so a failed run leaves the committed stubs untouched.
protoc --python_out="$gen" --mypy_out="$gen" "${protos[@]/#/$proto_dir/}"
if [[ ${#service_protos[@]} -gt 0 ]]; then
    protoc --grpc_python_out="$gen" --mypy_grpc_out="$gen" "${service_protos[@]/#/$proto_dir/}"
fi

# Empty __init__.py in every generated package directory below mintplane/api/ (e.g. auth/, auth/v1/).
while IFS= read -r -d '' dir; do
    : >"$dir/__init__.py"
done < <(find "$gen/mintplane/api" -mindepth 1 -type d -print0)

# Lists files (relative, sorted) of a generated tree, ignoring bytecode caches.
list_files() {
    (cd "$1" && find . -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print | sed 's|^\./||' | LC_ALL=C sort)
}

if [[ $check -eq 1 ]]; then
    stale=()
    if [[ ! -d "$out_rel" ]]; then
        while IFS= read -r f; do stale+=("$out_rel/$f (missing)"); done < <(list_files "$gen/mintplane/api")
    else
        while IFS= read -r f; do
            if [[ ! -f "$out_rel/$f" ]]; then
                stale+=("$out_rel/$f (missing)")
            elif ! cmp -s "$gen/mintplane/api/$f" "$out_rel/$f"; then
                stale+=("$out_rel/$f (differs)")
            fi
        done < <(list_files "$gen/mintplane/api")
        while IFS= read -r f; do
            [[ -f "$gen/mintplane/api/$f" ]] || stale+=("$out_rel/$f (not generated from any .proto: remove it)")
        done < <(list_files "$out_rel")
    fi
    if [[ ${#stale[@]} -gt 0 ]]; then
        {
            echo "gen-proto: generated stubs are stale (${#stale[@]} file(s)):"
            printf '  %s\n' "${stale[@]}"
            echo "Run scripts/gen-proto.sh (make proto) and commit the result."
        } >&2
        exit 1
    fi
    echo "gen-proto: stubs are up to date (${#protos[@]} proto files)."
    exit 0
fi

# Install: replace the generated tree wholesale so stubs of deleted .proto files disappear too.
mkdir -p "$(dirname "$out_rel")"
rm -rf "$out_rel"
cp -R "$gen/mintplane/api" "$out_rel"
echo "gen-proto: wrote $(list_files "$out_rel" | wc -l | tr -d ' ') files under $out_rel/ from ${#protos[@]} proto files."
