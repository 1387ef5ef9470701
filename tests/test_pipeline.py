"""The main job end to end: loader -> RabbitMQ -> processors -> gource | ffmpeg -> S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import Pipeline, probe

pytestmark = pytest.mark.slow


def wire_request(repo: Path, video_id: str, **gource: object) -> str:
    """A request exactly as the earlier "gource wizard" service published them."""
    options = {"resolution": "-320x240", "--stop-at-time": 2, "--output-framerate": 25, **gource}
    return json.dumps({"type": "gource", "repoURL": repo.as_uri(), "videoId": video_id, "gource": options})


def test_a_loaded_repository_becomes_a_checked_video_in_the_bucket(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    line = wire_request(
        sample_repo, "first-video",
        **{"--title": "Year in review", "--key": True, "--seconds-per-day": 0.5,
           "--start-date": "2024-01-01", "--stop-date": "2024-02-01 00:00:00 +0000",
           "--time-scale": 1.0, "--elasticity": 1.0, "--bloom-multiplier": 2.0, "--bloom-intensity": 1.5},
    )  # fmt: skip
    loaded = pipeline.load("--file", "-", stdin=line + "\n")
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 1, skipped 0, failed 0" in loaded.stdout

    assert pipeline.process() == [0]

    head = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="videos/first-video.mp4")
    assert head["ContentType"] == "video/mp4"
    info = probe(pipeline.download("videos/first-video.mp4"))
    stream = info["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 320, 240)
    assert stream["r_frame_rate"] == "25/1"
    assert 1.5 <= float(info["format"]["duration"]) <= 2.5

    [event] = pipeline.results()
    assert event["videoId"] == "first-video"
    assert event["state"] == "succeeded"
    assert event["url"] == f"s3://{pipeline.bucket}/videos/first-video.mp4"
    assert event["httpUrl"].endswith(f"/{pipeline.bucket}/videos/first-video.mp4")
    assert event["attempts"] == 1
    assert event["batchId"]
    assert {"clone", "render", "upload", "total", "queued"} <= set(event["timings"])


def test_several_processors_render_every_request_exactly_once(pipeline: Pipeline, sample_repo: Path) -> None:
    ids = [f"video-{n}" for n in range(6)]
    lines = "\n".join(wire_request(sample_repo, i) for i in ids)
    assert pipeline.load("--file", "-", stdin=lines).returncode == 0

    assert pipeline.process(count=3) == [0, 0, 0]

    assert sorted(pipeline.objects()) == sorted(f"videos/{i}.{ext}" for i in ids for ext in ("mp4", "jpg"))
    events = pipeline.results()
    assert sorted(e["videoId"] for e in events) == ids
    assert all(e["state"] == "succeeded" and e["attempts"] == 1 for e in events)
    rendered = [
        line["videoId"]
        for n in range(3)
        for line in pipeline.processor_log(n)
        if line["message"].startswith("rendered ")
    ]
    assert sorted(rendered) == ids  # each rendered once, by exactly one processor


def test_a_render_longer_than_the_heartbeat_keeps_its_connection(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    assert (
        pipeline.load(
            "--file",
            "-",
            stdin=wire_request(sample_repo, "long", resolution="1280x720", **{"--stop-at-time": 20}),
        ).returncode
        == 0
    )

    # A 1 s heartbeat: with gource drawing each frame once, at full speed, this takes about 7 s.
    heartbeat = 1
    assert pipeline.process(AMQP_URL=f"{pipeline.amqp_url}?heartbeat={heartbeat}", MAX_VIDEO_SECONDS=20) == [
        0
    ]

    [event] = pipeline.results()
    assert (event["state"], event["attempts"]) == ("succeeded", 1)
    assert event["timings"]["render"] > 3 * heartbeat  # well past a couple of heartbeat intervals
    log = pipeline.processor_log()
    assert not [line for line in log if "lost the broker" in line["message"]]
    assert sum(line["message"].startswith("rendered ") for line in log) == 1


def test_higher_priority_requests_are_rendered_first(pipeline: Pipeline, sample_repo: Path) -> None:
    for priority in ("low", "normal", "high"):
        loaded = pipeline.load(
            "--file", "-", "--priority", priority, stdin=wire_request(sample_repo, priority)
        )
        assert loaded.returncode == 0

    assert pipeline.process() == [0]

    assert [e["videoId"] for e in pipeline.results()] == ["high", "normal", "low"]


def test_a_message_that_is_not_a_request_is_dead_lettered_and_the_queue_moves_on(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    pipeline.publish_raw(b"this is not json")
    pipeline.publish_raw(b'{"type": "gource", "repoURL": "x", "gource": {"--load-config": "/etc/passwd"}}')
    assert pipeline.load("--file", "-", stdin=wire_request(sample_repo, "good")).returncode == 0

    assert pipeline.process() == [0]

    assert pipeline.videos() == ["videos/good.mp4"]
    dead = pipeline.dead()
    assert [h["x-reason"] for h, _ in dead] == ["invalid-request", "invalid-request"]
    assert dead[0][1] == {"raw": "this is not json"}  # the original body, untouched
    assert "--load-config" in dead[1][0]["x-error"]
    states = sorted((e["videoId"], e["state"]) for e in pipeline.results())
    assert states == [("good", "succeeded"), ("unknown", "failed"), ("unknown", "failed")]


def test_snake_case_requests_and_plain_repo_arguments_are_rendered(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    snake = json.dumps(
        {
            "type": "gource",
            "repo_url": sample_repo.as_uri(),
            "video_id": "snake",
            "gource": {"stop_at_time": 2},
        }
    )
    assert pipeline.load("--file", "-", stdin=snake).returncode == 0
    assert pipeline.load("--repo", sample_repo.as_uri()).returncode == 0

    assert pipeline.process() == [0]

    events = pipeline.results()
    assert [e["state"] for e in events] == ["succeeded", "succeeded"]
    assert "videos/snake.mp4" in pipeline.videos()
    assert len(pipeline.videos()) == 2


def test_a_processor_on_empty_queues_exits_zero_and_says_why(pipeline: Pipeline) -> None:
    assert pipeline.process() == [0]

    last = pipeline.processor_log()[-2]["message"]
    assert last.startswith("queues drained, idle for 2 s, stopping: rendered 0")


def test_the_work_directory_is_empty_after_success_and_failure(pipeline: Pipeline, sample_repo: Path) -> None:
    missing = sample_repo.parent / "does-not-exist"
    lines = [wire_request(sample_repo, "ok"), wire_request(missing, "missing")]
    assert pipeline.load("--file", "-", stdin="\n".join(lines)).returncode == 0

    assert pipeline.process() == [0]

    assert sorted(e["state"] for e in pipeline.results()) == ["failed", "succeeded"]
    assert list((pipeline.workdir / "work").iterdir()) == []


def test_videos_can_go_to_a_local_directory(pipeline: Pipeline, sample_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "videos"
    assert pipeline.load("--file", "-", stdin=wire_request(sample_repo, "local")).returncode == 0

    assert pipeline.process(OUTPUT_URL=out.as_uri()) == [0]

    assert probe(out / "local.mp4")["streams"][0]["width"] == 320
    [event] = pipeline.results()
    assert event["url"] == (out / "local.mp4").as_uri()


def test_a_bad_setting_stops_the_processor_before_it_takes_anything(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    assert pipeline.load("--file", "-", stdin=wire_request(sample_repo, "waiting")).returncode == 0

    assert pipeline.process(FRAMERATE=24) == [78]

    stderr = (pipeline.workdir / "processor-0.log").read_text().strip().splitlines()
    assert stderr == ["configuration error: FRAMERATE: must be 25, 30 or 60"]
    assert pipeline.ready(pipeline.base) == 1
