"""How far the render in hand is: ffmpeg's frame count, carried from the render to the main thread.

ffmpeg writes its `-progress` report (key=value lines, a block every half second) into a
file of the work directory that the processor names; `render` reads what is new while it
waits for ffmpeg, so frames still never pass through Python. A `FrameCount` carries the
latest reading across threads, and on the main thread (the only one that may publish:
pika is not thread-safe) a `Reporter` turns it into metrics on every tick and, at most
once every EVERY seconds per request, into a log line and a progress event.

Not to be confused with processor/progress.py, which follows a whole *batch* of requests
for `loader --wait` and `processor watch`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from processor import metrics

log = logging.getLogger(__name__)

# The fastest a request's progress is told: events, log lines (README: progress events).
EVERY = 5.0
# ffmpeg's -progress report, in the render's work directory.
PROGRESS_FILE = "ffmpeg.progress"


@dataclass(frozen=True)
class Frames:
    """One reading: frames done of those planned, and how fast they have been coming."""

    done: int
    total: int
    per_second: float | None = None  # since the first frame: gource's start-up is no guide
    finished: bool = False

    @property
    def progress(self) -> float:
        """0..1; 1 once ffmpeg ended well, even when a short history ended the video early."""
        if self.finished:
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds until the last frame at the rate so far; None until there is a rate."""
        if self.finished:
            return 0.0
        if not self.per_second:
            return None
        return max(0, self.total - self.done) / self.per_second


class FrameCount:
    """The latest reading of one render: written by the render thread, read by the main thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._first: tuple[float, int] | None = None  # when the first frames were seen, how many
        self._reading: Frames | None = None

    def start(self, total: int) -> None:
        with self._lock:
            self._first = None
            self._reading = Frames(0, total)

    def update(self, done: int) -> None:
        with self._lock:
            if self._reading is None or done <= self._reading.done:
                return
            now = self._clock()
            if self._first is None:
                self._first = (now, done)
            since, first = self._first
            rate = (done - first) / (now - since) if now > since else None
            self._reading = Frames(done, self._reading.total, rate)

    def finish(self) -> None:
        """ffmpeg ended well: the video has all its frames, however many fewer than planned."""
        with self._lock:
            if self._reading is not None:
                done = self._reading.done
                self._reading = replace(self._reading, total=done, finished=True)

    def read(self) -> Frames | None:
        """None until the render started."""
        with self._lock:
            return self._reading


def last_frame(lines: Iterable[bytes]) -> int | None:
    """The last `frame=N` of ffmpeg's -progress lines, if any."""
    found = None
    for line in lines:
        key, _, value = line.partition(b"=")
        if key.strip() == b"frame":
            try:
                found = int(value)
            except ValueError:
                continue
    return found


class ProgressFile:
    """ffmpeg's -progress report, read as it grows; a line still being written waits for its end."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._partial = b""
        self.frames = 0

    def read(self) -> int:
        """Frames encoded so far (0 before ffmpeg wrote anything)."""
        try:
            with self.path.open("rb") as report:
                report.seek(self._offset)
                chunk = report.read()
        except FileNotFoundError:
            return self.frames
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        frame = last_frame(lines)
        if frame is not None:
            self.frames = frame
        return self.frames


class Throttle:
    """At most one go every `every` seconds per key (a request's videoId); the first one at once.

    One per processor, not per delivery: a request that comes straight back (a retry) is
    still not told twice within `every` seconds.
    """

    def __init__(self, every: float = EVERY, clock: Callable[[], float] = time.monotonic):
        self._every = every
        self._clock = clock
        self._last: dict[str, float] = {}

    def due(self, key: str) -> bool:
        now = self._clock()
        self._last = {k: t for k, t in self._last.items() if now - t < self._every}
        if key in self._last:
            return False
        self._last[key] = now
        return True


class Reporter:
    """On the main thread, once per tick of the wait for a render: the metrics always, and when
    the throttle lets it and something changed, a log line and `announce(reading)`."""

    def __init__(
        self,
        frames: FrameCount,
        key: str,
        throttle: Throttle,
        announce: Callable[[Frames], None],
    ):
        self._frames = frames
        self._key = key
        self._throttle = throttle
        self._announce = announce
        self._told: Frames | None = None

    def tick(self) -> None:
        reading = self._frames.read()
        if reading is None:  # still cloning
            return
        metrics.render_progress(reading.progress, reading.eta)
        told = self._told
        if told is not None and (told.done, told.finished) == (reading.done, reading.finished):
            return
        if not self._throttle.due(self._key):
            return
        self._told = reading
        eta = "unknown" if reading.eta is None else f"{reading.eta:.0f} s"
        log.info("rendering: %d/%d frames (%.0f%%), ETA %s",
                 reading.done, reading.total, reading.progress * 100, eta)  # fmt: skip
        self._announce(reading)

    def close(self) -> None:
        metrics.render_progress(0.0, None)
