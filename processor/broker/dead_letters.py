"""The dead-letter queue, for the operator tools: read it, send requests back, empty it.

Reading walks the queue with basic.get, holding what it leaves in place unacknowledged until
the end, so every message is seen exactly once and all go back, in order, when it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from processor.broker.connection import Connection, translated
from processor.broker.messages import own_headers
from processor.contract import Subject
from processor.topology import Priority


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


class DeadLetterQueue:
    """`{RENDER_QUEUE}.dead`, seen by an operator."""

    def __init__(self, connection: Connection):
        self._connection = connection
        self._queue = connection.topology.dead_queue

    def read(self) -> list[DeadLetter]:
        """Every dead letter, none removed."""
        with self._holding() as channel:
            return self._browse(channel)

    def requeue(self, select: Callable[[DeadLetter], bool]) -> list[DeadLetter]:
        """Send the selected dead letters back to their work queue as fresh requests."""
        topology = self._connection.topology
        moved = []
        with self._holding() as channel:
            for letter in self._browse(channel):
                if not select(letter):
                    continue
                home = letter.source_queue
                if home not in topology.work_queues:
                    home = topology.work_queue(Priority.normal)
                self._connection.publish("", home, letter.body, own_headers(letter.headers))
                channel.basic_ack(letter.delivery_tag)
                moved.append(letter)
        return moved

    def purge(self) -> int:
        """Drop every dead letter; how many there were."""
        with translated():
            return int(self._connection.channel.queue_purge(self._queue).method.message_count)

    def _browse(self, channel: BlockingChannel) -> list[DeadLetter]:
        """Every dead letter there now, held unacknowledged on `channel`."""
        letters = []
        for _ in range(self._connection.counts([self._queue])[self._queue].messages):
            method, props, body = channel.basic_get(self._queue, auto_ack=False)
            if method is None:
                break
            letters.append(DeadLetter(body, dict(props.headers or {}), method.delivery_tag))
        return letters

    @contextmanager
    def _holding(self) -> Iterator[BlockingChannel]:
        """A channel whose unsettled dead letters go back, in order, when it is done."""
        with translated():
            channel = self._connection.amqp.channel()
            try:
                yield channel
            finally:
                if channel.is_open:
                    channel.basic_nack(0, multiple=True, requeue=True)
                    channel.close()
