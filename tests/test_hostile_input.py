"""A render request is untrusted input from the internet (issue 3, "Hostile input").

Validation that needs no broker is tested where it happens (`parse_request`, `check_url`,
`resolve`, the render plan); then each group of cases goes through a real processor in one
batch next to a good request: the processor exits 0 after draining, every hostile request
ends in the dead queue with a reason and a failure event, the good one is rendered, nothing
a request names is executed or read, and credentials never show in logs, events or
dead-letter headers (the dead letter's body stays the original message, less any token).
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import Pipeline, git

from processor.contract import parse_request
from processor.errors import InvalidRequest, RepositoryRejected
from processor.git import check_url, resolve
from processor.logs import redact
from processor.render import plan
from processor.settings import ProcessorSettings

SECRET = "hunter2-TOKEN-4f7e"  # a credential that must never be seen again
GOOD = {"resolution": "-320x240", "--stop-at-time": 2, "--output-framerate": 25}


def request(repo_url: str, video_id: str, **gource: object) -> bytes:
    return json.dumps(
        {"type": "gource", "repoURL": repo_url, "videoId": video_id, "gource": {**GOOD, **gource}}
    ).encode()


# validation, no broker -----------------------------------------------------------------------
NOT_ALLOWED_OPTIONS = [
    "--load-config", "--save-config", "--output-custom-log", "--logo", "--background-image",
    "--user-image-dir", "--default-user-image", "--caption-file", "--font-file", "--path",
    "--git-branch", "--loop", "-o", "--output-ppm-stream", "--log-command", "--log-format",
    "--file-filter", "--user-filter", "--stop-at-end", "640x480",
]  # fmt: skip


@pytest.mark.parametrize("option", NOT_ALLOWED_OPTIONS)
def test_a_gource_option_outside_the_allow_list_is_refused(option: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(f"gource.{option}: Extra inputs are not permitted")):
        parse_request(request("https://example.com/r.git", "v", **{option: "/etc/passwd"}))


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"--title": "x" * 201}, "gource.--title: String should have at most 200 characters"),
        ({"--title": "two\nlines"}, "gource.--title: title must not contain control characters"),
        ({"--title": "bell\x07"}, "control characters"),
        ({"--start-date": "yesterday"}, "gource.--start-date: date must look like"),
        ({"--start-date": "2024-02-30"}, "gource.--start-date: not a real date"),
        ({"--stop-date": "2024-01-01; rm -rf /"}, "gource.--stop-date: date must look like"),
        ({"--stop-date": 20240101}, "gource.--stop-date: Input should be a valid string"),
        ({"resolution": "-99999x99999"}, "gource.resolution: resolution must be within"),
        ({"resolution": "1x1"}, "gource.resolution: resolution must look like"),
        ({"resolution": "-1280x720 --loop"}, "gource.resolution: resolution must look like"),
        ({"--output-framerate": 24}, "gource.--output-framerate: must be 25, 30 or 60"),
        ({"--output-framerate": 0}, "gource.--output-framerate: must be 25, 30 or 60"),
        ({"--output-framerate": 120}, "gource.--output-framerate: must be 25, 30 or 60"),
        ({"--output-framerate": 29.97}, "gource.--output-framerate: Input should be a valid integer"),
        ({"--stop-at-time": -5}, "gource.--stop-at-time: Input should be greater than 0"),
        ({"--stop-at-time": "Infinity"}, "gource.--stop-at-time: Input should be a finite number"),
        ({"--seconds-per-day": 0}, "gource.--seconds-per-day: Input should be greater than 0"),
        ({"--time-scale": "NaN"}, "gource.--time-scale: Input should be a finite number"),
        ({"--time-scale": 1e9}, "gource.--time-scale: Input should be less than or equal to 4"),
        ({"--elasticity": -1}, "gource.--elasticity: Input should be greater than or equal to 0"),
        ({"--bloom-intensity": 1e400}, "gource.--bloom-intensity: Input should be a finite number"),
        ({"--key": "yes"}, "gource.--key: Input should be a valid boolean"),
        ({"--key": 1}, "gource.--key: Input should be a valid boolean"),
    ],
)
def test_an_option_value_out_of_its_bounds_is_refused_with_the_field_named(
    options: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_request(request("https://example.com/r.git", "v", **options))
    assert complaint in str(refused.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_json_literals_for_nan_and_infinity_are_refused(literal: str) -> None:
    body = (
        f'{{"type": "gource", "repoURL": "https://e.example/r.git", "gource": {{"--time-scale": {literal}}}}}'
    )
    with pytest.raises(
        InvalidRequest, match=re.escape("gource.--time-scale: Input should be a finite number")
    ):
        parse_request(body.encode())


HOSTILE_TITLES = ["--load-config /etc/passwd", "$(touch /tmp/x)", "; rm -rf /", "-o /tmp/out.ppm", "`id`"]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_a_title_that_looks_like_an_option_or_a_command_is_one_argv_element_of_text(title: str) -> None:
    parsed = parse_request(request("https://example.com/r.git", "v", **{"--title": title}))
    args = plan(parsed.gource, ProcessorSettings()).gource_args
    at = args.index("--title")
    assert args[at + 1] == title
    assert args.count(title) == 1


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"this is not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'[{"type": "gource", "repoURL": "https://example.com/r.git"}]', "a JSON object, not list"),
        (b'"https://example.com/r.git"', "a JSON object, not str"),
        (b"null", "a JSON object, not NoneType"),
        (b"42", "a JSON object, not int"),
        (b'{"type": "gource"}', "repoURL: Field required"),
        (b'{"type": "ffmpeg", "repoURL": "https://example.com/r.git"}', "type: Input should be"),
        (b'{"type": "gource", "repoURL": 42}', "repoURL: Input should be a valid string"),
        (b'{"type": "gource", "repoURL": ["https://example.com/r.git"]}', "repoURL: Input should be"),
        (b'{"type": "gource", "repoURL": "https://example.com/r.git", "gource": "--loop"}', "gource: Input"),
        (b'{"type": "gource", "repoURL": "https://example.com/r.git", "gource": []}', "gource: Input"),
        (b'{"type": "gource", "repoURL": "https://example.com/r.git", "videoId": 7}', "videoId: Input"),
        (b'{"type": "gource", "repoURL": "https://example.com/r.git", "command": "id"}', "command: Extra"),
        (b"{" + b" " * (10 << 20) + b"}", "the limit is 65536"),
    ],
)
def test_a_message_that_is_not_a_render_request_is_refused(body: bytes, complaint: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_request(body)
    assert complaint in str(refused.value)


@pytest.mark.parametrize(
    "video_id",
    ["a/b", "..", "../../etc/passwd", "a/../b", "a\x00b", "a\nb", "tab\tid", "-leading", "x" * 129],
)
def test_a_video_id_that_is_not_a_safe_object_name_is_refused(video_id: str) -> None:
    with pytest.raises(InvalidRequest, match="videoId: String should match pattern"):
        parse_request(request("https://example.com/r.git", video_id))


ALL_NETWORK_TRANSPORTS = frozenset({"https", "http", "ssh", "git"})


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ext::sh -c touch% /tmp/pwned", "the 'ext' transport is not allowed"),
        ("fd::17", "the 'fd' transport is not allowed"),
        ("--upload-pack=touch /tmp/pwned", "must not start with '-'"),
        ("-oProxyCommand=touch /tmp/pwned:repo.git", "must not start with '-'"),
        ("ssh://-oProxyCommand=touch%20/tmp/pwned/repo.git", "no valid host"),
        ("git://-oProxyCommand=x/repo.git", "no valid host"),
        ("file:///etc", "the 'file' transport is not allowed"),
        ("/etc", "the 'file' transport is not allowed"),
        ("../other-repo", "the 'file' transport is not allowed"),
        ("https://example.com/r.git\n--upload-pack=x", "control characters"),
        ("https:///r.git", "no valid host"),
    ],
)
def test_a_repository_url_that_could_run_a_command_or_read_a_file_is_refused(
    url: str, complaint: str
) -> None:
    with pytest.raises(RepositoryRejected, match=re.escape(complaint)):
        check_url(url, ALL_NETWORK_TRANSPORTS)


def test_file_urls_and_plain_paths_pass_only_when_the_operator_allows_file() -> None:
    assert check_url("file:///srv/git/r.git", frozenset({"file"})) is None
    with pytest.raises(RepositoryRejected):
        check_url("file:///srv/git/r.git", frozenset({"https"}))


def test_settings_cannot_allow_a_command_running_transport() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        ProcessorSettings(git_allowed_protocols="https,ext")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254", "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "127.0.0.1",
        "localhost", "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "0", "0x7f000001", "2130706433", "[::1]", "[::ffff:127.0.0.1]",
        "[fe80::1]", "[fd00::1]", "224.0.0.1",
    ],
)  # fmt: skip
def test_a_host_that_resolves_to_an_internal_address_is_refused(host: str) -> None:
    url = f"https://user:{SECRET}@{host}/r.git"
    name = check_url(url, ALL_NETWORK_TRANSPORTS)
    assert name is not None
    with pytest.raises(RepositoryRejected, match="private, loopback or link-local") as refused:
        resolve(url, name, ())
    assert SECRET not in str(refused.value)


def test_an_operator_network_lets_an_internal_host_through_and_public_hosts_always_pass() -> None:
    import ipaddress

    allowed = (ipaddress.ip_network("10.0.0.0/8"),)
    assert resolve("https://10.1.2.3/r.git", "10.1.2.3", allowed) == ["10.1.2.3"]
    with pytest.raises(RepositoryRejected):
        resolve("https://192.168.1.1/r.git", "192.168.1.1", allowed)
    assert resolve("https://93.184.216.34/r.git", "93.184.216.34", ()) == ["93.184.216.34"]


@pytest.mark.parametrize(
    "text",
    [
        f"https://user:{SECRET}@example.com/r.git",
        f"https://{SECRET}@example.com/r.git",
        f"https://user:{SECRET}@with-an-at@example.com/r.git",
        f"fatal: unable to access 'https://user:{SECRET}@example.com/r.git/': error; ssh://me:{SECRET}@h/x",
    ],
)
def test_credentials_in_a_url_are_replaced_wherever_it_is_quoted(text: str) -> None:
    redacted = redact(text)
    assert SECRET not in redacted
    assert "with-an-at" not in redacted
    assert "***@example.com/r.git" in redacted


# servers the integration tests clone from -----------------------------------------------------
@dataclass
class GitServer:
    """Dumb-HTTP git over 127.0.0.x: what it was asked, and the URL it answers on."""

    host: str
    root: Path
    redirect_to: str | None = None
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.redirect_to and self.path.startswith("/redirect/"):
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to + self.path.removeprefix("/redirect"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *_: Any) -> None:
                pass

        handler = functools.partial(Handler, directory=str(self.root))
        self.httpd = http.server.ThreadingHTTPServer((self.host, 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Trickle:
    """A TCP server that answers every connection with one byte a second, forever."""

    def __init__(self, host: str):
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.create_server((host, 0))
        self._sock.settimeout(0.2)
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            for byte in itertools.chain(b"HTTP/1.1 200 OK\r\nX-Slow: ", itertools.repeat(ord("a"))):
                if self._stop.wait(1):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


def serve_bare(source: Path, target: Path) -> Path:
    """A bare copy of `source` that a dumb HTTP server can serve."""
    git(target.parent, "clone", "-q", "--bare", str(source), target.name)
    git(target, "repack", "-adq")
    git(target, "update-server-info")
    return target


@pytest.fixture
def served(sample_repo: Path, tmp_path: Path) -> Iterator[tuple[GitServer, GitServer, Trickle]]:
    """An allowed server on 127.0.0.2, a blocked one on 127.0.0.1 it redirects to, a trickler."""
    root = tmp_path / "served"
    root.mkdir()
    serve_bare(sample_repo, root / "good.git")
    git(root, "init", "-q", "--bare", "empty.git")
    git(root / "empty.git", "update-server-info")
    blocked = GitServer("127.0.0.1", root)
    allowed = GitServer("127.0.0.2", root, redirect_to=blocked.url)
    trickle = Trickle("127.0.0.2")
    yield allowed, blocked, trickle
    for server in (allowed, blocked, trickle):
        server.close()


def make_hostile_submodule_repo(path: Path, marker: Path) -> Path:
    """A repository whose .gitmodules would run a command or read /etc if anything recursed."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "uploadpack.allowFilter", "true")
    (path / "README.md").write_text("nothing to see\n")
    (path / ".gitmodules").write_text(
        '[submodule "pwn"]\n'
        "\tpath = pwn\n"
        f"\turl = ext::sh -c touch% {marker}\n"
        f"\tupdate = !touch {marker}\n"
        '[submodule "etc"]\n'
        "\tpath = etc\n"
        "\turl = file:///etc\n"
    )
    git(path, "add", "-A")
    for name in ("pwn", "etc"):
        git(path, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{name}")
    git(path, "commit", "-q", "-m", "hostile submodules")
    return path


def make_oversized_repo(path: Path, commits: int = 5, files: int = 16000) -> Path:
    """About 2 MiB of commits and trees, the only objects a blobless clone fetches.

    Every commit changes every file, so each tree is new and full of fresh object names
    (20 random-looking bytes an entry, which no compression or delta shrinks).
    """
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "uploadpack.allowFilter", "true")
    chunks = []
    for c in range(commits):
        chunks.append(
            b"commit refs/heads/main\ncommitter A <a@example.com> %d +0000\ndata 2\nc\n"
            % (1_700_000_000 + c * 86400)
        )
        for i in range(files):
            data = b"%d-%d\n" % (c, i)
            chunks.append(b"M 100644 inline d%02d/f%05d\ndata %d\n%s\n" % (i % 50, i, len(data), data))
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"],
        input=b"".join(chunks),
        check=True,
        capture_output=True,
    )
    return path


