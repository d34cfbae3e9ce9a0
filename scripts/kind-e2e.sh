#!/usr/bin/env bash
# End-to-end run on a kind cluster, for hosts with a Docker engine (`make kind-e2e`):
#   1. build kind (sigs.k8s.io/kind, pinned) once into the cache, and the mintplane image with docker;
#   2. create a kind cluster whose control-plane node is ingress-ready (ports 80/443 mapped to the host);
#   3. load the image, install the in-cluster data layer and a dev chain (charts/mintplane/ci/kind-deps.yaml);
#   4. create the Secret with the connection strings and `helm install` the chart with --wait (the
#      migration hook runs first);
#   5. run `pytest tests/e2e` with KUBECONFIG pointing at kind and the data layer port-forwarded to loopback.
# The cluster is deleted on exit unless KEEP_CLUSTER=1 (a kept cluster is reused by the next run).
#
# Without Docker (this project's dev machines and CI) the same e2e suite runs against the local control
# plane: `make up && make test`.
#
# Environment: KIND_VERSION, KIND_CLUSTER, KIND_NODE_IMAGE (e.g. kindest/node:v1.35.x), E2E_NAMESPACE,
# IMAGE_TAG, INGRESS_HTTP_PORT/INGRESS_HTTPS_PORT (host ports, default 8080/8443), INGRESS_MANIFEST (URL or
# file of an ingress controller for kind, applied when set), PYTEST_ARGS (default "tests/e2e -q"),
# KEEP_CLUSTER=1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

KIND_VERSION=${KIND_VERSION:-v0.33.0}
KIND_CLUSTER=${KIND_CLUSTER:-mintplane-e2e}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
E2E_NAMESPACE=${E2E_NAMESPACE:-mintplane}
IMAGE_REPOSITORY=mintplane
IMAGE_TAG=${IMAGE_TAG:-e2e}
INGRESS_HTTP_PORT=${INGRESS_HTTP_PORT:-8080}
INGRESS_HTTPS_PORT=${INGRESS_HTTPS_PORT:-8443}
INGRESS_MANIFEST=${INGRESS_MANIFEST:-}
PYTEST_ARGS=${PYTEST_ARGS:-tests/e2e -q}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}
RELEASE=mintplane
SECRET=mintplane-e2e
cache=${MINTPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mintplane}

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'kind-e2e: %s\n' "$*" >&2; exit 1; }

# --- 0. a Docker engine, before anything is downloaded or built ----------------------------------------
command -v docker >/dev/null 2>&1 \
  || die "docker is not installed: this path needs a Docker engine. Without one, run the same e2e suite against the local control plane: make up && make test"
if ! docker info >/dev/null 2>&1; then
  die "no Docker engine reachable ('docker info' failed). This path needs a running Docker engine; without one, run the same e2e suite against the local control plane: make up && make test"
fi

# --- tools: the project's pinned kubectl/helm when `make install` built them, else the ones on PATH ------
tool() {
  local name=$1
  if [[ -x "$root/.dev/bin/$name" ]]; then
    echo "$root/.dev/bin/$name"
  elif command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
  else
    die "$name not found: run 'make install' (it builds the pinned $name into .dev/bin) or put $name on PATH"
  fi
}
kubectl=$(tool kubectl)
helm=$(tool helm)
python=$root/.venv/bin/python
[[ -x "$python" ]] || die ".venv is missing: run 'make install' first"
for dir in /usr/local/go/bin "$HOME/go/bin"; do
  [[ -d $dir && ":$PATH:" != *":$dir:"* ]] && PATH="$PATH:$dir"
done
command -v go >/dev/null 2>&1 || die "go not found: kind is built with 'go install'"

