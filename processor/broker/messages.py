"""What a request taken from a work queue is, and the headers this project keeps on it.

A request can be moved several times in its life (retried through a delay queue, requeued
as a copy to count a redelivery, dead-lettered, requeued by an operator); its headers say
how many times it was tried and died, and a copy for a fresh start leaves that history out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pika

from processor.contract import VIDEO_ID
from processor.topology import RETURN_TO, Priority

JSON = "application/json"
# Attempts so far: 1 for a first try, raised by every retry (README: retries).
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
        """Redelivered by a queue that keeps no count (classic): count it with a copy."""
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


# Headers that describe a past life; a requeued request starts without them.
_PAST_LIFE = {
    ATTEMPT, RETURN_TO, REDELIVERIES, "x-death", "x-delivery-count",
    "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
    "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason",
    "x-reason", "x-error", "x-attempts", "x-dead-at", "x-source-queue", "x-last-error",
}  # fmt: skip


def own_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """Headers worth carrying on a copy: not the bookkeeping of earlier attempts."""
    return {k: v for k, v in headers.items() if k not in _PAST_LIFE}


def retry_headers(delivery: Delivery, error: str) -> dict[str, Any]:
    """A retry's copy: one attempt up, the way back to its work queue, and what went wrong."""
    return {
        **own_headers(delivery.headers),
        ATTEMPT: delivery.attempt + 1,
        RETURN_TO: delivery.queue,
        "x-last-error": error[:1000],
    }


def counted_headers(delivery: Delivery) -> dict[str, Any]:
    """A redelivered request's copy on a classic queue: its unsettled deliveries counted."""
    return {**delivery.headers, REDELIVERIES: delivery.unsettled}


def dead_letter_headers(delivery: Delivery, reason: str, error: str) -> dict[str, Any]:
    """A dead letter's: why it died, after how many attempts, when, and where it came from."""
    return {
        **own_headers(delivery.headers),
        "x-reason": reason,
        "x-error": error[:1000],
        "x-attempts": delivery.attempt,
        "x-dead-at": datetime.now(UTC).isoformat(timespec="seconds"),
        "x-source-queue": delivery.queue,
    }


def persistent(headers: dict[str, Any] | None = None, kind: str | None = None) -> pika.BasicProperties:
    """Every message this project keeps: persistent JSON, stamped with when."""
    return pika.BasicProperties(
        content_type=JSON,
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=headers or None,
        type=kind,
        timestamp=int(time.time()),
    )


def routing_key(batch_id: str | None) -> str:
    """Events are routed by their batch id; one guessed from an invalid body may be no valid key: none."""
    return batch_id if batch_id and VIDEO_ID.match(batch_id) else ""
