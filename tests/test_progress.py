"""Watching a batch as its users do: `loader --wait` on a terminal and off one, `watch`, fan-out."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pika
import pytest
from support import Pipeline

from processor.topology import Topology

pytestmark = pytest.mark.slow

# Rejected at once (GIT_ALLOWED_PROTOCOLS=file in tests): a failure that costs no render.
FORBIDDEN = "https://example.com/forbidden.git"


def batch_file(tmp_path: Path, repo: Path, good: list[str], bad: list[str]) -> Path:
    lines = [{"type": "gource", "repoURL": repo.as_uri(), "videoId": v} for v in good]
    lines += [{"type": "gource", "repoURL": FORBIDDEN, "videoId": v} for v in bad]
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def table(stdout: str) -> dict[str, list[str]]:
    """The summary table as {videoId: [repository, state, url or error]}."""
    lines = stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("VIDEO ID"))
    rows = {}
    for line in lines[start + 1 :]:
        if line.startswith("batch "):
            break
        video_id, repo, state, *detail = re.split(r"\s{2,}", line.strip(), maxsplit=3)
        rows[video_id] = [repo, state, *(detail or [""])]
    return rows


def loader_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "loader", *args]


def test_wait_off_a_terminal_logs_progress_lines_then_prints_every_result_and_fails(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    path = batch_file(tmp_path, sample_repo, ["ok-1", "ok-2"], ["nope"])
    loader = subprocess.Popen(
        loader_command("--file", str(path), "--batch-id", "offterm", "--wait", "--wait-timeout", "240"),
        env=pipeline.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert loader.stdout is not None
    assert loader.stdout.readline() == "batch offterm: loaded 3, skipped 0, failed 0\n"

    assert pipeline.process() == [0]
    rest, err = loader.communicate(timeout=120)

    assert loader.returncode == 3, err
    rows = table(rest)
    assert rows["ok-1"] == [sample_repo.as_uri(), "succeeded", f"s3://{pipeline.bucket}/videos/ok-1.mp4"]
    assert rows["ok-2"][1:] == ["succeeded", f"s3://{pipeline.bucket}/videos/ok-2.mp4"]
    assert rows["nope"][:2] == [FORBIDDEN, "failed"]
    assert rows["nope"][2].startswith("RepositoryRejected: the 'https' transport is not allowed")
    assert rest.splitlines()[-1].startswith("batch offterm: 2 succeeded, 1 failed, 0 pending of 3")
    progress = [json.loads(line) for line in err.splitlines() if '"logger": "progress"' in line]
    assert progress, err
    last = progress[-1]
    assert (last["batchId"], last["done"], last["failed"], last["total"]) == ("offterm", 3, 1, 3)
    assert last["message"].startswith("batch offterm: 3/3 done, 1 failed |")
    assert "\r" not in err  # no bar drawn into a log


def _read_all(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return
        if not chunk:
            return
        into.append(chunk)


def test_wait_on_a_terminal_draws_a_live_bar_then_prints_every_result_and_fails(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    path = batch_file(tmp_path, sample_repo, ["tty-ok"], ["tty-bad"])
    leader, follower = pty.openpty()
    loader = subprocess.Popen(
        loader_command("--file", str(path), "--batch-id", "onterm", "--wait"),
        env=pipeline.env(LOG_FORMAT="auto"),
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(leader, chunks), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while b"loaded 2" not in b"".join(chunks) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert pipeline.process() == [0]
    assert loader.wait(120) == 3
    reader.join(10)
    os.close(leader)
    screen = b"".join(chunks).decode()

    assert "batch onterm: loaded 2, skipped 0, failed 0" in screen
    frames = re.findall(r"\r\x1b\[Kbatch onterm \[([#-]{24})\] ([^\r\n]*)", screen)
    assert frames, screen
    assert frames[0][1].startswith("0/2 done, 0 failed")
    bar, status = frames[-1]
    assert bar == "#" * 24
    assert re.fullmatch(r"2/2 done, 1 failed \| \d+\.\d/min \| finished", status), status
    text = screen.replace("\r\n", "\n")
    rows = table(text[text.index("VIDEO ID") :])
    assert rows["tty-ok"][1:] == ["succeeded", f"s3://{pipeline.bucket}/videos/tty-ok.mp4"]
    assert rows["tty-bad"][1] == "failed"
    assert "batch onterm: 1 succeeded, 1 failed, 0 pending of 2" in text
    assert not re.search(r"^\{", text, re.MULTILINE)  # readable text on a terminal, not JSON


def watch(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "processor", "watch", *args],
        env=pipeline.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_watch_shows_a_batch_that_was_loaded_and_rendered_before_it_started(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    path = batch_file(tmp_path, sample_repo, ["early-ok"], ["early-bad"])
    assert pipeline.load("--file", str(path), "--batch-id", "nightly").returncode == 0
    assert pipeline.process() == [0]

    first = watch(pipeline, "--batch", "nightly", "--timeout", "60")
    again = watch(pipeline, "--batch", "nightly", "--timeout", "60")

    assert first.returncode == 3, first.stderr
    rows = table(first.stdout)
    assert rows["early-ok"][1:] == ["succeeded", f"s3://{pipeline.bucket}/videos/early-ok.mp4"]
    assert rows["early-bad"][1] == "failed"
    # Watching takes nothing away: a second watcher sees the same batch.
    assert (again.returncode, table(again.stdout)) == (3, rows)
    # Backends keep their default queue, with every event in it.
    assert sorted(e["videoId"] for e in pipeline.results()) == ["early-bad", "early-ok"]


def test_watch_of_a_batch_nobody_renders_times_out_listing_what_is_pending(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    assert pipeline.load("--repo", sample_repo.as_uri(), "--batch-id", "stuck").returncode == 0

    watched = watch(pipeline, "--batch", "stuck", "--timeout", "2")

    assert watched.returncode == 4
    [(repo, state, detail)] = table(watched.stdout).values()
    assert (repo, state, detail) == (sample_repo.as_uri(), "pending", "")
    assert "batch stuck: 0 succeeded, 0 failed, 1 pending of 1" in watched.stdout
    assert "gave up waiting after 2s" in watched.stderr


def test_watch_of_an_unknown_batch_says_so_and_exits_5(pipeline: Pipeline) -> None:
    watched = watch(pipeline, "--batch", "never-loaded")

    assert watched.returncode == 5
    assert "never loaded on this RENDER_QUEUE" in watched.stderr


def _consume_all(channel: Any, queue: str) -> list[tuple[str | None, dict[str, Any]]]:
    out = []
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((props.type, json.loads(body)))


def test_every_queue_bound_to_the_results_exchange_receives_every_event(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    backends = [f"{pipeline.base}.backend-a", f"{pipeline.base}.backend-b"]
    connection = pika.BlockingConnection(pika.URLParameters(pipeline.amqp_url))
    channel = connection.channel()
    try:
        Topology(pipeline.base, quorum=True, retry_delays=(1, 2)).declare(channel)
        for queue in backends:  # what a backend does: its own durable queue, bound
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, f"{pipeline.base}.results")
        path = batch_file(tmp_path, sample_repo, ["fan-ok"], ["fan-bad"])
        assert pipeline.load("--file", str(path), "--batch-id", "fan").returncode == 0
        pipeline.publish_raw(b"not json")  # an event with no batch at all

        assert pipeline.process() == [0]

        expected = ["fan-bad", "fan-ok", "unknown"]
        for queue in backends:
            assert sorted(e["videoId"] for _, e in _consume_all(channel, queue)) == expected
        assert sorted(e["videoId"] for e in pipeline.results()) == expected
        # The batch's own queue: its manifest and its two events, nothing of other batches.
        batch = _consume_all(channel, f"{pipeline.base}.batch.fan")
        assert sorted((kind or "event", body.get("videoId")) for kind, body in batch) == [
            ("event", "fan-bad"),
            ("event", "fan-ok"),
            ("gource-batch.manifest", None),
        ]
    finally:
        for queue in [*backends, f"{pipeline.base}.batch.fan"]:
            channel.queue_delete(queue)
        connection.close()
