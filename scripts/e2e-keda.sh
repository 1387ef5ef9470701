#!/usr/bin/env bash
# The KEDA end-to-end test: KEDA's own operator drives the chart's ScaledJob on a real
# Kubernetes (tests/test_keda_e2e.py). Not part of .ci/run: README "KEDA or the loader's
# launcher" says why and what it measured.
#
#   bash scripts/e2e-keda.sh             # bring up scripts/cluster.sh's cluster and KEDA (root), test
#   CLUSTER_KUBECONFIG=~/.kube/config bash scripts/e2e-keda.sh   # any cluster with KEDA and the
#       images localhost/gource-batch/{processor,loader}:e2e and the stand-ins loaded
#
# Extra arguments go to pytest. The cluster stays up afterwards
# (bash scripts/cluster.sh down stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
if [[ -z "${CLUSTER_KUBECONFIG:-}" ]]; then
  bash scripts/cluster.sh up
  bash scripts/cluster.sh keda
  CLUSTER_KUBECONFIG="$(bash scripts/cluster.sh kubeconfig)"
  PATH="${CLUSTER_CACHE:-/var/cache/gource-batch-cluster}/bin:$PATH"
fi
export CLUSTER_KUBECONFIG PATH
command -v helm >/dev/null || bash scripts/install-helm.sh
status=0
PYTHONPATH="$PWD" python3 -m pytest tests/test_keda_e2e.py -m cluster -v -s -p no:cacheprovider "$@" || status=$?
echo "e2e-keda: $((SECONDS - start)) s in all (pytest exit $status)"
exit $status
