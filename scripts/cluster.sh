#!/usr/bin/env bash
# A real single-node Kubernetes on this Debian machine, without Docker, for the cluster
# end-to-end test (scripts/e2e-cluster.sh). Run as root.
#
#   bash scripts/cluster.sh up          # build what is missing (cached), start the cluster
#   bash scripts/cluster.sh kubeconfig  # print the path of the admin kubeconfig
#   bash scripts/cluster.sh images      # (re)build the images from the Dockerfiles, import them
#   bash scripts/cluster.sh keda        # KEDA's operator in the running cluster (built once, cached)
#   bash scripts/cluster.sh down        # stop what `up` started, forget the cluster's state
#
# What it is: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy and CoreDNS as plain processes, and containerd + runc running the pods, all
# inside a network namespace of the cluster's own ("gbcluster"). A veth pair joins it to
# the host: the node is 10.213.0.2, the host end 10.213.0.1 (kubectl reaches the API
# server there); pods get 10.214.0.0/24 on a bridge inside the namespace, Services
# 10.215.0.0/24 (kube-proxy's iptables rules live in the namespace too, never the host's).
# Nothing binds a host port: the shared RabbitMQ on 127.0.0.1:5672 is untouched.
#
# Why built here: Kubernetes v1.33 (the newest line whose kubelet still runs on cgroup v1,
# which this VM has) and CoreDNS compile from the Go module proxy; etcd, containerd, runc,
# CNI plugins and buildah come from Debian; every image (including the pod sandbox)
# starts from a debootstrapped Debian root file system. No registry is ever pulled from.
#
# Caches (outside the repository, reused across runs): $CACHE (binaries, Debian root file
# systems, image archives) and the containerd image store under it. Cluster state (etcd,
# kubelet, certificates, logs, PID files) lives in $STATE and goes away with `down`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CLUSTER_CACHE:-/var/cache/gource-batch-cluster}"
STATE="${CLUSTER_STATE:-/var/lib/gource-batch-cluster}"
RUN="/run/gource-batch-cluster"

K8S_VERSION="v1.33.13"      # newest v1.33 patch on the Go proxy (v1.35 kubelets refuse cgroup v1)
COREDNS_VERSION="v1.12.0"   # the CoreDNS kubeadm v1.33 installs
KEDA_VERSION="v2.21.0"      # KEDA's operator, for the ScaledJob e2e (scripts/e2e-keda.sh)
DEBIAN_SUITE="bookworm"     # the base of every image: Python 3.11, as python:3.11-slim-bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMAGE_TAG="${IMAGE_TAG:-e2e}"

NETNS="gbcluster"
HOST_IF="gbc-host"; NODE_IF="gbc-node"
HOST_IP="10.213.0.1"; NODE_IP="10.213.0.2"
POD_CIDR="10.214.0.0/24"; SERVICE_CIDR="10.215.0.0/24"; API_SERVICE_IP="10.215.0.1"
NODE_NAME="gource-batch-node"

BIN="$CACHE/bin"
PKI="$STATE/pki"
KUBECONFIG_FILE="$STATE/admin.kubeconfig"
CONTAINERD_SOCK="$RUN/containerd/containerd.sock"
APT_PACKAGES=(containerd runc etcd-server etcd-client containernetworking-plugins buildah
  debootstrap iproute2 iptables conntrack socat openssl curl)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }
in_ns() { ip netns exec "$NETNS" "$@"; }

# --- install and build (cached) ------------------------------------------------------------

install_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  for _ in $(seq 30); do  # another apt may hold the lock
    if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then return 0; fi
    apt-get update -qq || true
    sleep 10
  done
  die "cannot install ${missing[*]}"
}

# go_build DIR MODULE_LINES TARGETS...: build Go commands from the module proxy in a scratch
# module (`go install pkg@version` refuses k8s.io/kubernetes, whose go.mod has replaces).
go_build() {
  local dir="$1" mod="$2"; shift 2
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null || die "Go is needed to build Kubernetes (https://go.dev/dl)"
  mkdir -p "$dir" "$BIN"
  printf '%s\n' "$mod" >"$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$BIN/" "$@")
}

