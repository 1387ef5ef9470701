"""Producers that declare the work queues the plain way, before or after us, lose nothing.

The producer here is what every pika tutorial (and the amqplib backend gource-batch
replaces) does: `queue_declare(queue, durable=True)` with no arguments, a persistent
publish, no confirms. Everything else runs as users run it: loader, processor and
`setup-broker` as subprocesses against the real broker and its management API.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika
import pytest
from support import Pipeline, hung_gource, kill_each_delivery, rabbitmqctl, require, wait_for_log

pytestmark = pytest.mark.slow

MANAGEMENT = "http://127.0.0.1:15672"


def request(repo: Path, video_id: str, seconds: float = 2) -> bytes:
    """The production backend's message, verbatim but for a short video of a local repository."""
    body = {"renderType": "GOURCE", "repoURL": repo.as_uri(), "videoId": video_id, "token": ""}
    options = {"start": 0.2, "stop": 0.9, "key": True, "elasticity": 1.5, "bloomMultiplier": 1.2,
               "bloomIntensity": 0.8, "title": "My project", "stopAtTime": seconds}  # fmt: skip
    return json.dumps({**body, "renderOptions": options}).encode()


def plain_producer(pipeline: Pipeline, sends: dict[str, list[bytes]]) -> None:
    """Declare each queue plainly and publish to it, as the existing producers do."""
    with pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url)) as connection:
        channel = connection.channel()
        for queue, bodies in sends.items():
            channel.queue_declare(queue, durable=True)
            for body in bodies:
                channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
        assert channel.is_open  # no 406 closed it


def setup_broker(pipeline: Pipeline, *args: str, **env: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "processor", "setup-broker", *args],
        env=pipeline.env(**env), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def management(path: str, method: str = "GET") -> Any:
    call = urllib.request.Request(f"{MANAGEMENT}/api/{path}", method=method)
    call.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError:
        raise
    except urllib.error.URLError as exc:
        require(False, f"no RabbitMQ management API at {MANAGEMENT}: {exc}")
    return json.loads(body) if body else None


@pytest.fixture(autouse=True)
def _no_policy_left_behind(pipeline: Pipeline) -> Iterator[None]:
    """setup-broker leaves a policy on the shared broker: remove this test's."""
    yield
    for suffix in ("work", "work.quorum"):
        with contextlib.suppress(urllib.error.URLError):
            management(f"policies/%2F/gource-batch.{pipeline.base}.{suffix}", method="DELETE")


def rendered(pipeline: Pipeline) -> set[str]:
    return {e["videoId"] for e in pipeline.results() if e["state"] == "succeeded"}


