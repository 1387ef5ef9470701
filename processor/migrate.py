"""`setup-broker --migrate`: recreate work queues made by 0.1.0 (with x-arguments) plain, losing nothing.

A queue's arguments cannot change without deleting it, and a producer's plain declare is
refused (406) while they differ. For each such work queue: move every message to a
holding queue (each publish confirmed before its original is acknowledged), delete the
queue, declare it plain, and move the messages back. A run that stops half-way is
finished by the next one: whatever waits in a holding queue goes home first.

Processors must not be running (their unacknowledged requests would go with the deleted
queue); this is checked. Producers must be paused: quorum queues refuse `if_empty`, so a
request published between the last move and the delete would go with the queue (the
delete reports it, and the command fails saying so), and one published between delete
and declare is unroutable.
"""

from __future__ import annotations

import logging
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from processor.broker.connection import QueueCounts, exists_on, queue_counts
from processor.broker.messages import REDELIVERIES, unsettled
from processor.errors import ConfigurationError
from processor.topology import PRIORITIES, Topology

log = logging.getLogger(__name__)


def refused_to_producers(connection: pika.BlockingConnection, queue: str, arguments: dict[str, Any]) -> bool:
    """Would a declare with `arguments` (a producer's plain one) be refused with 406?"""
    if queue_counts(connection, queue) is None:
        return False
    channel = connection.channel()
    try:
        channel.queue_declare(queue, durable=True, arguments=arguments)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406:
            return True
        raise
    channel.close()
    return False


def _carried(headers: dict[str, Any] | None, redelivered: bool) -> dict[str, Any]:
    """The headers a moved copy keeps: the broker's delivery count folded into ours."""
    kept = {k: v for k, v in (headers or {}).items() if k != "x-delivery-count"}
    count = unsettled(headers or {}, redelivered)
    if count:
        kept[REDELIVERIES] = count
    return kept


def move(connection: pika.BlockingConnection, source: str, target: str) -> int:
    """Every message of `source` to `target`, each confirmed there before it leaves `source`."""
    taking: BlockingChannel = connection.channel()
    giving: BlockingChannel = connection.channel()
    giving.confirm_delivery()
    moved = 0
    try:
        while True:
            method, props, body = taking.basic_get(source, auto_ack=False)
            if method is None:
                return moved
            props.headers = _carried(props.headers, bool(method.redelivered)) or None
            giving.basic_publish("", target, body, props, mandatory=True)
            taking.basic_ack(method.delivery_tag)
            moved += 1
    finally:
        for channel in (taking, giving):
            if channel.is_open:
                channel.close()


def _delete(connection: pika.BlockingConnection, queue: str) -> int:
    """Delete `queue`; how many messages went with it (quorum queues refuse `if_empty`)."""
    channel = connection.channel()
    deleted = int(channel.queue_delete(queue).method.message_count)
    channel.close()
    return deleted


def _check_no_processors(connection: pika.BlockingConnection, topology: Topology) -> None:
    watched = [topology.processors_queue, *topology.work_queues]
    none = QueueCounts(messages=0, consumers=0)
    connected = sum((queue_counts(connection, q) or none).consumers for q in watched)
    busy = sum((queue_counts(connection, topology.inflight_queue(p)) or none).consumers for p in PRIORITIES)
    if connected or busy:
        raise ConfigurationError(
            f"{max(connected, busy)} processor(s) or consumers are connected to {topology.base!r}: "
            "stop them (scale the processor Job to 0) and pause producers, then run --migrate again"
        )


def migrate(connection: pika.BlockingConnection, topology: Topology) -> dict[str, int]:
    """Recreate every work queue a plain declare is refused on; requests moved per queue."""
    _check_no_processors(connection, topology)
    plain = topology.work_queue_arguments()
    moved: dict[str, int] = {}
    for queue in topology.work_queues:
        holding = topology.migration_queue(queue)
        count = 0
        if refused_to_producers(connection, queue, plain):
            channel = connection.channel()
            channel.queue_declare(holding, durable=True, arguments=topology.internal_queue_arguments())
            channel.close()
            count = move(connection, queue, holding)
            lost = _delete(connection, queue)
            if lost:
                raise ConfigurationError(
                    f"{lost} request(s) were published to {queue} while it was being recreated and went "
                    "with it: pause producers during --migrate"
                )
            log.info("moved %d request(s) out of %s and deleted it", count, queue)
        if queue_counts(connection, holding) is not None:
            channel = connection.channel()
            channel.queue_declare(queue, durable=True, arguments=plain)
            channel.close()
            count = move(connection, holding, queue)
            if _delete(connection, holding):  # nobody else publishes to it: cannot happen
                raise ConfigurationError(f"{holding} was not empty after moving its requests back")
            log.info("recreated %s plain with its %d request(s)", queue, count)
        moved[queue] = count
    # Deleting a queue deleted its bindings (the retry exchange's): declare them again.
    channel = connection.channel()
    topology.declare(channel, exists=exists_on(connection))
    channel.close()
    return moved