# what a user sees after a run ------------------------------------------------------------------
@dataclass
class Outcome:
    codes: list[int]
    dead: list[tuple[dict[str, Any], Any]]
    events: list[dict[str, Any]]
    logs: str

    @property
    def dead_by_id(self) -> dict[str, dict[str, Any]]:
        return {body["videoId"]: headers for headers, body in self.dead if isinstance(body, dict)}

    @property
    def events_by_id(self) -> dict[str, dict[str, Any]]:
        return {e["videoId"]: e for e in self.events}

    def assert_no_leak(self, secret: str = SECRET) -> None:
        assert secret not in self.logs
        assert secret not in json.dumps(self.events)
        assert all(secret not in repr(headers) for headers, _ in self.dead)

    def assert_no_crash(self) -> None:
        assert self.codes == [0]
        lines = [json.loads(line) for line in self.logs.splitlines() if line.startswith("{")]
        assert not [line for line in lines if "exception" in line]  # no traceback, nothing unexpected
        assert any(line["message"].startswith("queues drained") for line in lines)


def run_batch(pipeline: Pipeline, bodies: list[bytes], **env: Any) -> Outcome:
    for body in bodies:
        pipeline.publish_raw(body)
    codes = pipeline.process(timeout=150, **env)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(pipeline.workdir.glob("processor-*.log")))
    return Outcome(codes, pipeline.dead(), pipeline.results(), logs)


