"""The end-to-end demonstration behind `bash scripts/demo.sh` (run that; it installs first).

Renders this repository's own history and a generated one with a varied history into
videos in a local S3 server, with two processors draining one RabbitMQ queue, then prints
the result events, the stored objects, the queue statistics and where the videos are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from support import S3_CREDENTIALS, make_sample_repo, s3_server

DEMO = ROOT / ".demo"
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    step("repositories: this checkout's own history, and a generated one")
    sample = make_sample_repo(DEMO / "sample-repo")
    own = ROOT if (ROOT / ".git").exists() else sample
    print(f"    {own}\n    {sample}")

    with s3_server(DEMO / "moto.log") as endpoint:
        step(f"a local S3 server (moto) on {endpoint}, bucket 'videos'")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="demo", aws_secret_access_key="demo")  # fmt: skip
        s3.create_bucket(Bucket="videos")
        return run(endpoint, s3, own, sample)


def run(endpoint: str, s3: object, own: Path, sample: Path) -> int:
    base = f"demo-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ, **S3_CREDENTIALS, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_ENDPOINT_URL": endpoint, "AMQP_URL": AMQP_URL, "RENDER_QUEUE": base,
        "OUTPUT_URL": "s3://videos/demo", "GIT_ALLOWED_PROTOCOLS": "file",
        "RESOLUTION": "640x360", "VIDEO_SECONDS": "6", "IDLE_TIMEOUT": "5", "LOG_FORMAT": "text",
        "WORK_DIR": str(DEMO / "work"),
    }  # fmt: skip
    # No FONT_FILE: the processor takes a font with CJK glyphs (scripts/setup.sh installs one)
    # for the video whose title and people need it.
    requests = [
        {"type": "gource", "repoURL": own.as_uri(), "videoId": "gource-batch",
         "gource": {"--title": "gource-batch", "--key": True}},  # pace fitted to VIDEO_SECONDS
        {"type": "gource", "repoURL": sample.as_uri(), "videoId": "sample",
         "gource": {"resolution": "-1280x720", "--title": "Zoë, 李小龍 & friends", "--bloom-multiplier": 1.5}},
        {"repo_url": sample.as_uri(), "video_id": "sample-snake-case", "gource": {"stop_at_time": 4}},
        {"type": "gource", "repoURL": "file:///nonexistent/repository", "videoId": "missing-repo"},
    ]  # fmt: skip
    path = DEMO / "requests.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests))
    step("two processors start draining; they exit 0 once the queues stay empty: python -m processor (x2)")
    procs = [subprocess.Popen([sys.executable, "-m", "processor"], env=env, cwd=ROOT) for _ in range(2)]
    step(f"load {len(requests)} requests and follow the batch: python -m loader --file {path} --wait")
    waited = subprocess.run(
        [sys.executable, "-m", "loader", "--file", str(path), "--wait"], env=env, cwd=ROOT, check=False
    )
    print(f"    the loader exited {waited.returncode} (3: some requests failed, as one was meant to)")
    codes = [p.wait() for p in procs]
    print(f"    processors exited with {codes}")

    step("queue statistics: python -m processor stats")
    subprocess.run([sys.executable, "-m", "processor", "stats"], env=env, check=True, cwd=ROOT)

    step("result events (what a backend consumes to update its database)")
    events = drain(f"{base}.results")
    for event in events:
        where = event.get("url") or event.get("error")
        print(f"    {event['videoId']:<20} {event['state']:<10} {where}")

    step("videos and their posters in the bucket, checked with ffprobe, downloaded to .demo/videos/")
    (DEMO / "videos").mkdir()
    listed = s3.list_objects_v2(Bucket="videos").get("Contents", [])  # type: ignore[attr-defined]
    for obj in listed:
        target = DEMO / "videos" / Path(obj["Key"]).name
        s3.download_file("videos", obj["Key"], str(target))  # type: ignore[attr-defined]
        probe = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=width,height,r_frame_rate:format=duration",
             "-of", "json", str(target)], capture_output=True, text=True, check=True).stdout)  # fmt: skip
        stream = probe["streams"][0]
        print(f"    s3://videos/{obj['Key']:<34} {obj['Size']:>8} bytes  {stream['width']}x{stream['height']}"
              f" @{stream['r_frame_rate']}  {float(probe['format']['duration']):.1f} s  -> {target}")  # fmt: skip

    step("dead-lettered requests: python -m processor dead list")
    subprocess.run([sys.executable, "-m", "processor", "dead", "list"], env=env, check=True, cwd=ROOT)
    cleanup(base)
    ok = (
        codes == [0, 0]
        and waited.returncode == 3
        and sum(e["state"] == "succeeded" for e in events) == 3
        and sorted(Path(o["Key"]).suffix for o in listed) == [".jpg"] * 3 + [".mp4"] * 3  # videos, posters
    )
    print(
        "\ndemo " + ("finished: 3 videos rendered, 1 request dead-lettered as expected" if ok else "FAILED")
    )
    return 0 if ok else 1


def drain(queue: str) -> list[dict[str, object]]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    out = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        out.append(json.loads(body))
    connection.close()
    return out


def cleanup(base: str) -> None:
    """The demo's queues go; its videos stay in .demo/videos."""
    sys.path.insert(0, str(ROOT))
    from processor.topology import Topology

    topology = Topology(base, quorum=True, retry_delays=(30, 120))
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for queue in [*topology.work_queues, topology.dead_queue, topology.results_queue, *topology.marker_queues,
                  *(topology.delay_queue(d) for d in topology.retry_delays)]:  # fmt: skip
        channel.queue_delete(queue)
    for exchange in (topology.results_exchange, topology.batch_exchange, topology.retry_exchange,
                     topology.render_progress_exchange):  # fmt: skip
        channel.exchange_delete(exchange)
    connection.close()


if __name__ == "__main__":
    sys.exit(main())