work=$(mktemp -d)
forward_pids=()
cleanup() {
  local status=$?
  for pid in "${forward_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  if [[ "$KEEP_CLUSTER" == 1 ]]; then
    echo "kind-e2e: keeping cluster $KIND_CLUSTER (KUBECONFIG=$cache/kind-$KIND_CLUSTER.kubeconfig)" >&2
  elif [[ -n "${kind:-}" ]] && "$kind" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    log "deleting cluster $KIND_CLUSTER"
    "$kind" delete cluster --name "$KIND_CLUSTER" || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# --- 1. kind and the image ------------------------------------------------------------------------------
kind_dir=$cache/kind-$KIND_VERSION
kind=$kind_dir/kind
if [[ ! -x "$kind" ]]; then
  log "building kind $KIND_VERSION into $kind_dir"
  mkdir -p "$kind_dir"
  GOBIN="$kind_dir" go install "sigs.k8s.io/kind@$KIND_VERSION"
fi

image="$IMAGE_REPOSITORY:$IMAGE_TAG"
log "building image $image"
DOCKER_BUILDKIT=1 docker build --tag "$image" "$root"

# --- 2. the cluster ---------------------------------------------------------------------------------------
kubeconfig=$cache/kind-$KIND_CLUSTER.kubeconfig
if "$kind" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  log "reusing cluster $KIND_CLUSTER"
else
  log "creating cluster $KIND_CLUSTER"
  cat > "$work/kind.yaml" <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    labels:
      ingress-ready: "true"
    extraPortMappings:
      - {containerPort: 80, hostPort: $INGRESS_HTTP_PORT, protocol: TCP}
      - {containerPort: 443, hostPort: $INGRESS_HTTPS_PORT, protocol: TCP}
EOF
  create_args=(create cluster --name "$KIND_CLUSTER" --config "$work/kind.yaml" --wait 180s)
  [[ -n "$KIND_NODE_IMAGE" ]] && create_args+=(--image "$KIND_NODE_IMAGE")
  "$kind" "${create_args[@]}"
fi
"$kind" get kubeconfig --name "$KIND_CLUSTER" > "$kubeconfig"
export KUBECONFIG=$kubeconfig
"$kubectl" version

log "loading $image into the cluster"
"$kind" load docker-image "$image" --name "$KIND_CLUSTER"

if [[ -n "$INGRESS_MANIFEST" ]]; then
  log "installing the ingress controller from $INGRESS_MANIFEST"
  "$kubectl" apply -f "$INGRESS_MANIFEST"
  "$kubectl" wait --namespace ingress-nginx --for=condition=Available deployment --all --timeout=300s
fi

# --- 3. data layer and dev chain ------------------------------------------------------------------------
log "installing the data layer into namespace $E2E_NAMESPACE"
"$kubectl" create namespace "$E2E_NAMESPACE" --dry-run=client -o yaml | "$kubectl" apply -f -
"$kubectl" apply --namespace "$E2E_NAMESPACE" -f charts/mintplane/ci/kind-deps.yaml
for deployment in postgres redis rabbitmq mongo anvil; do
  "$kubectl" rollout status --namespace "$E2E_NAMESPACE" "deployment/$deployment" --timeout=300s
done

# --- 4. the chart ---------------------------------------------------------------------------------------
log "creating Secret $SECRET and installing the chart"
"$kubectl" create secret generic "$SECRET" --namespace "$E2E_NAMESPACE" \
  --from-literal=MINTPLANE_PG_DSN="postgresql://mintplane:mintplane@postgres:5432/mintplane" \
  --from-literal=MINTPLANE_REDIS_URL="redis://redis:6379/0" \
  --from-literal=MINTPLANE_AMQP_URL="amqp://mintplane:mintplane@rabbitmq:5672/" \
  --from-literal=MINTPLANE_MONGO_URL="mongodb://mongo:27017/" \
  --dry-run=client -o yaml | "$kubectl" apply -f -
diagnose() {
  echo "kind-e2e: helm install failed; state of namespace $E2E_NAMESPACE:" >&2
  "$kubectl" get all,jobs,events --namespace "$E2E_NAMESPACE" >&2 || true
  "$kubectl" logs --namespace "$E2E_NAMESPACE" --selector app.kubernetes.io/component=migrations --tail=50 >&2 || true
  "$kubectl" logs --namespace "$E2E_NAMESPACE" --selector "app.kubernetes.io/instance=$RELEASE" --all-containers \
    --tail=20 --prefix >&2 || true
}
if ! "$helm" upgrade --install "$RELEASE" charts/mintplane --namespace "$E2E_NAMESPACE" \
    -f charts/mintplane/ci/kind-values.yaml --set "image.tag=$IMAGE_TAG" --set "secrets.existingSecret=$SECRET" \
    --wait --timeout 10m; then
  diagnose
  exit 1
fi
"$helm" status "$RELEASE" --namespace "$E2E_NAMESPACE"

# --- 5. the e2e suite -----------------------------------------------------------------------------------
# Each store is forwarded to a free loopback port; the suite reads the MINTPLANE_* variables like a service.
# forward sets $forwarded_port (not echoed: a $(...) subshell would lose the pid the cleanup must stop).
forward() {
  local service=$1 port=$2 out=$work/forward-$1.log local_port=""
  "$kubectl" port-forward --namespace "$E2E_NAMESPACE" "service/$service" ":$port" > "$out" 2>&1 &
  forward_pids+=("$!")
  for _ in $(seq 1 100); do
    local_port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$out" | head -n1)
    [[ -n "$local_port" ]] && break
    sleep 0.1
  done
  [[ -n "$local_port" ]] || die "port-forward to $service:$port did not start: $(cat "$out")"
  forwarded_port=$local_port
}
forward postgres 5432; pg_port=$forwarded_port
forward redis 6379; redis_port=$forwarded_port
forward rabbitmq 5672; amqp_port=$forwarded_port
forward mongo 27017; mongo_port=$forwarded_port
forward anvil 8545; rpc_port=$forwarded_port
export MINTPLANE_PG_DSN="postgresql://mintplane:mintplane@127.0.0.1:$pg_port/mintplane"
export MINTPLANE_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export MINTPLANE_AMQP_URL="amqp://mintplane:mintplane@127.0.0.1:$amqp_port/"
export MINTPLANE_MONGO_URL="mongodb://127.0.0.1:$mongo_port/"
export MINTPLANE_ETH_RPC_URL="http://127.0.0.1:$rpc_port"
export MINTPLANE_E2E_RELEASE=$RELEASE MINTPLANE_E2E_NAMESPACE=$E2E_NAMESPACE MINTPLANE_E2E_IMAGE=$image

log "running pytest $PYTEST_ARGS against kind"
read -r -a pytest_args <<< "$PYTEST_ARGS"
"$python" -m pytest "${pytest_args[@]}" -p no:cacheprovider
