"""A long render says how far it is: ffmpeg's frame count, ETA, throttled events, followers' display."""

from __future__ import annotations

import io
import itertools
import json
import logging
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pytest
from support import Pipeline, free_port

from processor.broker.batches import BatchMessage
from processor.contract import BatchManifest, ManifestEntry, RenderProgressEvent, ResultEvent, State
from processor.progress import BatchState, LogLines, TerminalBar, summary
from processor.render_progress import FrameCount, Frames, ProgressFile, Reporter, Throttle, last_frame


class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# What ffmpeg 5.1 writes with `-progress FILE`: a block every half second, `progress=end` last.
FFMPEG_REPORT = b"""frame=1
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=34
fps=0.00
stream_0_0_q=28.0
total_size=48
out_time=00:00:00.560000
speed=1.12x
progress=continue
"""


# the throttle ------------------------------------------------------------------------------
def test_the_first_progress_event_of_a_request_goes_at_once_and_the_next_only_five_seconds_later() -> None:
    clock = Clock()
    throttle = Throttle(every=5.0, clock=clock)

    assert throttle.due("a")
    clock.now += 4.9
    assert not throttle.due("a")
    assert throttle.due("b")  # another request has a throttle of its own
    clock.now += 0.1
    assert throttle.due("a")
    assert not throttle.due("a")


def test_a_render_ticking_twice_a_second_is_told_at_its_start_and_then_every_five_seconds_at_most() -> None:
    clock = Clock()
    frames = FrameCount(clock)
    throttle = Throttle(clock=clock)
    told: list[tuple[float, Frames]] = []
    reporter = Reporter(frames, "video", throttle, lambda reading: told.append((clock.now, reading)))

    reporter.tick()  # cloning: nothing to tell
    frames.start(250)
    for _ in range(40):  # 20 s of render at 10 frames a second, ticking every 0.5 s
        reporter.tick()
        clock.now += 0.5
        frames.update(round((clock.now - 100) * 10))
    frames.finish()
    reporter.tick()
    reporter.tick()  # nothing changed since: nothing more to tell

    times = [at for at, _ in told]
    assert times[0] == 100.0
    assert [b - a for a, b in itertools.pairwise(times)] == [5.0, 5.0, 5.0, 5.0]
    progress = [reading.progress for _, reading in told]
    assert progress == sorted(progress)
    assert (progress[0], progress[-1]) == (0.0, 1.0)
    assert told[0][1].eta is None


def test_a_request_that_comes_straight_back_is_not_told_again_within_five_seconds() -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)  # one per processor, shared by its deliveries
    told: list[float] = []
    for _ in range(2):  # the render failed at once; the retry follows a second later
        frames = FrameCount(clock)
        frames.start(100)
        Reporter(frames, "video", throttle, lambda _reading: told.append(clock.now)).tick()
        clock.now += 1
    assert told == [100.0]


# ETA maths ---------------------------------------------------------------------------------
def test_progress_and_eta_come_from_the_frames_done_and_their_rate_since_the_first_frame() -> None:
    clock = Clock(10.0)
    frames = FrameCount(clock)
    assert frames.read() is None  # not rendering yet

    frames.start(200)
    started = frames.read()
    assert started is not None
    assert (started.progress, started.eta) == (0.0, None)  # no frame yet: no rate to go by

    clock.now = 14.0  # gource took 4 s to start: that says nothing about its pace
    frames.update(10)
    first = frames.read()
    assert first is not None
    assert (first.progress, first.eta) == (0.05, None)  # one reading is no rate either

    clock.now = 18.0
    frames.update(50)
    quarter = frames.read()
    assert quarter is not None
    assert (quarter.done, quarter.total, quarter.progress) == (50, 200, 0.25)
    assert quarter.eta == pytest.approx(15.0)  # 40 frames in 4 s: 150 left at 10 a second

    clock.now = 19.0
    frames.update(40)  # a late or garbled reading never takes progress back
    assert frames.read() == quarter


def test_a_short_history_that_ends_the_video_early_still_ends_at_one() -> None:
    clock = Clock(0.0)
    frames = FrameCount(clock)
    frames.start(250)
    frames.update(10)
    clock.now = 9.0
    frames.update(180)
    frames.finish()
    done = frames.read()
    assert done is not None
    assert (done.done, done.total, done.progress, done.eta) == (180, 180, 1.0, 0.0)


# ffmpeg's report ---------------------------------------------------------------------------
def test_the_frames_done_are_the_last_frame_line_of_ffmpegs_report() -> None:
    assert last_frame(FFMPEG_REPORT.splitlines()) == 34
    assert last_frame([b"fps=12.5", b"progress=continue"]) is None
    assert last_frame([b"frame=12", b"frame=N/A"]) == 12


