"""What a render will cost, said before it starts: a request that cannot finish is refused up front.

Gource draws every frame in software (Mesa's llvmpipe under Xvfb), so a render's wall time
is frames x the time of a frame, and a frame's time grows with its pixels and with what is
on it: files (each a sprite and a branch), their directories' bloom, the people. The
presentation bounds what is on screen (processor/presentation.py), so the prediction
needs only the size of the picture and the files it will hold. The model and its constants
were fitted to renders measured on a 2-core machine (README: render cost); a request
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

# Seconds per frame = FRAME + PIXELS x megapixels x (1 + FILES x thousands of files on screen),
# plus a fixed START for Xvfb, ffmpeg's last frames, the poster and the ffprobe check.
FRAME = 0.012
PIXELS = 0.055
FILES = 0.35
START = 2.0
# After the last commit gource lets its users fade out before it stops (README: pace).
FADE_OUT = 10.0


@dataclass(frozen=True)
class Estimate:
    """A render's predicted wall time and what it was predicted from."""

    frames: int
    megapixels: float
    files: float  # on screen, as the presentation measured them
    seconds: float

    @property
    def seconds_per_frame(self) -> float:
        return (self.seconds - START) / max(1, self.frames)

    def as_dict(self) -> dict[str, object]:
        return {
            "predictedSeconds": round(self.seconds, 1),
            "frames": self.frames,
            "secondsPerFrame": round(self.seconds_per_frame, 4),
        }


def per_frame(megapixels: float, files: float) -> float:
    return FRAME + PIXELS * megapixels * (1 + FILES * files / 1000)


def estimate(fitted: Fitted) -> Estimate:
    """The predicted wall time of rendering `fitted` (gource | ffmpeg, poster, checks)."""
    plan = fitted.plan
    seconds = min(plan.seconds, fitted.pace.play_seconds + FADE_OUT)
    frames = math.ceil(seconds * plan.framerate)
    megapixels = plan.width * plan.height / 1e6
    files = float(fitted.presentation.measured.get("filesOnScreen", 0.0))
    return Estimate(frames, megapixels, files, START + frames * per_frame(megapixels, files))


def check(predicted: Estimate, plan: RenderPlan, limit: float) -> None:
    """TooExpensive when `predicted` runs past `limit` seconds, naming what would fit instead."""
    if predicted.seconds <= limit:
        return
    budget = (limit - START) * 0.9  # a margin for a busy node
    fits = [f"a video of at most {max(1, int(budget / predicted.seconds_per_frame / plan.framerate))} s"]
    if plan.framerate > 25:
        lower = (limit - START) / (predicted.frames * 25 / plan.framerate * predicted.seconds_per_frame)
        if lower >= 1.1:
            fits.append("25 fps")
    for width, height in ((1280, 720), (960, 540), (640, 360)):
        if width * height < plan.width * plan.height:
            smaller = per_frame(width * height / 1e6, predicted.files)
            if START + predicted.frames * smaller <= budget:
                fits.append(f"{width}x{height}")
                break
    raise TooExpensive(
        f"predicted render time {predicted.seconds:.0f} s ({predicted.frames} frames at "
        f"{plan.width}x{plan.height}) is over RENDER_TIMEOUT={limit:g} s; would fit: {' or '.join(fits)}"
    )
