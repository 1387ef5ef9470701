"""Queue and exchange names, arguments and policies: the one description of the broker layout.

Pure functions of the settings, so the loader, the processor, the operator tools and the
tests agree on every name without copying it. `declare` is idempotent: whichever side
starts first creates the layout, the others find it as they expect.

The work queues are the producers' interface, so they carry no arguments: a producer's
plain `queue_declare(name, durable=True)` is equivalent to ours whoever declares first,
and one that exists is used as it is, whatever its arguments. What RabbitMQ could do for
them through arguments (dead-lettering, delivery limits) the processor does itself, and
`work_policies()` let the broker back it up where an operator applies them (setup-broker).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from processor.settings import SharedSettings


class Priority(StrEnum):
    """Which work queue a request waits in: urgent renders go before normal and low ones."""

    high = "high"
    normal = "normal"
    low = "low"


# Highest first: the order in which a processor looks for work.
PRIORITIES = (Priority.high, Priority.normal, Priority.low)


class Declaring(Protocol):
    """The part of an AMQP channel that declaring needs (pika's BlockingChannel fits)."""

    def queue_declare(self, queue: str, **kwargs: Any) -> Any: ...

    def exchange_declare(self, exchange: str, **kwargs: Any) -> Any: ...

    def queue_bind(self, queue: str, exchange: str, **kwargs: Any) -> Any: ...

    def exchange_bind(self, destination: str, source: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Topology:
    """Every name and argument derived from `RENDER_QUEUE` and the queue type.

    `quorum`: the type of the queues only this project touches (dead letters, delays,
    results). `work_queue_type`: the x-queue-type the work queues are created with, None
    for the broker's (or from 4.0 the vhost's) default, which is what a plain declare gets.
    """

    base: str
    quorum: bool
    delivery_limit: int = 5
    retry_delays: tuple[int, ...] = field(default=())
    work_queue_type: str | None = None

    @classmethod
    def for_broker(cls, settings: SharedSettings, knows_quorum: bool) -> Topology:
        """The layout QUEUE_TYPE asks for on a broker that has quorum queues (RabbitMQ 3.8 and
        later) or not: `auto` makes the internal queues quorum queues where it can."""
        quorum = {"quorum": True, "classic": False, "auto": knows_quorum}[settings.queue_type]
        work_type = None if settings.queue_type == "auto" else settings.queue_type
        return cls(settings.render_queue, quorum, settings.delivery_limit, settings.retry_delays, work_type)

    def delay_before(self, attempt: int) -> int:
        """Seconds to wait before `attempt` + 1, from the configured back-off."""
        return self.retry_delays[min(attempt, len(self.retry_delays)) - 1]

    # names -------------------------------------------------------------------------------
    def work_queue(self, priority: Priority) -> str:
        return self.base if priority is Priority.normal else f"{self.base}.{priority.value}"

    @property
    def work_queues(self) -> list[str]:
        """Highest priority first: the order a processor looks for work in."""
        return [self.work_queue(p) for p in PRIORITIES]

    @property
    def waiting_queues(self) -> list[str]:
        """Where requests wait to be taken: the work queues, and the delay queues of retries."""
        return [*self.work_queues, *(self.delay_queue(d) for d in self.retry_delays)]

    @property
    def queues(self) -> list[str]:
        """Every queue of the layout but the batches': what `stats` counts."""
        return [*self.waiting_queues, self.dead_queue, self.results_queue, *self.marker_queues]

    @property
    def dead_queue(self) -> str:
        return f"{self.base}.dead"

    @property
    def results_exchange(self) -> str:
        return f"{self.base}.results"

    @property
    def results_queue(self) -> str:
        """A durable queue bound to the results exchange, for consumers that want one."""
        return f"{self.base}.results"

    @property
    def batch_exchange(self) -> str:
        """Direct exchange fed by the results exchange: routes each event by its batch id."""
        return f"{self.base}.results.batch"

    def batch_queue(self, batch_id: str) -> str:
        """One batch's result events and manifests, for `loader --wait` and `processor watch`."""
        return f"{self.base}.batch.{batch_id}"

    @property
    def render_progress_exchange(self) -> str:
        """Fanout exchange of progress events of renders in flight; never of final results."""
        return f"{self.base}.progress"

    @property
    def retry_exchange(self) -> str:
        return f"{self.base}.retry"

    def delay_queue(self, seconds: int) -> str:
        return f"{self.base}.delay.{seconds}s"

    @property
    def processors_queue(self) -> str:
        """Never holds messages: its consumer count is the number of live processors."""
        return f"{self.base}.processors"

    def inflight_queue(self, priority: Priority) -> str:
        """Never holds messages: its consumer count is how many requests of that queue are in flight."""
        return f"{self.work_queue(priority)}.inflight"

    @staticmethod
    def migration_queue(queue: str) -> str:
        """Holds a work queue's requests while `setup-broker --migrate` recreates it."""
        return f"{queue}.migrating"

    @property
    def marker_queues(self) -> list[str]:
        return [self.processors_queue, *(self.inflight_queue(p) for p in PRIORITIES)]

    # arguments ---------------------------------------------------------------------------
    def internal_queue_arguments(self) -> dict[str, Any]:
        return self._durable_args()

    def _durable_args(self) -> dict[str, Any]:
        return {"x-queue-type": "quorum"} if self.quorum else {"x-queue-type": "classic"}

    def work_queue_arguments(self) -> dict[str, Any]:
        """Only the queue type, and only when the operator chose one (QUEUE_TYPE)."""
        return {"x-queue-type": self.work_queue_type} if self.work_queue_type else {}

    # policies ----------------------------------------------------------------------------
    def work_policies(self) -> list[dict[str, Any]]:
        """A broker-side backstop for the work queues, applied by `setup-broker`.

        The processor dead-letters a request that keeps killing processors itself, at
        DELIVERY_LIMIT deliveries; quorum queues stop handing it out one delivery later
        even if no processor gets to look (RabbitMQ counts `delivery-limit` > N), and send
        it to the dead queue rather than drop it. A queue gets the highest-priority policy
        it can take, and RabbitMQ before 3.12 (no `apply-to: quorum_queues`) gives a
        classic queue no policy that has quorum-only keys: hence two, the quorum one first.
        """
        names = "|".join(re.escape(q) for q in self.work_queues)
        common = {"dead-letter-exchange": "", "dead-letter-routing-key": self.dead_queue}
        quorum = {
            **common,
            "delivery-limit": self.delivery_limit,
            "dead-letter-strategy": "at-least-once",
            "overflow": "reject-publish",
        }
        name = f"gource-batch.{self.base}.work"
        return [
            {"name": f"{name}.quorum", "pattern": f"^({names})$", "apply-to": "queues", "priority": 11,
             "definition": quorum},
            {"name": name, "pattern": f"^({names})$", "apply-to": "queues", "priority": 10,
             "definition": common},
        ]  # fmt: skip

    def dead_queue_arguments(self) -> dict[str, Any]:
        args = self._durable_args()
        if self.quorum:
            # Browsing (`dead list`) returns messages to the queue; on RabbitMQ 4.x every
            # return may count toward the delivery limit (default 20), which would drop them.
            args["x-delivery-limit"] = 1_000_000
        return args

    def delay_queue_arguments(self, seconds: int) -> dict[str, Any]:
        # Expired messages go to the retry exchange, which routes them home by header.
        return {
            **self._durable_args(),
            "x-message-ttl": seconds * 1000,
            "x-dead-letter-exchange": self.retry_exchange,
        }

    @staticmethod
    def batch_queue_arguments(ttl: int) -> dict[str, Any]:
        # Classic: readers hold messages unacknowledged and hand them back, so a batch can
        # be watched again and again; quorum queues would count those returns as deliveries.
        # x-expires drops the queue once nobody has read it for `ttl` seconds.
        return {"x-queue-type": "classic", "x-expires": ttl * 1000}

    @staticmethod
    def marker_queue_arguments() -> dict[str, Any]:
        return {"x-queue-type": "classic", "x-max-length": 0}

    # declaring ---------------------------------------------------------------------------
    def declare(self, channel: Declaring, exists: Callable[[str], bool] = lambda _: False) -> None:
        """Declare the layout; a work queue that `exists` already is left as it is."""
        channel.queue_declare(self.dead_queue, durable=True, arguments=self.dead_queue_arguments())
        for queue in self.work_queues:
            if not exists(queue):
                channel.queue_declare(queue, durable=True, arguments=self.work_queue_arguments())
        channel.exchange_declare(self.results_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(self.results_queue, durable=True, arguments=self._durable_args())
        channel.queue_bind(self.results_queue, self.results_exchange)
        # Processors publish each event with its batch id as routing key; the fanout
        # exchange ignores it, the batch exchange behind it routes on it.
        channel.exchange_declare(self.batch_exchange, exchange_type="direct", durable=True)
        channel.exchange_bind(self.batch_exchange, self.results_exchange)
        # No queue of ours: progress is for whoever is looking now (README: progress events).
        channel.exchange_declare(self.render_progress_exchange, exchange_type="fanout", durable=True)
        if self.retry_delays:
            channel.exchange_declare(self.retry_exchange, exchange_type="headers", durable=True)
            for priority in PRIORITIES:
                queue = self.work_queue(priority)
                channel.queue_bind(queue, self.retry_exchange, arguments={"x-match": "all", RETURN_TO: queue})
            for seconds in self.retry_delays:
                channel.queue_declare(
                    self.delay_queue(seconds),
                    durable=True,
                    arguments=self.delay_queue_arguments(seconds),
                )
        for marker in self.marker_queues:
            channel.queue_declare(marker, durable=True, arguments=self.marker_queue_arguments())

    def declare_batch(self, channel: Declaring, batch_id: str, ttl: int, routing_keys: set[str]) -> str:
        """The queue that collects the events of `routing_keys` (batch ids) from now on."""
        queue = self.batch_queue(batch_id)
        channel.queue_declare(queue, durable=True, arguments=self.batch_queue_arguments(ttl))
        for key in sorted(routing_keys | {batch_id}):
            channel.queue_bind(queue, self.batch_exchange, routing_key=key)
        return queue


# Header that tells the retry exchange which work queue a delayed request returns to.
# (Headers exchanges ignore headers that start with "x-", so it must not.)
RETURN_TO = "return-to"