build_kubernetes() {
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl) c missing=0
  for c in "${cmds[@]}"; do [[ -x "$BIN/$c" ]] || missing=1; done
  [[ -f "$BIN/.kubernetes-$K8S_VERSION" && $missing == 0 ]] && return 0
  log "building Kubernetes $K8S_VERSION from the Go module proxy (about 10+ min on 2 cores, once)"
  # The staging modules (k8s.io/api, client-go, ...) are replaced by ./staging paths in
  # k8s.io/kubernetes' go.mod; map each to its published v0.x tag instead.
  local replaces staging="v0.${K8S_VERSION#v1.}"
  replaces="$(curl -fsS "https://proxy.golang.org/k8s.io/kubernetes/@v/$K8S_VERSION.mod" \
    | sed -n '/^replace (/,/^)/p' | sed -E "s#=> \./staging/src/(k8s.io/[a-z0-9-]+)#=> \1 $staging#")"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=33"
  go_build "$CACHE/src/kubernetes" "module gource-batch-cluster/kubernetes
go 1.24
godebug default=go1.24
require k8s.io/kubernetes $K8S_VERSION
$replaces" -ldflags "$ldflags" "${cmds[@]/#/k8s.io/kubernetes/cmd/}"
  touch "$BIN/.kubernetes-$K8S_VERSION"
}

build_coredns() {
  [[ -f "$BIN/.coredns-$COREDNS_VERSION" && -x "$BIN/coredns" ]] && return 0
  log "building CoreDNS $COREDNS_VERSION"
  go_build "$CACHE/src/coredns" "module gource-batch-cluster/coredns
go 1.24
require github.com/coredns/coredns $COREDNS_VERSION" github.com/coredns/coredns
  touch "$BIN/.coredns-$COREDNS_VERSION"
}

# KEDA's operator, the one binary a ScaledJob needs (its metrics API server and admission
# webhooks serve ScaledObjects and validation only). Like Kubernetes, its go.mod has a
# replace that `go install pkg@version` refuses: carry it into a scratch module.
build_keda() {
  [[ -f "$BIN/.keda-$KEDA_VERSION" && -x "$BIN/keda-operator" ]] && return 0
  log "building KEDA $KEDA_VERSION's operator from the Go module proxy (once)"
  local replaces
  replaces="$(curl -fsS "https://proxy.golang.org/github.com/kedacore/keda/v2/@v/$KEDA_VERSION.mod" \
    | sed -n '/^replace (/,/^)/p; /^replace [^(]/p')"
  go_build "$CACHE/src/keda" "module gource-batch-cluster/keda
go 1.26.0
require github.com/kedacore/keda/v2 $KEDA_VERSION
$replaces" -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v}" \
    github.com/kedacore/keda/v2/cmd/operator
  mv "$BIN/operator" "$BIN/keda-operator"
  touch "$BIN/.keda-$KEDA_VERSION"
}

# The pod sandbox: a process that sleeps until it is told to stop (what registry.k8s.io/pause does).
build_pause() {
  [[ -x "$BIN/pause" ]] && return 0
  mkdir -p "$CACHE/src/pause"
  cat >"$CACHE/src/pause/main.go" <<'EOF'
// pause holds a pod's namespaces open until it receives SIGINT or SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
EOF
  go_build "$CACHE/src/pause" "module gource-batch-cluster/pause
go 1.24" -ldflags "-s -w" .
}

# A Debian root file system with Python 3.11 (python:3.11-slim-bookworm's contents, from
# Debian's packages): the PYTHON_IMAGE every Dockerfile here is built on.
build_rootfs() {
  local rootfs="$CACHE/rootfs/$DEBIAN_SUITE-python"
  [[ -f "$rootfs/.complete" ]] && return 0
  log "debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR"
  rm -rf "$rootfs.tmp"; mkdir -p "$CACHE/rootfs"
  nice -n 10 debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    "$DEBIAN_SUITE" "$rootfs.tmp" "$DEBIAN_MIRROR"
  # The security and update suites, as the official Debian images have them.
  cat >"$rootfs.tmp/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
EOF
  # Trust what this machine trusts (a TLS-intercepting proxy's CA, say), so the image
  # builds can reach PyPI wherever the host can.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs.tmp/usr/local/share/ca-certificates/"
    chroot "$rootfs.tmp" update-ca-certificates >/dev/null
  fi
  chroot "$rootfs.tmp" apt-get clean
  rm -rf "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/var/cache/apt/*.bin
  touch "$rootfs.tmp/.complete"
  mv "$rootfs.tmp" "$rootfs"
}

