"""The drain loop: take one request at a time, settle it, and stop when there is no more.

Settling is the one decision made here: success (result event, then ack), a permanent
failure (dead-letter at once), a transient one (retry through a delay queue until
MAX_ATTEMPTS, then dead-letter), or a configuration error (hand the request back, stop).
The loop logs why it stops, like rq and arq do, and returns the process exit code.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import FrameType

from processor import metrics, procs
from processor.broker.messages import Delivery
from processor.broker.work import WorkBroker, WorkQueues
from processor.contract import (
    RenderProgressEvent,
    RenderRequest,
    ResultEvent,
    State,
    Subject,
    describe_repos,
    parse_request,
    without_token,
)
from processor.errors import (
    BrokerUnavailable,
    ConfigurationError,
    DeliveryLimitExceeded,
    GourceBatchError,
    PermanentError,
    StorageUnavailable,
)
from processor.exit_codes import ExitCode
from processor.job import Produced, produce
from processor.logs import redact, request_context
from processor.render_progress import FrameCount, Frames, Reporter, Throttle
from processor.settings import ProcessorSettings
from processor.storage import Storage, open_storage

log = logging.getLogger(__name__)


@dataclass
class Tally:
    rendered: int = 0
    skipped: int = 0
    retried: int = 0
    dead_lettered: int = 0

    def __str__(self) -> str:
        return (
            f"rendered {self.rendered}, already stored {self.skipped}, "
            f"retried {self.retried}, dead-lettered {self.dead_lettered}"
        )


class Stopping(Exception):
    """SIGTERM arrived while a request was in hand."""


# What renders one request and stores its video: `produce`, or a stand-in in tests.
Job = Callable[[RenderRequest, ProcessorSettings, Storage, Callable[[], bool], FrameCount], Produced]


class Processor:
    """Drains the work queues with one request in hand at a time."""

    def __init__(
        self,
        settings: ProcessorSettings,
        *,
        connect: Callable[[], WorkBroker] | None = None,
        job: Job = produce,
    ):
        """`connect` opens the broker (RabbitMQ at AMQP_URL unless given); `job` renders a request.

        Tests give stand-ins for both, to try every way a request can end in milliseconds.
        """
        self.settings = settings
        self._connect = connect or (lambda: WorkQueues.connect(settings))
        self._job = job
        self.storage = open_storage(settings.output_url, settings.public_url_base, settings.presign_seconds)
        self.tally = Tally()
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._host = socket.gethostname()
        self._progress_throttle = Throttle()

    # lifecycle -----------------------------------------------------------------------------
    def request_stop(self, signum: int, _frame: FrameType | None = None) -> None:
        log.warning("received %s: finishing nothing new, handing work back", signal.Signals(signum).name)
        self._stop.set()

    def run(self) -> int:
        """Drain the queues; the exit code says how it ended (see README)."""
        started = time.monotonic()
        try:
            self.storage.check()
            code = self._drain()
        except ConfigurationError as exc:
            log.error("stopping: configuration error: %s (%s)", exc, self.tally)
            code = ExitCode.CONFIGURATION
        except (BrokerUnavailable, StorageUnavailable) as exc:
            log.error("stopping: %s is unavailable: %s (%s)", _service(exc), exc, self.tally)
            code = ExitCode.UNAVAILABLE
        except Exception:
            log.exception("stopping: unexpected error (%s)", self.tally)
            code = ExitCode.UNEXPECTED
        finally:
            procs.kill_all()
            self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("processor exits %d after %.0f s", code, time.monotonic() - started)
        return code

    def _drain(self) -> int:
        broker = self._connect()
        idle_since = time.monotonic()
        confirming = False
        try:
            while not self._stop.is_set():
                try:
                    delivery = broker.take()
                    if delivery is not None:
                        self._handle(broker, delivery)
                        idle_since, confirming = time.monotonic(), False
                        continue
                    if self._others_may_bring_work(broker):
                        idle_since, confirming = time.monotonic(), False
                    elif time.monotonic() - idle_since >= self.settings.idle_timeout:
                        # Stop on the second clear look in a row: a peer that took a
                        # request during the first look has marked it by now.
                        if confirming:
                            log.info(
                                "queues drained, idle for %.0f s, stopping: %s",
                                self.settings.idle_timeout,
                                self.tally,
                            )
                            return ExitCode.OK
                        confirming = True
                    broker.sleep(self.settings.poll_interval)
                except BrokerUnavailable as exc:
                    log.warning("lost the broker (%s); reconnecting", exc)
                    broker.reconnect()
                    idle_since, confirming = time.monotonic(), False
            log.warning("stopped on request (SIGTERM): %s", self.tally)
            return ExitCode.STOPPED
        except Stopping:
            log.warning("stopped on request (SIGTERM) with a request in hand, handed back: %s", self.tally)
            return ExitCode.STOPPED
        finally:
            broker.close()

    def _others_may_bring_work(self, broker: WorkBroker) -> bool:
        """Retries waiting in delay queues, or a peer whose request could come back."""
        if broker.backlog() > 0:
            return True
        return self.settings.wait_for_peers and broker.busy_peers() > 0

    # one request ---------------------------------------------------------------------------
    def _handle(self, broker: WorkBroker, delivery: Delivery) -> None:
        received = datetime.now(UTC)
        if delivery.unsettled >= self.settings.delivery_limit:
            self._refuse_poison(broker, delivery, received)
            return
        if delivery.uncounted:
            broker.count_redelivery(delivery)
            return
        metrics.queue_wait(delivery.queued_seconds)
        try:
            request = parse_request(delivery.body)
        except PermanentError as exc:
            subject = Subject.guessed_from(delivery.body)
            with request_context(
                videoId=subject.video_id, batchId=subject.batch_id, attempt=delivery.attempt
            ):
                log.warning("invalid request, dead-lettering: %s", exc)
                self._fail(broker, delivery, exc, subject, received)
            return
        with request_context(videoId=request.video_id, batchId=request.batch_id, attempt=delivery.attempt):
            log.info("rendering %s (%s priority)", describe_repos(request.repos), delivery.priority.value)
            with metrics.IN_PROGRESS.track_inprogress():
                self._settle(broker, delivery, request, received)

    def _refuse_poison(self, broker: WorkBroker, delivery: Delivery, received: datetime) -> None:
        """Dead-letter a request whose processors died DELIVERY_LIMIT times, before it kills another.

        The processor does this itself for every queue type, so a work queue declared
        without arguments (by a producer, or by us) is as safe as one with x-delivery-limit.
        """
        exc = DeliveryLimitExceeded(
            f"delivered {delivery.unsettled} times without being settled: its processor died each time"
        )
        subject = Subject.guessed_from(delivery.body)
        with request_context(videoId=subject.video_id, batchId=subject.batch_id, attempt=delivery.attempt):
            log.error("dead-lettering: %s", exc)
            self._fail(broker, delivery, exc, subject, received)

    def _settle(
        self, broker: WorkBroker, delivery: Delivery, request: RenderRequest, received: datetime
    ) -> None:
        context = contextvars.copy_context()
        frames = FrameCount()
        future = self._executor.submit(
            context.run, self._job, request, self.settings, self.storage, self._stop.is_set, frames
        )
        reporter = Reporter(
            frames,
            request.video_id,
            self._progress_throttle,
            lambda reading: self._announce_progress(broker, request, delivery, reading),
        )
        try:
            broker.wait_for(future, stop=self._stop.is_set, every_tick=reporter.tick)
        except BrokerUnavailable:
            # The broker returns the request to its queue; let the job finish (its video is
            # then found by fingerprint on redelivery) before reconnecting.
            log.warning("lost the broker while rendering; the request will be redelivered")
            self._finish(future)
            raise
        finally:
            reporter.close()
        if self._stop.is_set():
            self._finish(future)
        try:
            produced = future.result()
        except ConfigurationError:
            broker.requeue(delivery)
            raise
        except PermanentError as exc:
            log.warning("cannot be rendered, dead-lettering: %s", exc)
            self._fail(broker, delivery, exc, Subject.of(request), received)
        except Exception as exc:
            if self._stop.is_set():
                broker.requeue(delivery)
                raise Stopping from exc
            self._retry_or_fail(broker, delivery, request, exc, received)
        else:
            self._succeed(broker, delivery, request, produced, received)

    def _announce_progress(
        self, broker: WorkBroker, request: RenderRequest, delivery: Delivery, reading: Frames
    ) -> None:
        """A progress event; failing to publish one changes nothing about the render."""
        event = RenderProgressEvent(
            video_id=request.video_id,
            batch_id=request.batch_id,
            progress=round(reading.progress, 4),
            eta=None if reading.eta is None else round(reading.eta, 1),
            frames_done=reading.done,
            frames_total=reading.total,
            attempt=delivery.attempt,
            processor=self._host,
            at=datetime.now(UTC),
        )
        try:
            broker.publish_render_progress(event.to_wire(), request.batch_id)
        except GourceBatchError as exc:
            # A lost connection is noticed by the wait around the render, as ever.
            log.warning("could not publish a progress event: %s", exc)

    def _finish(self, future: Future[Produced]) -> None:
        """Wait up to SHUTDOWN_GRACE for the job (it sees the stop flag); then kill its children."""
        try:
            future.exception(timeout=self.settings.shutdown_grace)
        except TimeoutError:
            log.warning(
                "the request did not stop within %g s; killing its processes", self.settings.shutdown_grace
            )
            procs.kill_all()
            with contextlib.suppress(TimeoutError):
                future.exception(timeout=5)

    def _succeed(
        self,
        broker: WorkBroker,
        delivery: Delivery,
        request: RenderRequest,
        produced: Produced,
        received: datetime,
    ) -> None:
        produced.timings.queued = _round(delivery.queued_seconds)
        produced.timings.total = round((datetime.now(UTC) - received).total_seconds(), 3)
        event = self._event(Subject.of(request), delivery, received)
        event.state = State.succeeded
        event.url, event.http_url, event.key = produced.url, produced.http_url, produced.key
        event.poster_url, event.poster_http_url = produced.poster_url, produced.poster_http_url
        event.playlist_url, event.playlist_http_url = produced.playlist_url, produced.playlist_http_url
        event.timings, event.video, event.pace = produced.timings, produced.video, produced.pace
        event.presentation, event.excluded, event.cost = (
            produced.presentation,
            produced.excluded,
            produced.cost,
        )
        event.repositories = produced.repositories
        broker.publish_result(event.to_wire(), event.batch_id)
        broker.ack(delivery)
        metrics.settled("already_stored" if produced.skipped else "succeeded")
        if produced.skipped:
            self.tally.skipped += 1
        else:
            self.tally.rendered += 1
        log.info("succeeded: %s", produced.url)

    def _retry_or_fail(
        self,
        broker: WorkBroker,
        delivery: Delivery,
        request: RenderRequest,
        exc: Exception,
        received: datetime,
    ) -> None:
        if not isinstance(exc, GourceBatchError):
            log.exception("unexpected error, treated as transient")
        if delivery.attempt < self.settings.max_attempts:
            delay = broker.topology.delay_before(delivery.attempt)
            log.warning(
                "attempt %d of %d failed (%s); retrying in %d s",
                delivery.attempt, self.settings.max_attempts, _describe(exc), delay,
            )  # fmt: skip
            broker.retry_later(delivery, delay, _describe(exc))
            metrics.settled("retried")
            self.tally.retried += 1
            return
        log.error(
            "attempt %d of %d failed (%s); dead-lettering",
            delivery.attempt, self.settings.max_attempts, _describe(exc),
        )  # fmt: skip
        self._fail(broker, delivery, exc, Subject.of(request), received)

    def _fail(
        self, broker: WorkBroker, delivery: Delivery, exc: Exception, subject: Subject, received: datetime
    ) -> None:
        reason = getattr(exc, "reason", "error")
        event = self._event(subject, delivery, received)
        event.state, event.error, event.reason = State.failed, _describe(exc), reason
        broker.publish_result(event.to_wire(), event.batch_id)
        # The dead letter keeps the body as sent, but never a token (README: dead letters).
        broker.dead_letter(replace(delivery, body=without_token(delivery.body)), reason, _describe(exc))
        metrics.settled("failed")
        self.tally.dead_lettered += 1

    def _event(self, subject: Subject, delivery: Delivery, received: datetime) -> ResultEvent:
        return ResultEvent(
            video_id=subject.video_id,
            batch_id=subject.batch_id,
            repo_url=subject.repo_url,
            repo_urls=list(subject.repo_urls) if subject.repo_urls else None,
            state=State.failed,
            attempts=delivery.attempt,
            priority=delivery.priority.value,
            processor=self._host,
            started_at=received,
            finished_at=datetime.now(UTC),
        )


def _service(exc: Exception) -> str:
    return "the broker" if isinstance(exc, BrokerUnavailable) else "the object store"


def _describe(exc: Exception) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:1000]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def install_signal_handlers(processor: Processor) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, processor.request_stop)
