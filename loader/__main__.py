"""`python -m loader`: validate every request, then publish them all, confirmed by the broker.

Nothing is published while any input is invalid, unless `--skip-invalid` says otherwise,
so a typo never leaves half a batch queued. A request counts as loaded only once the
broker committed it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid

from loader.sources import Line, from_jsonl, from_repos
from processor import settings as settings_module
from processor.broker import Broker, Publisher
from processor.errors import EXIT_CONFIGURATION, BrokerUnavailable, ConfigurationError
from processor.logs import configure
from processor.settings import BrokerSettings, Priority

log = logging.getLogger("loader")

EXIT_NOT_ALL_LOADED = 1
EXIT_INVALID_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loader",
        description="Publish render requests to the gource-batch work queues.",
    )
    parser.add_argument(
        "--repo", action="append", default=[], metavar="URL", help="a repository to render (repeatable)"
    )
    parser.add_argument(
        "--file", action="append", default=[], metavar="PATH",
        help="JSON Lines of render requests in the wire format; '-' reads stdin (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--priority", choices=[p.value for p in Priority], default=Priority.normal.value,
        help="which work queue the requests go to (default: normal)",
    )  # fmt: skip
    parser.add_argument(
        "--skip-invalid", action="store_true", help="publish the valid requests, report the rest"
    )
    parser.add_argument(
        "--batch-id", default=None, help="batch id for requests that carry none (default: new)"
    )
    parser.add_argument("--log-format", choices=["auto", "json", "text"], default="auto")
    settings_module.add_flags(parser, BrokerSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = settings_module.load(BrokerSettings, args)
    configure(args.log_format)
    if not args.repo and not args.file:
        parser.error("nothing to load: give --repo URL or --file PATH")
    batch_id = args.batch_id or uuid.uuid4().hex[:12]

    lines: list[Line] = list(from_repos(args.repo, batch_id))
    for path in args.file:
        try:
            lines.extend(from_jsonl(path, batch_id))
        except OSError as exc:
            log.error("cannot read %s: %s", path, exc)
            return EXIT_INVALID_INPUT
    invalid = [line for line in lines if line.error]
    for line in invalid:
        log.error("%s: invalid request: %s", line.where, line.error)
    if invalid and not args.skip_invalid:
        log.error("%d of %d requests are invalid; nothing published (use --skip-invalid to load the rest)",
                  len(invalid), len(lines))  # fmt: skip
        _summary(0, len(invalid), 0, batch_id)
        return EXIT_INVALID_INPUT

    valid = [line.request for line in lines if line.request is not None]
    loaded, failed = _publish(settings, valid, Priority(args.priority))
    _summary(loaded, len(invalid), failed, batch_id)
    if failed == -1:
        return EXIT_CONFIGURATION
    return 0 if loaded == len(lines) else EXIT_NOT_ALL_LOADED


def _publish(settings: BrokerSettings, requests: list, priority: Priority) -> tuple[int, int]:  # type: ignore[type-arg]
    """(loaded, failed): loaded counts only what the broker committed."""
    if not requests:
        return 0, 0
    started = time.monotonic()
    loaded = 0
    try:
        broker = Broker(settings, "loader")
    except ConfigurationError as exc:
        log.error("%s", exc)
        return 0, -1
    except BrokerUnavailable as exc:
        log.error("cannot reach the broker: %s", exc)
        return 0, len(requests)
    try:
        publisher = Publisher(broker)
        queue = broker.topology.work_queue(priority)
        for request in requests:
            loaded += publisher.publish(queue, request.to_wire())
        loaded += publisher.commit()
    except BrokerUnavailable as exc:
        log.error("publishing stopped: %s", exc)
    finally:
        broker.close()
    elapsed = time.monotonic() - started
    log.info("published %d request(s) to %s in %.2f s", loaded, queue, elapsed)
    return loaded, len(requests) - loaded


def _summary(loaded: int, skipped: int, failed: int, batch_id: str) -> None:
    print(f"batch {batch_id}: loaded {loaded}, skipped {skipped}, failed {max(failed, 0)}")


if __name__ == "__main__":
    sys.exit(main())
