#!/usr/bin/env bash
# End-to-end on a machine with Docker and kind (not run in CI: it needs Docker, a kind
# cluster and internet access for the repositories it renders).
#
#   scripts/kind-e2e.sh                 # create a cluster, run a batch, check, delete it
#   KEEP_CLUSTER=1 scripts/kind-e2e.sh  # leave the cluster up afterwards for a look
#
# What it proves: both images build and start under Pod Security "restricted" with a
# read-only root filesystem; the chart installs with examples/dev-values.yaml; the loader
# Job publishes the batch and launches a processor Job sized to it; the processors render
# every request, upload the videos to S3 (an in-cluster MinIO), exit 0, and the Job
# completes.
#
# Needs: docker, kind, kubectl, helm (scripts/install-helm.sh) on PATH.
set -euo pipefail

cd "$(dirname "$0")/.."

CLUSTER="${CLUSTER:-gource-batch-e2e}"
NAMESPACE="${NAMESPACE:-gource-batch-dev}"
RELEASE="${RELEASE:-gource-batch}"
TAG="${TAG:-dev}"
MINIO_IMAGE="${MINIO_IMAGE:-minio/minio:RELEASE.2024-12-18T13-15-44Z}"
MC_IMAGE="${MC_IMAGE:-minio/mc:RELEASE.2024-11-21T17-21-54Z}"
MINIO_USER="e2e-$(date +%s)"
MINIO_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
VALUES=charts/gource-batch/examples/dev-values.yaml
# The videoIds the dev values request (requests.inline); each must become a video.
EXPECTED_VIDEOS=(dev-gource dev-itsdangerous)

log() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH"
done

dump() {
  log "diagnostics"
  kubectl -n "$NAMESPACE" get all,configmaps,secrets,networkpolicies -o wide || true
  kubectl -n "$NAMESPACE" get events --sort-by=.lastTimestamp | tail -40 || true
  kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/component=loader --tail=100 --prefix || true
  kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/component=processor --tail=100 --prefix || true
}

cleanup() {
  local status=$?
  if [[ $status -ne 0 ]]; then dump; fi
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    log "keeping cluster $CLUSTER (kind delete cluster --name $CLUSTER)"
  else
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit $status
}
trap cleanup EXIT

# Pod Security "restricted" for the helper pods too: the namespace enforces it.
RESTRICTED_CONTAINER='securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            runAsUser: 10002
            runAsGroup: 10002
            capabilities: {drop: ["ALL"]}
            seccompProfile: {type: RuntimeDefault}'

log "cluster $CLUSTER"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 180s
fi
kubectl config use-context "kind-$CLUSTER"

log "building images"
docker build -f Dockerfile.processor -t "gource-batch-processor:$TAG" .
docker build -f Dockerfile.loader -t "gource-batch-loader:$TAG" .
kind load docker-image --name "$CLUSTER" "gource-batch-processor:$TAG" "gource-batch-loader:$TAG"

log "namespace $NAMESPACE (Pod Security: restricted, enforced)"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NAMESPACE" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest

log "MinIO as the S3 store"
kubectl -n "$NAMESPACE" create secret generic minio-credentials \
  --from-literal=AWS_ACCESS_KEY_ID="$MINIO_USER" \
  --from-literal=AWS_SECRET_ACCESS_KEY="$MINIO_PASSWORD" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NAMESPACE" apply -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: minio
spec:
  replicas: 1
  selector:
    matchLabels: {app: minio}
  template:
    metadata:
      labels: {app: minio}
    spec:
      automountServiceAccountToken: false
      securityContext: {fsGroup: 10002}
      containers:
        - name: minio
          image: $MINIO_IMAGE
          args: ["server", "/data", "--certs-dir", "/tmp/certs"]
          env:
            - name: MINIO_ROOT_USER
              valueFrom: {secretKeyRef: {name: minio-credentials, key: AWS_ACCESS_KEY_ID}}
            - name: MINIO_ROOT_PASSWORD
              valueFrom: {secretKeyRef: {name: minio-credentials, key: AWS_SECRET_ACCESS_KEY}}
            - {name: HOME, value: /tmp}
          ports: [{containerPort: 9000}]
          readinessProbe:
            httpGet: {path: /minio/health/ready, port: 9000}
          resources:
            requests: {cpu: 100m, memory: 256Mi}
            limits: {cpu: "1", memory: 1Gi}
          $RESTRICTED_CONTAINER
          volumeMounts:
            - {name: data, mountPath: /data}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: data
          emptyDir: {sizeLimit: 4Gi}
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: minio
spec:
  selector: {app: minio}
  ports: [{port: 9000, targetPort: 9000}]
EOF
kubectl -n "$NAMESPACE" rollout status deployment/minio --timeout=180s

