"""Fit the cost guard's model (processor/cost.py) to renders measured on this machine.

Renders the scale benchmark's histories (small, the 3,109-commit one, the giant one, a
ten-repository organisation) as the processor would, in full, at three sizes, then fits

    wall = START + frames x (FRAME + PIXELS x megapixels x (1 + FILES x files / 1000))
                 + CHANGE x changes

by least squares on relative error (START held at its measured value) and prints the constants, each render's measured and
predicted wall time and, beside them, what the constants in processor/cost.py predict.
Run it on a quiet machine (one render at a time is what a processor pod does):

    python benchmarks/calibrate.py [--seconds 60] [--sizes 640x360,1280x720,1920x1080]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import _history_log

from processor import cost
from processor.contract import GourceOptions
from processor.render import fit, plan, render, write_log
from processor.settings import ProcessorSettings
from processor.timeline import prepare

HISTORIES = ("small", "medium", "giant", "organisation")


@dataclass(frozen=True)
class Measured:
    name: str
    size: str
    estimate: cost.Estimate
    wall: float

    def features(self) -> list[float]:
        """The model's terms, in the order of its constants after START: FRAME, PIXELS, FILES, CHANGE."""
        e = self.estimate
        return [e.frames, e.frames * e.megapixels, e.frames * e.megapixels * e.files / 1000, e.changes]


def measure(work: Path, seconds: int, sizes: list[str], framerate: int) -> list[Measured]:
    rows = []
    for name in HISTORIES:
        folder = work / name
        folder.mkdir()
        log, log_format, several = _history_log(name, folder)
        timeline = prepare(log, log_format, strip_segments=1 if several else 0)
        for size in sizes:
            options = GourceOptions.model_validate(
                {"resolution": size, "--output-framerate": framerate, "--stop-at-time": seconds}
            )
            settings = ProcessorSettings(
                video_seconds=seconds,
                max_video_seconds=seconds,
                render_timeout=7200,
                max_resolution="3840x2160",
            )
            fitted = fit(plan(options, settings, several=several), timeline)
            changes = write_log(timeline, fitted, folder / "story.log")
            estimate = cost.estimate(fitted, changes)
            started = time.perf_counter()
            render(folder / "story.log", fitted.plan, folder / f"{size}.mp4", settings)
            rows.append(Measured(name, size, estimate, time.perf_counter() - started))
            print(f"  measured {name:<13}{size:>10}: {rows[-1].wall:6.1f} s", flush=True)
    return rows


def fitted_constants(rows: list[Measured]) -> list[float]:
    """FRAME, PIXELS, FILES (relative to PIXELS), CHANGE: least squares on relative error, START
    held at its measured value (a free fit makes it negative, trading it against FRAME)."""
    terms = np.array([row.features() for row in rows])
    walls = np.array([row.wall for row in rows])
    weights = 1 / walls
    solved, *_ = np.linalg.lstsq(terms * weights[:, None], (walls - cost.START) * weights, rcond=None)
    frame, pixels, files, change = (float(x) for x in solved)
    return [frame, pixels, files / pixels if pixels else 0.0, change]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--sizes", default="640x360,1280x720,1920x1080")
    parser.add_argument("--framerate", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(Path(tmp), args.seconds, args.sizes.split(","), args.framerate)
    start = cost.START
    frame, pixels, files, change = fitted_constants(rows)
    print(f"fitted: START = {start:.2f} (held)  FRAME = {frame:.5f}  PIXELS = {pixels:.5f}  FILES = {files:.3f}  "
          f"CHANGE = {change:.7f}")  # fmt: skip
    print(f"  {'history':<13}{'size':>10}{'frames':>8}{'files':>7}{'changes':>9}{'wall s':>8}"
          f"{'fit s':>8}{'error':>7}{'cost.py s':>11}{'error':>7}")  # fmt: skip
    for row in rows:
        e = row.estimate
        fit_s = (
            start
            + e.frames * (frame + pixels * e.megapixels * (1 + files * e.files / 1000))
            + change * e.changes
        )
        print(f"  {row.name:<13}{row.size:>10}{e.frames:>8}{e.files:>7.0f}{e.changes:>9}{row.wall:>8.1f}"
              f"{fit_s:>8.1f}{(fit_s / row.wall - 1) * 100:>+6.0f}%{e.seconds:>11.1f}"
              f"{(e.seconds / row.wall - 1) * 100:>+6.0f}%")  # fmt: skip


if __name__ == "__main__":
    main()
