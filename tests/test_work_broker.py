"""The in-memory broker does what RabbitMQ does with the processor's calls.

tests/test_worker.py decides every branch of the processor against tests/stub_broker.py; here
the same calls go to both the stub and `WorkQueues` on the real broker, and what a processor
could see afterwards must be the same. A stub that drifted from RabbitMQ fails here first.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from stub_broker import StubBroker
from support import delete_layout, drain

from processor.broker.connection import Connection
from processor.broker.work import WorkBroker, WorkQueues
from processor.settings import SharedSettings
from processor.topology import Priority, Topology

Messages = list[tuple[dict[str, Any], dict[str, Any]]]  # (headers, decoded body) of each


@dataclass
class Side:
    """A broker under test, with what a producer and an onlooker do to it."""

    broker: WorkBroker
    send: Callable[..., None]  # (body, priority=Priority.normal)
    ready: Callable[[str], Messages]  # a queue's messages, taken away
    dead: Callable[[], Messages]


def _in_memory(settings: SharedSettings) -> Iterator[Side]:
    stub = StubBroker(Topology.for_broker(settings, knows_quorum=True))

    def send(body: dict[str, Any], priority: Priority = Priority.normal) -> None:
        stub.send(body, queue=stub.topology.work_queue(priority))

    def ready(queue: str) -> Messages:
        found = [(dict(m.headers), json.loads(m.body)) for m in stub.queues[queue]]
        stub.queues[queue].clear()
        return found

    yield Side(stub, send, ready, lambda: [(dict(m.headers), json.loads(m.body)) for m in stub.dead])


def _rabbitmq(settings: SharedSettings, amqp_url: str) -> Iterator[Side]:
    queues = WorkQueues(Connection(settings, "contract test"))
    producer = Connection(settings, "contract test producer")

    def send(body: dict[str, Any], priority: Priority = Priority.normal) -> None:
        producer.publish("", producer.topology.work_queue(priority), json.dumps(body).encode())

    try:
        yield Side(
            queues,
            send,
            lambda queue: drain(amqp_url, queue),
            lambda: drain(amqp_url, queues.topology.dead_queue),
        )
    finally:
        queues.close()
        producer.close()
        delete_layout(amqp_url, settings.render_queue)


@pytest.fixture(params=["in memory", pytest.param("RabbitMQ", marks=pytest.mark.broker)])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    settings = SharedSettings(render_queue=f"t{uuid.uuid4().hex[:10]}", retry_delay=30, max_attempts=3)
    if request.param == "in memory":
        yield from _in_memory(settings)
    else:
        amqp_url = request.getfixturevalue("amqp_url")
        yield from _rabbitmq(settings.model_copy(update={"amqp_url": amqp_url}), amqp_url)


def request(video_id: str) -> dict[str, Any]:
    return {"repoURL": "https://example.com/a.git", "videoId": video_id}


def test_requests_are_taken_highest_priority_first_then_none(side: Side) -> None:
    for priority in (Priority.low, Priority.normal, Priority.high):
        side.send(request(priority.value), priority)

    taken = [side.broker.take() for _ in range(3)]

    assert [(d.priority, json.loads(d.body)["videoId"]) for d in taken if d] == [
        (Priority.high, "high"), (Priority.normal, "normal"), (Priority.low, "low")
    ]  # fmt: skip
    assert [d.attempt for d in taken if d] == [1, 1, 1]
    assert side.broker.take() is None
    for delivery in taken:
        assert delivery is not None
        side.broker.ack(delivery)


def test_a_request_handed_back_is_taken_again_marked_redelivered(side: Side) -> None:
    side.send(request("a"))
    first = side.broker.take()
    assert first is not None
    assert not first.redelivered

    side.broker.requeue(first)
    again = side.broker.take()

    assert again is not None
    assert (again.body, again.redelivered, again.uncounted, again.attempt) == (first.body, True, True, 2)
    side.broker.ack(again)


def test_a_request_held_when_the_connection_goes_comes_back_redelivered(side: Side) -> None:
    side.send(request("a"))
    held = side.broker.take()
    assert held is not None

    side.broker.close()
    side.broker.reconnect()
    again = side.broker.take()

    assert again is not None
    assert (json.loads(again.body)["videoId"], again.redelivered) == ("a", True)
    side.broker.ack(again)


def test_a_retry_waits_in_its_delay_queue_one_attempt_up_with_its_way_home(side: Side) -> None:
    side.send({**request("a"), "trace": "kept"})
    delivery = side.broker.take()
    assert delivery is not None
    topology = side.broker.topology

    side.broker.retry_later(delivery, topology.retry_delays[0], "RenderFailed: gource exited 1")

    assert side.broker.backlog() == 1
    [(headers, body)] = side.ready(topology.delay_queue(30))
    assert body == {**request("a"), "trace": "kept"}
    assert (headers["x-attempt"], headers["return-to"], headers["x-last-error"]) == (
        2, topology.work_queue(Priority.normal), "RenderFailed: gource exited 1"
    )  # fmt: skip
    assert side.ready(topology.work_queue(Priority.normal)) == []


def test_a_counted_redelivery_goes_to_the_tail_with_its_count(side: Side) -> None:
    side.send(request("a"))
    first = side.broker.take()
    assert first is not None
    side.broker.requeue(first)
    side.send(request("b"))
    redelivered = side.broker.take()
    assert redelivered is not None

    side.broker.count_redelivery(redelivered)

    queued = side.ready(side.broker.topology.work_queue(Priority.normal))
    assert [(body["videoId"], headers.get("x-redeliveries")) for headers, body in queued] == [
        ("b", None),
        ("a", 1),
    ]


def test_a_dead_letter_keeps_the_body_and_says_why(side: Side) -> None:
    side.send(request("a"))
    delivery = side.broker.take()
    assert delivery is not None

    side.broker.dead_letter(delivery, "repository-rejected", "RepositoryRejected: not found")

    [(headers, body)] = side.dead()
    assert body == request("a")
    home = side.broker.topology.work_queue(Priority.normal)
    assert (headers["x-reason"], headers["x-error"], headers["x-attempts"], headers["x-source-queue"]) == (
        "repository-rejected", "RepositoryRejected: not found", 1, home
    )  # fmt: skip
    assert side.broker.take() is None
