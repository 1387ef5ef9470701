"""`python -m loader`: validate every request, then publish them all, committed by the broker.

Nothing is published while any input is invalid, unless `--skip-invalid` says otherwise,
so a typo never leaves half a batch queued. A request counts as loaded only once the
broker committed it. With LAUNCH_JOB_TEMPLATE set (the CronJob does), the loader then
starts a processor Job sized to the backlog.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from dataclasses import dataclass

from loader.sources import Line, from_jsonl, from_repos
from processor import settings as settings_module
from processor.broker import Broker, Publisher
from processor.errors import EXIT_CONFIGURATION, BrokerUnavailable, ConfigurationError
from processor.logs import configure
from processor.settings import LoaderSettings, Priority

log = logging.getLogger("loader")

EXIT_NOT_ALL_LOADED = 1
EXIT_INVALID_INPUT = 2


@dataclass
class Outcome:
    total: int
    skipped: int = 0
    loaded: int = 0

    @property
    def failed(self) -> int:
        return self.total - self.skipped - self.loaded

    def report(self, batch_id: str) -> None:
        print(f"batch {batch_id}: loaded {self.loaded}, skipped {self.skipped}, failed {self.failed}")


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
    settings_module.add_flags(parser, LoaderSettings)
    return parser


def _read(args: argparse.Namespace, batch_id: str) -> list[Line]:
    lines = list(from_repos(args.repo, batch_id))
    for path in args.file:
        lines.extend(from_jsonl(path, batch_id))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = settings_module.load(LoaderSettings, args)
    configure(settings.log_format, settings.log_level)
    if not args.repo and not args.file:
        parser.error("nothing to load: give --repo URL or --file PATH")
    batch_id = args.batch_id or uuid.uuid4().hex[:12]

    try:
        lines = _read(args, batch_id)
    except OSError as exc:
        log.error("cannot read the input: %s", exc)
        return EXIT_INVALID_INPUT
    invalid = [line for line in lines if line.error]
    for line in invalid:
        log.error("%s: invalid request: %s", line.where, line.error)
    if invalid and not args.skip_invalid:
        log.error("%d of %d requests are invalid; nothing published (--skip-invalid loads the rest)",
                  len(invalid), len(lines))  # fmt: skip
        Outcome(total=len(invalid), skipped=len(invalid)).report(batch_id)
        return EXIT_INVALID_INPUT
    outcome = Outcome(total=len(lines), skipped=len(invalid))

    bodies = [line.request.to_wire() for line in lines if line.request is not None]
    try:
        _load(settings, bodies, Priority(args.priority), outcome)
    except ConfigurationError as exc:
        log.error("stopping: configuration error: %s", exc)
        outcome.report(batch_id)
        return EXIT_CONFIGURATION
    except BrokerUnavailable as exc:
        log.error("stopping: the broker is unavailable: %s", exc)
    outcome.report(batch_id)
    return 0 if outcome.loaded == outcome.total else EXIT_NOT_ALL_LOADED


def _load(settings: LoaderSettings, bodies: list[bytes], priority: Priority, outcome: Outcome) -> None:
    """Publish `bodies`, counting what the broker committed; then launch processors if asked."""
    if not bodies and settings.launch_job_template is None:
        return
    broker = Broker(settings, "loader")
    try:
        queue = broker.topology.work_queue(priority)
        started = time.monotonic()

        def committed(count: int) -> None:
            outcome.loaded += count

        Publisher(broker).publish_all(queue, bodies, committed)
        if bodies:
            log.info(
                "published %d request(s) to %s in %.2f s", outcome.loaded, queue, time.monotonic() - started
            )
        if settings.launch_job_template is not None:
            _launch(settings, broker.backlog())
    finally:
        broker.close()


def _launch(settings: LoaderSettings, backlog: int) -> None:
    from loader.launch import launch_processors

    assert settings.launch_job_template is not None  # noqa: S101 - checked by the caller
    launch_processors(
        settings.launch_job_template,
        backlog,
        minimum=settings.launch_min,
        maximum=settings.launch_max,
        per_processor=settings.requests_per_processor,
        namespace=settings.launch_namespace,
    )


if __name__ == "__main__":
    sys.exit(main())
