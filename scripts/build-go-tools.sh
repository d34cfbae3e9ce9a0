#!/usr/bin/env bash
# Builds the dev stack's Go tools at pinned versions and links them into .dev/bin:
#   tools/kube      etcd, kube-apiserver, kube-controller-manager, kubectl (Kubernetes v1.35.4, etcd v3.6.13)
#   tools/ferretdb  ferretdb (FerretDB v1.24.2)
#   tools/kubo      ipfs (kubo v0.43.1, the IPFS node; a wrapper module because kubo's go.mod has a replace)
#   helm            helm.sh/helm/v3 v3.22.0 (go install; no replaces)
# Binaries go to a cache folder keyed by each module's go.mod/go.sum/sources and flags, so a later run on
# the same machine (and CI) relinks nothing; GOCACHE/GOMODCACHE stay in their default per-user places.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${MINTPLANE_CACHE:-$HOME/.cache/mintplane}"
bin="$root/.dev/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

KUBE_VERSION=v1.35.4
HELM_VERSION=v3.22.0
kube_minor=${KUBE_VERSION#v1.}; kube_minor=${kube_minor%%.*}
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean"
done

# build_module NAME MODULE_DIR LDFLAGS CMD_PATH...: go build each CMD_PATH (relative to MODULE_DIR).
build_module() {
  local name=$1 dir=$2 ldflags=$3; shift 3
  local key out missing=0
  key=$( (cd "$dir" && find . -name '*.go' -o -name 'go.mod' -o -name 'go.sum' | sort | xargs cat; echo "$ldflags") \
    | sha256sum | cut -c1-16)
  out="$cache/$name-$key"
  for path in "$@"; do [[ -x "$out/$(basename "$path")" ]] || missing=1; done
  if [[ $missing -eq 1 ]]; then
    mkdir -p "$out"
    for path in "$@"; do
      local exe; exe=$(basename "$path")
      [[ "$path" == "." ]] && exe=$name
      echo "building $exe (first build of this version takes minutes; cached afterwards)" >&2
      (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out/$exe.tmp" "$path")
      mv "$out/$exe.tmp" "$out/$exe"
    done
  fi
  for path in "$@"; do
    local exe; exe=$(basename "$path"); [[ "$path" == "." ]] && exe=$name
    ln -sfn "$out/$exe" "$bin/$exe"
  done
}

build_module kube "$root/tools/kube" "$kube_ldflags" \
  ./cmd/etcd ./cmd/kubectl ./cmd/kube-apiserver ./cmd/kube-controller-manager
build_module ferretdb "$root/tools/ferretdb" "-s -w" .
build_module ipfs "$root/tools/kubo" "-s -w" .

# Helm's built-in Kubernetes version defaults to 1.20 unless stamped; stamp the one its client-go matches
# so `helm template`/`lint` accept charts with a kubeVersion constraint.
HELM_KUBE_MINOR=37
helm_out="$cache/helm-$HELM_VERSION-k8s1.$HELM_KUBE_MINOR"
if [[ ! -x "$helm_out/helm" ]]; then
  echo "building helm $HELM_VERSION" >&2
  GOBIN="$helm_out" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_MINOR \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_MINOR" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
ln -sfn "$helm_out/helm" "$bin/helm"
