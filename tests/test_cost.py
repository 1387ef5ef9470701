"""The cost guard: a render predicted to overrun RENDER_TIMEOUT is refused up front, saying what fits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support import Pipeline

from processor import cost
from processor.contract import GourceOptions
from processor.errors import TooExpensive
from processor.render import Fitted, fit, plan
from processor.settings import ProcessorSettings
from processor.timeline import prepare

DAY = 86400


def fitted(tmp_path: Path, **options: object) -> Fitted:
    log = tmp_path / "history.log"
    log.write_text("".join(f"{1_500_000_000 + n * DAY}|A|A|/d{n % 9}/f{n}.c\n" for n in range(3000)))
    settings = ProcessorSettings(max_video_seconds=3600, max_resolution="3840x2160")
    return fit(plan(GourceOptions.model_validate(options), settings), prepare(log, "custom"))


def test_a_render_costs_frames_times_what_a_frame_holds(tmp_path: Path) -> None:
    small = cost.estimate(fitted(tmp_path, resolution="640x360", **{"--stop-at-time": 60}))
    large = cost.estimate(fitted(tmp_path, resolution="1920x1080", **{"--stop-at-time": 60}))
    longer = cost.estimate(fitted(tmp_path, resolution="640x360", **{"--stop-at-time": 120}))

    assert small.frames == 60 * 30
    assert longer.frames == 2 * small.frames
    assert small.seconds < large.seconds  # more pixels
    assert longer.seconds > 1.9 * (small.seconds - cost.START)


def test_a_short_history_is_charged_for_the_video_it_makes_not_the_length_asked(tmp_path: Path) -> None:
    log = tmp_path / "day.log"
    log.write_text("".join(f"{1_500_000_000 + n * 600}|A|A|/f{n}.c\n" for n in range(5)))
    settings = ProcessorSettings(max_video_seconds=600)
    short = fit(plan(GourceOptions.model_validate({"--stop-at-time": 600}), settings), prepare(log, "custom"))

    assert cost.estimate(short).frames < 30 * 30  # under a minute of history, then the fade-out


def test_a_render_predicted_past_the_limit_is_refused_naming_what_would_fit(tmp_path: Path) -> None:
    heavy = fitted(tmp_path, resolution="3840x2160", **{"--stop-at-time": 1800, "--output-framerate": 60})
    predicted = cost.estimate(heavy)

    with pytest.raises(TooExpensive) as refused:
        cost.check(predicted, heavy.plan, limit=600)

    message = str(refused.value)
    assert f"predicted render time {predicted.seconds:.0f} s" in message
    assert "RENDER_TIMEOUT=600 s" in message
    assert "would fit: a video of at most" in message
    assert refused.value.reason == "too-expensive"
    cost.check(predicted, heavy.plan, limit=predicted.seconds + 1)  # within the limit: no complaint


@pytest.mark.slow
def test_a_request_that_cannot_finish_in_time_fails_at_once_and_is_not_retried(
    pipeline: Pipeline, long_repo: Path
) -> None:
    heavy = {"resolution": "1920x1080", "--stop-at-time": 300, "--output-framerate": 60}
    request = {"type": "gource", "repoURL": long_repo.as_uri(), "videoId": "too-long", "gource": heavy}
    assert pipeline.load("--file", "-", stdin=json.dumps(request)).returncode == 0

    started = time.monotonic()
    assert pipeline.process(RENDER_TIMEOUT=120, MAX_VIDEO_SECONDS=300, MAX_RESOLUTION="1920x1080") == [0]
    took = time.monotonic() - started

    [event] = pipeline.results()
    assert (event["state"], event["reason"], event["attempts"]) == ("failed", "too-expensive", 1)
    assert "RENDER_TIMEOUT=120 s" in event["error"]
    assert "would fit" in event["error"]
    assert len(pipeline.dead()) == 1
    assert took < 60  # refused before gource drew a frame, not after three attempts of two minutes
    assert not [line for line in pipeline.processor_log() if line["message"].startswith("rendering: ")]