# --- images ---------------------------------------------------------------------------------

BASE_IMAGE="localhost/gource-batch-base/python:3.11-$DEBIAN_SUITE"
PAUSE_IMAGE="localhost/gource-batch-base/pause:$K8S_VERSION"
KEDA_IMAGE="localhost/gource-batch-base/keda:$KEDA_VERSION"

# buildah's image store (layers, the build cache) lives in the cache too.
BUILDAH=(buildah --storage-driver vfs --root "$CACHE/buildah" --runroot "$RUN/buildah")
bah() { "${BUILDAH[@]}" "$@"; }

base_image() {
  bah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  log "base image $BASE_IMAGE"
  local c; c="$(bah from scratch)"
  local tarball="$CACHE/rootfs/$DEBIAN_SUITE-python.tar"
  tar -C "$CACHE/rootfs/$DEBIAN_SUITE-python" --exclude=./.complete -cf "$tarball" .
  bah add "$c" "$tarball" /  # a local tar archive is unpacked
  rm -f "$tarball"
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 "$c"
  bah commit -q "$c" "$BASE_IMAGE" >/dev/null
  bah rm "$c" >/dev/null
}

pause_image() {
  bah inspect --type image "$PAUSE_IMAGE" >/dev/null 2>&1 && return 0
  local c; c="$(bah from scratch)"
  bah copy "$c" "$BIN/pause" /pause
  bah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  bah commit -q "$c" "$PAUSE_IMAGE" >/dev/null
  bah rm "$c" >/dev/null
}

# What KEDA's own image (distroless static, nonroot) holds: the binary and CA certificates.
keda_image() {
  bah inspect --type image "$KEDA_IMAGE" >/dev/null 2>&1 && return 0
  local c; c="$(bah from scratch)"
  bah copy "$c" "$BIN/keda-operator" /keda
  bah copy "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
  bah config --entrypoint '["/keda"]' --user 65532:65532 "$c"
  bah commit -q "$c" "$KEDA_IMAGE" >/dev/null
  bah rm "$c" >/dev/null
}

# import_image NAME: hand a buildah image to the cluster's containerd (the kubelet's store).
import_image() {
  local name="$1" archive; archive="$CACHE/images/$(tr '/:' '__' <<<"$name").tar"
  mkdir -p "$CACHE/images"; rm -f "$archive"
  bah push -q "$name" "docker-archive:$archive:$name" >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --no-unpack "$archive" >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images label "$name" io.cri-containerd.pinned=pinned >/dev/null
  rm -f "$archive"
}

# The images the e2e runs: ours from the Dockerfiles as they are (PYTHON_IMAGE pointed at
# the local Debian base), and local stand-ins for the broker, S3 and a Git server.
IMAGES=(
  "localhost/gource-batch/processor:$IMAGE_TAG|Dockerfile.processor|$REPO"
  "localhost/gource-batch/loader:$IMAGE_TAG|Dockerfile.loader|$REPO"
  "localhost/gource-batch-standin/rabbitmq:debian|Dockerfile.rabbitmq|$REPO/scripts/cluster"
  "localhost/gource-batch-standin/s3:moto|Dockerfile.s3|$REPO/scripts/cluster"
  "localhost/gource-batch-standin/git:debian|Dockerfile.git|$CACHE/git-context"
)

git_context() {
  # Bare clones of this repository, served by the stand-in Git server: real history, no
  # internet (the example batches name GitHub repositories, which this machine cannot reach).
  local ctx="$CACHE/git-context"
  rm -rf "$ctx"; mkdir -p "$ctx/repos"
  cp "$REPO/scripts/cluster/Dockerfile.git" "$ctx/"
  git clone -q --bare "$REPO" "$ctx/repos/gource-batch.git"
  git clone -q --bare --single-branch "$REPO" "$ctx/repos/gource-batch-again.git"
}

