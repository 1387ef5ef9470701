"""Operator tools over plain AMQP, so they work on any RabbitMQ, management plugin or not.

`stats` reads queue depths with passive declares; processors and requests in flight are
read off the marker queues' consumer counts (AMQP cannot count unacked messages).
`dead ...` walks the dead-letter queue with basic.get, holding what it leaves in place
unacknowledged until the end so every message is seen exactly once.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from processor.broker.connection import Connection
from processor.broker.dead_letters import DeadLetter, DeadLetterQueue
from processor.settings import SharedSettings
from processor.topology import PRIORITIES


@contextmanager
def _connected(settings: SharedSettings) -> Iterator[Connection]:
    connection = Connection(settings, "operator")
    try:
        yield connection
    finally:
        connection.close()


def stats(settings: SharedSettings, args: argparse.Namespace) -> int:
    with _connected(settings) as connection:
        topology = connection.topology
        counts = connection.counts(topology.queues)

    def row(queue: str, kind: str, in_flight: int = 0) -> dict[str, Any]:
        return {"queue": queue, "kind": kind, "ready": counts[queue].messages, "in_flight": in_flight}

    rows = [
        row(topology.work_queue(p), f"work ({p.value})", counts[topology.inflight_queue(p)].consumers)
        for p in PRIORITIES
    ]
    rows += [row(topology.delay_queue(delay), f"retry in {delay} s") for delay in topology.retry_delays]
    rows += [row(topology.dead_queue, "dead"), row(topology.results_queue, "result events")]
    processors = counts[topology.processors_queue].consumers
    if args.json:
        print(json.dumps({"queues": rows, "processors": processors}))
        return 0
    width = max(len(r["queue"]) for r in rows)
    print(f"{'QUEUE':<{width}}  {'KIND':<16} {'READY':>7} {'IN FLIGHT':>9}")
    for r in rows:
        print(f"{r['queue']:<{width}}  {r['kind']:<16} {r['ready']:>7} {r['in_flight']:>9}")
    print(f"processors connected: {processors}")
    return 0


def _row(letter: DeadLetter) -> dict[str, Any]:
    return {
        "videoId": letter.subject.video_id,
        "repoURL": letter.subject.repo_url,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "deadAt": letter.dead_at,
        "queue": letter.source_queue,
        "error": letter.error,
    }


def dead_list(settings: SharedSettings, args: argparse.Namespace) -> int:
    with _connected(settings) as connection:
        rows = [_row(letter) for letter in DeadLetterQueue(connection).read()]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print("no dead-lettered requests")
        return 0
    print(f"{'VIDEO ID':<38} {'REASON':<20} {'TRIES':>5}  REPOSITORY / ERROR")
    for r in rows:
        print(f"{r['videoId']:<38} {r['reason']:<20} {r['attempts']:>5}  {r['repoURL']}")
        print(f"{'':<66}{(r['error'] or '')[:160]}")
    print(f"{len(rows)} dead-lettered request(s)")
    return 0


def dead_requeue(settings: SharedSettings, args: argparse.Namespace) -> int:
    wanted = set(args.video_ids)
    with _connected(settings) as connection:
        moved = DeadLetterQueue(connection).requeue(
            lambda letter: args.all or letter.subject.video_id in wanted
        )
    print(f"requeued {len(moved)} request(s)")
    missing = wanted - {letter.subject.video_id for letter in moved}
    for video_id in sorted(missing):
        print(f"not in the dead-letter queue: {video_id}")
    return 1 if missing else 0


def dead_purge(settings: SharedSettings, _args: argparse.Namespace) -> int:
    with _connected(settings) as connection:
        purged = DeadLetterQueue(connection).purge()
    print(f"purged {purged} dead-lettered request(s)")
    return 0
