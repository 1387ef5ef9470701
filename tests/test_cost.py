"""The cost guard: a render predicted to overrun RENDER_TIMEOUT is refused up front, saying what fits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support import Pipeline, probe

from processor import cost
from processor.contract import GourceOptions
from processor.errors import TooExpensive
from processor.render import Fitted, fit, plan, write_log
from processor.settings import ProcessorSettings
from processor.timeline import prepare

DAY = 86400


def predicted(tmp_path: Path, **options: object) -> tuple[Fitted, cost.Estimate]:
    log = tmp_path / "history.log"
    log.write_text("".join(f"{1_500_000_000 + n * DAY}|A|A|/d{n % 9}/f{n}.c\n" for n in range(3000)))
    settings = ProcessorSettings(max_video_seconds=3600, max_resolution="3840x2160")
    timeline = prepare(log, "custom")
    fitted = fit(plan(GourceOptions.model_validate(options), settings), timeline)
    return fitted, cost.estimate(fitted, write_log(timeline, fitted, tmp_path / "story.log"))


def test_a_render_costs_frames_times_what_a_frame_holds(tmp_path: Path) -> None:
    _, small = predicted(tmp_path, resolution="640x360", **{"--stop-at-time": 60})
    _, large = predicted(tmp_path, resolution="1920x1080", **{"--stop-at-time": 60})
    _, longer = predicted(tmp_path, resolution="640x360", **{"--stop-at-time": 120})

    assert small.frames == 60 * 30
    assert longer.frames == 2 * small.frames
    assert small.seconds < large.seconds  # more pixels
    assert longer.seconds > 1.9 * (small.seconds - cost.START)


def test_a_short_history_is_charged_for_the_video_it_makes_not_the_length_asked(tmp_path: Path) -> None:
    log = tmp_path / "day.log"
    log.write_text("".join(f"{1_500_000_000 + n * 600}|A|A|/f{n}.c\n" for n in range(5)))
    settings = ProcessorSettings(max_video_seconds=600)
    short = fit(plan(GourceOptions.model_validate({"--stop-at-time": 600}), settings), prepare(log, "custom"))

    assert cost.estimate(short, 5).frames < 30 * 30  # under a minute of history, then the fade-out


def test_a_render_predicted_past_the_limit_is_refused_naming_what_would_fit(tmp_path: Path) -> None:
    options = {"--stop-at-time": 1800, "--output-framerate": 60}
    heavy, guess = predicted(tmp_path, resolution="3840x2160", **options)

    with pytest.raises(TooExpensive) as refused:
        cost.check(guess, heavy.plan, limit=600)

    message = str(refused.value)
    assert f"predicted render time {guess.seconds:.0f} s" in message
    assert "RENDER_TIMEOUT=600 s" in message
    assert "would fit: a video of at most" in message
    assert refused.value.reason == "too-expensive"
    cost.check(guess, heavy.plan, limit=guess.seconds + 1)  # within the limit: no complaint


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


@pytest.mark.slow
def test_a_commit_of_200000_files_renders_once_within_bounds(pipeline: Pipeline, flood_repo: Path) -> None:
    flood = {"repoURL": flood_repo.as_uri(), "videoId": "flood", "gource": {"--stop-at-time": 10}}
    assert pipeline.load("--file", "-", stdin=json.dumps(flood)).returncode == 0

    assert pipeline.process(RENDER_TIMEOUT=120) == [0]

    [event] = pipeline.results()
    assert (event["state"], event["attempts"]) == ("succeeded", 1)
    assert event["presentation"]["maxFiles"] <= 1200  # what gource draws is capped, whatever the commit holds
    assert event["cost"]["measuredSeconds"] < 120  # inside the limit on its first attempt, not three timeouts
    assert float(probe(pipeline.download("videos/flood.mp4"))["format"]["duration"]) > 1
