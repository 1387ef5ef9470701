"""Every way a request can end in the processor's hands, decided in milliseconds.

The processor runs its real drain loop against an in-memory broker (tests/stub_broker.py) with
a stand-in for the render, so each test tries one branch of what a delivery and its outcome
lead to: a video, a retry, a dead letter, the request handed back, the processor stopping.
The same stories against RabbitMQ, gource and S3 are told in test_reliability.py,
test_pipeline.py and test_render_progress.py.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from stub_broker import Message, StubBroker

from processor.errors import (
    BrokerUnavailable,
    CloneFailed,
    ConfigurationError,
    RenderFailed,
    RepositoryRejected,
)
from processor.exit_codes import ExitCode
from processor.job import Produced
from processor.render_progress import FrameCount
from processor.settings import ProcessorSettings
from processor.storage import Storage
from processor.topology import Priority, Topology
from processor.worker import Job, Processor

REQUEST = {"type": "gource", "repoURL": "https://example.com/a.git", "videoId": "a", "batchId": "b1"}


@pytest.fixture
def settings(tmp_path: Path) -> ProcessorSettings:
    return ProcessorSettings(
        output_url=(tmp_path / "videos").as_uri(),
        work_dir=tmp_path / "work",
        idle_timeout=0.05,
        poll_interval=0.01,
        max_attempts=3,
        retry_delay=1,
        retry_backoff=2,
        delivery_limit=2,
        shutdown_grace=2,
        render_queue="render",
    )


@pytest.fixture
def broker(settings: ProcessorSettings) -> StubBroker:
    return StubBroker(Topology.for_broker(settings, knows_quorum=True))


def renders(skipped: bool = False) -> Job:
    """A job that stores its video (or finds it stored) at once."""

    def job(request: Any, settings: Any, storage: Storage, cancelled: Any, frames: FrameCount) -> Produced:
        key = f"{request.video_id}.mp4"
        return Produced(key, storage.url_for(key), None, skipped)

    return job


def fails(error: Exception) -> Job:
    def job(*_: Any) -> Produced:
        raise error

    return job


def run(settings: ProcessorSettings, broker: StubBroker, job: Job) -> int:
    return Processor(settings, connect=lambda: broker, job=job).run()


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_a_rendered_request_is_published_as_succeeded_then_acknowledged(
    settings: ProcessorSettings, broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.send(REQUEST, timestamp=int(time.time()))
    caplog.set_level(logging.INFO)

    assert run(settings, broker, renders()) == ExitCode.OK

    [event] = broker.results
    assert (event["videoId"], event["batchId"], event["state"], event["attempts"]) == (
        "a",
        "b1",
        "succeeded",
        1,
    )
    assert event["url"].endswith("/videos/a.mp4")
    assert event["priority"] == "normal"
    assert broker.journal == ["take", "result succeeded", "ack"]  # acknowledged once the event is out
    assert broker.ready() == []
    assert broker.dead == []
    assert (
        "queues drained, idle for 0 s, stopping: rendered 1, already stored 0, retried 0, dead-lettered 0"
        in (messages(caplog))
    )
    assert broker.closed


def test_a_request_whose_video_is_already_stored_succeeds_without_a_render(
    settings: ProcessorSettings, broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.send(REQUEST)
    caplog.set_level(logging.INFO)

    assert run(settings, broker, renders(skipped=True)) == ExitCode.OK

    assert [e["state"] for e in broker.results] == ["succeeded"]
    assert any(
        m.endswith("rendered 0, already stored 1, retried 0, dead-lettered 0") for m in messages(caplog)
    )


def test_higher_priorities_are_taken_first(settings: ProcessorSettings, broker: StubBroker) -> None:
    for priority in (Priority.low, Priority.normal, Priority.high):
        broker.send({**REQUEST, "videoId": priority.value}, queue=broker.topology.work_queue(priority))

    assert run(settings, broker, renders()) == ExitCode.OK

    assert [(e["videoId"], e["priority"]) for e in broker.results] == [
        ("high", "high"),
        ("normal", "normal"),
        ("low", "low"),
    ]


@pytest.mark.parametrize(
    ("body", "video_id"),
    [(b"{not json", "unknown"), (json.dumps({**REQUEST, "gource": {"--loop": True}}).encode(), "a")],
)
def test_an_invalid_request_is_dead_lettered_at_once_with_a_failed_event(
    settings: ProcessorSettings, broker: StubBroker, body: bytes, video_id: str
) -> None:
    broker.send(body)
    rendered: list[str] = []

    def job(request: Any, *_: Any) -> Produced:
        rendered.append(request.video_id)
        raise AssertionError("an invalid request is never rendered")

    assert run(settings, broker, job) == ExitCode.OK

    [letter] = broker.dead
    assert letter.body == body
    assert (letter.headers["x-reason"], letter.headers["x-attempts"]) == ("invalid-request", 1)
    [event] = broker.results
    assert (event["videoId"], event["state"], event["reason"]) == (video_id, "failed", "invalid-request")
    assert rendered == []


def test_a_permanent_failure_is_dead_lettered_at_once_with_the_reason(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.send({**REQUEST, "token": "secret-token"})

    assert run(settings, broker, fails(RepositoryRejected("repository not found"))) == ExitCode.OK

    [letter] = broker.dead
    assert letter.headers["x-reason"] == "repository-rejected"
    assert letter.headers["x-error"] == "RepositoryRejected: repository not found"
    assert b"secret-token" not in letter.body  # a dead letter keeps the body, but never a token
    [event] = broker.results
    assert (event["state"], event["reason"], event["attempts"]) == ("failed", "repository-rejected", 1)
    assert broker.journal == ["take", "result failed", "dead letter"]


def test_a_transient_failure_is_retried_with_back_off_then_dead_lettered_at_max_attempts(
    settings: ProcessorSettings, broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.send(REQUEST)
    attempts: list[int] = []
    waiting: list[int] = []

    def job(*_: Any) -> Produced:
        attempts.append(len(attempts) + 1)
        waiting.append(sum(len(broker.queues[broker.topology.delay_queue(d)]) for d in (1, 2)))
        raise RenderFailed("gource exited 1")

    assert run(settings, broker, job) == ExitCode.OK

    assert attempts == [1, 2, 3]
    assert (
        messages(caplog).count("attempt 1 of 3 failed (RenderFailed: gource exited 1); retrying in 1 s") == 1
    )
    assert (
        messages(caplog).count("attempt 2 of 3 failed (RenderFailed: gource exited 1); retrying in 2 s") == 1
    )
    assert waiting == [0, 0, 0]  # each retry came back out of its delay queue before it was tried
    [letter] = broker.dead
    assert (letter.headers["x-reason"], letter.headers["x-attempts"]) == ("render-failed", 3)
    assert "x-attempt" not in letter.headers
    assert "return-to" not in letter.headers
    [event] = broker.results  # no event for an attempt that is retried
    assert (event["state"], event["attempts"]) == ("failed", 3)
    assert broker.journal == [
        "take",
        "retry later",
        "take",
        "retry later",
        "take",
        "result failed",
        "dead letter",
    ]


def test_an_unexpected_error_is_treated_as_transient(settings: ProcessorSettings, broker: StubBroker) -> None:
    broker.send(REQUEST)
    outcomes: list[Job] = [fails(KeyError("bug")), renders()]

    def job(*args: Any) -> Produced:
        return outcomes.pop(0)(*args)

    assert run(settings, broker, job) == ExitCode.OK

    [event] = broker.results
    assert (event["state"], event["attempts"]) == ("succeeded", 2)


def test_a_configuration_error_hands_the_request_back_and_stops_with_78(
    settings: ProcessorSettings, broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.send(REQUEST)

    assert (
        run(settings, broker, fails(ConfigurationError("no bucket no-such-bucket"))) == ExitCode.CONFIGURATION
    )

    [message] = broker.ready()
    assert json.loads(message.body)["videoId"] == "a"  # untouched, back in its queue
    assert broker.journal == ["take", "requeue"]
    assert broker.results == []
    assert broker.dead == []
    assert any(m.startswith("stopping: configuration error: no bucket") for m in messages(caplog))


def test_a_request_that_killed_its_processors_delivery_limit_times_is_dead_lettered_unrendered(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.send(REQUEST, headers={"x-delivery-count": 2}, redelivered=True)  # a quorum queue's count

    assert run(settings, broker, fails(AssertionError("never rendered"))) == ExitCode.OK

    [letter] = broker.dead
    assert letter.headers["x-reason"] == "delivery-limit"
    assert letter.headers["x-error"] == (
        "DeliveryLimitExceeded: delivered 2 times without being settled: its processor died each time"
    )
    assert [(e["state"], e["reason"]) for e in broker.results] == [("failed", "delivery-limit")]


def test_a_classic_queues_redelivery_is_counted_on_a_copy_then_rendered(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.send(REQUEST, redelivered=True)  # a classic queue flags it, counts nothing
    seen: list[Message] = []
    original_take = broker.take

    def watching_take() -> Any:
        seen.extend(broker.ready())
        return original_take()

    broker.take = watching_take  # type: ignore[method-assign]

    assert run(settings, broker, renders()) == ExitCode.OK

    assert seen[1].headers == {"x-redeliveries": 1}  # the count travels on the copy
    assert broker.journal == ["take", "count redelivery", "take", "result succeeded", "ack"]
    [event] = broker.results
    assert (event["state"], event["attempts"]) == ("succeeded", 2)


def test_a_counted_redelivery_at_the_limit_is_dead_lettered(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.send(REQUEST, headers={"x-redeliveries": 1}, redelivered=True)

    assert run(settings, broker, fails(AssertionError("never rendered"))) == ExitCode.OK

    assert [m.headers["x-reason"] for m in broker.dead] == ["delivery-limit"]


def test_sigterm_during_a_render_hands_the_request_back_and_exits_143(
    settings: ProcessorSettings, broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.send(REQUEST)
    processor: Processor | None = None

    def job(
        request: Any, settings: Any, storage: Any, cancelled: Callable[[], bool], frames: Any
    ) -> Produced:
        assert processor is not None
        processor.request_stop(signal.SIGTERM)
        while not cancelled():
            time.sleep(0.001)
        raise CloneFailed("git clone was stopped: the processor is shutting down")

    processor = Processor(settings, connect=lambda: broker, job=job)
    assert processor.run() == ExitCode.STOPPED

    [message] = broker.ready()
    assert json.loads(message.body) == REQUEST
    assert message.redelivered
    assert broker.journal == ["take", "requeue"]  # handed back at once, not left to the closing connection
    assert broker.results == []
    assert broker.dead == []
    assert any(
        m.startswith("stopped on request (SIGTERM) with a request in hand, handed back")
        for m in messages(caplog)
    )


def test_sigterm_while_idle_exits_143_at_once(settings: ProcessorSettings, broker: StubBroker) -> None:
    processor = Processor(settings, connect=lambda: broker, job=renders())
    processor.request_stop(signal.SIGINT)  # Ctrl-C: the same as SIGTERM

    assert processor.run() == ExitCode.STOPPED


def test_a_render_that_finishes_as_sigterm_arrives_is_delivered(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.send(REQUEST)
    processor: Processor | None = None

    def job(request: Any, settings: Any, storage: Storage, cancelled: Any, frames: Any) -> Produced:
        assert processor is not None
        processor.request_stop(signal.SIGTERM)
        return renders()(request, settings, storage, cancelled, frames)

    processor = Processor(settings, connect=lambda: broker, job=job)
    assert processor.run() == ExitCode.STOPPED

    assert [e["state"] for e in broker.results] == ["succeeded"]
    assert broker.ready() == []


def test_losing_the_broker_during_a_render_lets_it_finish_then_its_redelivery_is_found_stored(
    settings: ProcessorSettings, broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.send(REQUEST)
    broker.lose_connection_while_rendering = True
    stored: list[str] = []
    caplog.set_level(logging.INFO)

    def job(request: Any, settings: Any, storage: Storage, cancelled: Any, frames: Any) -> Produced:
        time.sleep(0.01)  # still rendering when the connection goes
        already = request.video_id in stored
        stored.append(request.video_id)
        return renders(skipped=already)(request, settings, storage, cancelled, frames)

    assert run(settings, broker, job) == ExitCode.OK

    assert broker.connections == 2
    assert "lost the broker while rendering; the request will be redelivered" in messages(caplog)
    assert stored == ["a", "a"]  # the first render finished before the processor reconnected
    [event] = broker.results  # one success event, from the redelivery
    assert (event["state"], event["attempts"]) == ("succeeded", 2)
    assert any(
        m.endswith("rendered 0, already stored 1, retried 0, dead-lettered 0") for m in messages(caplog)
    )


def test_losing_the_broker_between_requests_reconnects_and_carries_on(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.send(REQUEST)
    broker.lose_connection_at_take = True

    assert run(settings, broker, renders()) == ExitCode.OK

    assert broker.connections == 2
    assert [e["state"] for e in broker.results] == ["succeeded"]


def test_a_render_in_flight_is_reported_as_its_frames_come(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.send(REQUEST)

    def job(request: Any, settings: Any, storage: Storage, cancelled: Any, frames: FrameCount) -> Produced:
        frames.start(total=100)
        frames.update(40)
        deadline = time.monotonic() + 5
        while not broker.progress and time.monotonic() < deadline:
            time.sleep(0.001)
        return renders()(request, settings, storage, cancelled, frames)

    assert run(settings, broker, job) == ExitCode.OK

    [progress] = broker.progress  # at most one every five seconds
    assert (progress["videoId"], progress["batchId"], progress["state"]) == ("a", "b1", "rendering")
    assert (progress["framesDone"], progress["framesTotal"], progress["progress"]) == (40, 100, 0.4)
    assert [e["state"] for e in broker.results] == ["succeeded"]


def test_a_refused_progress_event_changes_nothing_about_the_render(
    settings: ProcessorSettings, broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.send(REQUEST)
    broker.refuse_progress = True

    def job(request: Any, settings: Any, storage: Storage, cancelled: Any, frames: FrameCount) -> Produced:
        frames.start(total=10)
        frames.update(5)
        deadline = time.monotonic() + 5
        while not any("could not publish a progress event" in m for m in messages(caplog)):
            assert time.monotonic() < deadline
            time.sleep(0.001)
        return renders()(request, settings, storage, cancelled, frames)

    assert run(settings, broker, job) == ExitCode.OK

    assert [e["state"] for e in broker.results] == ["succeeded"]


def test_a_processor_stays_while_a_peer_holds_a_request_that_could_come_back(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.busy_peers_at_each_look.extend([1] * 10)

    assert run(settings, broker, renders()) == ExitCode.OK

    assert broker.looks_at_peers > 10  # it stopped only after the peer was done


def test_without_waiting_for_peers_a_processor_stops_once_nothing_is_ready(
    settings: ProcessorSettings, broker: StubBroker
) -> None:
    broker.busy_peers_at_each_look.extend([1] * 10)

    assert run(settings.model_copy(update={"wait_for_peers": False}), broker, renders()) == ExitCode.OK

    assert broker.looks_at_peers == 0


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BrokerUnavailable("connection refused"), ExitCode.UNAVAILABLE),
        (ConfigurationError("the broker refused the credentials"), ExitCode.CONFIGURATION),
        (RuntimeError("a bug"), ExitCode.UNEXPECTED),
    ],
)
def test_a_broker_that_cannot_be_had_at_start_is_an_exit_code_that_says_why(
    settings: ProcessorSettings, error: Exception, code: ExitCode
) -> None:
    def connect() -> StubBroker:
        raise error

    assert Processor(settings, connect=connect, job=renders()).run() == code


def test_an_unusable_output_directory_is_a_configuration_error_before_anything_is_taken(
    settings: ProcessorSettings, broker: StubBroker, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    broker.send(REQUEST)
    unusable = settings.model_copy(update={"output_url": (tmp_path / "file" / "videos").as_uri()})

    assert Processor(unusable, connect=lambda: broker, job=renders()).run() == ExitCode.CONFIGURATION

    assert len(broker.ready()) == 1