# source_hash FILE CONTEXT: what an image is built from; our images are rebuilt when the
# code in them changed (the stand-ins only when their Dockerfile did).
source_hash() {
  local file="$1" ctx="$2"
  if [[ "$ctx" == "$REPO" ]]; then
    (cd "$REPO" && cat "$file" pyproject.toml README.md $(find processor loader -name '*.py' | sort)) | sha256sum
  else
    sha256sum <"$REPO/scripts/cluster/$file"
  fi | cut -c1-16
}

build_images() {
  local only="${1:-}" entry name file ctx hash built=0
  base_image; pause_image
  import_image "$PAUSE_IMAGE"
  for entry in "${IMAGES[@]}"; do
    IFS='|' read -r name file ctx <<<"$entry"
    if [[ -n "$only" && "$only" != all && "$name" != *"$only"* ]]; then continue; fi
    hash="$(source_hash "$file" "$ctx")"
    if [[ -z "$only" ]] && ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls "name==$name" \
        | grep -q "gource-batch.source=$hash"; then
      continue
    fi
    [[ "$file" == Dockerfile.git ]] && git_context
    log "building $name from $file"
    nice -n 10 "${BUILDAH[@]}" bud --quiet --isolation chroot --layers \
      --build-arg "PYTHON_IMAGE=$BASE_IMAGE" -f "$ctx/$file" -t "$name" "$ctx" >&2
    import_image "$name"
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images label "$name" "gource-batch.source=$hash" >/dev/null
    built=1
  done
  ((built)) || log "images are up to date (bash scripts/cluster.sh images all: rebuild)"
}

# --- certificates and configuration ---------------------------------------------------------

