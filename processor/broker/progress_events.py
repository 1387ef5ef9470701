"""Progress events of the render in hand, on a channel of their own.

A progress event is news for a few seconds: not persistent, not confirmed, and gone after a
minute from a queue nobody reads instead of piling up (README: progress events). Whatever
the broker makes of one (a refused or missing exchange closes the channel it came on) leaves
the channel that holds the request alone; the next event opens another.
"""

from __future__ import annotations

import logging
import time

import pika
from pika.adapters.blocking_connection import BlockingChannel

from processor.broker.connection import Connection, translated
from processor.broker.messages import JSON, routing_key

log = logging.getLogger(__name__)

EXPIRES_MS = 60_000


class ProgressEvents:
    """Publishes on the progress exchange, routed like result events by batch id."""

    def __init__(self, connection: Connection):
        self._connection = connection
        self._channel: BlockingChannel | None = None

    def publish(self, event_body: bytes, batch_id: str | None = None) -> None:
        properties = pika.BasicProperties(
            content_type=JSON,
            delivery_mode=pika.DeliveryMode.Transient,
            expiration=str(EXPIRES_MS),
            timestamp=int(time.time()),
        )
        with translated():
            channel = self._open_channel()
            channel.basic_publish(
                self._connection.topology.render_progress_exchange,
                routing_key(batch_id),
                event_body,
                properties,
            )

    def _open_channel(self) -> BlockingChannel:
        """The channel of progress events; another one if the broker closed it.

        One made on a connection since replaced (a reconnect) is simply left behind.
        """
        amqp = self._connection.amqp
        if self._channel is None or not self._channel.is_open:
            if self._channel is not None and self._channel.connection is amqp and amqp.is_open:
                log.warning("the channel of progress events was closed by the broker; opening another")
            self._channel = amqp.channel()
        return self._channel
