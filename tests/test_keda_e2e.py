"""KEDA's own operator drives the chart's ScaledJob on a real cluster.

`bash scripts/e2e-keda.sh` brings up scripts/cluster.sh's cluster, builds KEDA's operator
(github.com/kedacore/keda/v2) from the Go module proxy and deploys it from KEDA's own
manifests, then runs this. Any cluster with KEDA and the e2e images works
(CLUSTER_KUBECONFIG).

The chart is installed with `keda.enabled: true` and its shipped ScaledJob defaults; only
sizes, images, endpoints, the number of requests per processor (to get several Jobs from a
small batch) and the history limit (to see the clean-up) are overridden. A plain producer
(pika, as an outside service would) publishes the batch; every Job and pod is watched
through the API, every render through the result events (each names its pod).
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest
from test_cluster_e2e import (
    KUBECONFIG,
    SMALL,
    Bucket,
    condition,
    diagnostics,
    eventually,
    get,
    helm,
    helm_namespace,
    items,
    kubectl,
    port_forward,
    require_tools,
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(
        not KUBECONFIG, reason="no cluster: run `bash scripts/e2e-keda.sh` (or set CLUSTER_KUBECONFIG)"
    ),
]

NS = "gource-batch-keda"
RELEASE = "gource-batch"
SCALED_JOB = f"{RELEASE}-processor"
QUEUE = "render"
REQUESTS = 6
PER_PROCESSOR = 2  # keda.queueLength: waiting requests per processor Job
POLLING = 30  # the chart's keda.pollingInterval


@dataclass
class Watch:
    """Every Job and pod of the ScaledJob seen so far, and when."""

    jobs: dict[str, float] = field(default_factory=dict)  # name -> first seen
    pods: dict[str, str] = field(default_factory=dict)  # pod -> its Job
    finished: dict[str, str] = field(default_factory=dict)  # Job -> Complete/Failed
    most_at_once: int = 0

    def look(self) -> list[dict[str, Any]]:
        jobs = items("job", f"scaledjob.keda.sh/name={SCALED_JOB}", NS)
        for job in jobs:
            name = job["metadata"]["name"]
            self.jobs.setdefault(name, time.monotonic())
            if done := condition(job):
                self.finished[name] = done
        self.most_at_once = max(self.most_at_once, sum(1 for j in jobs if not condition(j)))
        for pod in items("pod", "app.kubernetes.io/component=processor", NS):
            self.pods.setdefault(pod["metadata"]["name"], pod["metadata"]["labels"].get("job-name", ""))
        return jobs


@contextmanager
def broker_url() -> Iterator[str]:
    secret = get("secret", f"{RELEASE}-broker", NS)["data"]
    user, password = (
        base64.b64decode(secret[k]).decode() for k in ("rabbitmq-username", "rabbitmq-password")
    )
    with port_forward(NS, f"{RELEASE}-rabbitmq", 5672) as port:
        yield f"amqp://{user}:{password}@127.0.0.1:{port}/%2F"


def plain_publish(url: str, bodies: list[dict[str, Any]]) -> None:
    """What an outside service does: a plain durable declare and persistent messages."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True)
        for body in bodies:
            channel.basic_publish("", QUEUE, json.dumps(body).encode(), pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def take_results(url: str) -> list[dict[str, Any]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        out = []
        while True:
            method, _props, body = channel.basic_get(f"{QUEUE}.results", auto_ack=True)
            if method is None:
                return out
            out.append(json.loads(body))
    finally:
        connection.close()


def quiet_for(watch: Watch, seconds: float) -> None:
    """Watch for `seconds` (whole polling intervals) and say what started meanwhile."""
    before = set(watch.jobs)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        watch.look()
        time.sleep(2)
    started = set(watch.jobs) - before
    assert not started, f"Jobs started while every queue was empty: {sorted(started)}"


def test_keda_starts_processor_jobs_from_the_queues_renders_each_request_once_and_cleans_up(
    tmp_path: Path,
) -> None:
    require_tools()
    kubectl("get", "crd", "scaledjobs.keda.sh")  # KEDA is installed (scripts/cluster.sh keda)
    kubectl("-n", "keda", "rollout", "status", "deployment/keda-operator", "--timeout=300s")
    bucket: Bucket = helm_namespace(NS)
    values: dict[str, Any] = {
        "requests": {"inline": []},
        "output": {"endpoint": "http://s3:9000", "url": "s3://videos/keda"},
        # Renders that outlast a polling interval, as real ones do (minutes each).
        "render": {"resolution": "320x180", "videoSeconds": 40},
        "processor": {"resources": SMALL, "idleTimeoutSeconds": 20},
        "keda": {"enabled": True, "queueLength": PER_PROCESSOR, "successfulJobsHistory": 1},
    }
    helm("install", RELEASE, NS, "dev-values.yaml", values)
    scaled = eventually(
        "the ScaledJob is ready",
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in get("scaledjob", SCALED_JOB, NS).get("status", {}).get("conditions", [])
        ),
        180,
    )
    assert scaled
    watch = Watch()
    started = time.monotonic()
    try:
        # Nothing is started while the queues are empty.
        quiet_for(watch, 2 * POLLING + 5)

        videos = [f"keda-{n}-{uuid.uuid4().hex[:6]}" for n in range(REQUESTS)]
        repos = ["git://git-server/gource-batch.git", "git://git-server/gource-batch-again.git"]
        results: list[dict[str, Any]] = []
        with broker_url() as url:
            plain_publish(
                url,
                [{"type": "gource", "repoURL": repos[n % 2], "videoId": v} for n, v in enumerate(videos)],
            )
            published = time.monotonic()
            # An upgrade while the first Job renders must leave it running (rollout: gradual).
            first = eventually(
                "KEDA starts a Job", lambda: watch.look() and min(watch.jobs), 3 * POLLING, every=1
            )
            uid = get("job", first, NS)["metadata"]["uid"]
            helm(
                "upgrade", RELEASE, NS, "dev-values.yaml",
                {**values, "processor": {**values["processor"], "podAnnotations": {"upgraded": "yes"}}},
            )  # fmt: skip
            assert get("job", first, NS)["metadata"]["uid"] == uid, "the upgrade replaced a running Job"
            deadline = time.monotonic() + 1200
            while len(results) < REQUESTS and time.monotonic() < deadline:
                watch.look()
                results += take_results(url)
                time.sleep(2)
            rendered_in = time.monotonic() - published
        # Every Job finishes, and the finished ones beyond the history limit are removed.
        eventually("every Job finishes", lambda: all(condition(j) for j in watch.look()), 300)
        all_done = time.monotonic()
        eventually(
            "finished Jobs beyond the limit are cleaned up", lambda: len(watch.look()) <= 1, 2 * POLLING + 10
        )
        cleaned_in = time.monotonic() - all_done
        # And nothing starts afterwards, with every queue empty again.
        quiet_for(watch, 2 * POLLING + 5)
    except AssertionError:
        print(diagnostics(NS))
        print(kubectl("-n", "keda", "logs", "deployment/keda-operator", "--tail=60", check=False))
        raise

    succeeded = [r for r in results if r["state"] == "succeeded"]
    renders_per_job = Counter(
        watch.pods.get(r["processor"], r["processor"].rsplit("-", 1)[0]) for r in succeeded
    )
    report = {
        "jobs created": len(watch.jobs),
        "pods started": len(watch.pods),
        "most jobs at once": watch.most_at_once,
        "renders per job": dict(renders_per_job),
        "idle jobs": len(set(watch.jobs) - set(renders_per_job)),
        "rendered twice": sum(1 for n in Counter(r["videoId"] for r in succeeded).values() if n > 1),
        "finished": dict(Counter(watch.finished.values())),
        "rendered in s": round(rendered_in),
        "cleaned up in s": round(cleaned_in),
        "test took s": round(time.monotonic() - started),
    }
    print(f"KEDA ScaledJob, {REQUESTS} requests, queueLength {PER_PROCESSOR}: {json.dumps(report)}")

    # Every request rendered once: one success each, one video each.
    assert sorted(r["videoId"] for r in succeeded) == sorted(videos), results
    assert bucket.videos("videos", "keda/") == sorted(f"keda/{v}.mp4" for v in videos)
    # One Job per PER_PROCESSOR waiting requests, no more: none idle, none doubled.
    assert len(watch.jobs) <= math.ceil(REQUESTS / PER_PROCESSOR), report
    assert set(renders_per_job) == set(watch.jobs), f"a Job rendered nothing: {report}"
    assert len(watch.pods) == len(watch.jobs), f"a Job needed a second pod: {report}"
    assert set(watch.finished.values()) == {"Complete"}, report
