"""Benchmarks that print numbers (never pass/fail): run `python benchmarks/bench.py`.

1. Loader: `python -m loader --file` with N requests vs a bare pika loop publishing the
   same bodies without confirms, to the same kind of queue on the same broker, in one run.
2. Render: one request through a real processor (load -> clone -> render -> S3 upload ->
   result event) vs the bare `git log` + `gource | ffmpeg` pipeline run by hand with the
   same options on the same repository; plus the processor's peak memory.
3. Organisation video: one request merging five repositories into one video against five
   single-repository requests whose videos add up to the same length, through one processor.
4. Story: the generated 12-year, 3,109-commit history (tests/support.py) at a fitted pace:
   render time, video seconds per wall second, where the video starts and ends (gource's
   date, read by tesseract), and what the poster and HLS (OUTPUT_FORMAT=both) add.
   `--poster FILE` keeps the poster (README's picture is one).
5. Scale: small, medium (the 3,109-commit history above) and giant (tests/histories.py:
   55,000 commits, 2,201 people, 15 years) histories, and an organisation of ten
   repositories, each told in `--scale-seconds` (60) at 1280x720@30 as the processor tells
   it: render wall and CPU seconds per video second, the giant's cost against the medium's,
   the cost guard's prediction against the measured render, and the legibility of sampled
   frames (tests/legibility.py). `--pictures DIR` keeps a frame of each.

Ratios measured in one run are what to compare: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from histories import make_giant_repo, make_organisation
from legibility import measure
from support import S3_CREDENTIALS, frame_date, free_port, make_long_repo, make_sample_repo, s3_server

from processor import cost
from processor.contract import GourceOptions
from processor.git import LOG_ARGS
from processor.history import gather
from processor.render import fit, output_args, plan, poster, render, write_log
from processor.settings import ProcessorSettings
from processor.timeline import prepare
from processor.topology import Topology

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def _bare_loop(channel: Any, queue: str, bodies: list[bytes]) -> float:
    """Seconds for the plainest pika publisher: no confirms, no transactions, no validation."""
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    started = time.perf_counter()
    for body in bodies:
        channel.basic_publish("", queue, body, props)
    channel.connection.process_data_events(0)
    return time.perf_counter() - started


def _loader_run(base: str, requests: Path) -> tuple[float, str]:
    """Seconds for `python -m loader --file` as a user runs it, start-up and validation included."""
    env = {**os.environ, "AMQP_URL": AMQP_URL, "RENDER_QUEUE": base, "LOG_FORMAT": "json"}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "loader", "--file", str(requests)],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return time.perf_counter() - started, result.stdout.strip()


def bench_loader(count: int, rounds: int, work: Path) -> None:
    base = f"bench{uuid.uuid4().hex[:8]}"
    topology = Topology(base, quorum=True)
    lines = [
        json.dumps({"type": "gource", "repoURL": f"https://example.com/org/repo-{n}.git", "videoId": f"v{n}"})
        for n in range(count)
    ]
    requests = work / "requests.jsonl"
    requests.write_text("\n".join(lines) + "\n")
    bodies = [line.encode() for line in lines]

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    topology.declare(channel)
    bare_queue = f"{base}.bare"
    channel.queue_declare(bare_queue, durable=True, arguments=topology.work_queue_arguments())
    print(
        f"loader: {count} requests to a {topology.work_queue_type or 'plain (broker default type)'} queue, "
        f"{rounds} rounds"
    )
    ratios = []
    for n in range(1, rounds + 1):  # alternate, so drift on a shared machine hits both alike
        bare = _bare_loop(channel, bare_queue, bodies)
        loader, summary = _loader_run(base, requests)
        ratios.append(bare / loader)
        print(f"  round {n}: bare pika loop {count / bare:6.0f} msg/s, python -m loader {count / loader:6.0f} msg/s"
              f" (whole run, {summary}): ratio {bare / loader:.2f}")  # fmt: skip
    loaded = channel.queue_declare(base, passive=True).method.message_count
    for queue in [bare_queue, *topology.work_queues, topology.dead_queue, topology.results_queue,
                  *topology.marker_queues]:  # fmt: skip
        channel.queue_delete(queue)
    for exchange in (topology.results_exchange, topology.batch_exchange, topology.render_progress_exchange):
        channel.exchange_delete(exchange)
    connection.close()
    print(f"  loader rate / bare rate, median of {rounds}: {statistics.median(ratios):.2f}"
          f"  ({loaded} requests were in the queue, {rounds} x {count} expected)")  # fmt: skip


def _tree_rss(pid: int) -> tuple[int, int]:
    """(RSS of pid, RSS of pid and all its descendants) in KiB."""

    def rss(p: int) -> int:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss(p)
        stack.extend(children.get(p, []))
    return rss(pid), total


def bench_render(work: Path, seconds: int, resolution: str, framerate: int) -> None:
    repo = make_sample_repo(work / "repo")
    options = {"resolution": resolution, "--stop-at-time": seconds, "--output-framerate": framerate}
    settings = ProcessorSettings(
        git_allowed_protocols="file", video_seconds=seconds, max_video_seconds=seconds
    )
    # By hand: git log, then gource | ffmpeg on a display with the options the processor chooses.
    hand = work / "hand"
    hand.mkdir()
    started = time.perf_counter()
    with (hand / "git.log").open("wb") as log:
        subprocess.run(["git", "-C", str(repo), *LOG_ARGS], stdout=log, check=True)
    timeline = prepare(hand / "git.log", "git")
    fitted = fit(plan(GourceOptions.model_validate(options), settings), timeline)
    write_log(timeline, fitted, hand / "gource.log")
    render_plan = fitted.plan
    display = f":{free_port() % 1000 + 100}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{render_plan.width}x{render_plan.height}x24",
                             "-nolisten", "tcp"])  # fmt: skip
    time.sleep(1)  # not counted below: the processor's Xvfb start is inside its own time
    xvfb_wait = 1.0
    gource = subprocess.Popen(
        ["gource", "--log-format", "custom", *render_plan.gource_args, "-o", "-", str(hand / "gource.log")],
        stdout=subprocess.PIPE, env={**os.environ, "DISPLAY": display},
    )  # fmt: skip
    assert gource.stdout is not None
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "image2pipe", "-vcodec", "ppm",
         "-framerate", str(framerate), "-i", "-", "-vcodec", "libx264", "-preset", settings.ffmpeg_preset,
         "-crf", str(settings.ffmpeg_crf), "-pix_fmt", "yuv420p", "-r", str(framerate), "-t", str(seconds),
         "-movflags", "+faststart", str(hand / "video.mp4")],
        stdin=gource.stdout, check=True,
    )  # fmt: skip
    gource.stdout.close()
    gource.kill()
    gource.wait()
    by_hand = time.perf_counter() - started - xvfb_wait
    xvfb.kill()
    xvfb.wait()

    # The processor: a real one, draining one request into a moto S3 server.
    with s3_server(work / "moto.log") as endpoint:
        base = f"bench{uuid.uuid4().hex[:8]}"
        env = {**os.environ, **S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint,
               "AMQP_URL": AMQP_URL, "RENDER_QUEUE": base, "OUTPUT_URL": f"s3://{base}/videos",
               "GIT_ALLOWED_PROTOCOLS": "file", "IDLE_TIMEOUT": "0.5", "POLL_INTERVAL": "0.2",
               "MAX_VIDEO_SECONDS": str(seconds), "VIDEO_SECONDS": str(seconds), "LOG_FORMAT": "json", "WORK_DIR": str(work / "proc")}  # fmt: skip
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=base)  # fmt: skip
        request = json.dumps(
            {"type": "gource", "repoURL": repo.as_uri(), "videoId": "bench", "gource": options}
        )
        subprocess.run([sys.executable, "-m", "loader", "--file", "-"], input=request, text=True, env=env,
                       check=True, capture_output=True, cwd=ROOT)  # fmt: skip
        started, started_wall = time.perf_counter(), time.time()
        proc = subprocess.Popen([sys.executable, "-m", "processor"], env=env, cwd=ROOT,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        peak = [0, 0]

        def sample() -> None:
            while proc.poll() is None:
                own, tree = _tree_rss(proc.pid)
                peak[0], peak[1] = max(peak[0], own), max(peak[1], tree)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        _, stderr = proc.communicate()
        total = time.perf_counter() - started
        sampler.join()
        lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        done = next((line for line in lines if line["message"].startswith("succeeded")), None)
        if done is None:
            sys.exit("the processor did not render the request:\n" + stderr)
        until_done = datetime.fromisoformat(done["time"]).timestamp() - started_wall
        rendered = next(line["message"] for line in lines if line["message"].startswith("rendered"))

    print(
        f"render: {render_plan.width}x{render_plan.height}@{framerate}, {seconds} s of video, sample repository"
    )
    print(f"  by hand (git log + gource | ffmpeg)          : {by_hand:6.2f} s")
    print(f"  processor, start to result event             : {until_done:6.2f} s  ratio {until_done / by_hand:.2f}"
          f" of by hand")  # fmt: skip
    print(f"  processor, whole run incl. the idle exit     : {total:6.2f} s")
    print(f"  processor log: {rendered}")
    print(f"  peak RSS: processor (Python) {peak[0] / 1024:.0f} MiB; with Xvfb, gource, ffmpeg, git "
          f"{peak[1] / 1024:.0f} MiB")  # fmt: skip


def _drain_events(base: str) -> dict[str, dict[str, Any]]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    events = {}
    while True:
        method, _, body = channel.basic_get(Topology(base, quorum=True).results_queue, auto_ack=True)
        if method is None:
            break
        event = json.loads(body)
        events[event["videoId"]] = event
    topology = Topology(base, quorum=True)
    for queue in [
        *topology.work_queues,
        topology.dead_queue,
        topology.results_queue,
        *topology.marker_queues,
    ]:
        channel.queue_delete(queue)
    for exchange in (topology.results_exchange, topology.batch_exchange, f"{base}.retry",
                     topology.render_progress_exchange):  # fmt: skip
        channel.exchange_delete(exchange)
    connection.close()
    return events


def bench_organisation(work: Path, seconds: int, resolution: str, framerate: int, count: int = 5) -> None:
    """One video of `seconds` from `count` repositories vs `count` videos of seconds/count each."""
    repos = [make_sample_repo(work / f"org-{n}" / f"repo-{n}") for n in range(count)]
    days = 11  # the sample repository's history: one commit a day, 2024-01-01 to 01-11
    single_seconds = seconds / count

    def options(length: float) -> dict[str, Any]:
        return {"resolution": resolution, "--output-framerate": framerate,
                "--stop-at-time": length, "--seconds-per-day": length / days}  # fmt: skip

    lines = [json.dumps({"type": "gource", "repoURLs": [r.as_uri() for r in repos], "videoId": "org",
                         "gource": options(seconds)})]  # fmt: skip
    for n, repo in enumerate(repos):
        single = {"type": "gource", "repoURL": repo.as_uri(), "videoId": f"single-{n}"}
        lines.append(json.dumps({**single, "gource": options(single_seconds)}))
    with s3_server(work / "moto-org.log") as endpoint:
        base = f"bench{uuid.uuid4().hex[:8]}"
        env = {**os.environ, **S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint,
               "AMQP_URL": AMQP_URL, "RENDER_QUEUE": base, "OUTPUT_URL": f"s3://{base}/videos",
               "GIT_ALLOWED_PROTOCOLS": "file", "IDLE_TIMEOUT": "0.5", "POLL_INTERVAL": "0.2",
               "MAX_VIDEO_SECONDS": str(seconds), "VIDEO_SECONDS": str(seconds), "LOG_FORMAT": "json",
               "WORK_DIR": str(work / "proc"),
               "METRICS_PORT": "0"}  # fmt: skip
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=base)  # fmt: skip
        subprocess.run([sys.executable, "-m", "loader", "--file", "-"], input="\n".join(lines), text=True,
                       env=env, check=True, capture_output=True, cwd=ROOT)  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "processor"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        events = _drain_events(base)
    if len(events) != count + 1 or any(e["state"] != "succeeded" for e in events.values()):
        sys.exit(f"not every request was rendered: {events}")

    def phase(event: dict[str, Any], name: str) -> float:
        return float(event["timings"].get(name) or 0)

    org = events.pop("org")
    singles = list(events.values())
    print(f"organisation video: {count} sample repositories, {resolution}@{framerate}")
    for label, group in ((f"one {seconds:g} s video of all {count}", [org]),
                         (f"{count} single videos of {single_seconds:g} s", singles)):  # fmt: skip
        length = sum(float(e["video"]["duration"]) for e in group)
        clone, render, total = (sum(phase(e, p) for e in group) for p in ("clone", "render", "total"))
        print(f"  {label:<34}: {length:5.1f} s of video; clone {clone:5.2f} s, render {render:6.2f} s, "
              f"request total {total:6.2f} s")  # fmt: skip
    ratio = phase(org, "total") / sum(phase(e, "total") for e in singles)
    print(f"  organisation video / sum of singles (request totals): {ratio:.2f}")


def bench_story(work: Path, seconds: int, resolution: str, framerate: int, keep_poster: Path | None) -> None:
    repo = make_long_repo(work / "long")
    log = work / "gource.log"
    with log.open("wb") as out:
        subprocess.run(["git", "-C", str(repo), *LOG_ARGS], stdout=out, check=True)
    options = GourceOptions.model_validate({"resolution": resolution, "--output-framerate": framerate})
    timed: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def children_cpu() -> float:
        """CPU seconds of every child that has ended; the render's are reaped first (its killed
        gource would otherwise be counted whenever Python gets round to reaping it)."""
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def encode_cpu(output_format: str, source: Path, folder: Path) -> float:
        """ffmpeg alone, the same frames and encoder settings as a render: what HLS adds to it."""
        folder.mkdir()
        used = children_cpu()
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(source),
             "-vcodec", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
             *output_args(folder / "video.mp4", output_format)],
            cwd=folder, check=True,
        )  # fmt: skip
        return children_cpu() - used

    for output_format in ("mp4", "both"):
        settings = ProcessorSettings(
            video_seconds=seconds, max_video_seconds=seconds, output_format=output_format
        )
        folder = work / output_format
        folder.mkdir()
        started = time.perf_counter()
        timeline = prepare(log, "git")
        fitted = fit(plan(options, settings), timeline)
        write_log(timeline, fitted, folder / "story.log")
        pace = fitted.pace
        timed[f"pace {output_format}"] = time.perf_counter() - started
        started, used = time.perf_counter(), children_cpu()
        info = render(folder / "story.log", fitted.plan, folder / "video.mp4", settings)
        timed[output_format] = time.perf_counter() - started
        cpu[output_format] = children_cpu() - used
    started, used = time.perf_counter(), children_cpu()
    poster(work / "mp4" / "video.mp4", work / "poster.jpg", info)
    timed["poster"] = time.perf_counter() - started
    cpu["poster"] = children_cpu() - used
    encodes: dict[str, list[float]] = {"mp4": [], "both": []}
    for n in range(3):  # alternating, so the machine's drift hits both alike
        for output_format in ("mp4", "both"):
            encodes[output_format].append(
                encode_cpu(output_format, work / "mp4" / "video.mp4", work / f"encode-{output_format}-{n}")
            )
    encode = {name: statistics.median(values) for name, values in encodes.items()}
    first = frame_date(work / "mp4" / "video.mp4", "first", work)
    last = frame_date(work / "mp4" / "video.mp4", "last", work)
    segments = sorted((work / "both" / "hls").glob("*.ts"))

    print(
        f"story: {resolution}@{framerate}, {seconds} s asked, generated history (12 years, quiet 2014, a burst)"
    )
    print(f"  pace: {pace.describe()}; auto-skip {pace.auto_skip_seconds:g} s, file lag {pace.max_file_lag:g} s;"
          f" chosen in {timed['pace mp4'] * 1000:.0f} ms")  # fmt: skip
    print(f"  video: {info.duration:.2f} s ({info.duration / seconds * 100:.0f} % of asked), first frame says"
          f" {first and first.date()}, last frame says {last and last.date()}")  # fmt: skip
    print("  (wall seconds move with the machine's load; CPU seconds of Xvfb + gource + ffmpeg less so)")
    print(f"  render (gource | ffmpeg, mp4)                : {timed['mp4']:6.1f} s wall, {cpu['mp4']:6.1f} s CPU,"
          f" {info.duration / timed['mp4']:.2f} video s per wall s")  # fmt: skip
    print(f"  render with HLS too (tee muxer, one encode)  : {timed['both']:6.1f} s wall, {cpu['both']:6.1f} s CPU,"
          f" {len(segments)} segments: CPU {(cpu['both'] - cpu['mp4']) / cpu['mp4'] * 100:+.1f} %")  # fmt: skip
    print(f"  ffmpeg alone on the same frames, median of 3 : mp4 {encode['mp4']:.1f} s CPU, mp4 + HLS (tee)"
          f" {encode['both']:.1f} s CPU: HLS adds {encode['both'] - encode['mp4']:+.2f} s ="
          f" {(encode['both'] - encode['mp4']) / cpu['mp4'] * 100:+.1f} % of the render's CPU")  # fmt: skip
    print(f"  poster (ffmpeg seek + one JPEG)              : {timed['poster']:6.2f} s wall, {cpu['poster']:6.2f} s CPU,"
          f" {cpu['poster'] / cpu['mp4'] * 100:+.1f} % of the render's CPU")  # fmt: skip
    if keep_poster is not None:
        keep_poster.write_bytes((work / "poster.jpg").read_bytes())
        print(f"  poster kept as {keep_poster} ({keep_poster.stat().st_size} bytes)")


def _history_log(name: str, work: Path) -> tuple[Path, str, bool]:
    """The log the processor reads for one of the scale benchmark's histories."""

    def git_log(repo: Path, out: Path) -> Path:
        with out.open("wb") as log:
            subprocess.run(
                ["git", "-C", str(repo), "-c", "core.quotepath=off", *LOG_ARGS], stdout=log, check=True
            )
        return out

    if name == "organisation":  # merged as the processor merges a repository list
        repos = make_organisation(work / "organisation")
        settings = ProcessorSettings(git_allowed_protocols="file", work_dir=work)
        merged, _ = gather(tuple(r.as_uri() for r in repos), work, settings)
        return merged, "custom", True
    repo = {"small": make_sample_repo, "medium": make_long_repo, "giant": make_giant_repo}[name](work / name)
    return git_log(repo, work / f"{name}.log"), "git", False


