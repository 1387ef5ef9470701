"""Nothing lost, nothing twice: retries, dead letters, crashes, shutdown, broker restarts, S3 faults.

After every fault the invariant a user relies on is checked: each loaded request ends as
one object plus a success event, or in the dead queue with a reason plus a failure event.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import (
    FlakyS3,
    Pipeline,
    alive,
    children_of,
    hung_gource,
    kill_each_delivery,
    rabbitmqctl,
    wait_for_log,
)

pytestmark = pytest.mark.slow


def request(repo: Path, video_id: str, seconds: float = 2, **gource: object) -> str:
    return json.dumps(
        {
            "type": "gource",
            "repoURL": repo.as_uri(),
            "videoId": video_id,
            "gource": {"--stop-at-time": seconds, **gource},
        }
    )


# A render that lasts long enough to be interrupted (about 15 s on 2 cores: 900 frames at 1080p).
LASTING = {"resolution": "1920x1080"}


def load(pipeline: Pipeline, *lines: str, **env: object) -> None:
    result = pipeline.load("--file", "-", stdin="\n".join(lines), **env)
    assert result.returncode == 0, result.stderr


def assert_accounted_for(pipeline: Pipeline, succeeded: set[str], dead: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every request once: an object and a success event, or a dead letter and a failure event."""
    assert set(pipeline.videos()) == {f"videos/{v}.mp4" for v in succeeded}
    events = pipeline.results()
    assert {e["videoId"] for e in events if e["state"] == "succeeded"} == succeeded
    assert {e["videoId"] for e in events if e["state"] == "failed"} == set(dead)
    assert {json.loads(json.dumps(b))["videoId"] for _, b in pipeline.dead()} == set(dead)