def test_the_report_is_read_as_it_grows_and_a_half_written_line_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "ffmpeg.progress"
    report = ProgressFile(path)
    assert report.read() == 0  # ffmpeg has not written it yet

    path.write_bytes(FFMPEG_REPORT + b"frame=4")
    assert report.read() == 34  # "frame=4" may be the start of "frame=45"
    with path.open("ab") as out:
        out.write(b"5\nfps=22.1\nprogress=continue\nframe=5")
    assert report.read() == 45
    with path.open("ab") as out:
        out.write(b"0\nprogress=end\n")
    assert report.read() == 50


# the followers' display --------------------------------------------------------------------
def _manifest(*video_ids: str) -> BatchMessage:
    body = BatchManifest(
        batch_id="b",
        loaded_at=datetime.fromtimestamp(1000, UTC),
        requests=[ManifestEntry(video_id=v, repo_url=f"https://x/{v}.git") for v in video_ids],
    )
    return BatchMessage(True, body.to_wire())


def _progress(video_id: str, done: int, eta: float | None, batch_id: str = "b", at: float = 1030) -> bytes:
    return RenderProgressEvent(
        video_id=video_id,
        batch_id=batch_id,
        progress=done / 250,
        eta=eta,
        frames_done=done,
        frames_total=250,
        processor="p-1",
        at=datetime.fromtimestamp(at, UTC),
    ).to_wire()


def _succeeded(video_id: str) -> BatchMessage:
    event = ResultEvent(video_id=video_id, batch_id="b", repo_url=f"https://x/{video_id}.git",
                        state=State.succeeded, url=f"s3://v/{video_id}.mp4")  # fmt: skip
    return BatchMessage(False, event.to_wire())


def test_a_follower_shows_a_request_in_flight_with_its_progress_until_its_final_event() -> None:
    state = BatchState("b", clock=lambda: 1060.0)
    state.add(_manifest("a", "c"))
    state.add_render_progress(_progress("a", 120, 12.4))
    state.add_render_progress(_progress("a", 100, 20.0, at=1025))  # older: it arrived late
    state.add_render_progress(_progress("x", 10, None, batch_id="other"))  # another batch's render

    screen = io.StringIO()
    bar = TerminalBar(screen)
    bar.update(state, force=True)
    assert screen.getvalue() == (
        "\r\r\x1b[Kbatch b [------------------------] 0/2 done, 0 failed | 0.0/min | ETA --"
        "\n  a: rendering 48% (120/250 frames), ETA 12s"
    )
    rows = io.StringIO()
    summary(state, rows)
    assert rows.getvalue().splitlines()[1:3] == [
        "a         https://x/a.git  rendering  48% (120/250 frames), ETA 12s",
        "c         https://x/c.git  pending",
    ]

    state.add(_succeeded("a"))
    screen.seek(0)
    screen.truncate()
    bar.update(state, force=True)
    # The line under the bar is cleared, and only the bar is drawn again.
    assert (
        screen.getvalue()
        == "\r\x1b[K\x1b[A\r\x1b[Kbatch b [############------------] 1/2 done, 0 failed | 1.0/min | ETA 1m00s"
    )


def test_off_a_terminal_a_follower_logs_a_line_for_each_request_in_flight_before_the_batch_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = BatchState("b", clock=lambda: 1060.0)
    state.add(_manifest("a", "c"))
    state.add_render_progress(_progress("c", 50, None))

    with caplog.at_level(logging.INFO, logger="progress"):
        LogLines().update(state, force=True)

    assert [r.getMessage() for r in caplog.records] == [
        "batch b: c rendering 20% (50/250 frames), ETA --",
        "batch b: 0/2 done, 0 failed | 0.0/min | ETA --",
    ]


# with the real broker, gource and ffmpeg ----------------------------------------------------
# 750 frames of the twelve-year history at 640x360: the render lasts about 20 s here, so
# the followers (a line every 5 s) see it in flight more than once.
LONG = {"VIDEO_SECONDS": 30, "FRAMERATE": 25, "RESOLUTION": "1920x1080"}  # about 15 s to render
FRAMES = 750


def _scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    wanted = ("gource_batch_render_progress_ratio", "gource_batch_render_eta_seconds")
    return {
        name: float(value)
        for name, value in (line.split(" ", 1) for line in text.splitlines() if line.startswith(wanted))
    }


