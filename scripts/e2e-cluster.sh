#!/usr/bin/env bash
# The cluster end-to-end test: the shipped manifests (kubectl apply -k) and the Helm chart
# on a real Kubernetes, with images built from the Dockerfiles.
#
#   bash scripts/e2e-cluster.sh             # bring up scripts/cluster.sh's cluster (root), test
#   CLUSTER_KUBECONFIG=~/.kube/config bash scripts/e2e-cluster.sh   # any cluster with the
#       images localhost/gource-batch/{processor,loader}:e2e and the stand-ins loaded
#
# Extra arguments go to pytest (e.g. -k test_1). The cluster stays up afterwards
# (bash scripts/cluster.sh down stops it). E2E_TESTS names other end-to-end tests to run on
# the same cluster (scripts/e2e-keda.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tests="${E2E_TESTS:-tests/test_cluster_e2e.py}"

start=$SECONDS
if [[ -z "${CLUSTER_KUBECONFIG:-}" ]]; then
  bash scripts/cluster.sh up
  CLUSTER_KUBECONFIG="$(bash scripts/cluster.sh kubeconfig)"
  PATH="${CLUSTER_CACHE:-/var/cache/gource-batch-cluster}/bin:$PATH"
fi
export CLUSTER_KUBECONFIG PATH
command -v helm >/dev/null || bash scripts/install-helm.sh
status=0
PYTHONPATH="$PWD" python3 -m pytest "$tests" -m cluster -v -p no:cacheprovider "$@" || status=$?
echo "$(basename "$tests" .py): $((SECONDS - start)) s in all (pytest exit $status)"
exit $status
