"""Follow one batch to its end: `loader --wait` and `processor watch --batch ID`.

How a follower learns about a batch, wherever and whenever it was loaded: before it
publishes anything, the loader declares the batch's own durable queue
(`{RENDER_QUEUE}.batch.{id}`, see topology) bound to the result events of that batch, and
after its requests are committed it adds a manifest (which videoIds, which repositories)
to that queue. So the queue holds the manifest and every result event of the batch, from
the first one on, however early the renders finish and however late a follower starts.
Followers read it without removing anything (see processor/broker/batches.py), so any number of
them can watch one batch, and a `--wait` that was interrupted can be resumed with
`watch`. The queue expires BATCH_TTL seconds after its last reader left.

Manifests add up (several loader runs may share one `--batch-id`); a videoId counts once
and its latest event wins, so a request rendered twice after a crash is not counted twice.

Requests in flight show how far their render is: followers also listen to the processors'
render progress events (processor/render_progress.py, `{RENDER_QUEUE}.progress`) through
a queue of their own, and keep those of their batch until the request's final event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import TextIO

from pydantic import ValidationError

from processor.broker.batches import BatchMessage, BatchQueues
from processor.broker.connection import Connection
from processor.contract import BatchManifest, RenderProgressEvent, ResultEvent, State
from processor.errors import BatchNotFound, BrokerUnavailable
from processor.exit_codes import ExitCode
from processor.logs import request_context

log = logging.getLogger("progress")

PENDING = "pending"
RENDERING = "rendering"


@dataclass(frozen=True)
class Row:
    video_id: str
    repo_url: str
    state: str
    detail: str


class BatchState:
    """Everything known about one batch so far; adding the same message twice changes nothing."""

    def __init__(self, batch_id: str, clock: Callable[[], float] = time.time):
        self.batch_id = batch_id
        self.expected: dict[str, str] = {}  # videoId -> repository, in loading order
        self.manifests = 0
        self.loaded_at: float | None = None
        self.events: dict[str, ResultEvent] = {}
        self.rendering: dict[str, RenderProgressEvent] = {}  # the latest progress event of each
        self._clock = clock
        self._watching_since = clock()

    def add(self, message: BatchMessage) -> None:
        try:
            if message.manifest:
                self._add_manifest(BatchManifest.model_validate_json(message.body))
            else:
                event = ResultEvent.model_validate_json(message.body)
                self.events[event.video_id] = event
        except ValidationError as exc:
            log.warning("ignoring a message that is neither a manifest nor a result event: %s", exc)

    def add_render_progress(self, body: bytes) -> None:
        """A processor's progress event: kept if it is about a request of this batch."""
        try:
            event = RenderProgressEvent.model_validate_json(body)
        except ValidationError as exc:
            log.warning("ignoring a progress event that does not validate: %s", exc)
            return
        if event.batch_id != self.batch_id and event.video_id not in self.expected:
            return  # another batch's render
        known = self.rendering.get(event.video_id)
        if known is None or event.at >= known.at:
            self.rendering[event.video_id] = event

    def in_flight(self) -> list[RenderProgressEvent]:
        """Requests being rendered: a progress event, no final event yet; in loading order."""
        order = list(self.expected) + [v for v in self.rendering if v not in self.expected]
        return [self.rendering[v] for v in order if v in self.rendering and v not in self.events]

    def _add_manifest(self, manifest: BatchManifest) -> None:
        self.manifests += 1
        for entry in manifest.requests:
            self.expected.setdefault(entry.video_id, entry.repo_url)
        loaded = manifest.loaded_at.timestamp()
        self.loaded_at = loaded if self.loaded_at is None else min(self.loaded_at, loaded)

    # counts --------------------------------------------------------------------------------
    @property
    def known(self) -> bool:
        """A manifest arrived, so the total is known."""
        return self.manifests > 0

    @property
    def total(self) -> int:
        return len(self.expected.keys() | self.events.keys())

    def _count(self, state: State) -> int:
        return sum(e.state is state for e in self.events.values())

    @property
    def succeeded(self) -> int:
        return self._count(State.succeeded)

    @property
    def failed(self) -> int:
        return self._count(State.failed)

    @property
    def done(self) -> int:
        return len(self.events)

    def finished(self) -> bool:
        return self.known and all(video_id in self.events for video_id in self.expected)

    # pace ----------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since the batch was loaded (or, before a manifest, since watching began)."""
        start = self.loaded_at if self.loaded_at is not None else self._watching_since
        return max(self._clock() - start, 1e-9)

    def rate(self) -> float:
        """Requests finished per minute since the batch was loaded."""
        return self.done / self.elapsed() * 60

    def eta(self) -> float | None:
        """Seconds left at the rate so far; None while nothing finished or the total is unknown."""
        if not self.known or self.done == 0:
            return None
        return (self.total - self.done) / (self.rate() / 60)

    # reporting -----------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        order = list(self.expected) + [v for v in self.events if v not in self.expected]
        rows = []
        for video_id in order:
            event = self.events.get(video_id)
            if event is None and video_id in self.rendering:
                rendering = describe_rendering(self.rendering[video_id])
                rows.append(Row(video_id, self.expected[video_id], RENDERING, rendering))
            elif event is None:
                rows.append(Row(video_id, self.expected[video_id], PENDING, ""))
            elif event.state is State.succeeded:
                rows.append(Row(video_id, event.repo_url, event.state.value, event.url or ""))
            else:
                error = " ".join((event.error or event.reason or "failed").split())
                rows.append(Row(video_id, event.repo_url, event.state.value, error[:300]))
        return rows

    def status(self) -> str:
        """One line: the same words on a terminal and in the logs."""
        total = str(self.total) if self.known else "?"
        pace = f"{self.rate():.1f}/min"
        eta = self.eta()
        left = "finished" if self.finished() else f"ETA {duration(eta)}" if eta is not None else "ETA --"
        return f"{self.done}/{total} done, {self.failed} failed | {pace} | {left}"


