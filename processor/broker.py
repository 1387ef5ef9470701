"""The only module that speaks AMQP: connecting, declaring, taking, publishing, settling.

pika's BlockingConnection has no I/O thread of its own, so the processor keeps every call
on one thread and services the connection (`wait_for`) while the render runs elsewhere.
pika errors are translated here into `BrokerUnavailable` / `ConfigurationError`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from processor.contract import VIDEO_ID, Subject
from processor.errors import BatchNotFound, BrokerUnavailable, ConfigurationError
from processor.logs import redact
from processor.settings import SharedSettings
from processor.topology import PRIORITIES, RETURN_TO, Priority, Topology

log = logging.getLogger(__name__)


class _ExpectedMisses(logging.Filter):
    """A passive declare that finds no queue is a question answered, not an incident."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NOT_FOUND - no queue" not in record.getMessage()


logging.getLogger("pika.channel").addFilter(_ExpectedMisses())

T = TypeVar("T")

PERSISTENT = pika.DeliveryMode.Persistent
JSON = "application/json"
# A progress event is news for a few seconds: not persistent, and gone from a queue nobody
# reads after a minute instead of piling up (README: progress events).
PROGRESS_EXPIRES_MS = 60_000

# Headers this project sets on requests it moves around.
ATTEMPT = "x-attempt"
# Classic queues keep no delivery count; the processor keeps one in this header.
REDELIVERIES = "x-redeliveries"


@dataclass(frozen=True)
class Delivery:
    """A request taken from a work queue, not yet settled."""

    body: bytes
    delivery_tag: int
    queue: str
    priority: Priority
    redelivered: bool
    headers: dict[str, Any] = field(default_factory=dict)
    timestamp: int | None = None

    @property
    def unsettled(self) -> int:
        """Earlier deliveries of this request that were never settled (its processor died)."""
        return unsettled(self.headers, self.redelivered)

    @property
    def uncounted(self) -> bool:
        """Redelivered by a queue that keeps no count (classic): `count_redelivery` it."""
        return self.redelivered and "x-delivery-count" not in self.headers

    @property
    def attempt(self) -> int:
        """1 for a first try; counts our retries and deliveries that killed their processor."""
        return int(self.headers.get(ATTEMPT, 1)) + self.unsettled

    @property
    def queued_seconds(self) -> float | None:
        return None if self.timestamp is None else max(0.0, time.time() - self.timestamp)


def unsettled(headers: dict[str, Any], redelivered: bool) -> int:
    """Deliveries of a request that never got settled, whatever queue type holds it.

    Quorum queues count returns of a message in `x-delivery-count`. Classic queues only
    flag a return (`redelivered`), so the processor requeues such a message as a copy with
    REDELIVERIES raised, acknowledged only once the copy is confirmed: the count survives
    processors that are killed at any point.
    """
    counted = int(headers.get(REDELIVERIES) or 0)
    returned = headers.get("x-delivery-count")
    return counted + (int(returned) if returned is not None else int(redelivered))


def _properties(headers: dict[str, Any] | None = None, kind: str | None = None) -> pika.BasicProperties:
    """Every message this project publishes: persistent JSON, stamped with when."""
    return pika.BasicProperties(
        content_type=JSON,
        delivery_mode=PERSISTENT,
        headers=headers or None,
        type=kind,
        timestamp=int(time.time()),
    )


def _server_version(connection: pika.BlockingConnection) -> tuple[int, ...]:
    raw = connection._impl.server_properties.get("version", b"0")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return tuple(int(p) for p in text.split("+")[0].split("-")[0].split(".") if p.isdigit())


def _translate(exc: BaseException) -> Exception:
    if isinstance(
        exc, pika.exceptions.ProbableAuthenticationError | pika.exceptions.ProbableAccessDeniedError
    ):
        return ConfigurationError(f"the broker refused the credentials or vhost: {exc!r}")
    # 406 is also how consumer_timeout closes a channel: only a refused declare is ours to fix.
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and (
        exc.reply_code == 403 or "inequivalent arg" in str(exc.reply_text)
    ):
        return ConfigurationError(f"the broker refused the queue layout or access: {exc.reply_text}")
    return BrokerUnavailable(f"{type(exc).__name__}: {exc}")


AMQP_ERRORS = (pika.exceptions.AMQPError, OSError)


