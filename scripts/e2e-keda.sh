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

if [[ -z "${CLUSTER_KUBECONFIG:-}" ]]; then
  bash scripts/cluster.sh up
  bash scripts/cluster.sh keda
fi
E2E_TESTS=tests/test_keda_e2e.py exec bash scripts/e2e-cluster.sh -s "$@"
