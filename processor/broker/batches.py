"""A batch's own queue: prepared and filled by the loader, read by `loader --wait` and `watch`.

The queue collects the batch's result events from the moment it is declared, and a manifest
from each loader run (processor/progress.py tells the whole story). Followers read it without
removing anything, so any number of them see the whole batch, one after another or at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from contextlib import suppress
from dataclasses import dataclass

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from processor.broker.connection import AMQP_ERRORS, Connection, translated
from processor.errors import BatchNotFound, BrokerUnavailable

log = logging.getLogger(__name__)

# AMQP `type` of a batch manifest; result events have none.
MANIFEST = "gource-batch.manifest"
# Below the smallest consumer_timeout RabbitMQ has shipped with (15 min).
REREAD_EVERY = 600.0


@dataclass(frozen=True)
class BatchMessage:
    """A message of a batch queue: a manifest from a loader, or a result event."""

    manifest: bool
    body: bytes


class BatchQueues:
    """The batch queues on one connection."""

    def __init__(self, connection: Connection):
        self._connection = connection

    def prepare(self, batch_id: str, ttl: int, routing_keys: set[str]) -> str:
        """Declare the batch's queue and bindings; call before publishing its requests."""
        with translated():
            return self._connection.topology.declare_batch(
                self._connection.channel, batch_id, ttl, routing_keys
            )

    def publish_manifest(self, batch_id: str, body: bytes) -> None:
        """What the batch holds, into its own queue (not to other result consumers), confirmed."""
        self._connection.publish("", self._connection.topology.batch_queue(batch_id), body, kind=MANIFEST)

    def read(
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
        queue = self._connection.topology.batch_queue(batch_id)
        while True:
            with translated():
                channel = self._connection.amqp.channel()
                try:
                    channel.queue_declare(queue, passive=True)
                except pika.exceptions.ChannelClosedByBroker as exc:
                    if exc.reply_code == 404:
                        raise BatchNotFound(f"no progress queue {queue!r} on the broker") from None
                    raise
            opened = time.monotonic()
            try:
                with translated():
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
                if "PRECONDITION_FAILED" not in str(exc) or not self._connection.amqp.is_open:
                    raise
                log.warning("the broker closed the batch channel (%s); reading the batch again", exc)
            finally:
                with suppress(*AMQP_ERRORS):
                    if channel.is_open:
                        channel.close()  # the unacknowledged messages go back, in order

    def _listen_to_render_progress(self, channel: BlockingChannel, handle: Callable[[bytes], None]) -> None:
        """An exclusive, auto-delete, server-named queue on the progress exchange, consumed on `channel`."""
        private = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(private, self._connection.topology.render_progress_exchange)
        channel.basic_consume(private, lambda _ch, _method, _props, body: handle(body), auto_ack=True)