def bench_scale(work: Path, seconds: int, resolution: str, framerate: int, pictures: Path | None) -> None:
    print(f"scale: each history told in {seconds} s at {resolution}@{framerate}, as the processor tells it")
    print(f"  {'history':<13}{'commits':>8}{'people':>8}{'video s':>9}{'wall s':>8}{'s/vid s':>9}{'CPU s':>8}"
          f"{'predicted':>11}{'error':>8}{'overlap':>9}{'legible':>9}  presentation")  # fmt: skip
    per_second: dict[str, float] = {}
    for name in ("small", "medium", "giant", "organisation"):
        folder = work / name
        folder.mkdir()
        log, log_format, several = _history_log(name, folder)
        options = GourceOptions.model_validate(
            {"resolution": resolution, "--output-framerate": framerate, "--stop-at-time": seconds}
        )
        settings = ProcessorSettings(video_seconds=seconds, max_video_seconds=seconds, render_timeout=7200)
        timeline = prepare(log, log_format, strip_segments=1 if several else 0)
        fitted = fit(plan(options, settings, several=several), timeline)
        predicted = cost.estimate(fitted, write_log(timeline, fitted, folder / "story.log"))
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        info = render(folder / "story.log", fitted.plan, folder / "video.mp4", settings)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
        per_second[name] = wall / info.duration
        seen = measure(
            folder / "story.log", "custom", fitted.plan.gource_args, width=fitted.plan.width,
            height=fitted.plan.height, framerate=framerate, seconds=min(seconds, info.duration),
            folder=folder / "frames", samples=12,
        )  # fmt: skip
        legible = "no text" if seen.legible is None else f"{seen.legible * 100:.0f} %"
        print(f"  {name:<13}{timeline.commits:>8}{len(timeline.names):>8}{info.duration:>9.1f}{wall:>8.1f}"
              f"{per_second[name]:>9.2f}{cpu:>8.1f}{predicted.seconds:>10.0f}s{(predicted.seconds / wall - 1) * 100:>+7.0f}%"
              f"{seen.overlap * 100:>8.2f}%{legible:>9}  {fitted.presentation.describe()}")  # fmt: skip
        if pictures is not None and seen.pictures:
            pictures.mkdir(parents=True, exist_ok=True)
            keep = seen.pictures[len(seen.pictures) * 3 // 4]
            (pictures / f"{name}.png").write_bytes(keep.read_bytes())
    print(
        f"  giant / medium, wall seconds per video second: {per_second['giant'] / per_second['medium']:.2f}"
    )
    print("  (overlap: share of the frame under piled-up labels; legible: share of drawn text not in a pile)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--framerate", type=int, default=30)
    parser.add_argument("--skip-loader", action="store_true")
    parser.add_argument("--skip-render", action="store_true")
    parser.add_argument("--skip-organisation", action="store_true")
    parser.add_argument("--skip-story", action="store_true")
    parser.add_argument("--story-seconds", type=int, default=60)
    parser.add_argument("--poster", type=Path, help="keep the story's poster here")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--scale-seconds", type=int, default=60)
    parser.add_argument("--pictures", type=Path, help="keep a frame of each scale history here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_loader:
            bench_loader(args.requests, args.rounds, Path(tmp))
        if not args.skip_render:
            bench_render(Path(tmp), args.seconds, args.resolution, args.framerate)
        if not args.skip_organisation:
            bench_organisation(Path(tmp), args.seconds, args.resolution, args.framerate)
        if not args.skip_story:
            story = Path(tmp) / "story"
            story.mkdir()
            bench_story(story, args.story_seconds, args.resolution, args.framerate, args.poster)
        if not args.skip_scale:
            scale = Path(tmp) / "scale"
            scale.mkdir()
            bench_scale(scale, args.scale_seconds, args.resolution, args.framerate, args.pictures)


if __name__ == "__main__":
    main()
