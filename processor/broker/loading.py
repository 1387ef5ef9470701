"""The loader's way of publishing requests: transactions of many messages, one round trip each.

RabbitMQ takes responsibility for a transaction's messages (durably, for persistent messages
on durable queues) when tx.commit returns, which is what a loader needs to report a request
loaded; per-message confirms would cost a round trip each. A batch whose commit was not
confirmed is published again after reconnecting: at worst a request is queued twice, and the
processor's fingerprint check renders it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pika.adapters.blocking_connection import BlockingChannel

from processor.broker.connection import Connection, translated
from processor.broker.messages import persistent


class Publisher:
    """Loads requests in transactions of `batch` messages."""

    def __init__(self, connection: Connection, batch: int = 500):
        self._connection = connection
        self._batch = batch
        self._channel: BlockingChannel | None = None

    def _tx_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.amqp.channel()
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
        for attempt in self._connection.retrying():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self._connection.reconnect()
                with translated():
                    channel = self._tx_channel()
                    props = persistent()
                    for body in batch:
                        channel.basic_publish("", queue, body, props)
                    channel.tx_commit()
        return len(batch)