def test_a_failing_render_is_retried_with_back_off_then_dead_lettered(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    load(pipeline, request(sample_repo, "too-slow", seconds=2))

    # Each attempt's gource hangs; RENDER_TIMEOUT is well above what the cost guard predicts.
    assert hung_gource(pipeline, RENDER_TIMEOUT=6, MAX_VIDEO_SECONDS=20, MAX_ATTEMPTS=3) == [0, 3]

    messages = [line["message"] for line in pipeline.processor_log()]
    assert any(m.startswith("attempt 1 of 3 failed") and m.endswith("retrying in 1 s") for m in messages)
    assert any(m.startswith("attempt 2 of 3 failed") and m.endswith("retrying in 2 s") for m in messages)
    [(headers, body)] = pipeline.dead()
    assert body["videoId"] == "too-slow"  # the original body
    assert (headers["x-reason"], headers["x-attempts"]) == ("render-timeout", 3)
    assert "RENDER_TIMEOUT=6" in headers["x-error"]
    [event] = pipeline.results()
    assert (event["state"], event["reason"], event["attempts"]) == ("failed", "render-timeout", 3)
    assert pipeline.objects() == {}


def test_a_killed_processor_loses_no_request_and_leaves_no_orphans(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    load(pipeline, request(sample_repo, "survivor", seconds=30, **LASTING), MAX_VIDEO_SECONDS=30)
    victim = pipeline.start_processor(MAX_VIDEO_SECONDS=30)
    wait_for_log(pipeline, 0, "cloned")
    time.sleep(1)
    renderers = children_of(victim.pid)
    assert len(renderers) >= 3  # Xvfb, gource, ffmpeg

    victim.send_signal(signal.SIGKILL)
    victim.wait()
    time.sleep(1)

    assert [pid for pid in renderers if alive(pid)] == []
    assert pipeline.process(MAX_VIDEO_SECONDS=30) == [0]
    assert_accounted_for(pipeline, {"survivor"})


def test_sigterm_hands_the_request_back_and_exits_within_the_grace_period(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    load(pipeline, request(sample_repo, "interrupted", seconds=30, **LASTING), MAX_VIDEO_SECONDS=30)
    processor = pipeline.start_processor(MAX_VIDEO_SECONDS=30, SHUTDOWN_GRACE=5)
    wait_for_log(pipeline, 0, "cloned")
    time.sleep(1)
    renderers = children_of(processor.pid)

    started = time.monotonic()
    processor.send_signal(signal.SIGTERM)
    assert processor.wait(15) == 143
    assert time.monotonic() - started < 10

    assert [pid for pid in renderers if alive(pid)] == []
    messages = [line["message"] for line in pipeline.processor_log()]
    assert any(
        m.startswith("stopped on request (SIGTERM) with a request in hand, handed back") for m in messages
    )
    assert pipeline.ready(pipeline.base) == 1
    assert pipeline.objects() == {}
    assert pipeline.process(MAX_VIDEO_SECONDS=30) == [0]  # the next processor renders it
    assert_accounted_for(pipeline, {"interrupted"})


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_a_request_that_kills_its_processor_every_time_is_dead_lettered(
    pipeline: Pipeline, sample_repo: Path, queue_type: str
) -> None:
    env = {"MAX_VIDEO_SECONDS": 10, "DELIVERY_LIMIT": 2, "QUEUE_TYPE": queue_type}
    load(pipeline, request(sample_repo, "poison", seconds=10), **env)
    # Quorum queues count deliveries in the broker; with classic ones the processor does.
    kills = kill_each_delivery(pipeline, env)

    assert kills <= 3  # not handed out again after the delivery limit
    [(headers, body)] = pipeline.dead()
    assert body["videoId"] == "poison"
    reason = headers.get("x-reason") or headers["x-death"][0]["reason"].replace("_", "-")
    assert reason == "delivery-limit"
    assert pipeline.objects() == {}


def test_the_broker_restarting_mid_run_loses_and_duplicates_nothing(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    ids = [f"restart-{n}" for n in range(4)]
    load(pipeline, *(request(sample_repo, i, seconds=3) for i in ids))
    processors = [pipeline.start_processor(IDLE_TIMEOUT=3) for _ in range(2)]
    wait_for_log(pipeline, 0, "succeeded")

    rabbitmqctl("stop_app")
    time.sleep(3)
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")

    assert [p.wait(300) for p in processors] == [0, 0]
    messages = [line["message"] for n in range(2) for line in pipeline.processor_log(n)]
    assert any(m.startswith("lost the broker") for m in messages)
    assert_accounted_for(pipeline, set(ids))


def test_a_render_longer_than_the_consumer_timeout_ends_rendered_once(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    # RabbitMQ checks consumer_timeout once a minute, so the render has to outlast a minute
    # (4,500 frames at 1080p: about 90 s on 2 cores).
    slow = {"MAX_VIDEO_SECONDS": 75, "SECONDS_PER_DAY": 10}
    load(pipeline, request(sample_repo, "slow", seconds=75, **LASTING, **{"--output-framerate": 60}), **slow)
    rabbitmqctl("eval", "application:set_env(rabbit, consumer_timeout, 3000).")
    try:
        assert pipeline.process(MAX_SECONDS_PER_DAY=10, **slow) == [0]
    finally:
        rabbitmqctl("eval", "application:set_env(rabbit, consumer_timeout, 1800000).")

    log = [line["message"] for line in pipeline.processor_log()]
    assert any(m.startswith("lost the broker") for m in log)  # the broker did close the channel
    assert sum(m.startswith("rendered ") for m in log) == 1  # and the redelivery was not rendered again
    assert "everything this request writes is already stored; not rendering again" in log
    assert pipeline.videos() == ["videos/slow.mp4"]
    assert {(e["state"], e["attempts"]) for e in pipeline.results()} == {("succeeded", 2)}


def test_a_missing_bucket_stops_the_processor_and_keeps_the_request(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    load(pipeline, request(sample_repo, "kept"))

    assert pipeline.process(OUTPUT_URL="s3://no-such-bucket/videos") == [78]

    messages = [line["message"] for line in pipeline.processor_log()]
    assert any("configuration error" in m and "no-such-bucket" in m for m in messages)
    assert pipeline.ready(pipeline.base) == 1


def test_an_unreachable_object_store_at_start_exits_69_and_keeps_the_request(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    load(pipeline, request(sample_repo, "kept"))

    assert pipeline.process(AWS_ENDPOINT_URL="http://127.0.0.1:9") == [69]

    assert pipeline.ready(pipeline.base) == 1


def test_a_redelivered_request_whose_video_exists_is_not_rendered_again(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    load(pipeline, request(sample_repo, "once"), request(sample_repo, "once"))

    assert pipeline.process() == [0]

    log = [line["message"] for line in pipeline.processor_log()]
    assert sum(m.startswith("rendered ") for m in log) == 1
    assert any(m.endswith("rendered 1, already stored 1, retried 0, dead-lettered 0") for m in log)
    assert [e["state"] for e in pipeline.results()] == ["succeeded", "succeeded"]
    assert pipeline.videos() == ["videos/once.mp4"]


def test_dead_letters_can_be_listed_requeued_and_purged(pipeline: Pipeline, sample_repo: Path) -> None:
    missing = (sample_repo.parent / "missing").as_uri()
    lines = [json.dumps({"repoURL": missing, "videoId": f"lost-{n}"}) for n in range(3)]
    load(pipeline, *lines)
    assert pipeline.process() == [0]

    def tool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "processor", *args], env=pipeline.env(),
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    listed = tool("dead", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["videoId"], r["reason"], r["attempts"]) for r in rows] == [
        (f"lost-{n}", "repository-rejected", 1) for n in range(3)
    ]
    assert tool("dead", "list", "--json").stdout == listed.stdout  # listing removes nothing

    assert tool("dead", "requeue", "lost-1").stdout.strip() == "requeued 1 request(s)"
    assert pipeline.ready(pipeline.base) == 1
    [(headers, body)] = pipeline.drain(pipeline.base)
    assert body["videoId"] == "lost-1"
    assert not {"x-reason", "x-attempts", "x-attempt", "x-death"} & set(headers)  # a fresh start

    stats = json.loads(tool("stats", "--json").stdout)
    assert {q["queue"]: q["ready"] for q in stats["queues"]}[f"{pipeline.base}.dead"] == 2
    assert tool("dead", "purge").stdout.strip() == "purged 2 dead-lettered request(s)"
    assert pipeline.dead() == []


def test_s3_throttling_is_retried_and_the_upload_succeeds(pipeline: Pipeline, sample_repo: Path) -> None:
    load(pipeline, request(sample_repo, "throttled"))
    flaky = FlakyS3(pipeline.s3_endpoint, failures=2)
    try:
        assert pipeline.process(AWS_ENDPOINT_URL=flaky.endpoint) == [0]
    finally:
        flaky.close()

    assert flaky.refused == 2
    [event] = pipeline.results()
    assert (event["state"], event["attempts"]) == ("succeeded", 1)
    assert pipeline.videos() == ["videos/throttled.mp4"]


def test_s3_failing_for_good_is_retried_through_the_broker_then_dead_lettered(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    load(pipeline, request(sample_repo, "unlucky"))
    flaky = FlakyS3(pipeline.s3_endpoint, failures=1000)
    try:
        assert pipeline.process(AWS_ENDPOINT_URL=flaky.endpoint, MAX_ATTEMPTS=2) == [0]
    finally:
        flaky.close()

    [(headers, _)] = pipeline.dead()
    assert (headers["x-reason"], headers["x-attempts"]) == ("storage-unavailable", 2)
    assert "SlowDown" in headers["x-error"]
    assert pipeline.objects() == {}
    assert [e["state"] for e in pipeline.results()] == ["failed"]


def test_the_loader_rides_out_a_broker_restart(pipeline: Pipeline, tmp_path: Path) -> None:
    lines = [
        json.dumps({"repoURL": f"https://example.com/r{n}.git", "videoId": f"r{n}"}) for n in range(20000)
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(lines))
    loader = subprocess.Popen(
        [sys.executable, "-m", "loader", "--file", str(batch)], env=pipeline.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while pipeline.ready(pipeline.base) == 0 and time.monotonic() < deadline:  # the first batch is in
        time.sleep(0.05)
    rabbitmqctl("stop_app")
    time.sleep(2)
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    out, err = loader.communicate(timeout=300)

    assert loader.returncode == 0, err
    assert "as it raised BrokerUnavailable" in err  # it did lose the broker, and retried
    assert "loaded 20000, skipped 0, failed 0" in out
    bodies = {body["videoId"] for _, body in pipeline.drain(pipeline.base)}
    assert bodies == {f"r{n}" for n in range(20000)}  # none lost (a batch may be queued twice)