def test_a_plain_producer_declaring_first_is_drained_by_processor_and_loader_alike(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    base = pipeline.base
    plain_producer(
        pipeline,
        {base: [request(sample_repo, "normal")], f"{base}.high": [request(sample_repo, "high")],
         f"{base}.low": [request(sample_repo, "low")]},
    )  # fmt: skip
    loaded = pipeline.load("--repo", sample_repo.as_uri())
    assert loaded.returncode == 0, loaded.stderr

    assert pipeline.process() == [0]

    assert pipeline.ready(base) == 0
    events = pipeline.results()
    assert len(events) == 4
    assert {e["state"] for e in events} == {"succeeded"}
    # Highest priority first, whoever declared the queues.
    assert [e["videoId"] for e in events][:1] == ["high"]
    assert [e["videoId"] for e in events][-1] == "low"
    assert len(pipeline.videos()) == 4


def test_a_plain_producer_declaring_after_a_running_processor_gets_no_channel_error(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    loaded = pipeline.load("--repo", sample_repo.as_uri(), "--priority", "low")
    assert loaded.returncode == 0, loaded.stderr
    processor = pipeline.start_processor(IDLE_TIMEOUT=5)
    wait_for_log(pipeline, 0, "connected to")

    queues = {"normal": pipeline.base, "high": f"{pipeline.base}.high", "low": f"{pipeline.base}.low"}
    plain_producer(pipeline, {q: [request(sample_repo, f"late-{p}")] for p, q in queues.items()})

    assert processor.wait(300) == 0
    assert rendered(pipeline) >= {f"late-{p}" for p in queues}
    assert len(pipeline.videos()) == 4


def test_retries_and_dead_letters_work_on_queues_a_producer_declared(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    plain_producer(
        pipeline, {pipeline.base: [b'{"videoId": "broken"', request(sample_repo, "too-slow", seconds=2)]}
    )

    # Each attempt's gource hangs; RENDER_TIMEOUT is well above what the cost guard predicts.
    assert hung_gource(pipeline, RENDER_TIMEOUT=6, MAX_VIDEO_SECONDS=20, MAX_ATTEMPTS=2) == [0, 2]

    messages = [line["message"] for line in pipeline.processor_log()]
    assert any(m.startswith("attempt 1 of 2 failed") and m.endswith("retrying in 1 s") for m in messages)
    dead = {h["x-reason"]: (h["x-attempts"], b) for h, b in pipeline.dead()}
    assert set(dead) == {"invalid-request", "render-timeout"}
    assert dead["render-timeout"] == (2, json.loads(request(sample_repo, "too-slow", seconds=2)))
    assert pipeline.objects() == {}


@pytest.mark.parametrize("queue_type", ["auto", "quorum"])
def test_a_request_that_kills_its_processor_every_time_is_dead_lettered_from_a_queue_without_arguments(
    pipeline: Pipeline, sample_repo: Path, queue_type: str
) -> None:
    env = {"MAX_VIDEO_SECONDS": 10, "DELIVERY_LIMIT": 2, "QUEUE_TYPE": queue_type}
    if queue_type == "auto":  # the producer's own, classic on RabbitMQ 3.x
        plain_producer(pipeline, {pipeline.base: [request(sample_repo, "poison", seconds=10)]})
    else:  # as the processor creates it with QUEUE_TYPE=quorum: nothing but x-queue-type
        with pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url)) as connection:
            channel = connection.channel()
            channel.queue_declare(pipeline.base, durable=True, arguments={"x-queue-type": "quorum"})
            channel.basic_publish("", pipeline.base, request(sample_repo, "poison", seconds=10))
    kills = kill_each_delivery(pipeline, env)

    assert kills == 2  # DELIVERY_LIMIT deliveries killed their processor, no more were handed out
    [(headers, body)] = pipeline.dead()
    assert body["videoId"] == "poison"
    assert headers["x-reason"] == "delivery-limit"  # the processor's own dead letter, not the broker's
    assert pipeline.objects() == {}


def test_setup_broker_applies_the_work_queue_policies_through_the_management_api(pipeline: Pipeline) -> None:
    management("overview")
    name = f"gource-batch.{pipeline.base}.work"
    result = setup_broker(pipeline, DELIVERY_LIMIT=7)

    assert result.returncode == 0, result.stderr
    assert f"policy {name}.quorum applies" in result.stdout
    dead_letters = {"dead-letter-exchange": "", "dead-letter-routing-key": f"{pipeline.base}.dead"}
    assert management(f"policies/%2F/{quote(name, safe='')}.quorum")["definition"] == {
        **dead_letters,
        "delivery-limit": 7,
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    }
    assert management(f"policies/%2F/{quote(name, safe='')}")["definition"] == dead_letters
    # The work queues are classic here (a plain declare on RabbitMQ 3.x): they take the
    # policy without quorum-only keys.
    for queue in (pipeline.base, f"{pipeline.base}.high", f"{pipeline.base}.low"):
        deadline = time.monotonic() + 10  # policies reach queues asynchronously
        while management(f"queues/%2F/{quote(queue, safe='')}").get("policy") != name:
            assert time.monotonic() < deadline, f"{queue} never got the policy"
            time.sleep(0.2)
    assert management(f"queues/%2F/{pipeline.base}.dead").get("policy") is None
    plain_producer(pipeline, {pipeline.base: [b"{}"]})  # a policy leaves the declare plain


def test_setup_broker_without_a_management_api_says_what_to_do_in_one_line(pipeline: Pipeline) -> None:
    secret = "s3cret-pass"
    result = setup_broker(pipeline, MANAGEMENT_URL=f"http://guest:{secret}@127.0.0.1:9")

    assert result.returncode == 75
    [line] = result.stderr.strip().splitlines()
    assert "no RabbitMQ management API at http://127.0.0.1:9" in line
    assert "rabbitmq-plugins enable rabbitmq_management" in line
    assert secret not in result.stderr + result.stdout


def test_setup_broker_writes_definitions_a_broker_can_load(pipeline: Pipeline, tmp_path: Path) -> None:
    target = tmp_path / "definitions.json"
    result = setup_broker(pipeline, "--definitions", str(target), "--include-user", QUEUE_TYPE="quorum")

    assert result.returncode == 0, result.stderr
    assert target.stat().st_mode & 0o077 == 0  # it holds a password
    document = json.loads(target.read_text())
    policies = document["policies"]
    names = [(p["vhost"], p["name"], p["definition"]["dead-letter-routing-key"]) for p in policies]
    work, dead = f"gource-batch.{pipeline.base}.work", f"{pipeline.base}.dead"
    assert names == [("/", f"{work}.quorum", dead), ("/", work, dead)]
    assert document["vhosts"][0]["default_queue_type"] == "quorum"
    assert document["users"] == [{"name": "guest", "password": "guest", "tags": "administrator"}]
    assert "guest" not in result.stdout


def test_a_broker_importing_the_definitions_lets_their_user_in_and_holds_the_policies(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    user, password = f"gb-{pipeline.base}", "pass:word@/%"  # URL-quoted in AMQP_URL
    url = f"amqp://{user}:{quote(password, safe='')}@localhost:5672/%2F"
    written = tmp_path / "definitions.json"
    result = setup_broker(pipeline, "--definitions", str(written), "--include-user", AMQP_URL=url)
    assert result.returncode == 0, result.stderr
    # The broker runs as its own user (in the chart: the same uid as the init container).
    readable = Path(tempfile.mkdtemp(dir="/tmp")) / "definitions.json"
    readable.parent.chmod(0o755)
    shutil.copy(written, readable)
    readable.chmod(0o644)
    try:
        rabbitmqctl("import_definitions", str(readable))  # what load_definitions does at boot

        deadline = time.monotonic() + 20  # the import finishes asynchronously
        while True:
            try:
                with pika.BlockingConnection(pika.URLParameters(url)) as connection:
                    assert connection.channel().is_open
                break
            except pika.exceptions.AMQPConnectionError:  # refused until the user exists
                assert time.monotonic() < deadline, "the imported user cannot log in"
                time.sleep(0.5)
        names = {p["name"] for p in management("policies/%2F")}
        assert {f"gource-batch.{pipeline.base}.work", f"gource-batch.{pipeline.base}.work.quorum"} <= names
    finally:
        shutil.rmtree(readable.parent)
        with contextlib.suppress(subprocess.CalledProcessError):
            rabbitmqctl("delete_user", user)


# How 0.1.0 declared its work queues on RabbitMQ >= 3.8.
OLD_ARGUMENTS = {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": "",
    "x-delivery-limit": 5,
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


def test_migrate_recreates_old_work_queues_plain_and_loses_no_request(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    base = pipeline.base
    with pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        for queue in (base, f"{base}.high", f"{base}.low"):
            args = {**OLD_ARGUMENTS, "x-dead-letter-routing-key": f"{base}.dead"}
            channel.queue_declare(queue, durable=True, arguments=args)
        bodies = [request(sample_repo, f"kept-{n}") for n in range(300)]
        for n, body in enumerate(bodies):
            props = pika.BasicProperties(delivery_mode=2, headers={"x-trace": str(n)})
            channel.basic_publish("", base, body, props, mandatory=True)
        channel.basic_publish("", f"{base}.high", request(sample_repo, "urgent"), mandatory=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="inequivalent arg"):
        plain_producer(pipeline, {base: []})

    result = setup_broker(pipeline, "--migrate")

    assert f"{base}: 300 request(s) moved" in result.stdout, result.stderr
    assert f"{base}.high: 1 request(s) moved" in result.stdout
    assert result.returncode in (0, 75), result.stderr  # 75: no management API for the policy
    plain_producer(pipeline, {base: [], f"{base}.high": [], f"{base}.low": []})  # now accepted
    moved = pipeline.drain(base)
    assert sorted(json.dumps(b, sort_keys=True) for _, b in moved) == sorted(
        json.dumps(json.loads(b), sort_keys=True) for b in bodies
    )
    assert sorted(int(h["x-trace"]) for h, _ in moved) == list(range(300))
    assert [b["videoId"] for _, b in pipeline.drain(f"{base}.high")] == ["urgent"]
    assert pipeline.ready(f"{base}.high.migrating") == 0
    again = setup_broker(pipeline, "--migrate")  # nothing left to do
    assert f"{base}: 0 request(s) moved" in again.stdout, again.stderr


def test_migrate_refuses_while_a_processor_is_connected(pipeline: Pipeline, sample_repo: Path) -> None:
    with pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url)) as connection:
        args = {**OLD_ARGUMENTS, "x-dead-letter-routing-key": f"{pipeline.base}.dead"}
        connection.channel().queue_declare(pipeline.base, durable=True, arguments=args)
    processor = pipeline.start_processor(IDLE_TIMEOUT=60)
    wait_for_log(pipeline, 0, "connected to")
    try:
        result = setup_broker(pipeline, "--migrate")
    finally:
        processor.send_signal(signal.SIGTERM)
        processor.wait(30)

    assert result.returncode == 78
    assert "stop them" in result.stderr


def test_a_migration_that_stopped_half_way_is_finished_by_the_next_run(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    base = pipeline.base
    with pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(f"{base}.migrating", durable=True, arguments={"x-queue-type": "quorum"})
        for n in range(5):
            channel.basic_publish("", f"{base}.migrating", request(sample_repo, f"held-{n}"), mandatory=True)

    result = setup_broker(pipeline, "--migrate")

    assert f"{base}: 5 request(s) moved" in result.stdout, result.stderr
    assert sorted(b["videoId"] for _, b in pipeline.drain(base)) == [f"held-{n}" for n in range(5)]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):  # noqa: SIM117
        with pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url)) as connection:
            connection.channel().queue_declare(f"{base}.migrating", passive=True)
