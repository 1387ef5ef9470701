"""The processor's side of the broker: take one request at a time, keep the connection alive
while it is rendered, settle it.

A request taken is marked in flight (a consumer on its priority's marker queue) until it is
settled, so a peer deciding whether to stop sees it (`busy_peers`). `WorkBroker` is what the
processor needs of a broker, which it takes from outside: `WorkQueues` on RabbitMQ, or
tests/stub_broker.py in memory for tests of its decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from processor.broker.connection import Connection, translated
from processor.broker.messages import (
    Delivery,
    counted_headers,
    dead_letter_headers,
    retry_headers,
    routing_key,
)
from processor.broker.progress_events import ProgressEvents
from processor.settings import SharedSettings
from processor.topology import PRIORITIES, Priority, Topology


class WorkBroker(Protocol):
    """What the processor needs of a broker."""

    @property
    def topology(self) -> Topology: ...

    def take(self) -> Delivery | None:
        """The next request, highest priority first, marked in flight; None if all are empty."""

    def wait_for(self, future: Future[Any], stop: Callable[[], bool], every_tick: Callable[[], None]) -> None:
        """Keep the connection alive until `future` is done or `stop()`; `every_tick()` between ticks."""

    def sleep(self, seconds: float) -> None: ...

    def ack(self, delivery: Delivery) -> None: ...

    def requeue(self, delivery: Delivery) -> None:
        """Hand the request back untouched (shutdown, configuration error)."""

    def retry_later(self, delivery: Delivery, delay: int, error: str) -> None:
        """Through the delay queue of `delay` seconds back to its work queue, one attempt up."""

    def count_redelivery(self, delivery: Delivery) -> None:
        """Back to the tail of its queue with its unsettled deliveries counted (classic queues)."""

    def dead_letter(self, delivery: Delivery, reason: str, error: str) -> None: ...

    def publish_result(self, event_body: bytes, batch_id: str | None = None) -> None: ...

    def publish_render_progress(self, event_body: bytes, batch_id: str | None = None) -> None: ...

    def backlog(self) -> int:
        """Requests ready in the work queues or waiting out a retry delay."""

    def busy_peers(self) -> int:
        """Processors other than this one that hold a request right now."""

    def reconnect(self) -> None: ...

    def close(self) -> None: ...


class WorkQueues:
    """The processor's work queues on RabbitMQ: a `WorkBroker`."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self._progress = ProgressEvents(connection)
        self._busy_tag: str | None = None

    @classmethod
    def connect(cls, settings: SharedSettings) -> WorkQueues:
        """A processor's connection: counted among the processors (`stats`) while it lasts."""
        return cls(Connection(settings, "processor", announce=True))

    @property
    def topology(self) -> Topology:
        return self.connection.topology

    def reconnect(self) -> None:
        """A fresh connection after a lost one; the in-flight mark went with the old one."""
        self._busy_tag = None
        self.connection.reconnect()

    def close(self) -> None:
        self.connection.close()

    def wait_for(self, future: Future[Any], stop: Callable[[], bool], every_tick: Callable[[], None]) -> None:
        self.connection.wait_for(future, stop, every_tick)

    def sleep(self, seconds: float) -> None:
        self.connection.sleep(seconds)

    # taking work ---------------------------------------------------------------------------
    def take(self) -> Delivery | None:
        """The next request, highest priority first, marked in flight; None if all are empty.

        The in-flight mark goes up right after the request is taken; a peer deciding
        whether to stop looks twice, a poll interval apart, so it cannot miss the mark.
        """
        with translated():
            for priority in PRIORITIES:
                queue = self.topology.work_queue(priority)
                method, props, body = self.connection.channel.basic_get(queue, auto_ack=False)
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
            self._busy_tag = self.connection.channel.basic_consume(
                self.topology.inflight_queue(priority), lambda *_: None, auto_ack=True
            )

    def _mark_idle(self) -> None:
        if self._busy_tag is not None:
            self.connection.channel.basic_cancel(self._busy_tag)
            self._busy_tag = None

    # settling ------------------------------------------------------------------------------
    def ack(self, delivery: Delivery) -> None:
        with translated():
            self.connection.channel.basic_ack(delivery.delivery_tag)
            self._mark_idle()

    def requeue(self, delivery: Delivery) -> None:
        """Hand the request back untouched (shutdown, configuration error)."""
        with translated():
            self.connection.channel.basic_nack(delivery.delivery_tag, requeue=True)
            self._mark_idle()

    def publish_result(self, event_body: bytes, batch_id: str | None = None) -> None:
        """One result event on the fan-out exchange, confirmed; routed on by its batch id."""
        self.connection.publish(self.topology.results_exchange, routing_key(batch_id), event_body)

    def publish_render_progress(self, event_body: bytes, batch_id: str | None = None) -> None:
        """A progress event: not persistent, not confirmed, on a channel of its own."""
        self._progress.publish(event_body, batch_id)

    def retry_later(self, delivery: Delivery, delay: int, error: str) -> None:
        """A copy to the delay queue that returns it to its work queue; then ack the original."""
        self.connection.publish(
            "", self.topology.delay_queue(delay), delivery.body, retry_headers(delivery, error)
        )
        self.ack(delivery)

    def count_redelivery(self, delivery: Delivery) -> None:
        """Classic queues: requeue a redelivered request with its count raised (at the tail)."""
        self.connection.publish("", delivery.queue, delivery.body, counted_headers(delivery))
        self.ack(delivery)

    def dead_letter(self, delivery: Delivery, reason: str, error: str) -> None:
        """The original body to the dead queue with why; then ack the original."""
        headers = dead_letter_headers(delivery, reason, error)
        self.connection.publish("", self.topology.dead_queue, delivery.body, headers)
        self.ack(delivery)

    # looking around ------------------------------------------------------------------------
    def backlog(self) -> int:
        return self.connection.backlog()

    def busy_peers(self) -> int:
        markers = self.connection.counts(self.topology.inflight_queue(p) for p in PRIORITIES)
        busy = sum(counts.consumers for counts in markers.values())
        return busy - (1 if self._busy_tag else 0)