def assert_untouched(tmp_path: Path) -> None:
    assert not list(tmp_path.rglob("pwned*")), "a hostile request ran a command"


# repository URLs ------------------------------------------------------------------------------
@pytest.mark.slow
def test_hostile_repository_urls_are_dead_lettered_and_only_the_good_repository_is_rendered(
    pipeline: Pipeline, sample_repo: Path, served: tuple[GitServer, GitServer, Trickle], tmp_path: Path
) -> None:
    allowed, blocked, trickle = served
    pwned = tmp_path / "pwned"
    cases = {
        "ext": ("ext::sh -c touch% " + str(pwned / "ext"), "repository-rejected", "'ext' transport"),
        "upload-pack": (f"--upload-pack=touch {pwned}-upload-pack", "repository-rejected", "start with '-'"),
        "scp-proxy": (f"-oProxyCommand=touch {pwned}-scp:repo.git", "repository-rejected", "start with '-'"),
        "ssh-proxy": (
            f"ssh://-oProxyCommand=touch%20{pwned}-ssh/r.git",
            "repository-rejected",
            "no valid host",
        ),
        "file-url": (sample_repo.as_uri(), "repository-rejected", "'file' transport is not allowed"),
        "plain-path": (str(sample_repo), "repository-rejected", "'file' transport is not allowed"),
        "metadata": ("http://169.254.169.254/latest/meta-data/", "repository-rejected", "169.254.169.254"),
        "private": ("http://10.0.0.1/r.git", "repository-rejected", "resolves to 10.0.0.1"),
        "loopback": (f"{blocked.url}/good.git", "repository-rejected", "resolves to 127.0.0.1"),
        "localhost": (f"http://localhost:{blocked.port}/good.git", "repository-rejected", "127.0.0.1"),
        "ipv6-loopback": (f"http://[::1]:{blocked.port}/good.git", "repository-rejected", "resolves to ::1"),
        "creds-blocked": (f"https://user:{SECRET}@10.9.8.7/r.git", "repository-rejected", "10.9.8.7"),
        "creds-missing": (
            f"http://user:{SECRET}@127.0.0.2:{allowed.port}/missing.git",
            "repository-rejected",
            "repository not found",
        ),
        "missing": (f"{allowed.url}/missing.git", "repository-rejected", "repository not found"),
        "empty": (f"{allowed.url}/empty.git", "repository-rejected", "empty"),
        "redirect": (f"{allowed.url}/redirect/good.git", "repository-rejected", "redirected"),
        "trickle": (f"{trickle.url}/slow.git", "clone-failed", "CLONE_TIMEOUT=3"),
    }
    bodies = [request(url, video_id) for video_id, (url, _, _) in cases.items()]
    bodies.insert(len(bodies) // 2, request(f"{allowed.url}/good.git", "control"))

    outcome = run_batch(
        pipeline,
        bodies,
        GIT_ALLOWED_PROTOCOLS="http,https,ssh",
        GIT_ALLOWED_NETWORKS="127.0.0.2/32",
        CLONE_TIMEOUT=3,
        MAX_ATTEMPTS=2,
        RETRY_DELAY=1,
    )

    outcome.assert_no_crash()
    assert pipeline.videos() == ["videos/control.mp4"]
    assert outcome.events_by_id["control"]["state"] == "succeeded"
    dead = outcome.dead_by_id
    assert sorted(dead) == sorted(cases)
    for video_id, (_, reason, error) in cases.items():
        assert (video_id, dead[video_id]["x-reason"]) == (video_id, reason)
        assert error in dead[video_id]["x-error"], (video_id, dead[video_id]["x-error"])
        event = outcome.events_by_id[video_id]
        assert (event["state"], event["reason"]) == ("failed", reason)
    # rejected at once, except the trickler, which was given its second attempt
    assert {k: h["x-attempts"] for k, h in dead.items() if h["x-attempts"] != 1} == {"trickle": 2}
    assert trickle.connections == 2
    # the redirect was answered, and nothing ever reached the blocked host
    assert "/redirect/good.git/info/refs?service=git-upload-pack" in allowed.requests
    assert blocked.requests == []
    # the credential went to git for the allowed host, and nowhere a user can read
    assert (
        outcome.events_by_id["creds-missing"]["repoURL"] == f"http://***@127.0.0.2:{allowed.port}/missing.git"
    )
    outcome.assert_no_leak()
    assert_untouched(tmp_path)


@pytest.mark.slow
def test_a_file_url_or_plain_path_is_refused_when_only_https_is_allowed(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    bodies = [request(sample_repo.as_uri(), "file-url"), request(str(sample_repo), "plain-path")]

    outcome = run_batch(pipeline, bodies, GIT_ALLOWED_PROTOCOLS="https")

    outcome.assert_no_crash()
    assert pipeline.objects() == {}
    for video_id in ("file-url", "plain-path"):
        assert outcome.dead_by_id[video_id]["x-reason"] == "repository-rejected"
        assert "'file' transport is not allowed" in outcome.dead_by_id[video_id]["x-error"]
        assert outcome.events_by_id[video_id]["state"] == "failed"


@pytest.mark.slow
def test_hostile_submodules_are_never_touched_and_an_oversized_repository_is_stopped(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    hostile = make_hostile_submodule_repo(tmp_path / "submodules", tmp_path / "pwned-submodule")
    big = make_oversized_repo(tmp_path / "big")
    bodies = [
        request(big.as_uri(), "oversized"),
        request(hostile.as_uri(), "submodules"),
        request(sample_repo.as_uri(), "control"),
    ]

    outcome = run_batch(pipeline, bodies, MAX_REPO_MB=1)

    outcome.assert_no_crash()
    assert pipeline.videos() == ["videos/control.mp4", "videos/submodules.mp4"]
    assert {k: e["state"] for k, e in outcome.events_by_id.items()} == {
        "oversized": "failed",
        "submodules": "succeeded",
        "control": "succeeded",
    }
    [(headers, body)] = outcome.dead
    assert body["videoId"] == "oversized"
    assert headers["x-reason"] == "repository-rejected"
    assert "larger than MAX_REPO_MB=1" in headers["x-error"]
    assert_untouched(tmp_path)


# gource options -------------------------------------------------------------------------------
@pytest.mark.slow
def test_hostile_gource_options_are_dead_lettered_and_hostile_titles_render_as_text(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    repo = sample_repo.as_uri()
    marker = tmp_path / "pwned-title"
    refused: list[tuple[bytes, str]] = [
        (request(repo, f"key-{n}", **{option: "/etc/passwd"}), f"gource.{option}: Extra inputs")
        for n, option in enumerate(
            ["--load-config", "--output-custom-log", "--logo", "--user-image-dir", "--caption-file",
             "--font-file", "--git-branch", "--loop", "-o", "--output-ppm-stream"]
        )
    ]  # fmt: skip
    refused += [
        (
            request(repo, "long-title", **{"--title": "x" * 10_000}),
            "gource.--title: String should have at most",
        ),
        (
            request(repo, "not-a-date", **{"--start-date": "$(date)"}),
            "gource.--start-date: date must look like",
        ),
        (request(repo, "huge", resolution="-99999x99999"), "gource.resolution: resolution must be within"),
        (request(repo, "fps-24", **{"--output-framerate": 24}), "must be 25, 30 or 60"),
        (request(repo, "fps-0", **{"--output-framerate": 0}), "must be 25, 30 or 60"),
        (request(repo, "fps-120", **{"--output-framerate": 120}), "must be 25, 30 or 60"),
        (
            request(repo, "nan", **{"--time-scale": float("nan")}),
            "gource.--time-scale: Input should be a finite",
        ),
        (
            request(repo, "inf", **{"--stop-at-time": float("inf")}),
            "gource.--stop-at-time: Input should be a",
        ),
        (request(repo, "negative", **{"--seconds-per-day": -1}), "gource.--seconds-per-day: Input should be"),
    ]
    titles = {
        "title-option": "--load-config /etc/passwd",
        "title-subshell": f"$(touch {marker})",
        "title-semicolon": "; rm -rf /",
    }
    rendered = [request(repo, video_id, **{"--title": title}) for video_id, title in titles.items()]
    bodies = [body for body, _ in refused[:10]] + rendered + [body for body, _ in refused[10:]]
    bodies.append(request(repo, "control"))

    outcome = run_batch(pipeline, bodies)

    outcome.assert_no_crash()
    assert pipeline.videos() == sorted(f"videos/{v}.mp4" for v in [*titles, "control"])
    assert len(outcome.dead) == len(refused)
    for (headers, _), (_, complaint) in zip(outcome.dead, refused, strict=True):
        assert headers["x-reason"] == "invalid-request"
        assert complaint in headers["x-error"]
    states = {k: e["state"] for k, e in outcome.events_by_id.items()}
    assert states == {
        **{json.loads(body)["videoId"]: "failed" for body, _ in refused},
        **dict.fromkeys([*titles, "control"], "succeeded"),
    }
    assert not marker.exists()
    assert_untouched(tmp_path)


# messages -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_messages_that_are_not_render_requests_are_dead_lettered_and_the_queue_moves_on(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    repo = sample_repo.as_uri()
    refused: list[tuple[bytes, str]] = [
        (b"this is not json", "not valid JSON"),
        (b"\xff\xfe\x00\x01", "not valid JSON"),
        (b"[1, 2, 3]", "a JSON object, not list"),
        (b'"gource"', "a JSON object, not str"),
        (b"null", "a JSON object, not NoneType"),
        (json.dumps({"type": "gource", "repoURL": 42, "videoId": "wrong-type"}).encode(), "repoURL: Input"),
        (json.dumps({"type": "gource", "repoURL": repo, "gource": "--loop"}).encode(), "gource: Input"),
        (json.dumps({"type": "blender", "repoURL": repo, "videoId": "other-type"}).encode(), "type: Input"),
        (request(repo, "a/b"), "videoId: String should match pattern"),
        (request(repo, "../../etc/passwd"), "videoId: String should match pattern"),
        (request(repo, ".."), "videoId: String should match pattern"),
        (request(repo, "ctrl\x00\x1b[31m"), "videoId: String should match pattern"),
        (request(f"https://user:{SECRET}@example.com/r.git", "creds", **{"--loop": True}), "gource.--loop"),
        (b'{"type": "gource", "repoURL": "' + b"x" * (10 << 20) + b'"}', "the limit is 65536"),
    ]
    bodies = [body for body, _ in refused]
    bodies.insert(5, request(repo, "control"))

    outcome = run_batch(pipeline, bodies)

    outcome.assert_no_crash()
    assert pipeline.videos() == ["videos/control.mp4"]
    assert len(outcome.dead) == len(refused)
    for (headers, _), (_, complaint) in zip(outcome.dead, refused, strict=True):
        assert headers["x-reason"] == "invalid-request"
        assert complaint in headers["x-error"], headers["x-error"]
    # the dead letter keeps the original body, even the 10 MB one
    assert outcome.dead[0][1] == {"raw": "this is not json"}
    assert len(outcome.dead[-1][1]["repoURL"]) == 10 << 20
    events = outcome.events
    assert len(events) == len(refused) + 1
    assert [e["videoId"] for e in events if e["state"] == "succeeded"] == ["control"]
    failed_ids = {e["videoId"] for e in events if e["state"] == "failed"}
    assert {"wrong-type", "other-type", "creds", "unknown"} <= failed_ids
    assert next(e for e in events if e["videoId"] == "creds")["repoURL"] == "https://***@example.com/r.git"
    outcome.assert_no_leak()