class Listener:
    """What a backend does: its own queue bound to the progress exchange, consumed as events come."""

    def __init__(self, amqp_url: str, exchange: str):
        self.arrived: list[tuple[Any, dict[str, Any]]] = []
        self._stopping = threading.Event()
        bound = threading.Event()
        self._thread = threading.Thread(target=self._listen, args=(amqp_url, exchange, bound), daemon=True)
        self._thread.start()
        assert bound.wait(30)

    def _listen(self, amqp_url: str, exchange: str, bound: threading.Event) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))  # pika: one per thread
        try:
            channel = connection.channel()
            queue = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(queue, exchange)
            bound.set()
            for method, props, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.1):
                if method is not None:
                    self.arrived.append((props, json.loads(body)))
                elif self._stopping.is_set():
                    return
        finally:
            connection.close()

    def stop(self) -> list[tuple[Any, dict[str, Any]]]:
        """Every event that arrived: (AMQP properties, body)."""
        self._stopping.set()
        self._thread.join(30)
        return self.arrived


@pytest.mark.slow
def test_a_long_render_publishes_throttled_transient_progress_events_that_followers_show(
    pipeline: Pipeline, long_repo: Path, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps({"type": "gource", "repoURL": long_repo.as_uri(), "videoId": "long-render"}))
    loader = subprocess.Popen(
        [sys.executable, "-m", "loader", "--file", str(batch), "--batch-id", "bar", "--wait",
         "--wait-timeout", "240"],
        env=pipeline.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert loader.stdout is not None
    assert loader.stdout.readline() == "batch bar: loaded 1, skipped 0, failed 0\n"

    listener = Listener(pipeline.amqp_url, f"{pipeline.base}.progress")
    port = free_port()
    processor = pipeline.start_processor(METRICS_PORT=port, **LONG)
    scraped: list[dict[str, float]] = []
    try:
        while processor.poll() is None:
            scraped.append(_scrape(port))
            time.sleep(0.2)
    finally:
        arrived = listener.stop()
    assert processor.returncode == 0
    rest, err = loader.communicate(timeout=120)

    events = [body for _, body in arrived]
    assert len(events) >= 2, events
    assert {(e["videoId"], e["batchId"], e["state"]) for e in events} == {("long-render", "bar", "rendering")}
    assert {(props.delivery_mode, props.expiration) for props, _ in arrived} == {(1, "60000")}  # transient
    progress = [e["progress"] for e in events]
    assert progress == sorted(set(progress)), progress  # rising, never standing still
    assert all(0 <= p <= 1 for p in progress)
    assert (events[0]["framesTotal"], events[0]["eta"]) == (FRAMES, None)  # as the render starts
    assert events[0]["framesDone"] < FRAMES / 10
    assert all(e["eta"] > 0 for e in events[1:] if e["progress"] < 1)
    # Spaced by the publisher's own stamps: arrival times would measure this test's delays.
    stamps = [datetime.fromisoformat(e["at"]).timestamp() for e in events]
    assert all(b - a >= 4.99 for a, b in itertools.pairwise(stamps)), stamps

    # Consumers of results see the final event only, as before.
    [result] = pipeline.results()
    assert (result["videoId"], result["state"]) == ("long-render", "succeeded")

    # Logged in the request's context, and served as metrics while it ran.
    logged = [line for line in pipeline.processor_log() if line["message"].startswith("rendering: ")]
    assert len(logged) == len(events)
    assert all(line["videoId"] == "long-render" and line["batchId"] == "bar" for line in logged)
    assert logged[0]["message"].endswith(f"/{FRAMES} frames (0%), ETA unknown")
    during = [s for s in scraped if 0 < s.get("gource_batch_render_progress_ratio", 0) < 1]
    assert during, scraped
    assert any(s["gource_batch_render_eta_seconds"] > 0 for s in during)

    # `loader --wait` showed the request in flight with its progress, then its result.
    assert loader.returncode == 0, err
    follower = [json.loads(line) for line in err.splitlines() if '"logger": "progress"' in line]
    in_flight = [line for line in follower if line.get("videoId") == "long-render"]
    assert in_flight, err
    assert all(line["message"].startswith("batch bar: long-render rendering ") for line in in_flight)
    assert any(0 < line["progress"] < 1 and "frames), ETA " in line["message"] for line in in_flight)
    assert "long-render" in rest
    assert "succeeded" in rest


@pytest.mark.slow
def test_a_render_whose_progress_events_the_broker_refuses_still_succeeds(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    assert pipeline.load("--repo", sample_repo.as_uri()).returncode == 0
    connection = pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url))
    try:
        processor = pipeline.start_processor(**LONG)
        # Once the processor has declared its layout, the progress exchange goes: every
        # progress event now closes the channel it was published on.
        deadline = time.monotonic() + 60
        while not any(line["message"].startswith("connected to") for line in pipeline.processor_log()):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        connection.channel().exchange_delete(f"{pipeline.base}.progress")
        assert processor.wait(120) == 0
    finally:
        connection.close()

    [result] = pipeline.results()
    assert result["state"] == "succeeded"
    messages = [line["message"] for line in pipeline.processor_log()]
    assert sum(m.startswith("rendering: ") for m in messages) >= 2
    assert "the channel of progress events was closed by the broker; opening another" in messages
