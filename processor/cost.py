"""What a render will cost, said before it starts: a request that cannot finish is refused up front.

Gource draws every frame in software (Mesa's llvmpipe under Xvfb), so a render's wall time
is frames x the time of a frame, and a frame's time grows with its pixels and with what is
on it: files (each a sprite and a branch), their directories' bloom, the people. The
presentation bounds what is on screen (processor/presentation.py), so the prediction
needs only the size of the picture, the files it will hold and the changes gource will
play. The constants were fitted by `benchmarks/calibrate.py` to twelve renders on a 2-core
machine (four histories, 640x360 to 1920x1080, 60 s at 30 fps: within 3 % at 1280x720 and
1920x1080 for the small history, 2 % and 12 % for the 3,109-commit one, 4 % and 3 % for the
giant one; up to 37 % at 640x360, where a render takes seconds; README: render cost); a request
predicted to run past RENDER_TIMEOUT fails at once, permanently (`too-expensive`), saying
what would fit, instead of being tried three times for an hour of a pod.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from processor.errors import TooExpensive

if TYPE_CHECKING:
    from processor.render import Fitted, RenderPlan

# Seconds = START + frames x (FRAME + PIXELS x megapixels x (1 + FILES x thousands of files on
# screen)) + CHANGE x changes gource draws (each a beam, a file moving, its parent's layout).
# START: Xvfb, ffmpeg's last frames and the ffprobe check.
FRAME = 0.0003
PIXELS = 0.0094
FILES = 0.24
CHANGE = 0.00009
START = 1.0
# After the last commit gource lets its users fade out before it stops: measured 12 s on
# the frames of a ten-day history at 10 s/day.
FADE_OUT = 12.0


@dataclass(frozen=True)
class Estimate:
    """A render's predicted wall time and what it was predicted from."""

    frames: int
    megapixels: float
    files: float  # on screen, as the presentation measured them
    changes: int  # in the log gource reads
    seconds: float

    @property
    def seconds_per_frame(self) -> float:
        """Everything but the fixed start, per frame (the changes' share spread over the frames)."""
        return (self.seconds - START) / max(1, self.frames)

    def as_dict(self) -> dict[str, object]:
        return {
            "predictedSeconds": round(self.seconds, 1),
            "frames": self.frames,
            "secondsPerFrame": round(self.seconds_per_frame, 4),
        }


def per_frame(megapixels: float, files: float) -> float:
    return FRAME + PIXELS * megapixels * (1 + FILES * files / 1000)


def estimate(fitted: Fitted, changes: int) -> Estimate:
    """The predicted wall time of rendering `fitted` from a log of `changes` (gource | ffmpeg, checks)."""
    plan = fitted.plan
    seconds = min(plan.seconds, fitted.pace.play_seconds + FADE_OUT)
    frames = math.ceil(seconds * plan.framerate)
    megapixels = plan.width * plan.height / 1e6
    files = float(fitted.presentation.measured.get("filesOnScreen", 0.0))
    return Estimate(
        frames, megapixels, files, changes, START + frames * per_frame(megapixels, files) + CHANGE * changes
    )


def check(predicted: Estimate, plan: RenderPlan, limit: float) -> None:
    """TooExpensive when `predicted` runs past `limit` seconds, naming what would fit instead.

    A shorter video of the same selection draws the same changes in fewer frames (the pace is
    fitted to the length), so only the frames' part of the cost shrinks with it."""
    if predicted.seconds <= limit:
        return
    budget = limit * 0.9  # a margin for a busy node
    fixed = START + CHANGE * predicted.changes
    frame = per_frame(predicted.megapixels, predicted.files)
    fits = []
    if budget > fixed:
        seconds = int((budget - fixed) / frame / plan.framerate)
        if seconds >= 1:
            fits.append(f"a video of at most {seconds} s")
        if plan.framerate > 25 and fixed + predicted.frames * 25 / plan.framerate * frame <= budget:
            fits.append("25 fps")
        for width, height in ((1280, 720), (960, 540), (640, 360)):
            scale = width * height / (plan.width * plan.height)
            if (
                scale < 1
                and fixed + predicted.frames * per_frame(width * height / 1e6, predicted.files * scale)
                <= budget
            ):
                fits.append(f"{width}x{height}")
                break
    raise TooExpensive(
        f"predicted render time {predicted.seconds:.0f} s ({predicted.frames} frames at "
        f"{plan.width}x{plan.height}) is over RENDER_TIMEOUT={limit:g} s; would fit: "
        + (" or ".join(fits) or "less of the history (a date range or exclusions)")
    )
