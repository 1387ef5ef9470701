"""`python -m loader`: validate every request, then publish them all, committed by the broker.

Nothing is published while any input is invalid, unless `--skip-invalid` says otherwise,
so a typo never leaves half a batch queued. A request counts as loaded only once the
broker committed it. With LAUNCH_JOB_TEMPLATE set (the CronJob does), the loader then
starts a processor Job sized to the backlog.

Before publishing, the loader sets up the batch's progress queue (see processor/progress.py),
so `--wait` here, or `python -m processor watch --batch ID` anywhere, sees every result.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from loader.sources import Line, from_jsonl, from_repos, read_repos_file, together
from processor import progress
from processor import settings as settings_module
from processor.broker.batches import BatchQueues
from processor.broker.connection import Connection
from processor.broker.loading import Publisher
from processor.contract import BatchManifest, ManifestEntry, RenderRequest, describe_repos
from processor.errors import BrokerUnavailable, ConfigurationError
from processor.exit_codes import ExitCode
from processor.logs import configure
from processor.settings import LoaderSettings
from processor.topology import Priority

log = logging.getLogger("loader")


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
        "--repos-file", action="append", default=[], metavar="PATH",
        help="repository URLs, one a line (# comments); '-' reads stdin (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--together", action="store_true",
        help="render every --repo and --repos-file repository into ONE video (an organisation video)",
    )  # fmt: skip
    parser.add_argument("--video-id", default=None, help="with --together: the video's id (default: new)")
    parser.add_argument(
        "--captions", choices=["tags", "off"], default=None,
        help="for --repo/--repos-file requests: release tags as captions (default: CAPTIONS)",
    )  # fmt: skip
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
    parser.add_argument(
        "--wait", action="store_true",
        help="then follow the batch until every request succeeded or failed; exit 3 if any "
             "failed, 4 when --wait-timeout ran out",
    )  # fmt: skip
    parser.add_argument(
        "--wait-timeout", type=float, default=None, metavar="SECONDS",
        help="with --wait: stop waiting after this many seconds (default: no limit)",
    )  # fmt: skip
    settings_module.add_flags(parser, LoaderSettings)
    return parser


def _read(args: argparse.Namespace, batch_id: str) -> list[Line]:
    urls = list(args.repo)
    for path in args.repos_file:
        urls.extend(read_repos_file(path))
    fields = {"captions": args.captions} if args.captions else {}
    if args.together:
        lines = [together(urls, batch_id, **fields, **({"videoId": args.video_id} if args.video_id else {}))]
    else:
        lines = list(from_repos(urls, batch_id, **fields))
    for path in args.file:
        lines.extend(from_jsonl(path, batch_id))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = settings_module.load(LoaderSettings, args)
    configure(settings.log_format, settings.log_level)
    if not args.repo and not args.repos_file and not args.file:
        parser.error("nothing to load: give --repo URL, --repos-file PATH or --file PATH")
    if (args.together or args.video_id) and not (args.repo or args.repos_file):
        parser.error("--together and --video-id combine the --repo and --repos-file repositories: give some")
    if args.video_id and not args.together:
        parser.error("--video-id names the one video of --together")
    if args.wait and settings.batch_ttl == 0:
        parser.error("--wait follows the batch's progress queue, which BATCH_TTL=0 turns off")
    if args.wait_timeout is not None and args.wait_timeout <= 0:
        parser.error("--wait-timeout must be positive")
    batch_id = args.batch_id or uuid.uuid4().hex[:12]

    try:
        lines = _read(args, batch_id)
    except OSError as exc:
        log.error("cannot read the input: %s", exc)
        return ExitCode.INVALID_INPUT
    invalid = [line for line in lines if line.error]
    for line in invalid:
        log.error("%s: invalid request: %s", line.where, line.error)
    if invalid and not args.skip_invalid:
        log.error("%d of %d requests are invalid; nothing published (--skip-invalid loads the rest)",
                  len(invalid), len(lines))  # fmt: skip
        Outcome(total=len(invalid), skipped=len(invalid)).report(batch_id)
        return ExitCode.INVALID_INPUT
    outcome = Outcome(total=len(lines), skipped=len(invalid))

    requests = [line.request for line in lines if line.request is not None]
    try:
        _load(settings, requests, Priority(args.priority), outcome, batch_id)
    except ConfigurationError as exc:
        log.error("stopping: configuration error: %s", exc)
        outcome.report(batch_id)
        return ExitCode.CONFIGURATION
    except BrokerUnavailable as exc:
        log.error("stopping: the broker is unavailable: %s", exc)
    outcome.report(batch_id)
    code: int = ExitCode.OK if outcome.loaded == outcome.total else ExitCode.NOT_ALL_LOADED
    if args.wait and outcome.loaded:
        sys.stdout.flush()
        waited = progress.follow(
            lambda: Connection(settings, "loader --wait"),
            batch_id,
            timeout=args.wait_timeout,
            out=sys.stdout,
            err=sys.stderr,
            interactive=sys.stderr.isatty(),
        )
        code = code or waited
    return code


def _load(
    settings: LoaderSettings,
    requests: list[RenderRequest],
    priority: Priority,
    outcome: Outcome,
    batch_id: str,
) -> None:
    """Publish `requests`, counting what the broker committed; then launch processors if asked."""
    if not requests and settings.launch_job_template is None:
        return
    connection = Connection(settings, "loader")
    batches = BatchQueues(connection)
    try:
        queue = connection.topology.work_queue(priority)
        started = time.monotonic()
        bodies = [request.to_wire() for request in requests]

        def committed(count: int) -> None:
            outcome.loaded += count

        if requests and settings.batch_ttl:
            # Before the first request goes out: a render may finish before loading does.
            keys = {r.batch_id for r in requests if r.batch_id}
            batches.prepare(batch_id, settings.batch_ttl, keys)
        try:
            Publisher(connection).publish_all(queue, bodies, committed)
        finally:
            if outcome.loaded and settings.batch_ttl:
                _record_manifest(batches, batch_id, requests[: outcome.loaded])
        if bodies:
            log.info(
                "published %d request(s) to %s in %.2f s", outcome.loaded, queue, time.monotonic() - started
            )
        if settings.launch_job_template is not None:
            _launch(settings, connection.backlog())
    finally:
        connection.close()


def _record_manifest(batches: BatchQueues, batch_id: str, loaded: list[RenderRequest]) -> None:
    """What the batch holds, for followers; commits go in order, so `loaded` is a prefix."""
    entries = [ManifestEntry(video_id=r.video_id, repo_url=describe_repos(r.repos)) for r in loaded]
    manifest = BatchManifest(batch_id=batch_id, loaded_at=datetime.now(UTC), requests=entries)
    try:
        batches.publish_manifest(batch_id, manifest.to_wire())
    except BrokerUnavailable as exc:
        log.error("could not record the batch's manifest; followers will not know its total: %s", exc)


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
