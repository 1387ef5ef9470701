"""A connection to the broker with the project's topology declared, and the boundary where
pika's errors become ours.

pika's BlockingConnection has no I/O thread of its own, so every call stays on one thread and
`wait_for` services the connection while a render runs on another. Every module of this
package talks AMQP inside `translated()`, so nothing above it sees a pika error: what the
deployment must fix is a ConfigurationError, anything else BrokerUnavailable.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, NamedTuple

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

from processor.broker.messages import persistent
from processor.errors import BrokerUnavailable, ConfigurationError
from processor.logs import redact
from processor.settings import SharedSettings
from processor.topology import Topology

log = logging.getLogger(__name__)

AMQP_ERRORS = (pika.exceptions.AMQPError, OSError)
# Seconds between looks at a render in `wait_for` (heartbeats need far fewer).
TICK = 0.5
# The queue `knows_quorum_queues` asks for: `{RENDER_QUEUE}.quorum-probe`, never kept.
_PROBE = "quorum-probe"


class _ExpectedRefusals(logging.Filter):
    """A passive declare that finds no queue, or the quorum probe refused, is a question
    answered, not an incident."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "NOT_FOUND - no queue" not in message and f".{_PROBE}'" not in message


logging.getLogger("pika.channel").addFilter(_ExpectedRefusals())


class QueueCounts(NamedTuple):
    """What a passive declare tells of a queue (AMQP counts no unacknowledged messages)."""

    messages: int  # ready to be taken
    consumers: int  # on a marker queue: processors, or requests in flight


def translate(exc: BaseException) -> Exception:
    """A pika error as ours: ConfigurationError where the deployment must change, else BrokerUnavailable."""
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


@contextmanager
def translated() -> Iterator[None]:
    """The boundary: pika's errors inside the block leave it translated (`translate`)."""
    try:
        yield
    except AMQP_ERRORS as exc:
        raise translate(exc) from exc


def queue_counts(amqp: pika.BlockingConnection, name: str) -> QueueCounts | None:
    """The counts of a queue, or None when there is none.

    A passive declare on a channel of its own, since the broker closes it on a 404.
    """
    channel = amqp.channel()
    try:
        ok = channel.queue_declare(name, passive=True).method
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    channel.close()
    return QueueCounts(ok.message_count, ok.consumer_count)


def exists_on(amqp: pika.BlockingConnection) -> Callable[[str], bool]:
    """Does a queue exist? For `Topology.declare`, which leaves existing work queues alone."""
    return lambda queue: queue_counts(amqp, queue) is not None


def knows_quorum_queues(amqp: pika.BlockingConnection, base: str) -> bool:
    """Does the broker have quorum queues (RabbitMQ 3.8 and later)?

    Asked rather than read off its version, which pika keeps to itself: a quorum queue
    cannot be exclusive, so a broker that knows them refuses such a declare (406); one that
    does not ignores the argument and makes a plain exclusive queue, deleted at once.
    """
    probe = f"{base}.{_PROBE}"
    channel = amqp.channel()
    try:
        channel.queue_declare(probe, exclusive=True, arguments={"x-queue-type": "quorum"})
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406:
            return True
        raise
    channel.queue_delete(probe)
    channel.close()
    return False


class Connection:
    """One connection and one confirmed channel, with the project's topology declared.

    `reconnect` replaces both (`amqp`, `channel`); state tied to the old ones (a channel of
    one's own, a consumer) belongs to a connection that is gone.
    """

    def __init__(self, settings: SharedSettings, purpose: str, *, announce: bool = False):
        """`announce`: show up in the processors count (`stats`) while connected."""
        self.settings = settings
        params = pika.URLParameters(settings.amqp_url)
        params.client_properties = {"connection_name": f"gource-batch {purpose} on {socket.gethostname()}"}
        self._params = params
        self._announce = announce
        self.amqp, self.channel, self.topology = self._open()

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
        with translated():
            amqp = pika.BlockingConnection(self._params)
            auto = self.settings.queue_type == "auto"
            knows_quorum = auto and knows_quorum_queues(amqp, self.settings.render_queue)
            topology = Topology.for_broker(self.settings, knows_quorum=knows_quorum)
            channel = amqp.channel()
            try:
                topology.declare(channel, exists=exists_on(amqp))
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 406:
                    raise
                # A producer declared a work queue its own way between our look and our
                # declare: look again, and use it as it is.
                channel = amqp.channel()
                topology.declare(channel, exists=exists_on(amqp))
            channel.confirm_delivery()
            channel.basic_qos(prefetch_count=1)
            if self._announce:
                channel.basic_consume(topology.processors_queue, lambda *_: None, auto_ack=True)
        log.info("connected to %s (queues %r...)", redact(self.settings.amqp_url), topology.base)
        return amqp, channel, topology

    def reconnect(self) -> None:
        """A fresh connection after a lost one (retrying up to CONNECT_TIMEOUT)."""
        self.close()
        self.amqp, self.channel, self.topology = self._open()

    def close(self) -> None:
        try:
            if self.amqp.is_open:
                self.amqp.close()
        except AMQP_ERRORS:
            pass

    # the connection kept alive -------------------------------------------------------------
    def wait_for(self, future: Future[Any], stop: Callable[[], bool], every_tick: Callable[[], None]) -> None:
        """Service heartbeats until `future` is done or `stop()` says so; `every_tick()` between ticks."""
        with translated():
            while not future.done() and not stop():
                self.amqp.process_data_events(time_limit=TICK)
                every_tick()

    def sleep(self, seconds: float) -> None:
        """Sleep while keeping the connection alive."""
        with translated():
            self.amqp.process_data_events(time_limit=seconds)

    # on the confirmed channel --------------------------------------------------------------
    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        headers: dict[str, Any] | None = None,
        kind: str | None = None,
    ) -> None:
        """A persistent message, confirmed by the broker, refused if no queue takes it."""
        with translated():
            self.channel.basic_publish(exchange, routing_key, body, persistent(headers, kind), mandatory=True)

    def counts(self, queues: Iterable[str]) -> dict[str, QueueCounts]:
        """The counts of queues of the topology (which exist: declaring made them)."""
        found = {}
        with translated():
            for queue in queues:
                ok = self.channel.queue_declare(queue, passive=True).method
                found[queue] = QueueCounts(ok.message_count, ok.consumer_count)
        return found

    def backlog(self) -> int:
        """Requests ready in the work queues or waiting out a retry delay."""
        return sum(counts.messages for counts in self.counts(self.topology.waiting_queues).values())