# One CA; the API server's serving certificate; one client certificate in system:masters
# that every component (and the e2e) uses: a throw-away single-node cluster, not a pattern.
make_pki() {
  [[ -f "$PKI/admin.crt" ]] && return 0
  mkdir -p "$PKI"; (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=gource-batch-cluster-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key \
      -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' \
      "$NODE_IP" "$API_SERVICE_IP" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=gource-batch-admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  cat >"$KUBECONFIG_FILE" <<EOF2
apiVersion: v1
kind: Config
clusters:
  - name: gource-batch
    cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$PKI/ca.crt"}
users:
  - name: admin
    user: {client-certificate: "$PKI/admin.crt", client-key: "$PKI/admin.key"}
contexts:
  - name: gource-batch
    context: {cluster: gource-batch, user: admin}
current-context: gource-batch
EOF2
}

# put FILE: write stdin to FILE only if that changes it; kube-proxy exits when its
# configuration file is rewritten, even with the same content.
put() {
  local tmp; tmp="$(mktemp "$1.XXXXXX")"
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

write_configs() {
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/etc" "$RUN/containerd"
  put "$STATE/etc/containerd.toml" <<EOF2
version = 2
root = "$CACHE/containerd"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The VM withholds CAP_SYS_RESOURCE: a negative oom_score_adj makes runc fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF2
  # The bridge plugin connects pods; it accepts NetworkPolicies but enforces none.
  put "$STATE/cni/net.d/10-gource-batch.conflist" <<EOF2
{
  "cniVersion": "1.0.0",
  "name": "gource-batch",
  "plugins": [
    {"type": "bridge", "bridge": "gbc0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF2
  # Pods resolve cluster names through CoreDNS only (no upstream: nothing outside is reachable).
  printf 'nameserver %s\n' "$NODE_IP" | put "$STATE/etc/resolv.conf"
  put "$STATE/etc/kubelet.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
clusterDNS: ["$NODE_IP"]
clusterDomain: cluster.local
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
failSwapOn: false
resolvConf: "$STATE/etc/resolv.conf"
tlsCertFile: "$PKI/apiserver.crt"
tlsPrivateKeyFile: "$PKI/apiserver.key"
# Images cannot be pulled here: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
serializeImagePulls: false
maxPods: 60
EOF2
  put "$STATE/etc/kube-proxy.yaml" <<EOF2
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$KUBECONFIG_FILE"}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
# Pod -> Service -> pod on the same bridge: masquerade, so replies come back through the node.
iptables: {masqueradeAll: true}
# nf_conntrack_max is read-only outside the initial network namespace.
conntrack: {maxPerCore: 0, min: 0}
metricsBindAddress: "$NODE_IP:10249"
healthzBindAddress: "$NODE_IP:10256"
EOF2
  put "$STATE/etc/Corefile" <<EOF2
.:53 {
    bind $NODE_IP
    errors
    health $NODE_IP:8081
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE gource-batch
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
EOF2
}

# --- processes ------------------------------------------------------------------------------

# start NAME ARGV...: run a daemon inside the cluster's network namespace, its PID in a file.
start() {
  local name="$1"; shift
  if running "$name"; then return 0; fi
  mkdir -p "$STATE/log" "$STATE/pid"
  # nsenter, not `ip netns exec`: that one also remounts /sys in a mount namespace of its
  # own, which hides the cgroup mounts from the kubelet and pod mounts from containerd.
  setsid nsenter --net="/run/netns/$NETNS" "$@" >>"$STATE/log/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pid/$name"
}

running() { [[ -f "$STATE/pid/$1" ]] && kill -0 "$(cat "$STATE/pid/$1")" 2>/dev/null; }

# wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what did not come up within ${seconds}s (logs: $STATE/log)"
}

kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

network() {
  ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
  if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip link add "$HOST_IF" type veth peer name "$NODE_IF"
    ip link set "$NODE_IF" netns "$NETNS"
    ip addr add "$HOST_IP/30" dev "$HOST_IF"
    ip link set "$HOST_IF" up
  fi
  in_ns ip link set lo up
  in_ns ip addr replace "$NODE_IP/30" dev "$NODE_IF"
  in_ns ip link set "$NODE_IF" up
  in_ns ip route replace default via "$HOST_IP" dev "$NODE_IF"
  in_ns sysctl -qw net.ipv4.ip_forward=1
  # The bridge passes pod traffic to iptables (kube-proxy's Service rules), as on any node.
  modprobe br_netfilter 2>/dev/null || true
  in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

containerd_up() {
  start containerd containerd --config "$STATE/etc/containerd.toml"
  wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version
}

control_plane_up() {
  start etcd etcd --name gbcluster --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster gbcluster=http://127.0.0.1:2380
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=false \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" \
    --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --kubelet-preferred-address-types InternalIP --storage-backend etcd3
  wait_for kube-apiserver 90 kc get --raw /readyz
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$KUBECONFIG_FILE" \
    --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller'
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$KUBECONFIG_FILE" \
    --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --leader-elect=false
}

node_up() {
  start kubelet "$BIN/kubelet" --config "$STATE/etc/kubelet.yaml" --kubeconfig "$KUBECONFIG_FILE" \
    --root-dir "$STATE/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  start kube-proxy "$BIN/kube-proxy" --config "$STATE/etc/kube-proxy.yaml"
  start coredns "$BIN/coredns" -conf "$STATE/etc/Corefile"
  wait_for "node $NODE_NAME" 120 kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  # No volume provisioner here: a default `local` StorageClass and ten volumes made ahead
  # (8Gi asked, 10Gi each, kept until `down`).
  kc apply -f - >/dev/null <<EOF2
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF2
  local i
  for i in $(seq 10); do
    mkdir -p "$STATE/volumes/pv-$i"
    kc apply -f - >/dev/null <<EOF2
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv-$i
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  local: {path: "$STATE/volumes/pv-$i"}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]
EOF2
  done
}

up() {
  [[ $EUID == 0 ]] || die "run as root"
  local t0=$SECONDS
  install_packages
  # Compiling Kubernetes and building the images take the longest: side by side.
  (build_kubernetes && build_coredns) &
  local compile=$!
  build_pause; build_rootfs
  make_pki; write_configs; network
  containerd_up
  build_images
  wait "$compile" || die "building Kubernetes or CoreDNS failed"
  control_plane_up
  node_up
  log "cluster up in $((SECONDS - t0)) s: export KUBECONFIG=$KUBECONFIG_FILE (kubectl: $BIN/kubectl)"
}

# KEDA's operator as KEDA deploys it: its CRDs, namespace, RBAC, ServiceAccount and
# Deployment from the module's config/ (kustomize), with the locally built image. Left
# out: the metrics API server (ScaledObjects only) and the admission webhooks, so the
# operator is told not to patch their objects.
keda() {
  [[ $EUID == 0 ]] || die "run as root"
  running kube-apiserver || die "the cluster is not up: bash scripts/cluster.sh up"
  local t0=$SECONDS
  build_keda
  keda_image
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q "name==$KEDA_IMAGE" | grep -q . \
    || import_image "$KEDA_IMAGE"
  # KEDA's manifests: config/ of the same module, from the module cache.
  local config
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  config="$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/config"
  mkdir -p "$STATE/keda"
  config="$(realpath --relative-to="$STATE/keda" "$config")"  # kustomize refuses absolute paths
  put "$STATE/keda/kustomization.yaml" <<EOF2
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $config/crd
  - $config/general
  - $config/rbac
  - $config/service_account
  - $config/manager
images:
  - name: ghcr.io/kedacore/keda
    newName: ${KEDA_IMAGE%:*}
    newTag: $KEDA_VERSION
patches:
  - target: {kind: Deployment, name: keda-operator}
    patch: |-
      - {op: replace, path: /spec/template/spec/containers/0/imagePullPolicy, value: IfNotPresent}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: --enable-webhook-patching=false}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: --enable-apiservice-patching=false}
EOF2
  # The CRDs are too big for a client-side apply's last-applied annotation.
  kc apply --server-side --force-conflicts -k "$STATE/keda" >/dev/null
  kc -n keda rollout status deployment/keda-operator --timeout=300s >&2
  log "KEDA $KEDA_VERSION's operator is running in namespace keda ($((SECONDS - t0)) s)"
}

# stop NAME: SIGTERM the daemon of that PID file, then SIGKILL after 15 s.
stop() {
  local pid
  [[ -f "$STATE/pid/$1" ]] || return 0
  pid="$(cat "$STATE/pid/$1")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 15); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/pid/$1"
}

down() {
  [[ $EUID == 0 ]] || die "run as root"
  stop kubelet
  # The pods' containers run under containerd shims, not containerd: end them first.
  if running containerd; then
    local task
    for task in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    sleep 2
    for task in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks delete -f "$task" >/dev/null 2>&1 || true
    done
    for task in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
      # A pod sandbox's network namespace (/var/run/netns/cni-...) outlives its container.
      ctr --address "$CONTAINERD_SOCK" -n k8s.io containers info "$task" 2>/dev/null \
        | { grep -oE '/var/run/netns/cni-[0-9a-f-]+' || true; } | sort -u | while read -r netns; do
          ip netns del "${netns##*/}" 2>/dev/null || true
        done
      ctr --address "$CONTAINERD_SOCK" -n k8s.io containers delete "$task" >/dev/null 2>&1 || true
    done
  fi
  local name
  for name in coredns kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
    stop "$name"
  done
  # Pod volumes (tmpfs, bind mounts) and sandbox network namespaces under our directories.
  { grep -oE " ($STATE|$RUN|$CACHE/containerd)/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  ip netns list | grep -qw "$NETNS" && ip netns del "$NETNS"
  ip link del "$HOST_IF" 2>/dev/null || true
  rm -rf --one-file-system "$STATE" "$RUN/containerd/state"
  log "cluster down (caches kept in $CACHE)"
}

main() {
  case "${1:-}" in
    up) up ;;
    down) down ;;
    kubeconfig) echo "$KUBECONFIG_FILE" ;;
    images) build_images "${2:-all}" ;;
    keda) keda ;;
    *) echo "usage: $0 up|down|kubeconfig|images [NAME|all]|keda" >&2; exit 2 ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
