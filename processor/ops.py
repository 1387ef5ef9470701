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

from processor.broker import Broker, DeadLetter
from processor.settings import SharedSettings
from processor.topology import PRIORITIES


@contextmanager
def _broker(settings: SharedSettings) -> Iterator[Broker]:
    broker = Broker(settings, "operator")
    try:
        yield broker
    finally:
        broker.close()


def stats(settings: SharedSettings, args: argparse.Namespace) -> int:
    with _broker(settings) as broker:
        counts = broker.counts()
        topology = broker.topology
    rows: list[dict[str, Any]] = []
    for priority in PRIORITIES:
        queue = topology.work_queue(priority)
        rows.append(
            {"queue": queue, "kind": f"work ({priority.value})", "ready": counts[queue][0],
             "in_flight": counts[topology.inflight_queue(priority)][1]}
        )  # fmt: skip
    for delay in topology.retry_delays:
        queue = topology.delay_queue(delay)
        rows.append(
            {"queue": queue, "kind": f"retry in {delay} s", "ready": counts[queue][0], "in_flight": 0}
        )
    rows.append(
        {
            "queue": topology.dead_queue,
            "kind": "dead",
            "ready": counts[topology.dead_queue][0],
            "in_flight": 0,
        }
    )
    rows.append(
        {"queue": topology.results_queue, "kind": "result events", "ready": counts[topology.results_queue][0],
         "in_flight": 0}
    )  # fmt: skip
    processors = counts[topology.processors_queue][1]
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
    with _broker(settings) as broker:
        rows = [_row(letter) for letter in broker.dead_letters()]
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
    with _broker(settings) as broker:
        moved = broker.requeue_dead(lambda letter: args.all or letter.subject.video_id in wanted)
    print(f"requeued {len(moved)} request(s)")
    missing = wanted - {letter.subject.video_id for letter in moved}
    for video_id in sorted(missing):
        print(f"not in the dead-letter queue: {video_id}")
    return 1 if missing else 0


def dead_purge(settings: SharedSettings, _args: argparse.Namespace) -> int:
    with _broker(settings) as broker:
        purged = broker.purge_dead()
    print(f"purged {purged} dead-lettered request(s)")
    return 0