# mc_job NAME SCRIPT: run an `mc` shell script in the namespace; prints its output.
mc_job() {
  local name="$1" script="$2"
  kubectl -n "$NAMESPACE" delete job "$name" --ignore-not-found >/dev/null
  kubectl -n "$NAMESPACE" apply -f - <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $name
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {app: mc}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      containers:
        - name: mc
          image: $MC_IMAGE
          command: ["/bin/sh", "-ec"]
          args:
            - |
              mc alias set e2e http://minio:9000 "\$AWS_ACCESS_KEY_ID" "\$AWS_SECRET_ACCESS_KEY" >/dev/null
              $script
          envFrom: [{secretRef: {name: minio-credentials}}]
          env: [{name: MC_CONFIG_DIR, value: /tmp/.mc}]
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {cpu: 500m, memory: 256Mi}
          $RESTRICTED_CONTAINER
          volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
EOF
  kubectl -n "$NAMESPACE" wait --for=condition=complete "job/$name" --timeout=180s >/dev/null \
    || { kubectl -n "$NAMESPACE" logs "job/$name" || true; fail "mc job $name did not complete"; }
  kubectl -n "$NAMESPACE" logs "job/$name"
}
mc_job make-bucket 'mc mb --ignore-existing e2e/videos'

log "helm install $RELEASE with $VALUES"
helm upgrade --install "$RELEASE" charts/gource-batch --namespace "$NAMESPACE" \
  --values "$VALUES" \
  --set image.processor.tag="$TAG" --set image.loader.tag="$TAG" \
  --wait --timeout 10m

# Fullname: the release name when it contains the chart name, else <release>-gource-batch.
if [[ "$RELEASE" == *gource-batch* ]]; then FULLNAME="$RELEASE"; else FULLNAME="$RELEASE-gource-batch"; fi
REVISION="$(helm history "$RELEASE" -n "$NAMESPACE" --max 1 -o json | sed -n 's/.*"revision":\([0-9]*\).*/\1/p')"
[[ -n "$REVISION" ]] || fail "cannot tell the release revision"
LOADER_JOB="$FULLNAME-loader-r$REVISION"

log "loader Job $LOADER_JOB: publish the batch, launch the processors"
kubectl -n "$NAMESPACE" wait --for=condition=complete "job/$LOADER_JOB" --timeout=10m \
  || fail "loader Job $LOADER_JOB did not complete"
kubectl -n "$NAMESPACE" logs "job/$LOADER_JOB" | tail -20

SELECTOR="app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=processor"
PROCESSOR_JOB=""
for _ in $(seq 60); do
  PROCESSOR_JOB="$(kubectl -n "$NAMESPACE" get jobs -l "$SELECTOR" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)"
  [[ -n "$PROCESSOR_JOB" ]] && break
  sleep 2
done
[[ -n "$PROCESSOR_JOB" ]] || fail "the loader launched no processor Job"
PARALLELISM="$(kubectl -n "$NAMESPACE" get job "$PROCESSOR_JOB" -o jsonpath='{.spec.parallelism}')"
log "processor Job $PROCESSOR_JOB (parallelism $PARALLELISM): drain the queue"
[[ "$PARALLELISM" == "${#EXPECTED_VIDEOS[@]}" ]] \
  || fail "expected parallelism ${#EXPECTED_VIDEOS[@]} (one per request, dev values), got $PARALLELISM"
kubectl -n "$NAMESPACE" wait --for=condition=complete "job/$PROCESSOR_JOB" --timeout=30m \
  || fail "processor Job $PROCESSOR_JOB did not complete"
kubectl -n "$NAMESPACE" logs -l "$SELECTOR" --prefix --tail=20 || true

log "exactly one processor Job was launched"
[[ "$(kubectl -n "$NAMESPACE" get jobs -l "$SELECTOR" -o name | wc -l)" -eq 1 ]] \
  || fail "more than one processor Job was launched"

log "videos in s3://videos/dev"
LISTING="$(mc_job list-videos 'mc ls --recursive e2e/videos/dev/')"
echo "$LISTING"
for video in "${EXPECTED_VIDEOS[@]}"; do
  grep -E "${video}[^ ]*\.mp4$" <<<"$LISTING" >/dev/null || fail "no video for $video"
done
# Every video is a real, non-empty object.
grep -E '\.mp4$' <<<"$LISTING" | awk '{ if ($4 == "0B") exit 1 }' || fail "an empty video"

log "queue statistics"
kubectl -n "$NAMESPACE" run stats --rm -i --restart=Never --quiet \
  --image="gource-batch-processor:$TAG" --image-pull-policy=IfNotPresent \
  --overrides="$(cat <<EOF
{"spec": {"automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "stats", "image": "gource-batch-processor:$TAG",
    "args": ["python", "-m", "processor", "stats"],
    "envFrom": [{"configMapRef": {"name": "$FULLNAME-config"}}],
    "env": [{"name": "AMQP_URL", "valueFrom": {"secretKeyRef": {"name": "$FULLNAME-broker", "key": "amqp-url"}}}],
    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
      "capabilities": {"drop": ["ALL"]}}}]}}
EOF
)" || echo "(stats not available)"

log "PASS: ${#EXPECTED_VIDEOS[@]} videos rendered, processor Job $PROCESSOR_JOB completed"
