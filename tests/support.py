"""Helpers the integration tests share: a sample repository and a pipeline driven like a user.

The loader and processors run as real subprocesses (`python -m loader`, `python -m
processor`), so the tests exercise exactly what a user or a Kubernetes pod runs.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pika
import pytest

from processor.topology import Topology

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent

S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def require(condition: bool, why: str) -> None:
    """Skip locally when a real component is missing; fail under CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for CI: {why}")
    pytest.skip(why)


def git(repo: Path, *args: str, author: str = "Alice", date: str = "2024-01-01T12:00:00+00:00") -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": f"{author.split(maxsplit=1)[0].lower()}@example.com",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": "ci@example.com",
        "GIT_COMMITTER_DATE": date,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


def make_sample_repo(path: Path) -> Path:
    """A small but varied history: what real repositories throw at gource."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "uploadpack.allowFilter", "true")  # so --filter works over file://

    def commit(author: str, day: int, message: str) -> None:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", message, author=author, date=f"2024-01-{day:02d}T12:00:00+00:00")

    (path / "src").mkdir()
    (path / "src" / "main.py").write_text("print('hello')\n")
    (path / "README.md").write_text("# sample\n")
    commit("Alice", 1, "start")
    (path / "docs").mkdir()
    (path / "docs" / "user guide.md").write_text("spaces in the name\n")
    (path / "docs" / "café.txt").write_text("non-ASCII file name\n")
    commit("Zoë Ünïcødé", 2, "docs")
    git(path, "mv", "src/main.py", "src/app.py")
    commit("Bob", 3, "rename")
    git(path, "checkout", "-q", "-b", "feature")
    (path / "src" / "feature.py").write_text("x = 1\n")
    commit("李小龍", 4, "feature")
    git(path, "checkout", "-q", "main")
    (path / "old.txt").write_text("to be removed\n")
    commit("Alice", 5, "add old")
    git(path, "rm", "-q", "old.txt")
    commit("Bob", 6, "remove old")
    git(
        path,
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge feature",
        "feature",
        author="Alice",
        date="2024-01-07T12:00:00+00:00",
    )
    for day in range(8, 12):
        (path / "src" / f"module_{day}.py").write_text(f"n = {day}\n")
        commit(["Alice", "Bob", "Zoë Ünïcødé", "李小龍"][day % 4], day, f"module {day}")
    return path


def make_repo(path: Path, authors: list[str], days: list[str], tags: dict[str, int] | None = None) -> Path:
    """A repository whose commits (one a day, authors in turn) touch a few folders; `tags`
    names a commit by its index (lightweight tags; names starting with `a:` are annotated)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "uploadpack.allowFilter", "true")
    shas = []
    for n, day in enumerate(days):
        folder = path / ["src", "docs", "tests"][n % 3]
        folder.mkdir(exist_ok=True)
        (folder / f"file_{n}.txt").write_text(f"change {n}\n")
        git(path, "add", "-A")
        author = authors[n % len(authors)]
        git(path, "commit", "-q", "-m", f"change {n}", author=author, date=f"{day}T12:00:00+00:00")
        shas.append(subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"],
                                   capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    for name, index in (tags or {}).items():
        if name.startswith("a:"):
            git(path, "tag", "-a", "-m", "release", name[2:], shas[index],
                date=f"{days[index]}T18:00:00+00:00")  # fmt: skip
        else:
            git(path, "tag", name, shas[index])
    return path


LONG_HISTORY_START = datetime(2010, 3, 1, 12, tzinfo=UTC)
LONG_HISTORY_END = datetime(2022, 2, 25, 12, tzinfo=UTC)
QUIET_YEAR = 2014  # not one commit from January to December
BURST_WEEK = datetime(2019, 6, 3, tzinfo=UTC)  # 600 commits in seven days: a release crunch


def make_long_repo(path: Path, seed: int = 10) -> Path:
    """Twelve uneven years, as an old project looks: a quiet year, a burst, people coming and going.

    Written with one `git fast-import` run (a few seconds for 3,000+ commits), deterministic
    for a seed. The first commit is at LONG_HISTORY_START and the last at LONG_HISTORY_END.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible history, not a secret
    authors = ["Alice Archer", "Bob Baker", "Chen Wei", "Dana Díaz", "Erik Eriksen", "Fatima Zahra",
               "Gus Grant", "Hana Sato"]  # fmt: skip
    areas = ["src/core", "src/web", "src/db", "docs", "tests/unit", "tests/e2e", "tools", "src/web/static"]
    times: list[datetime] = []
    day = LONG_HISTORY_START
    while day < LONG_HISTORY_END:
        if day.year != QUIET_YEAR and rng.random() < 0.62:
            times.append(day + timedelta(seconds=rng.randrange(0, 8 * 3600)))
        day += timedelta(days=1)
    times += [BURST_WEEK + timedelta(seconds=rng.randrange(0, 7 * 86400)) for _ in range(600)]
    times = sorted(t for t in times if LONG_HISTORY_START < t < LONG_HISTORY_END)
    times = [LONG_HISTORY_START, *times, LONG_HISTORY_END]

    files: list[str] = []
    stream: list[bytes] = []
    for n, when in enumerate(times):
        author = authors[min(len(authors) - 1, int(rng.triangular(0, len(authors), (when.year - 2010) % 8)))]
        email = author.split()[0].lower() + "@example.com"
        stamp = f"{int(when.timestamp())} +0000"
        changes = []
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            if not files or rng.random() < 0.35:
                files.append(f"{rng.choice(areas)}/{rng.choice('abcdefghij')}{len(files)}.txt")
                changes.append(f"M 644 inline {files[-1]}")
            elif len(files) > 20 and rng.random() < 0.1:
                changes.append(f"D {files.pop(rng.randrange(len(files)))}")
                continue
            else:
                changes.append(f"M 644 inline {rng.choice(files)}")
            changes.append(f"data <<END\nrevision {n}\nEND")
        message = f"change {n}"
        stream.append(
            (
                f"commit refs/heads/main\nauthor {author} <{email}> {stamp}\n"
                f"committer {author} <{email}> {stamp}\ndata {len(message.encode())}\n{message}\n"
                + "\n".join(changes)
                + "\n\n"
            ).encode()
        )
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "uploadpack.allowFilter", "true")
    quiet = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(stream), check=True, env=quiet
    )
    return path


@dataclass
class Pipeline:
    """One test's private slice of the broker and S3, plus the ways a user drives them."""

    amqp_url: str
    s3_endpoint: str
    base: str
    bucket: str
    workdir: Path
    processors: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # environment -------------------------------------------------------------------------
    def env(self, **overrides: Any) -> dict[str, str]:
        env = {
            **os.environ,
            **S3_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AMQP_URL": self.amqp_url,
            "RENDER_QUEUE": self.base,
            "OUTPUT_URL": f"s3://{self.bucket}/videos",
            "GIT_ALLOWED_PROTOCOLS": "file",
            "RESOLUTION": "320x240",
            "FRAMERATE": "25",
            "VIDEO_SECONDS": "2",
            "IDLE_TIMEOUT": "2",
            "POLL_INTERVAL": "0.2",
            "RETRY_DELAY": "1",
            "RETRY_BACKOFF": "2",
            "LOG_FORMAT": "json",
            "BATCH_TTL": "300",  # the batch progress queues of a test vanish on their own
            "METRICS_PORT": "0",  # parallel processors; tests that scrape pick a free port
            "WORK_DIR": str(self.workdir / "work"),
            "PYTHONPATH": str(ROOT),
        }
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    @property
    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.s3_endpoint, **_boto_credentials())

    def create_bucket(self) -> None:
        self.s3.create_bucket(Bucket=self.bucket)

    # driving -----------------------------------------------------------------------------
    def load(self, *args: str, stdin: str | None = None, **env: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "loader", *args],
            env=self.env(**env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start_processor(self, **env: Any) -> subprocess.Popen[bytes]:
        with (self.workdir / f"processor-{len(self.processors)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "processor"], env=self.env(**env), stdout=log, stderr=log
            )
        self.processors.append(proc)
        return proc

    def process(self, count: int = 1, timeout: float = 300, **env: Any) -> list[int]:
        """Run `count` processors until they exit by themselves; their exit codes."""
        procs = [self.start_processor(**env) for _ in range(count)]
        return [p.wait(timeout) for p in procs]

    def processor_log(self, index: int = 0) -> list[dict[str, Any]]:
        lines = (self.workdir / f"processor-{index}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    # inspecting --------------------------------------------------------------------------
    def objects(self) -> dict[str, dict[str, Any]]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {o["Key"]: o for o in listed}

    def videos(self) -> list[str]:
        """The MP4 keys in the bucket (each has its poster beside it)."""
        return sorted(key for key in self.objects() if key.endswith(".mp4"))

    def download(self, key: str) -> Path:
        target = self.workdir / Path(key).name
        self.s3.download_file(self.bucket, key, str(target))
        return target

    def drain(self, queue: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every message now in `queue` as (headers, decoded body), acknowledged."""
        return drain(self.amqp_url, queue)

    def results(self) -> list[dict[str, Any]]:
        return [body for _, body in self.drain(f"{self.base}.results")]

    def dead(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return self.drain(f"{self.base}.dead")

    def ready(self, queue: str) -> int:
        """Messages ready in `queue`; 0 when nothing ever declared it."""
        try:
            with _channel(self.amqp_url) as channel:
                return int(channel.queue_declare(queue, passive=True).method.message_count)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return 0
            raise

    def publish_raw(self, body: bytes, queue: str | None = None) -> None:
        """Publish bytes as a foreign producer would, onto the declared topology."""
        with _channel(self.amqp_url) as channel:
            Topology(self.base, quorum=True, retry_delays=(1, 2)).declare(channel)
            channel.confirm_delivery()
            channel.basic_publish(
                "", queue or self.base, body, pika.BasicProperties(delivery_mode=2), mandatory=True
            )

    def close(self) -> None:
        for proc in self.processors:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        delete_layout(self.amqp_url, self.base)


def drain(amqp_url: str, queue: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every message now in `queue` as (headers, decoded body), acknowledged."""
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with _channel(amqp_url) as channel:
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = {"raw": body.decode(errors="replace")}
            out.append((dict(props.headers or {}), decoded))


def delete_layout(amqp_url: str, base: str) -> None:
    """Every queue and exchange a test may have made under `base`, gone."""
    with _channel(amqp_url) as channel:
        for name in _queue_names(base):
            channel.queue_delete(name)
        for exchange in ("results", "results.batch", "retry", "progress"):
            channel.exchange_delete(f"{base}.{exchange}")


class _channel:  # noqa: N801 - used as a context manager, reads like `with channel`
    def __init__(self, url: str):
        self._connection = pika.BlockingConnection(pika.URLParameters(url))

    def __enter__(self) -> Any:
        return self._connection.channel()

    def __exit__(self, *_: object) -> None:
        self._connection.close()


def _queue_names(base: str) -> Iterable[str]:
    """Every queue a test may have made, named by the project's own topology."""
    topology = Topology(base, quorum=True, retry_delays=(1, 2, 3, 4, 8, 16, 30, 120))
    yield from topology.work_queues
    yield from (topology.migration_queue(q) for q in topology.work_queues)
    yield from (topology.dead_queue, topology.results_queue, *topology.marker_queues)
    yield from (topology.delay_queue(s) for s in topology.retry_delays)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a video: what a user would check."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_name,width,height,r_frame_rate:format=duration,format_name",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def rabbitmqctl(*args: str) -> str:
    """Drive the local broker as an operator would (restarts, runtime settings)."""
    tool = shutil.which("rabbitmqctl")
    require(tool is not None and os.geteuid() == 0, "rabbitmqctl (as root) is needed to restart the broker")
    assert tool is not None
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=True)
    return result.stdout


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (the render's Xvfb, gource and ffmpeg)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _command(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def hung_gource(pipeline: Pipeline, index: int = 0, **env: Any) -> list[int]:
    """Run processor `index` until it exits, freezing (SIGSTOP) every gource it starts: a render
    that hangs, as a real one may on a bad node, however quick the cost guard expects it to be.
    Returns the exit code and how many renders were frozen."""
    processor = pipeline.start_processor(**env)
    frozen: set[int] = set()
    while processor.poll() is None:
        for child in children_of(processor.pid):
            if child not in frozen and _command(child) == "gource":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGSTOP)
                frozen.add(child)
        time.sleep(0.05)
    return [processor.returncode, len(frozen)]


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for_log(pipeline: Pipeline, index: int, prefix: str | tuple[str, ...], timeout: float = 60) -> str:
    """Block until processor `index` logged a line starting with `prefix` (or one of them); that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for line in pipeline.processor_log(index):
                if line["message"].startswith(prefix):
                    return str(line["message"])
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"processor {index} never logged {prefix!r}")


class FlakyS3:
    """An HTTP proxy in front of the S3 server that answers 503 SlowDown to the first
    `failures` object uploads (PUT or multipart POST), like a throttling S3 does."""

    def __init__(self, upstream: str, failures: int):
        import http.server
        import threading
        import urllib.request

        self.failures = failures
        self.refused = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                is_upload = self.command in ("PUT", "POST") and self.path.count("/") >= 2
                if is_upload and proxy.refused < proxy.failures:
                    proxy.refused += 1
                    error = b"<Error><Code>SlowDown</Code><Message>Slow down.</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                forwarded = urllib.request.Request(upstream + self.path, data=body, method=self.command)
                for name, value in self.headers.items():
                    if name.lower() not in ("host", "content-length"):
                        forwarded.add_header(name, value)
                try:
                    with urllib.request.urlopen(forwarded, timeout=30) as response:
                        status, headers, payload = response.status, response.headers, response.read()
                except urllib.error.HTTPError as exc:
                    status, headers, payload = exc.code, exc.headers, exc.read()
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def s3_server(log: Path) -> Iterator[str]:
    """moto in server mode on a free 127.0.0.1 port: a real S3 API over HTTP. Yields its URL."""
    try:
        import moto.server  # noqa: F401 - only checking that it is there
    except ImportError:
        require(False, "moto's server is not installed (pip install 'moto[server]')")
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    require(False, f"moto_server did not start (see {log})")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
# Day, a word where the month is (tesseract reads "Jandary" when a user's dot grazes the
# date), year; the word is taken for the month it is closest to.
_GOURCE_DATE = re.compile(r"\b(\d{1,2})[\s.,]*([A-Za-z]{3,10})[\s.,]*((?:19|20)\d\d)(?!\d)")


def _month(word: str) -> str | None:
    close = difflib.get_close_matches(word.title(), _MONTHS, n=1, cutoff=0.6)
    return close[0] if close else None


def frame_date(video: Path, at: str | float, workdir: Path) -> datetime | None:
    """The date gource printed at the top of the first or last frame (or at `at` seconds).

    Tesseract reads the cropped, doubled, inverted strip. A user's name drifting over the
    date can make one frame unreadable; gource's date never goes backwards, so the nearest
    readable frame within half a second inward bounds it (no later for the first frame,
    no earlier for the last).
    """
    if at == "first":
        seeks = [["-ss", f"{t:g}"] for t in (0, 0.1, 0.2, 0.3, 0.5)]
    elif at == "last":
        seeks = [["-sseof", f"-{t:g}"] for t in (0.1, 0.2, 0.3, 0.4, 0.5)]
    else:
        seeks = [["-ss", str(at)]]
    for n, seek in enumerate(seeks):
        image = workdir / f"{video.stem}-{at}-{n}.png"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", *seek, "-i", str(video), "-frames:v", "1",
             "-vf", "crop=iw:min(ih\\,36):0:0,scale=iw*2:-1,negate,format=gray", str(image)],
            check=True, capture_output=True,
        )  # fmt: skip
        text = subprocess.run(
            ["tesseract", str(image), "-", "--psm", "7"], capture_output=True, text=True, check=True
        ).stdout
        for match in _GOURCE_DATE.finditer(text):
            month = _month(match[2])
            if month is not None and 1 <= int(match[1]) <= 31:
                with contextlib.suppress(ValueError):  # a day the month does not have: misread
                    return datetime.strptime(f"{match[1]} {month} {match[3]}", "%d %B %Y").replace(tzinfo=UTC)
    return None


def kill_each_delivery(pipeline: Pipeline, env: dict[str, Any], most: int = 5) -> int:
    """SIGKILL a processor once it has cloned the poison request, start another, until one
    dead-letters it instead (and exits 0); how many were killed."""
    kills = 0
    while pipeline.ready(pipeline.base) and kills < most:
        victim = pipeline.start_processor(**env)
        if not wait_for_log(pipeline, kills, ("cloned", "dead-lettering")).startswith("cloned"):
            assert victim.wait(60) == 0
            break
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        kills += 1
        time.sleep(0.5)
    return kills
