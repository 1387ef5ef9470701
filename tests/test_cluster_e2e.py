"""The shipped manifests and chart on a real Kubernetes: images built from the Dockerfiles,
Jobs that complete, videos that play.

Runs only when CLUSTER_KUBECONFIG names a cluster (`bash scripts/e2e-cluster.sh` brings one
up with scripts/cluster.sh and sets it; on a machine with Docker, a kind cluster with the
same images loaded works too). Everything is asserted through the API server and on the
objects in the bucket: no step looks inside a container.

What this cluster cannot show: the bridge CNI plugin accepts NetworkPolicies but enforces
none, so the policies are admitted here, never exercised (Calico or Cilium would enforce
them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pika
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "tests" / "cluster" / "overlay"
KUBECONFIG = os.environ.get("CLUSTER_KUBECONFIG", "")
TAG = os.environ.get("CLUSTER_IMAGE_TAG", "e2e")
PROCESSOR_IMAGE = f"localhost/gource-batch/processor:{TAG}"
LOADER_IMAGE = f"localhost/gource-batch/loader:{TAG}"
NS = "gource-batch"  # the shipped kustomization's namespace
SMALL = {
    "requests": {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "256Mi"},
    "limits": {"cpu": "1", "memory": "1536Mi", "ephemeral-storage": "3Gi"},
}

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(
        not KUBECONFIG,
        reason="no cluster: run `bash scripts/e2e-cluster.sh` (or set CLUSTER_KUBECONFIG)",
    ),
]


# --- the API server -------------------------------------------------------------------------


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: float = 300) -> str:
    result = subprocess.run(
        ["kubectl", "--kubeconfig", KUBECONFIG, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def get(kind: str, name: str, ns: str = NS) -> dict[str, Any]:
    return json.loads(kubectl("-n", ns, "get", kind, name, "-o", "json"))


def items(kind: str, selector: str, ns: str = NS) -> list[dict[str, Any]]:
    return json.loads(kubectl("-n", ns, "get", kind, "-l", selector, "-o", "json"))["items"]


def eventually(what: str, probe: Callable[[], Any], timeout: float, every: float = 3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def condition(job: dict[str, Any]) -> str | None:
    """Complete or Failed once the Job has finished, with the reason when it failed."""
    for c in job.get("status", {}).get("conditions", []):
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return c["type"] if c["type"] == "Complete" else f"Failed:{c.get('reason')}"
    return None


def finished(name: str, ns: str = NS, timeout: float = 1200) -> str:
    return str(eventually(f"Job {ns}/{name} finishes", lambda: condition(get("job", name, ns)), timeout))


def diagnostics(ns: str) -> str:
    out = kubectl("-n", ns, "get", "all,pvc,events", "-o", "wide", check=False)
    for pod in kubectl("-n", ns, "get", "pods", "-o", "name", check=False).split():
        out += f"\n--- {pod}\n" + kubectl("-n", ns, "logs", pod, "--tail=30", "--all-containers", check=False)
    return out


@contextmanager
def port_forward(ns: str, service: str, port: int) -> Iterator[int]:
    """A local port reaching a Service, the way an operator reaches one from a laptop."""
    argv = ["kubectl", "--kubeconfig", KUBECONFIG, "-n", ns, "port-forward", f"svc/{service}", f":{port}"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            if not match:
                raise AssertionError(f"port-forward to {service}: {line}")
            yield int(match[1])
        finally:
            proc.terminate()
            proc.wait(10)


# --- the stand-ins: S3 and the broker, through port-forwards ----------------------------------


class Bucket:
    """The S3 stand-in's objects, as a user would fetch them."""

    def __init__(self, ns: str, access_key: str, secret_key: str) -> None:
        self.ns, self.access_key, self.secret_key = ns, access_key, secret_key

    @contextmanager
    def client(self) -> Iterator[Any]:
        with port_forward(self.ns, "s3", 9000) as port:
            yield boto3.client(
                "s3",
                endpoint_url=f"http://127.0.0.1:{port}",
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name="us-east-1",
            )

    def create(self, name: str) -> None:
        with self.client() as s3:
            eventually(f"bucket {name} created", lambda: _try(lambda: s3.create_bucket(Bucket=name)), 60)

    def videos(self, bucket: str, prefix: str) -> list[str]:
        with self.client() as s3:
            listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".mp4"))

    def assert_playable(self, bucket: str, keys: list[str], tmp_path: Path) -> None:
        """Every video downloads and ffprobe finds an H.264 video stream with frames in it."""
        assert keys
        with self.client() as s3:
            for key in keys:
                local = tmp_path / key.replace("/", "_")
                s3.download_file(bucket, key, str(local))
                probe = subprocess.run(
                    [
                        "ffprobe",
                        "-v",
                        "error",
                        "-select_streams",
                        "v:0",
                        "-count_packets",
                        "-show_entries",
                        "stream=codec_name,nb_read_packets",
                        "-of",
                        "json",
                        str(local),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                stream = json.loads(probe.stdout)["streams"][0]
                assert stream["codec_name"] == "h264", key
                assert int(stream["nb_read_packets"]) > 10, key


def _try(action: Callable[[], Any]) -> bool:
    try:
        action()
    except Exception:
        return False
    return True


@contextmanager
def broker(ns: str, amqp_url_with_host: Callable[[int], str]) -> Iterator[str]:
    with port_forward(ns, "rabbitmq", 5672) as port:
        yield amqp_url_with_host(port)


def queued(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def publish(amqp_url: str, queue: str, lines: list[dict[str, Any]], tmp_path: Path) -> None:
    """The loader's CLI, as an operator would run it against the cluster's broker."""
    batch = tmp_path / f"{queue}.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = {**os.environ, "AMQP_URL": amqp_url, "RENDER_QUEUE": queue, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "loader", "--file", str(batch)], env=env, check=True, timeout=120)


# --- the kustomize deployment every step but the Helm one uses --------------------------------


def processor_template(image: str, resources: dict[str, Any]) -> str:
    """The shipped processor Job template with only the image and its size changed."""
    job = yaml.safe_load((ROOT / "kubernetes" / "processor-job.yaml").read_text())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    container["image"] = image
    container["resources"] = resources
    return "# Written by tests/test_cluster_e2e.py from kubernetes/processor-job.yaml.\n" + yaml.safe_dump(
        job, sort_keys=False
    )


def processor_job(ns: str, name: str, env: dict[str, str], parallelism: int = 1) -> dict[str, Any]:
    """A processor Job from the template the loader launches from, with some settings changed."""
    cm = json.loads(
        kubectl(
            "-n", ns, "get", "configmap", "-l", "app.kubernetes.io/component=processor-template", "-o", "json"
        )
    )["items"][0]
    job = yaml.safe_load(cm["data"]["processor-job.yaml"])
    job["metadata"].pop("generateName", None)
    job["metadata"]["name"] = name
    job["spec"]["parallelism"] = parallelism
    (container,) = job["spec"]["template"]["spec"]["containers"]
    container["env"] = [e for e in container.get("env", []) if e["name"] not in env]
    container["env"] += [{"name": k, "value": v} for k, v in env.items()]
    kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(job))
    return job


@pytest.fixture(scope="module")
def kustomized() -> Bucket:
    """`kubectl apply -k` of the shipped manifests through tests/cluster/overlay."""
    require_tools()
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=300)
    (OVERLAY / "processor-job.yaml").write_text(processor_template(PROCESSOR_IMAGE, SMALL))
    # The stand-ins first: processors must find their bucket (a missing one is exit 78).
    kubectl("apply", "-f", str(ROOT / "kubernetes" / "namespace.yaml"))
    kubectl("-n", NS, "apply", "-f", str(OVERLAY / "stand-ins.yaml"))
    kubectl("-n", NS, "rollout", "status", "deployment/s3", "deployment/git-server", "--timeout=180s")
    bucket = Bucket(NS, "e2e", "e2e-cluster-secret")
    bucket.create("videos")
    kubectl("apply", "-k", str(OVERLAY))
    kubectl("-n", NS, "rollout", "status", "statefulset/rabbitmq", "--timeout=300s", timeout=330)
    return bucket


def require_tools() -> None:
    for tool in ("kubectl", "ffprobe"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH")


def amqp_local(port: int) -> str:
    return f"amqp://e2e:e2e-cluster-password@127.0.0.1:{port}/%2F"


def loader_launched(ns: str, after: set[str]) -> str:
    """The name of the processor Job the loader created (one not in `after`)."""

    def probe() -> str | None:
        names = {j["metadata"]["name"] for j in items("job", "app.kubernetes.io/component=processor", ns)}
        new = sorted(names - after)
        return new[0] if new else None

    return str(eventually("the loader launches a processor Job", probe, 600))


# --- the steps ------------------------------------------------------------------------------


def test_1_kubectl_apply_k_runs_the_example_batch_to_playable_videos(
    kustomized: Bucket, tmp_path: Path
) -> None:
    try:
        assert finished("gource-batch-loader", timeout=600) == "Complete"
        job = loader_launched(NS, set())
        # Sized to the backlog: two requests, ten per processor, at least one.
        assert get("job", job)["spec"]["parallelism"] == 1
        assert finished(job) == "Complete"
    except AssertionError:
        print(diagnostics(NS))
        raise
    videos = kustomized.videos("videos", "kustomize/")
    assert videos == ["kustomize/kustomize-gource-batch-again.mp4", "kustomize/kustomize-gource-batch.mp4"]
    kustomized.assert_playable("videos", videos, tmp_path)
    # The loader did it with its own ServiceAccount, which may create Jobs and nothing more.
    sa = f"system:serviceaccount:{NS}:gource-batch-loader"
    assert kubectl("auth", "can-i", "create", "jobs", "-n", NS, "--as", sa, check=False).strip() == "yes"
    for verb, what in (("create", "pods"), ("get", "secrets"), ("delete", "jobs"), ("create", "deployments")):
        assert kubectl("auth", "can-i", verb, what, "-n", NS, "--as", sa, check=False).strip() == "no", (
            verb,
            what,
        )


def test_2_helm_installs_dev_and_prod_values_upgrades_and_uninstalls(
    kustomized: Bucket, tmp_path: Path
) -> None:
    """Both example values files, overridden only where this cluster must differ."""
    if shutil.which("helm") is None:
        pytest.fail("helm is not on PATH (bash scripts/install-helm.sh)")
    dev = helm_namespace("gource-batch-dev")
    prod = helm_namespace("gource-batch-prod")
    # Prod's external broker: the kustomize namespace's one, by its cluster DNS name.
    kubectl(
        "-n",
        prod.ns,
        "create",
        "secret",
        "generic",
        "gource-batch-amqp",
        "--from-literal=amqp-url=amqp://e2e:e2e-cluster-password@rabbitmq.gource-batch.svc:5672/%2F",
    )
    kubectl(
        "-n",
        prod.ns,
        "create",
        "configmap",
        "gource-batch-nightly",
        "--from-literal=requests.jsonl="
        + json.dumps(
            {"type": "gource", "repoURL": "git://git-server/gource-batch.git", "videoId": "prod-nightly"}
        ),
    )
    # Prod schedules onto nodes labelled workload=batch: this node is one.
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    kubectl("label", "node", node, "workload=batch", "--overwrite")
    try:
        helm(
            "install",
            "gource-batch",
            dev.ns,
            "dev-values.yaml",
            {
                "requests": {
                    "inline": [
                        {
                            "type": "gource",
                            "repoURL": "git://git-server/gource-batch.git",
                            "videoId": "dev-gource-batch",
                            "gource": {"--title": "gource-batch", "--stop-at-time": 10},
                        },
                        {
                            "type": "gource",
                            "repoURL": "git://git-server/gource-batch-again.git",
                            "videoId": "dev-again",
                            "gource": {"--key": True, "--stop-at-time": 10},
                        },
                    ]
                },
                "output": {"endpoint": "http://s3:9000"},
            },
        )
        # Dev runs its batch on install; upgrade it while its processor Job renders.
        assert finished("gource-batch-loader-r1", dev.ns, timeout=600) == "Complete"
        dev_job = loader_launched(dev.ns, set())
        uid = get("job", dev_job, dev.ns)["metadata"]["uid"]
        assert condition(get("job", dev_job, dev.ns)) is None, "the processor Job finished before the upgrade"
        helm(
            "upgrade",
            "gource-batch",
            dev.ns,
            "dev-values.yaml",
            {"output": {"endpoint": "http://s3:9000"}, "loader": {"runOnInstall": False}},
        )
        assert get("job", dev_job, dev.ns)["metadata"]["uid"] == uid
        # Prod only now: installing it first let dev's small batch finish before the check above.
        helm(
            "install",
            "gource-batch",
            prod.ns,
            "prod-values.yaml",
            {
                "broker": {"renderQueue": "prod-render", "external": {"port": 5672}},
                "output": {
                    "endpoint": "http://s3:9000",
                    "existingSecret": "s3-credentials",
                    "url": "s3://acme-gource-videos/prod",
                },
                "render": {"resolution": "320x180", "videoSeconds": 8},
                "processor": {"resources": SMALL},
                # No Prometheus operator here: its PodMonitor kind does not exist.
                "metrics": {"podMonitor": {"enabled": False}},
            },
        )
        assert finished(dev_job, dev.ns) == "Complete"
        # Prod runs its batch on schedule (nightly): start the CronJob's Job now.
        kubectl("-n", prod.ns, "create", "job", "--from=cronjob/gource-batch", "prod-now")
        assert finished("prod-now", prod.ns, timeout=600) == "Complete"
        prod_job = loader_launched(prod.ns, set())
        # Two processors at least (prod's minProcessors), however small the backlog.
        assert get("job", prod_job, prod.ns)["spec"]["parallelism"] == 2
        assert finished(prod_job, prod.ns) == "Complete"
    except AssertionError:
        print(diagnostics(dev.ns), diagnostics(prod.ns))
        raise
    finally:
        kubectl("label", "node", node, "workload-", check=False)
    assert dev.videos("videos", "dev/") == ["dev/dev-again.mp4", "dev/dev-gource-batch.mp4"]
    dev.assert_playable("videos", dev.videos("videos", "dev/"), tmp_path)
    assert prod.videos("acme-gource-videos", "prod/") == ["prod/prod-nightly.mp4"]
    prod.assert_playable("acme-gource-videos", ["prod/prod-nightly.mp4"], tmp_path)
    # Uninstall leaves what the README says it keeps: Jobs, the broker's Secret and volume.
    for ns in (dev.ns, prod.ns):
        subprocess.run(
            ["helm", "--kubeconfig", KUBECONFIG, "uninstall", "gource-batch", "-n", ns, "--wait"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        left = kubectl(
            "-n",
            ns,
            "get",
            "all,configmaps,secrets,serviceaccounts,roles,rolebindings,networkpolicies,cronjobs,pvc",
            "-l",
            "app.kubernetes.io/instance=gource-batch",
            "-o",
            "name",
        ).split()
        kinds = {name.split("/")[0] for name in left}
        assert kinds <= {"job.batch", "pod", "secret", "persistentvolumeclaim"}, left
        assert all(n.split("/")[1] == "gource-batch-broker" for n in left if n.startswith("secret/")), left


def helm_namespace(ns: str) -> Bucket:
    """A namespace enforcing Pod Security restricted, with the S3 and Git stand-ins in it."""
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", timeout=300)
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    kubectl("-n", ns, "apply", "-f", str(OVERLAY / "stand-ins.yaml"))
    for name in ("minio-credentials", "s3-credentials"):
        kubectl(
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            name,
            "--from-literal=AWS_ACCESS_KEY_ID=e2e",
            "--from-literal=AWS_SECRET_ACCESS_KEY=e2e-cluster-secret",
        )
    kubectl("-n", ns, "rollout", "status", "deployment/s3", "deployment/git-server", "--timeout=180s")
    bucket = Bucket(ns, "e2e", "e2e-cluster-secret")
    bucket.create("videos")
    bucket.create("acme-gource-videos")
    return bucket


def helm(action: str, release: str, ns: str, example: str, overrides: dict[str, Any]) -> None:
    """helm install/upgrade with an example values file and this cluster's differences."""
    cluster = {
        "image": {
            "processor": {"repository": PROCESSOR_IMAGE.rsplit(":", 1)[0], "tag": TAG},
            "loader": {"repository": LOADER_IMAGE.rsplit(":", 1)[0], "tag": TAG},
        },
        "broker": {
            "bundled": {"image": {"repository": "localhost/gource-batch-standin/rabbitmq", "tag": "debian"}}
        },
        "render": {"gitAllowedProtocols": ["git"]},
        "processor": {
            "extraEnv": [{"name": "GIT_ALLOWED_NETWORKS", "value": "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"}]
        },
    }
    values = Path(f"/tmp/cluster-e2e-{ns}-{action}.yaml")
    values.write_text(yaml.safe_dump(_merge(cluster, overrides)))
    subprocess.run(
        [
            "helm",
            "--kubeconfig",
            KUBECONFIG,
            action,
            release,
            str(ROOT / "charts" / "gource-batch"),
            "-n",
            ns,
            "-f",
            str(ROOT / "charts" / "gource-batch" / "examples" / example),
            "-f",
            str(values),
            "--timeout",
            "10m",
        ],
        check=True,
        timeout=900,
    )


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def test_3_the_cronjob_fires_every_minute_and_its_batch_completes(kustomized: Bucket, tmp_path: Path) -> None:
    before = {j["metadata"]["name"] for j in items("job", "app.kubernetes.io/component=processor")}
    kubectl(
        "-n",
        NS,
        "patch",
        "cronjob",
        "gource-batch",
        "--type=merge",
        "-p",
        '{"spec": {"schedule": "* * * * *", "suspend": false}}',
    )
    try:
        fired = eventually(
            "the CronJob fires",
            lambda: get("cronjob", "gource-batch").get("status", {}).get("lastScheduleTime"),
            150,
        )
        kubectl(
            "-n", NS, "patch", "cronjob", "gource-batch", "--type=merge", "-p", '{"spec": {"suspend": true}}'
        )
        loaders = [
            j
            for j in json.loads(kubectl("-n", NS, "get", "jobs", "-o", "json"))["items"]
            if any(o["kind"] == "CronJob" for o in j["metadata"].get("ownerReferences", []))
        ]
        assert loaders, f"no Job from the CronJob (last schedule {fired})"
        assert finished(loaders[0]["metadata"]["name"], timeout=600) == "Complete"
        job = loader_launched(NS, before)
        assert finished(job) == "Complete"
    except AssertionError:
        print(diagnostics(NS))
        raise
    kustomized.assert_playable("videos", kustomized.videos("videos", "kustomize/"), tmp_path)


def test_4_a_missing_bucket_fails_the_job_at_once_and_keeps_the_requests(
    kustomized: Bucket, tmp_path: Path
) -> None:
    queue = f"e2e-nobucket-{uuid.uuid4().hex[:6]}"
    with broker(NS, amqp_local) as url:
        publish(
            url, queue, [{"type": "gource", "repoURL": "git://git-server/gource-batch.git"}] * 2, tmp_path
        )
        name = f"nobucket-{uuid.uuid4().hex[:6]}"
        processor_job(NS, name, {"RENDER_QUEUE": queue, "OUTPUT_URL": f"s3://no-such-bucket-{name}/videos"})
        try:
            assert finished(name, timeout=300) == "Failed:PodFailurePolicy"
        except AssertionError:
            print(diagnostics(NS))
            raise
        status = get("job", name)["status"]
        # One pod, exit 78, not backoffLimit (6) retries.
        assert status.get("failed") == 1
        (pod,) = items("pod", f"job-name={name}")
        (state,) = pod["status"]["containerStatuses"]
        assert state["state"]["terminated"]["exitCode"] == 78
        assert queued(url, queue) == 2


def test_5_a_processor_deleted_mid_render_hands_its_request_back(kustomized: Bucket, tmp_path: Path) -> None:
    queue = f"e2e-delete-{uuid.uuid4().hex[:6]}"
    video = f"deleted-mid-render-{uuid.uuid4().hex[:6]}"
    with broker(NS, amqp_local) as url:
        publish(
            url,
            queue,
            [
                {
                    "type": "gource",
                    "repoURL": "git://git-server/gource-batch.git",
                    "videoId": video,
                    "gource": {"--seconds-per-day": 1},
                }
            ],
            tmp_path,
        )
    name = f"delete-{uuid.uuid4().hex[:6]}"
    processor_job(
        NS, name, {"RENDER_QUEUE": queue, "OUTPUT_URL": "s3://videos/deleted", "VIDEO_SECONDS": "40"}
    )

    def rendering() -> str | None:
        for pod in items("pod", f"job-name={name}"):
            log = kubectl("-n", NS, "logs", pod["metadata"]["name"], check=False)
            if "cloned in" in log and "rendered " not in log:  # gource | ffmpeg is running
                return str(pod["metadata"]["name"])
        return None

    victim = eventually("a processor starts rendering", rendering, 600, every=1)
    kubectl("-n", NS, "delete", "pod", victim, "--wait=false")
    try:
        assert finished(name) == "Complete"
    except AssertionError:
        print(diagnostics(NS))
        raise
    assert kustomized.videos("videos", "deleted/") == [f"deleted/{video}.mp4"]
    kustomized.assert_playable("videos", [f"deleted/{video}.mp4"], tmp_path)
    # The deleted pod counted as one failure and a new pod finished its request.
    assert get("job", name)["status"].get("failed") == 1
    (replacement,) = items("pod", f"job-name={name}")
    assert replacement["metadata"]["name"] != victim
    log = kubectl("-n", NS, "logs", replacement["metadata"]["name"])
    # Handed back, not lost: the replacement rendered the request's second delivery.
    assert any(
        json.loads(line).get("videoId") == video and json.loads(line).get("attempt") == 2
        for line in log.splitlines()
        if line.startswith("{")
    )


def test_6_the_broker_keeps_its_queues_and_messages_across_a_pod_deletion(
    kustomized: Bucket, tmp_path: Path
) -> None:
    queue = f"e2e-restart-{uuid.uuid4().hex[:6]}"
    video = f"after-broker-restart-{uuid.uuid4().hex[:6]}"
    with broker(NS, amqp_local) as url:
        publish(
            url,
            queue,
            [{"type": "gource", "repoURL": "git://git-server/gource-batch-again.git", "videoId": video}],
            tmp_path,
        )
        assert queued(url, queue) == 1
    old_uid = get("pod", "rabbitmq-0")["metadata"]["uid"]
    kubectl("-n", NS, "delete", "pod", "rabbitmq-0", "--wait=true")
    eventually("rabbitmq-0 is back", lambda: get("pod", "rabbitmq-0")["metadata"]["uid"] != old_uid, 120)
    kubectl("-n", NS, "wait", "--for=condition=Ready", "pod/rabbitmq-0", "--timeout=300s")
    with broker(NS, amqp_local) as url:
        assert eventually("the queue is back", lambda: _count(url, queue), 60) == 1
    name = f"restart-{uuid.uuid4().hex[:6]}"
    processor_job(NS, name, {"RENDER_QUEUE": queue, "OUTPUT_URL": "s3://videos/restart"})
    try:
        assert finished(name) == "Complete"
    except AssertionError:
        print(diagnostics(NS))
        raise
    assert kustomized.videos("videos", "restart/") == [f"restart/{video}.mp4"]
    kustomized.assert_playable("videos", [f"restart/{video}.mp4"], tmp_path)


def _count(url: str, queue: str) -> int | None:
    try:
        return queued(url, queue)
    except Exception:
        return None