def queue_counts(connection: pika.BlockingConnection, name: str) -> tuple[int, int] | None:
    """(messages, consumers) of a queue, or None when there is none.

    A passive declare on a channel of its own, since the broker closes it on a 404.
    """
    channel = connection.channel()
    try:
        ok = channel.queue_declare(name, passive=True).method
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    channel.close()
    return ok.message_count, ok.consumer_count


def exists_on(connection: pika.BlockingConnection) -> Callable[[str], bool]:
    """Does a queue exist? For `Topology.declare`, which leaves existing work queues alone."""
    return lambda queue: queue_counts(connection, queue) is not None


class Broker:
    """One connection and one confirmed channel, with the project's topology declared."""

    def __init__(
        self,
        settings: SharedSettings,
        purpose: str,
        *,
        announce: bool = False,
    ):
        """`announce`: show up in the processors count (`stats`) while connected."""
        self.settings = settings
        params = pika.URLParameters(settings.amqp_url)
        params.client_properties = {"connection_name": f"gource-batch {purpose} on {socket.gethostname()}"}
        self._params = params
        self._announce = announce
        self.connection, self.channel, self.topology = self._open()
        self._busy_tag: str | None = None
        self._progress_channel: BlockingChannel | None = None

    # connection ----------------------------------------------------------------------------
    def retrying(self) -> Retrying:
        """Back-off for anything that needs the broker back: up to CONNECT_TIMEOUT."""
        return Retrying(
            retry=retry_if_exception_type(BrokerUnavailable),
            wait=wait_exponential(multiplier=0.5, max=10),
            stop=stop_after_delay(self.settings.connect_timeout),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )

    def _open(self) -> tuple[pika.BlockingConnection, BlockingChannel, Topology]:
        return self.retrying()(self._open_once)

    def _open_once(self) -> tuple[pika.BlockingConnection, BlockingChannel, Topology]:
        try:
            connection = pika.BlockingConnection(self._params)
            topology = Topology.for_broker(self.settings, _server_version(connection))
            channel = connection.channel()
            try:
                topology.declare(channel, exists=exists_on(connection))
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 406:
                    raise
                # A producer declared a work queue its own way between our look and our
                # declare: look again, and use it as it is.
                channel = connection.channel()
                topology.declare(channel, exists=exists_on(connection))
            channel.confirm_delivery()
            channel.basic_qos(prefetch_count=1)
            if self._announce:
                channel.basic_consume(topology.processors_queue, lambda *_: None, auto_ack=True)
        except AMQP_ERRORS as exc:
            raise _translate(exc) from exc
        log.info("connected to %s (queues %r...)", redact(self.settings.amqp_url), topology.base)
        return connection, channel, topology

    def reconnect(self) -> None:
        """A fresh connection after a lost one (retrying up to CONNECT_TIMEOUT)."""
        self.close()
        self._busy_tag = None
        self._progress_channel = None
        self.connection, self.channel, self.topology = self._open()

    def close(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
        except AMQP_ERRORS:
            pass

    @contextmanager
    def _boundary(self) -> Iterator[None]:
        try:
            yield
        except AMQP_ERRORS as exc:
            raise _translate(exc) from exc

    # taking work ---------------------------------------------------------------------------
    def take(self) -> Delivery | None:
        """The next request, highest priority first, marked in flight; None if all are empty.

        The in-flight mark goes up right after the request is taken; a peer deciding
        whether to stop looks twice, a poll interval apart, so it cannot miss the mark.
        """
        with self._boundary():
            for priority in PRIORITIES:
                queue = self.topology.work_queue(priority)
                method, props, body = self.channel.basic_get(queue, auto_ack=False)
                if method is not None:
                    self._mark_busy(priority)
                    return Delivery(
                        body=body,
                        delivery_tag=method.delivery_tag,
                        queue=queue,
                        priority=priority,
                        redelivered=bool(method.redelivered),
                        headers=dict(props.headers or {}),
                        timestamp=props.timestamp,
                    )
        return None

    def _mark_busy(self, priority: Priority) -> None:
        if self._busy_tag is None:
            self._busy_tag = self.channel.basic_consume(
                self.topology.inflight_queue(priority), lambda *_: None, auto_ack=True
            )

    def _mark_idle(self) -> None:
        if self._busy_tag is not None:
            self.channel.basic_cancel(self._busy_tag)
            self._busy_tag = None

    def wait_for(
        self,
        future: Future[T],
        tick: float = 0.5,
        stop: Callable[[], bool] = lambda: False,
        every_tick: Callable[[], None] = lambda: None,
    ) -> None:
        """Service heartbeats until `future` is done or `stop()` says so; `every_tick()` between."""
        with self._boundary():
            while not future.done() and not stop():
                self.connection.process_data_events(time_limit=tick)
                every_tick()

    def sleep(self, seconds: float) -> None:
        """Sleep while keeping the connection alive."""
        with self._boundary():
            self.connection.process_data_events(time_limit=seconds)

    # settling ------------------------------------------------------------------------------
    def ack(self, delivery: Delivery) -> None:
        with self._boundary():
            self.channel.basic_ack(delivery.delivery_tag)
            self._mark_idle()

    def requeue(self, delivery: Delivery) -> None:
        """Hand the request back untouched (shutdown, configuration error)."""
        with self._boundary():
            self.channel.basic_nack(delivery.delivery_tag, requeue=True)
            self._mark_idle()

    def _publish(
        self, exchange: str, routing_key: str, body: bytes, headers: dict[str, Any] | None = None
    ) -> None:
        with self._boundary():
            self.channel.basic_publish(exchange, routing_key, body, _properties(headers), mandatory=True)

    def publish_result(self, event_body: bytes, batch_id: str | None = None) -> None:
        """One result event on the fan-out exchange, confirmed; routed on by its batch id."""
        # A batch id guessed from an invalid body may be no valid routing key: route none.
        key = batch_id if batch_id and VIDEO_ID.match(batch_id) else ""
        self._publish(self.topology.results_exchange, key, event_body)

    def publish_render_progress(self, event_body: bytes, batch_id: str | None = None) -> None:
        """A progress event: not persistent, not confirmed, on a channel of its own.

        Whatever the broker makes of it (a refused or missing exchange closes the channel
        it came on) leaves the channel that holds the request alone; the next event opens
        a new one. Routed like result events, by batch id, for a binding that wants it.
        """
        key = batch_id if batch_id and VIDEO_ID.match(batch_id) else ""
        properties = pika.BasicProperties(
            content_type=JSON,
            delivery_mode=pika.DeliveryMode.Transient,
            expiration=str(PROGRESS_EXPIRES_MS),
            timestamp=int(time.time()),
        )
        with self._boundary():
            if self._progress_channel is None or not self._progress_channel.is_open:
                if self._progress_channel is not None and self.connection.is_open:
                    log.warning("the channel of progress events was closed by the broker; opening another")
                self._progress_channel = self.connection.channel()
            self._progress_channel.basic_publish(
                self.topology.render_progress_exchange, key, event_body, properties
            )

    def retry_later(self, delivery: Delivery, delay: int, error: str) -> None:
        """A copy to the delay queue that returns it to its work queue; then ack the original."""
        headers = {
            **_own_headers(delivery.headers),
            ATTEMPT: delivery.attempt + 1,
            RETURN_TO: delivery.queue,
            "x-last-error": error[:1000],
        }
        self._publish("", self.topology.delay_queue(delay), delivery.body, headers)
        self.ack(delivery)

    def count_redelivery(self, delivery: Delivery) -> None:
        """Classic queues: requeue a redelivered request with its count raised (at the tail)."""
        headers = {**delivery.headers, REDELIVERIES: delivery.unsettled}
        self._publish("", delivery.queue, delivery.body, headers)
        self.ack(delivery)

    def dead_letter(self, delivery: Delivery, reason: str, error: str) -> None:
        """The original body to the dead queue with why; then ack the original."""
        headers = {
            **_own_headers(delivery.headers),
            "x-reason": reason,
            "x-error": error[:1000],
            "x-attempts": delivery.attempt,
            "x-dead-at": datetime.now(UTC).isoformat(timespec="seconds"),
            "x-source-queue": delivery.queue,
        }
        self._publish("", self.topology.dead_queue, delivery.body, headers)
        self.ack(delivery)

    # looking around ------------------------------------------------------------------------
    def _count(self, queue: str) -> tuple[int, int]:
        ok = self.channel.queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count

    def backlog(self) -> int:
        """Requests ready in the work queues or waiting out a retry delay."""
        queues: Iterable[str] = [
            *self.topology.work_queues,
            *(self.topology.delay_queue(d) for d in self.topology.retry_delays),
        ]
        with self._boundary():
            return sum(self._count(q)[0] for q in queues)

    def busy_peers(self) -> int:
        """Processors other than this one that hold a request right now."""
        with self._boundary():
            busy = sum(self._count(self.topology.inflight_queue(p))[1] for p in PRIORITIES)
        return busy - (1 if self._busy_tag else 0)

    def counts(self) -> dict[str, tuple[int, int]]:
        """(messages, consumers) of every queue of the topology, markers included."""
        names = [
            *self.topology.work_queues,
            *(self.topology.delay_queue(d) for d in self.topology.retry_delays),
            self.topology.dead_queue,
            self.topology.results_queue,
            *self.topology.marker_queues,
        ]
        with self._boundary():
            return {name: self._count(name) for name in names}

    # the dead-letter queue -----------------------------------------------------------------
    def _browse_dead(self, channel: BlockingChannel) -> list[DeadLetter]:
        """Every dead letter there now, held unacknowledged on `channel`."""
        letters = []
        for _ in range(self._count(self.topology.dead_queue)[0]):
            method, props, body = channel.basic_get(self.topology.dead_queue, auto_ack=False)
            if method is None:
                break
            letters.append(DeadLetter(body, dict(props.headers or {}), method.delivery_tag))
        return letters

    @contextmanager
    def _dead_channel(self) -> Iterator[BlockingChannel]:
        """A channel whose unsettled dead letters go back, in order, when it is done."""
        with self._boundary():
            channel = self.connection.channel()
            try:
                yield channel
            finally:
                if channel.is_open:
                    channel.basic_nack(0, multiple=True, requeue=True)
                    channel.close()

    def dead_letters(self) -> list[DeadLetter]:
        """Read every dead letter without removing any."""
        with self._dead_channel() as channel:
            return self._browse_dead(channel)

    def requeue_dead(self, select: Callable[[DeadLetter], bool]) -> list[DeadLetter]:
        """Send the selected dead letters back to their work queue as fresh requests."""
        moved = []
        with self._dead_channel() as channel:
            for letter in self._browse_dead(channel):
                if not select(letter):
                    continue
                home = letter.source_queue
                if home not in self.topology.work_queues:
                    home = self.topology.work_queue(Priority.normal)
                self._publish("", home, letter.body, _own_headers(letter.headers))
                channel.basic_ack(letter.delivery_tag)
                moved.append(letter)
        return moved

    def purge_dead(self) -> int:
        with self._boundary():
            return int(self.channel.queue_purge(self.topology.dead_queue).method.message_count)

    # following a batch ---------------------------------------------------------------------
    def prepare_batch(self, batch_id: str, ttl: int, routing_keys: set[str]) -> str:
        """Declare the batch's queue and bindings; call before publishing its requests."""
        with self._boundary():
            return self.topology.declare_batch(self.channel, batch_id, ttl, routing_keys)

    def publish_manifest(self, batch_id: str, body: bytes) -> None:
        """What the batch holds, into its own queue (not to other result consumers), confirmed."""
        with self._boundary():
            self.channel.basic_publish(
                "", self.topology.batch_queue(batch_id), body, _properties(kind=MANIFEST), mandatory=True
            )

    def read_batch(
        self,
        batch_id: str,
        tick: float = 0.5,
        on_render_progress: Callable[[bytes], None] | None = None,
    ) -> Generator[BatchMessage | None, None, None]:
        """Every message of the batch's queue, old ones first, then new ones as they come.

        Yields None after `tick` seconds of quiet. Reads without removing anything: the
        messages stay unacknowledged and go back when the reader stops, so any number of
        readers, one after another or at once, each see the whole batch. Every REREAD_EVERY
        seconds it starts over from the top, before the broker's consumer_timeout (15 or 30
        min) would close a channel that holds messages unacknowledged; readers deduplicate.
        BatchNotFound if the queue does not exist.

        `on_render_progress` gets the body of every render progress event (of any batch)
        from now on, called between yields: from a queue of this reader's own, which
        the broker names and deletes when the reader stops.
        """
        queue = self.topology.batch_queue(batch_id)
        while True:
            with self._boundary():
                channel = self.connection.channel()
                try:
                    channel.queue_declare(queue, passive=True)
                except pika.exceptions.ChannelClosedByBroker as exc:
                    if exc.reply_code == 404:
                        raise BatchNotFound(f"no progress queue {queue!r} on the broker") from None
                    raise
            opened = time.monotonic()
            try:
                with self._boundary():
                    channel.basic_qos(prefetch_count=0)
                    if on_render_progress is not None:
                        self._listen_to_render_progress(channel, on_render_progress)
                    for method, props, body in channel.consume(queue, inactivity_timeout=tick):
                        if method is None:
                            yield None
                        else:
                            yield BatchMessage(props.type == MANIFEST, body)
                        if time.monotonic() - opened >= REREAD_EVERY:
                            break
            except BrokerUnavailable as exc:
                # A consumer_timeout set below REREAD_EVERY closes the channel (406): read again.
                if "PRECONDITION_FAILED" not in str(exc) or not self.connection.is_open:
                    raise
                log.warning("the broker closed the batch channel (%s); reading the batch again", exc)
            finally:
                with suppress(*AMQP_ERRORS):
                    if channel.is_open:
                        channel.close()  # the unacknowledged messages go back, in order

    def _listen_to_render_progress(self, channel: BlockingChannel, handle: Callable[[bytes], None]) -> None:
        """An exclusive, auto-delete, server-named queue on the progress exchange, consumed on `channel`."""
        private = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(private, self.topology.render_progress_exchange)
        channel.basic_consume(private, lambda _ch, _method, _props, body: handle(body), auto_ack=True)


# AMQP `type` of a batch manifest; result events have none.
MANIFEST = "gource-batch.manifest"
# Below the smallest consumer_timeout RabbitMQ has shipped with (15 min).
REREAD_EVERY = 600.0


@dataclass(frozen=True)
class BatchMessage:
    """A message of a batch queue: a manifest from a loader, or a result event."""

    manifest: bool
    body: bytes


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered request, read back with why it died."""

    body: bytes
    headers: dict[str, Any]
    delivery_tag: int

    @property
    def subject(self) -> Subject:
        return Subject.guessed_from(self.body)

    @property
    def _death(self) -> dict[str, Any]:
        deaths = self.headers.get("x-death") or [{}]
        return dict(deaths[0])

    @property
    def reason(self) -> str:
        """Ours (x-reason), or the broker's when it dead-lettered the request itself."""
        if "x-reason" in self.headers:
            return _text(self.headers["x-reason"])
        return _text(self._death.get("reason", "unknown")).replace("_", "-")

    @property
    def error(self) -> str:
        if "x-error" in self.headers:
            return _text(self.headers["x-error"])
        if self.reason == "delivery-limit":
            return "delivered too many times without being settled: its processor died each time"
        return ""

    @property
    def attempts(self) -> int:
        return int(self.headers.get("x-attempts", self.headers.get("x-delivery-count", 0)) or 0)

    @property
    def dead_at(self) -> str | None:
        if "x-dead-at" in self.headers:
            return _text(self.headers["x-dead-at"])
        when = self._death.get("time")
        return when.isoformat() if isinstance(when, datetime) else None

    @property
    def source_queue(self) -> str:
        return _text(self.headers.get("x-source-queue") or self._death.get("queue") or "")


# Headers that describe a past life; a requeued request starts without them.
_HISTORY = {
    ATTEMPT, RETURN_TO, REDELIVERIES, "x-death", "x-delivery-count",
    "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
    "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason",
    "x-reason", "x-error", "x-attempts", "x-dead-at", "x-source-queue", "x-last-error",
}  # fmt: skip


def _own_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """Headers worth carrying on a copy: not the bookkeeping of earlier attempts."""
    return {k: v for k, v in headers.items() if k not in _HISTORY}


class Publisher:
    """Loads requests in transactions of `batch` messages: one round trip per batch.

    RabbitMQ takes responsibility for a transaction's messages (durably, for persistent
    messages on durable queues) when tx.commit returns, which is what a loader needs to
    report a request loaded; per-message confirms would cost a round trip each. A batch
    whose commit was not confirmed is published again after reconnecting: at worst a
    request is queued twice, and the processor's fingerprint check renders it once.
    """

    def __init__(self, broker: Broker, batch: int = 500):
        self._broker = broker
        self._batch = batch
        self._channel: BlockingChannel | None = None

    def _tx_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._channel = self._broker.connection.channel()
            self._channel.tx_select()
        return self._channel

    def publish_all(self, queue: str, bodies: Iterable[bytes], on_commit: Callable[[int], None]) -> None:
        """Publish every body to `queue`; `on_commit(n)` after each batch the broker took."""
        batch: list[bytes] = []
        for body in bodies:
            batch.append(body)
            if len(batch) >= self._batch:
                on_commit(self._commit(queue, batch))
                batch = []
        if batch:
            on_commit(self._commit(queue, batch))

    def _commit(self, queue: str, batch: list[bytes]) -> int:
        for attempt in self._broker.retrying():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self._broker.reconnect()
                with self._broker._boundary():
                    channel = self._tx_channel()
                    props = _properties()
                    for body in batch:
                        channel.basic_publish("", queue, body, props)
                    channel.tx_commit()
        return len(batch)
