"""Choose gource's pace so the selected history fills the video, quiet years and all.

Gource plays history at one fixed `--seconds-per-day`. Its default of 1 spends a minute on
the first two months of a long history, so a request that does not set a pace gets one
fitted here: a pure function of the commit timestamps gource will read (the selected
history in time order, processor/timeline.py) and the video's length.

The model of gource's clock (gource.cpp, `Gource::logic`): between two commits the date
advances `gap_days * seconds_per_day` video seconds, except that once every user on screen
is idle for `--auto-skip-seconds` gource jumps to the next commit. So a gap costs
`min(gap_days * pace, file_lag + settle + auto_skip)` seconds: users work through a
commit's files (at most `--max-file-lag` behind) and their beams finish (`settle`) before
they count as idle; the last gap, read with the end of the log, is never skipped. Video
seconds grow monotonically with the pace, so bisection (on its logarithm) finds the pace
that plays the selection in 97 % of the length; after the last commit the date stands
still while users linger and fade out (gource's user-idle-time, 3 s, and more while beams
finish), and ffmpeg's `-t` cuts that short at the length.

Auto-skip and file lag scale with the length (1 % of it each), so a year without commits
costs a blink in a minute's video instead of eating it; the pace never falls below the
operator's MAX_SECONDS_PER_DAY ceiling (slower would be slow motion): a history too short
to fill the length at that pace makes a shorter video instead of a stretched one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, pairwise

DAY = 86400.0
# Measured with gource 0.54: a gap that triggers auto-skip lasts file lag + auto-skip + about
# 0.7 s of beams finishing (OCR of the date every second of Gource's own 2015-2020 history at
# a fitted pace: 0.74 s saved by skips where this model says 0.74 s; 1.56 s with 0.5).
SETTLE = 0.7
# History fills 97 % of the length; ffmpeg's -t cuts the fade-out after it, so the video is
# the full length and its last frames show the last commit's date.
_FILL = 0.97


@dataclass(frozen=True)
class Pace:
    """The pace gource gets, and what it covers."""

    seconds_per_day: float
    auto_skip_seconds: float
    max_file_lag: float
    commits: int
    first: int | None
    last: int | None
    play_seconds: float  # the model's seconds from the first commit to the last
    fitted: bool

    def as_dict(self) -> dict[str, object]:
        def iso(stamp: int | None) -> str | None:
            return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()

        return {
            "secondsPerDay": float(f"{self.seconds_per_day:.6g}"),
            "autoSkipSeconds": self.auto_skip_seconds,
            "fitted": self.fitted,
            "commits": self.commits,
            "spanStart": iso(self.first),
            "spanEnd": iso(self.last),
            "spanDays": round(((self.last or 0) - (self.first or 0)) / DAY, 2),
            "playSeconds": round(self.play_seconds, 2),
        }

    def describe(self) -> str:
        span = self.as_dict()
        return (
            f"{self.commits} commits from {str(span['spanStart'])[:10]} to {str(span['spanEnd'])[:10]} "
            f"at {self.seconds_per_day:.4g} s/day ({'fitted' if self.fitted else 'requested'})"
        )


GOURCE_AUTO_SKIP = 3.0  # gource's default --auto-skip-seconds


def auto_skip_for(seconds: float) -> float:
    """1 % of the length (0.2 s..3 s): how long the screen stands idle before gource skips ahead."""
    return round(min(3.0, max(0.2, seconds * 0.01)), 2)


def max_file_lag_for(seconds: float) -> float:
    """1 % of the length (0.3 s..5 s): how long a burst's files may trail in behind their commit.

    Users work through their files one beam at a time, so a burst trails on after its date
    (it is not a one-frame blur), but only so long: a user with files pending is not idle,
    so the lag also delays every auto-skip. Measured (30 s of the generated history, OCR of
    the date every 0.5 s): at 1 % the silent year took 1.3 s of video, at 5 % all 2.5 s.
    """
    return round(min(5.0, max(0.3, seconds * 0.01)), 2)


def _costs(gaps: Sequence[float], seconds_per_day: float, auto_skip: float, file_lag: float) -> list[float]:
    """Video seconds each gap (in days) takes. The last one is never skipped: once gource has read
    the last commit its log is finished, which under --stop-at-end turns auto-skip off (gource.cpp,
    readLog and logic); measured on a ten-day history at 10 s/day, its last day took all 10 s."""
    cap = file_lag + SETTLE + auto_skip
    costs = [min(gap * seconds_per_day, cap) for gap in gaps]
    if costs:
        costs[-1] = gaps[-1] * seconds_per_day
    return costs


def predict(gaps: Sequence[float], seconds_per_day: float, auto_skip: float, file_lag: float) -> float:
    """Video seconds gource spends playing `gaps` (in days) at this pace, fade-out not included."""
    return sum(_costs(gaps, seconds_per_day, auto_skip, file_lag))


def video_times(timestamps: Sequence[int], pace: Pace) -> list[float]:
    """The video second at which the model has gource play each commit (`timestamps` sorted)."""
    gaps = [(b - a) / DAY for a, b in pairwise(timestamps)]
    steps = _costs(gaps, pace.seconds_per_day, pace.auto_skip_seconds, pace.max_file_lag)
    return list(accumulate(steps, initial=0.0)) if timestamps else []


def choose(
    timestamps: Sequence[int],
    seconds: float,
    ceiling: float,
    requested: float | None = None,
    *,
    tail: float = 0.0,
) -> Pace:
    """The pace that makes `timestamps` (sorted) last `seconds`, never slower than `ceiling` s/day.

    A `requested` pace is kept (capped by `ceiling`); the length is then only a ceiling.
    `tail`: seconds to keep after the last commit (a caption there stays its whole time).
    """
    skip, lag = auto_skip_for(seconds), max_file_lag_for(seconds)
    gaps = [(b - a) / DAY for a, b in pairwise(timestamps)]
    first, last = (timestamps[0], timestamps[-1]) if timestamps else (None, None)

    def pace(per_day: float, fitted: bool) -> Pace:
        played = min(predict(gaps, per_day, skip, lag), seconds)
        return Pace(per_day, skip, lag, len(timestamps), first, last, played, fitted)

    if requested is not None:  # told as gource tells it by default: its own auto-skip, no lag cap
        skip, lag = GOURCE_AUTO_SKIP, math.inf
        return pace(min(requested, ceiling), fitted=False)
    target = min(seconds * _FILL, seconds - tail)
    if predict(gaps, ceiling, skip, lag) <= target:
        return pace(ceiling, fitted=True)  # too little history to fill the length: shorter video
    low, high = 1e-9, ceiling
    for _ in range(100):
        middle = (low * high) ** 0.5  # paces span many orders of magnitude: bisect the logarithm
        if predict(gaps, middle, skip, lag) < target:
            low = middle
        else:
            high = middle
        if high / low < 1.0001:
            break
    return pace(low, fitted=True)