def describe_rendering(event: RenderProgressEvent) -> str:
    """`48% (120/250 frames), ETA 12s`: the same words in the table, on the terminal, in logs."""
    eta = duration(event.eta) if event.eta is not None else "--"
    return f"{event.progress:.0%} ({event.frames_done}/{event.frames_total} frames), ETA {eta}"


def duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class TerminalBar:
    """A progress bar redrawn in place, with a line under it for each request being rendered."""

    WIDTH = 24
    MOST_LINES = 8  # requests in flight shown by name; the rest are counted

    def __init__(self, stream: TextIO, every: float = 0.1):
        self._stream, self._every, self._last = stream, every, 0.0
        self._lines = 0  # lines drawn under the bar last time

    def update(self, state: BatchState, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._every:
            return
        self._last = now
        share = state.done / state.total if state.known and state.total else 0.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        rendering = state.in_flight()
        lines = [f"  {e.video_id}: rendering {describe_rendering(e)}" for e in rendering[: self.MOST_LINES]]
        if len(rendering) > self.MOST_LINES:
            lines.append(f"  ... and {len(rendering) - self.MOST_LINES} more rendering")
        # Clear the lines under the bar from the bottom up, then draw the bar and its lines.
        clear = "\x1b[K\x1b[A" * self._lines
        below = "".join(f"\n{line}" for line in lines)
        self._stream.write(f"\r{clear}\r\x1b[Kbatch {state.batch_id} [{bar}] {state.status()}{below}")
        self._stream.flush()
        self._lines = len(lines)

    def close(self, state: BatchState) -> None:
        self.update(state, force=True)
        self._stream.write("\n")
        self._stream.flush()


class LogLines:
    """Off a terminal: one log line every `every` seconds (JSON in containers)."""

    def __init__(self, every: float = 5.0):
        self._every, self._last = every, time.monotonic()

    def update(self, state: BatchState, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._every:
            return
        self._last = now
        for event in state.in_flight():
            with request_context(
                batchId=state.batch_id, videoId=event.video_id, progress=event.progress, eta=event.eta
            ):
                log.info("batch %s: %s rendering %s", state.batch_id, event.video_id,
                         describe_rendering(event))  # fmt: skip
        with request_context(
            batchId=state.batch_id,
            done=state.done,
            failed=state.failed,
            total=state.total if state.known else None,
        ):
            log.info("batch %s: %s", state.batch_id, state.status())

    def close(self, state: BatchState) -> None:
        self.update(state, force=True)


def summary(state: BatchState, stream: TextIO) -> None:
    """The table a user reads at the end: every request, its state, its video or its error."""
    rows = state.rows()
    headers = ("VIDEO ID", "REPOSITORY", "STATE", "URL / ERROR")
    widths = [max([len(headers[i])] + [len(_cells(r)[i]) for r in rows]) for i in range(3)]
    line = "  ".join(f"{headers[i]:<{widths[i]}}" for i in range(3)) + "  " + headers[3]
    stream.write(line.rstrip() + "\n")
    for row in rows:
        cells = _cells(row)
        line = "  ".join(f"{cells[i]:<{widths[i]}}" for i in range(3)) + "  " + cells[3]
        stream.write(line.rstrip() + "\n")
    pending = state.total - state.done if state.known else "?"
    stream.write(
        f"batch {state.batch_id}: {state.succeeded} succeeded, {state.failed} failed, "
        f"{pending} pending of {state.total if state.known else '?'}"
        f" ({duration(state.elapsed())} since loading)\n"
    )
    stream.flush()


def _cells(row: Row) -> tuple[str, str, str, str]:
    return row.video_id, row.repo_url, row.state, row.detail


def follow(
    connect: Callable[[], Connection],
    batch_id: str,
    *,
    timeout: float | None,
    out: TextIO,
    err: TextIO,
    interactive: bool,
    log_every: float = 5.0,
) -> int:
    """Follow `batch_id` until every request finished or `timeout`; print the summary; exit code."""
    state = BatchState(batch_id)
    display: TerminalBar | LogLines = TerminalBar(err) if interactive else LogLines(log_every)
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    try:
        while not state.finished() and not timed_out:
            connection = connect()
            try:
                reading = BatchQueues(connection).read(batch_id, on_render_progress=state.add_render_progress)
                with closing(reading) as messages:
                    for message in messages:
                        if message is not None:
                            state.add(message)
                        display.update(state)
                        if state.finished():
                            break
                        if deadline is not None and time.monotonic() >= deadline:
                            timed_out = True
                            break
            except BrokerUnavailable as exc:
                log.warning("lost the broker (%s); reconnecting", exc)
            finally:
                connection.close()
    except BatchNotFound as exc:
        err.write(
            f"batch {batch_id}: {exc}. It was never loaded on this RENDER_QUEUE with BATCH_TTL > 0, "
            "or nobody read it for BATCH_TTL seconds and it expired.\n"
        )
        return ExitCode.UNKNOWN_BATCH
    except KeyboardInterrupt:
        display.close(state)
        summary(state, out)
        return ExitCode.INTERRUPTED
    display.close(state)
    summary(state, out)
    if timed_out:
        err.write(f"batch {batch_id}: gave up waiting after {duration(timeout or 0)}\n")
        return ExitCode.TIMED_OUT
    return ExitCode.SOME_FAILED if state.failed else ExitCode.OK
