#!/usr/bin/env bash
# Install the pinned helm (and, with --with-kustomize, kustomize) used by the chart tests,
# unless one is already on PATH. Builds from source with `go install`, since only package
# registries (the Go module proxy among them) are reachable from CI; needs Go >= 1.22.
#   scripts/install-helm.sh                  # helm only
#   scripts/install-helm.sh --with-kustomize # helm and kustomize
# The binaries land in $(go env GOPATH)/bin and are linked into BIN_DIR (default
# /usr/local/bin when writable, else ~/.local/bin) so the shell and the tests find them.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.16.4}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.5.0}"
with_kustomize=false
for arg in "$@"; do
  case "$arg" in
    --with-kustomize) with_kustomize=true ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if [[ -n "${BIN_DIR:-}" ]]; then
  bin_dir="$BIN_DIR"
elif [[ -w /usr/local/bin ]]; then
  bin_dir=/usr/local/bin
else
  bin_dir="$HOME/.local/bin"
fi
mkdir -p "$bin_dir"

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "install-helm: go is not on PATH; install Go (>= 1.22) or helm itself" >&2
    exit 1
  fi
}

# go_install NAME MODULE@VERSION: build it unless NAME is already on PATH or in GOPATH/bin.
go_install() {
  local name="$1" module="$2" gobin
  if command -v "$name" >/dev/null 2>&1; then
    echo "install-helm: $name already on PATH: $(command -v "$name")"
    return 0
  fi
  need_go
  gobin="$(go env GOPATH)/bin"
  if [[ ! -x "$gobin/$name" ]]; then
    echo "install-helm: go install $module"
    # helm's main module needs no replace directives, so `go install pkg@version` works.
    CGO_ENABLED=0 go install "$module"
  fi
  ln -sf "$gobin/$name" "$bin_dir/$name"
  echo "install-helm: $name -> $bin_dir/$name"
}

go_install helm "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
if $with_kustomize; then
  go_install kustomize "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"
fi
if ! command -v helm >/dev/null 2>&1; then
  echo "install-helm: note: $bin_dir is not on PATH" >&2
fi
helm version --short 2>/dev/null || "$bin_dir/helm" version --short
