"""An in-memory broker with the processor's `WorkBroker` contract (processor/broker/work.py).

It does with the processor's calls what RabbitMQ does, as far as a processor can tell, so
tests of the processor's decisions run in milliseconds (dramatiq's StubBroker is the model):
queues looked at in priority order, a request held until it is settled and handed back,
marked redelivered, when the connection is lost or closed, retries waiting in their delay
queue until time passes (a `sleep`), then back home by their `return-to` header.
tests/test_work_broker.py runs the same checks against this and against RabbitMQ.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from processor.broker.messages import (
    Delivery,
    counted_headers,
    dead_letter_headers,
    retry_headers,
)
from processor.errors import BrokerUnavailable
from processor.topology import PRIORITIES, RETURN_TO, Topology


@dataclass(frozen=True)
class Message:
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    redelivered: bool = False
    timestamp: int | None = None


class StubBroker:
    """Queues in memory; what the processor published, acknowledged or handed back, for tests to read."""

    def __init__(self, topology: Topology):
        self.topology = topology
        # The work queues and the retries' delay queues.
        self.queues: dict[str, deque[Message]] = {queue: deque() for queue in topology.waiting_queues}
        self.dead: list[Message] = []
        self.results: list[dict[str, Any]] = []
        self.progress: list[dict[str, Any]] = []
        self.busy_peers_at_each_look: deque[int] = deque()  # what `busy_peers` answers, look by look
        self.looks_at_peers = 0
        self.journal: list[str] = []  # what the processor did, in order: take, result, ack, ...
        self.connections = 1
        self.closed = False
        # Faults to play, each once: the connection lost during the next wait for a render, or
        # at the next `take`; progress events refused.
        self.lose_connection_while_rendering = False
        self.lose_connection_at_take = False
        self.refuse_progress = False
        self._held: dict[int, tuple[str, Message]] = {}
        self._tags = itertools.count(1)

    # what a producer does ------------------------------------------------------------------
    def send(self, body: bytes | dict[str, Any], queue: str | None = None, **message: Any) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.queues[queue or self.topology.base].append(Message(data, **message))

    def ready(self, queue: str | None = None) -> list[Message]:
        return list(self.queues[queue or self.topology.base])

    # the WorkBroker contract ---------------------------------------------------------------
    def take(self) -> Delivery | None:
        if self.lose_connection_at_take:
            self.lose_connection_at_take = False
            self._lose_connection()
        for priority in PRIORITIES:
            queue = self.topology.work_queue(priority)
            if self.queues[queue]:
                message = self.queues[queue].popleft()
                tag = next(self._tags)
                self._held[tag] = (queue, message)
                self.journal.append("take")
                return Delivery(
                    message.body,
                    tag,
                    queue,
                    priority,
                    message.redelivered,
                    dict(message.headers),
                    message.timestamp,
                )
        return None

    def wait_for(self, future: Future[Any], stop: Callable[[], bool], every_tick: Callable[[], None]) -> None:
        while not future.done() and not stop():
            if self.lose_connection_while_rendering:
                self.lose_connection_while_rendering = False
                self._lose_connection()
            time.sleep(0.001)
            every_tick()

    def sleep(self, seconds: float) -> None:
        """Time passes: every retry's delay runs out, and it goes home."""
        for delay in self.topology.retry_delays:
            waiting = self.queues[self.topology.delay_queue(delay)]
            while waiting:
                message = waiting.popleft()
                self.queues[message.headers[RETURN_TO]].append(message)
        time.sleep(seconds)

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, "ack")

    def requeue(self, delivery: Delivery) -> None:
        queue, message = self._settle(delivery, "requeue")
        self.queues[queue].appendleft(replace(message, redelivered=True))

    def retry_later(self, delivery: Delivery, delay: int, error: str) -> None:
        retry = Message(delivery.body, retry_headers(delivery, error))
        self.queues[self.topology.delay_queue(delay)].append(retry)
        self._settle(delivery, "retry later")

    def count_redelivery(self, delivery: Delivery) -> None:
        self.queues[delivery.queue].append(Message(delivery.body, counted_headers(delivery)))
        self._settle(delivery, "count redelivery")

    def dead_letter(self, delivery: Delivery, reason: str, error: str) -> None:
        self.dead.append(Message(delivery.body, dead_letter_headers(delivery, reason, error)))
        self._settle(delivery, "dead letter")

    def publish_result(self, event_body: bytes, batch_id: str | None = None) -> None:
        event = json.loads(event_body)
        self.results.append(event)
        self.journal.append(f"result {event['state']}")

    def publish_render_progress(self, event_body: bytes, batch_id: str | None = None) -> None:
        if self.refuse_progress:
            raise BrokerUnavailable("ChannelClosedByBroker: (404, \"NOT_FOUND - no exchange 'x.progress'\")")
        self.progress.append(json.loads(event_body))

    def backlog(self) -> int:
        return sum(len(queue) for queue in self.queues.values())

    def busy_peers(self) -> int:
        self.looks_at_peers += 1
        return self.busy_peers_at_each_look.popleft() if self.busy_peers_at_each_look else 0

    def reconnect(self) -> None:
        self.connections += 1

    def close(self) -> None:
        self._hand_back_held()
        self.closed = True

    # the broker's side of things -----------------------------------------------------------
    def _settle(self, delivery: Delivery, how: str) -> tuple[str, Message]:
        if delivery.delivery_tag not in self._held:  # what RabbitMQ says, closing the channel
            raise BrokerUnavailable(f"PRECONDITION_FAILED - unknown delivery tag {delivery.delivery_tag}")
        self.journal.append(how)
        return self._held.pop(delivery.delivery_tag)

    def _hand_back_held(self) -> None:
        """What a broker does when a connection goes: unsettled requests back, marked redelivered."""
        for queue, message in reversed(self._held.values()):
            self.queues[queue].appendleft(replace(message, redelivered=True))
        self._held.clear()

    def _lose_connection(self) -> None:
        self._hand_back_held()
        raise BrokerUnavailable("ConnectionResetError: connection lost")
