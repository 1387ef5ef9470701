"""Videos that tell the whole story: the date gource prints, read off the first and last frames."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from histories import backwards_steps
from support import LONG_HISTORY_END, LONG_HISTORY_START, Pipeline, frame_date, git, probe

from processor.contract import GourceOptions
from processor.git import LOG_ARGS
from processor.render import fit, plan, write_log
from processor.render import render as render_log
from processor.settings import ProcessorSettings
from processor.timeline import Selection, prepare

pytestmark = pytest.mark.slow


def request(repo: Path, video_id: str, **gource: object) -> str:
    # gource's labels have a fixed size: at 320x240 and often at 640x360 the names of users
    # near the top cover the date; at 960x540 tesseract reads it (measured), and the render
    # takes about as long (gource's time is mostly per frame).
    options = {"resolution": "960x540", "--output-framerate": 25, **gource}
    return json.dumps({"type": "gource", "repoURL": repo.as_uri(), "videoId": video_id, "gource": options})


def render(pipeline: Pipeline, line: str, video_id: str) -> tuple[Path, dict[str, object]]:
    assert pipeline.load("--file", "-", stdin=line).returncode == 0
    assert pipeline.process(MAX_VIDEO_SECONDS=60) == [0]
    [event] = pipeline.results()
    assert event["state"] == "succeeded", event
    return pipeline.download(f"videos/{video_id}.mp4"), event


def day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_request_naming_only_a_length_tells_the_whole_history_in_that_length(
    pipeline: Pipeline, long_repo: Path, ocr: None
) -> None:
    video, event = render(pipeline, request(long_repo, "whole", **{"--stop-at-time": 12}), "whole")

    assert 12 * 0.9 <= float(probe(video)["format"]["duration"]) <= 12 * 1.1
    span = LONG_HISTORY_END - LONG_HISTORY_START
    first, last = frame_date(video, "first", pipeline.workdir), frame_date(video, "last", pipeline.workdir)
    assert first is not None
    assert last is not None
    assert day(LONG_HISTORY_START) <= first <= LONG_HISTORY_START + span * 0.05
    assert LONG_HISTORY_END - span * 0.05 <= last <= LONG_HISTORY_END
    pace = event["pace"]
    assert isinstance(pace, dict)
    assert (pace["fitted"], pace["commits"]) == (True, 3109)
    assert (pace["spanStart"], pace["spanEnd"]) == (
        LONG_HISTORY_START.isoformat(),
        LONG_HISTORY_END.isoformat(),
    )
    rendered = next(
        line["message"] for line in pipeline.processor_log() if line["message"].startswith("rendered")
    )
    assert "3109 commits from 2010-03-01 to 2022-02-25" in rendered


def test_a_date_range_is_told_from_its_start_to_its_end(
    pipeline: Pipeline, long_repo: Path, ocr: None
) -> None:
    line = request(long_repo, "2015", **{"--stop-at-time": 8, "--start-date": "2015-01-01",
                                         "--stop-date": "2016-01-01"})  # fmt: skip
    video, event = render(pipeline, line, "2015")

    assert 8 * 0.9 <= float(probe(video)["format"]["duration"]) <= 8 * 1.1
    first, last = frame_date(video, "first", pipeline.workdir), frame_date(video, "last", pipeline.workdir)
    assert first is not None
    assert last is not None
    year_start, year_end = datetime(2015, 1, 1, tzinfo=UTC), datetime(2016, 1, 1, tzinfo=UTC)
    assert year_start <= first <= year_start + timedelta(days=19)
    assert year_end - timedelta(days=19) <= last < year_end
    pace = event["pace"]
    assert isinstance(pace, dict)
    assert str(pace["spanStart"]).startswith("2015-01")
    assert str(pace["spanEnd"]).startswith("2015-12")


def test_a_history_whose_commit_times_run_backwards_still_fills_the_length_to_its_end(
    pipeline: Pipeline, backwards_repo: Path, ocr: None
) -> None:
    stamps = [int(line) for line in subprocess.run(
        ["git", "-C", str(backwards_repo), "log", "--reverse", "--pretty=format:%ct"],
        capture_output=True, text=True, check=True,
    ).stdout.split()]  # fmt: skip
    steps, largest = backwards_steps(stamps)
    assert steps > 500  # 15 % of its commits go back in log order...
    assert largest > 600  # ...one of them by 693 days
    first, last = (datetime.fromtimestamp(t, UTC) for t in (min(stamps), max(stamps)))

    video, event = render(pipeline, request(backwards_repo, "rebased", **{"--stop-at-time": 12}), "rebased")

    assert 12 * 0.95 <= float(probe(video)["format"]["duration"]) <= 12 * 1.05
    seen = frame_date(video, "last", pipeline.workdir)
    assert seen is not None
    assert seen >= day(last - (last - first) * 0.05), (seen, last)  # its last 5 %, not years before
    assert event["pace"]["spanEnd"][:10] == last.date().isoformat()


def test_a_day_old_repository_makes_a_short_video_not_slow_motion(
    pipeline: Pipeline, tmp_path: Path, renderer: None
) -> None:
    repo = tmp_path / "new"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for hour in (9, 11, 12, 15, 18):
        (repo / f"step{hour}.txt").write_text(f"{hour}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"{hour} o'clock", date=f"2026-03-02T{hour:02d}:00:00+00:00")

    video, event = render(pipeline, request(repo, "new", **{"--stop-at-time": 60}), "new")

    assert float(probe(video)["format"]["duration"]) < 20
    pace = event["pace"]
    assert isinstance(pace, dict)
    assert (pace["secondsPerDay"], pace["commits"]) == (10, 5)  # MAX_SECONDS_PER_DAY: the slowest there is
    assert frame_date(video, "last", pipeline.workdir) == datetime(2026, 3, 2, tzinfo=UTC)


def test_stop_position_ends_the_video_where_gource_stops_reading(
    pipeline: Pipeline, long_repo: Path, ocr: None
) -> None:
    log = pipeline.workdir / "gource.log"
    with log.open("wb") as out:
        subprocess.run(["git", "-C", str(long_repo), *LOG_ARGS], stdout=out, check=True)
    selected = prepare(
        log, "git", Selection(stop_position=0.5)
    ).timestamps  # the first half of the log's bytes
    start, end = (datetime.fromtimestamp(t, UTC) for t in (selected[0], selected[-1]))

    video, event = render(
        pipeline, request(long_repo, "half", **{"--stop-at-time": 8, "--stop-position": 0.5}), "half"
    )

    last = frame_date(video, "last", pipeline.workdir)
    assert last is not None
    assert end - (end - start) * 0.05 <= last <= end + timedelta(days=31)  # gource reads ahead a little
    assert isinstance(event["pace"], dict)
    assert event["pace"]["commits"] == len(selected)


def test_a_custom_format_log_is_paced_and_rendered_like_a_git_one(tmp_path: Path, renderer: None) -> None:
    # The merged form several repositories' logs take (`timestamp|author|type|path`).
    start = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp())
    lines = [
        f"{start + day * 86400}|{author}|{'A' if day < 40 else 'M'}|/{repo}/src/file{day % 7}.c"
        for day in range(0, 400, 5)
        for repo, author in (("api", "Alice"), ("web", "Bob"))
    ]
    log = tmp_path / "merged.log"
    log.write_text("\n".join(lines) + "\n")
    settings = ProcessorSettings(work_dir=tmp_path)
    options = GourceOptions.model_validate({"resolution": "320x240", "--stop-at-time": 4})
    timeline = prepare(log, "custom")
    fitted = fit(plan(options, settings, several=True), timeline)
    write_log(timeline, fitted, tmp_path / "story.log")

    info = render_log(tmp_path / "story.log", fitted.plan, tmp_path / "video.mp4", settings)

    assert (fitted.pace.fitted, fitted.pace.commits) == (True, 160)
    assert 3.6 <= info.duration <= 4.4
