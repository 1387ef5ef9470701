"""Private repositories (issue 11): a user's token, an operator's credentials, a private CA;
and organisation videos (issue 12) made of them.

A real HTTPS git server on 127.0.0.1 (`git http-backend` behind basic auth, with a
certificate from a CA the test makes and hands to the processor as GIT_CA_BUNDLE) holds
private repositories. Real processors render from them through the real broker into S3; the
tests then look everywhere a user, an operator or another tenant could look for the token.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from git_server import PrivateGitHost, make_certificates
from support import ROOT, Pipeline, git, make_repo, probe

from processor.contract import REDACTED, parse_request
from processor.errors import AuthenticationFailed
from processor.history import fetch_history
from processor.settings import ProcessorSettings

RIGHT = "gho_R1ghtT0ken0f4User8d2e5f7a9b1c3d5e7f9a1b3c"
WRONG = "gho_Wr0ngT0ken7e6d5c4b3a2918f7e6d5c4b3a29180"
OPERATOR = "glpat-0per4torSecretF0rTheWh0leH0st"
SECRETS = (RIGHT, WRONG, OPERATOR)
ACCOUNTS = {"x-access-token": RIGHT, "oauth2": RIGHT, "ci-bot": OPERATOR}  # on the private host
JANUARY = [f"2024-01-{day:02d}" for day in (2, 5, 6, 9)]


@pytest.fixture
def private_host(sample_repo: Path, tmp_path: Path) -> Iterator[tuple[PrivateGitHost, Path]]:
    """The server, with `private.git` and `tools.git` for the users x-access-token, oauth2 and
    ci-bot; and its CA."""
    pki, root = tmp_path / "pki", tmp_path / "private-host"
    pki.mkdir()
    root.mkdir()
    certificates = make_certificates(pki)
    tools = make_repo(tmp_path / "sources" / "tools", ["Grace Hopper", "Ken Thompson"], JANUARY)
    for source, name in ((sample_repo, "private.git"), (tools, "tools.git")):
        git(root, "clone", "-q", "--bare", str(source), name)
        git(root / name, "config", "uploadpack.allowFilter", "true")
    host = PrivateGitHost(root, certificates, ACCOUNTS)
    yield host, certificates[0]
    host.close()


OPTIONS = {"start": 0.2, "stop": 0.9, "key": True, "elasticity": 1.5,
           "bloomMultiplier": 1.2, "bloomIntensity": 0.8, "title": "My project"}  # fmt: skip


def production(url: str | list[str], video_id: str, token: str | None) -> bytes:
    """The production backend's message, as it sent it; with a list of URLs, an organisation's."""
    where = {"repoURL": url} if isinstance(url, str) else {"repoURLs": url}
    message = {"renderType": "GOURCE", **where, "videoId": video_id, "token": token or ""}
    return json.dumps({**message, "renderOptions": OPTIONS}).encode()


def run(pipeline: Pipeline, bodies: list[bytes], **env: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Publish, drain with one processor; (events by videoId, dead letters by videoId)."""
    for body in bodies:
        pipeline.publish_raw(body)
    assert pipeline.process(timeout=240, **env) == [0]
    events = {e["videoId"]: e for e in pipeline.results()}
    dead = {body["videoId"]: (headers, body) for headers, body in pipeline.dead()}
    return events, dead


def assert_secrets_nowhere(
    pipeline: Pipeline, events: dict[str, Any], dead: dict[str, Any], kept_in: Path | None = None
) -> None:
    """Not in an event, a dead letter (headers or body), object metadata, or any file left
    (but the operator's own credentials file, `kept_in`); nor as the basic-auth header git sends."""
    seen = (json.dumps(events) + repr(dead)).encode()
    for key in pipeline.objects():
        seen += repr(pipeline.s3.head_object(Bucket=pipeline.bucket, Key=key)["Metadata"]).encode()
    files = [p for p in pipeline.workdir.rglob("*") if p.is_file() and p != kept_in]
    assert any(p.name.startswith("processor-") for p in files)  # the logs are among them
    headers = [base64.b64encode(f"{user}:{secret}".encode()) for user in ACCOUNTS for secret in SECRETS]
    for secret in [s.encode() for s in SECRETS] + headers:
        assert secret not in seen
        assert not [p for p in files if secret in p.read_bytes()]


@pytest.mark.slow
def test_a_users_token_renders_their_private_repository_and_a_refused_token_fails_at_once(
    pipeline: Pipeline, private_host: tuple[PrivateGitHost, Path], sample_repo: Path
) -> None:
    host, ca = private_host
    bodies = [
        production(host.url("private.git"), "right-token", RIGHT),
        production(host.url("private.git"), "wrong-token", WRONG),
        production(host.url("private.git"), "no-token", None),
        production(host.url("private.git", scheme="http"), "token-over-http", RIGHT),
        production(sample_repo.as_uri(), "token-over-file", RIGHT),
    ]

    events, dead = run(
        pipeline,
        bodies,
        GIT_ALLOWED_PROTOCOLS="https,http,file",  # the token, not the allow-list, refuses http and file
        GIT_ALLOWED_NETWORKS="127.0.0.1/32",
        GIT_CA_BUNDLE=ca,
        MAX_ATTEMPTS=3,
    )

    assert pipeline.videos() == ["videos/right-token.mp4"]
    assert probe(pipeline.download("videos/right-token.mp4"))["streams"][0]["codec_name"] == "h264"
    assert events["right-token"]["state"] == "succeeded"
    expected = {
        "wrong-token": ("auth-failed", "the git server refused the credentials"),
        "no-token": ("auth-failed", "the git server refused the credentials"),
        "token-over-http": ("invalid-request", "a token is sent over https only, and repoURL uses 'http'"),
        "token-over-file": ("invalid-request", "a token is sent over https only, and repoURL uses 'file'"),
    }
    assert sorted(dead) == sorted(expected)
    for video_id, (reason, error) in expected.items():
        headers, body = dead[video_id]
        assert (video_id, headers["x-reason"], headers["x-attempts"]) == (video_id, reason, 1)  # no retries
        assert error in headers["x-error"]
        assert (events[video_id]["state"], events[video_id]["reason"]) == ("failed", reason)
        assert error in events[video_id]["error"]
        # the dead letter is the producer's message, less the token
        assert body["renderOptions"]["title"] == "My project"
        assert body["token"] == ("" if video_id == "no-token" else REDACTED)
    # the right token went to the server as basic auth for x-access-token; never in an argv
    assert set(host.authenticated) == {"x-access-token"}
    assert host.argv_leaks == []
    assert_secrets_nowhere(pipeline, events, dead)


@pytest.mark.slow
def test_operator_credentials_clone_private_repositories_for_requests_without_a_token(
    pipeline: Pipeline, private_host: tuple[PrivateGitHost, Path], tmp_path: Path
) -> None:
    host, ca = private_host
    credentials = tmp_path / "git-credentials"
    credentials.write_text(f"https://ci-bot:{OPERATOR}@127.0.0.1:{host.port}\n")
    before = credentials.read_bytes()
    url = host.url("private.git")
    bodies = [
        json.dumps({"type": "gource", "repoURL": url, "videoId": "scheduled"}).encode(),
        production(url, "gitlab-user", RIGHT),
        production(url, "wrong-token", WRONG),
    ]

    events, dead = run(
        pipeline,
        bodies,
        GIT_ALLOWED_PROTOCOLS="https",
        GIT_ALLOWED_NETWORKS="127.0.0.1/32",
        GIT_CA_BUNDLE=ca,
        GIT_CREDENTIALS_FILE=credentials,
        GIT_TOKEN_USERNAME="oauth2",
    )

    assert pipeline.videos() == ["videos/gitlab-user.mp4", "videos/scheduled.mp4"]
    # a request's token is its only credential: the operator's are not tried in its place
    assert list(dead) == ["wrong-token"]
    assert events["wrong-token"]["reason"] == "auth-failed"
    assert set(host.authenticated) == {"ci-bot", "oauth2"}
    assert credentials.read_bytes() == before  # read, never rewritten or erased
    assert host.argv_leaks == []
    assert_secrets_nowhere(pipeline, events, dead, kept_in=credentials)


def commits(repo: Path) -> int:
    return int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"],
                              capture_output=True, text=True, check=True).stdout)  # fmt: skip


def test_a_refused_token_stays_auth_failed_when_the_organisation_video_names_its_repository(
    private_host: tuple[PrivateGitHost, Path], tmp_path: Path
) -> None:
    host, ca = private_host
    urls = [host.url("private.git"), host.url("tools.git")]
    request = parse_request(production(urls, "acme-wrong", WRONG))
    settings = ProcessorSettings(
        git_allowed_protocols="https",  # type: ignore[arg-type]
        git_allowed_networks="127.0.0.1/32",  # type: ignore[arg-type]
        git_ca_bundle=ca,
    )
    work = tmp_path / "work"
    work.mkdir()

    with pytest.raises(AuthenticationFailed) as refused:
        fetch_history(request, work, settings)

    assert refused.value.reason == "auth-failed"  # what the dead letter and the event will say
    assert isinstance(refused.value.__cause__, AuthenticationFailed)
    assert str(refused.value).startswith(
        f"repository 1 of 2 (private, {urls[0]}): the git server refused the credentials"
    )
    assert WRONG not in str(refused.value)
    assert host.authenticated == []
    assert not (work / "repo-2").exists()  # the second repository is not tried


@pytest.mark.slow
def test_one_token_renders_an_organisation_video_of_private_repositories_and_a_wrong_one_names_the_first(
    pipeline: Pipeline, private_host: tuple[PrivateGitHost, Path], sample_repo: Path
) -> None:
    host, ca = private_host
    urls = [host.url("private.git"), host.url("tools.git")]
    bodies = [production(urls, "acme-2024", RIGHT), production(urls, "acme-wrong", WRONG)]

    events, dead = run(
        pipeline,
        bodies,
        GIT_ALLOWED_PROTOCOLS="https",
        GIT_ALLOWED_NETWORKS="127.0.0.1/32",
        GIT_CA_BUNDLE=ca,
        MAX_ATTEMPTS=3,
    )

    assert pipeline.videos() == ["videos/acme-2024.mp4"]
    assert probe(pipeline.download("videos/acme-2024.mp4"))["streams"][0]["codec_name"] == "h264"
    event = events["acme-2024"]
    assert event["state"] == "succeeded", event
    assert event["repoURLs"] == urls
    assert [(r["name"], r["commits"]) for r in event["repositories"]] == [
        ("private", commits(sample_repo)), ("tools", len(JANUARY)),
    ]  # fmt: skip
    # the wrong token: refused at once, naming the repository that refused it
    assert list(dead) == ["acme-wrong"]
    headers, body = dead["acme-wrong"]
    failed = events["acme-wrong"]
    named = f"repository 1 of 2 (private, {urls[0]}): the git server refused the credentials"
    assert (headers["x-reason"], headers["x-attempts"]) == ("auth-failed", 1)
    assert (failed["state"], failed["reason"], failed["attempts"]) == ("failed", "auth-failed", 1)
    assert named in headers["x-error"]
    assert named in failed["error"]
    assert (body["repoURLs"], body["token"]) == (urls, REDACTED)
    assert set(host.authenticated) == {"x-access-token"}
    assert host.argv_leaks == []
    assert_secrets_nowhere(pipeline, events, dead)


@pytest.mark.slow
def test_operator_credentials_serve_the_private_repositories_of_an_organisation_video_beside_a_public_one(
    pipeline: Pipeline, private_host: tuple[PrivateGitHost, Path], sample_repo: Path, tmp_path: Path
) -> None:
    host, ca = private_host
    credentials = tmp_path / "git-credentials"
    credentials.write_text(f"https://ci-bot:{OPERATOR}@127.0.0.1:{host.port}\n")
    before = credentials.read_bytes()
    handbook = make_repo(tmp_path / "public" / "handbook", ["Ada Lovelace"], JANUARY[:2])
    urls = [host.url("private.git"), handbook.as_uri(), host.url("tools.git")]
    bodies = [
        json.dumps({"type": "gource", "repoURLs": urls, "videoId": "acme-scheduled"}).encode(),
        production(urls, "token-beside-a-file", RIGHT),  # the token would have no https origin there
    ]

    events, dead = run(
        pipeline,
        bodies,
        GIT_ALLOWED_PROTOCOLS="https,file",
        GIT_ALLOWED_NETWORKS="127.0.0.1/32",
        GIT_CA_BUNDLE=ca,
        GIT_CREDENTIALS_FILE=credentials,
    )

    assert pipeline.videos() == ["videos/acme-scheduled.mp4"]
    assert probe(pipeline.download("videos/acme-scheduled.mp4"))["streams"][0]["codec_name"] == "h264"
    event = events["acme-scheduled"]
    assert event["state"] == "succeeded", event
    assert [(r["name"], r["commits"]) for r in event["repositories"]] == [
        ("private", commits(sample_repo)), ("handbook", 2), ("tools", len(JANUARY)),
    ]  # fmt: skip
    assert list(dead) == ["token-beside-a-file"]
    headers, _ = dead["token-beside-a-file"]
    assert (headers["x-reason"], headers["x-attempts"]) == ("invalid-request", 1)
    assert "a token is sent over https only, and repoURLs.1 uses 'file'" in headers["x-error"]
    assert set(host.authenticated) == {"ci-bot"}  # both private repositories, as the operator
    assert credentials.read_bytes() == before
    assert host.argv_leaks == []
    assert_secrets_nowhere(pipeline, events, dead, kept_in=credentials)


@pytest.mark.parametrize(
    ("setting", "value", "complaint"),
    [
        ("GIT_CA_BUNDLE", "/nonexistent/ca.pem", "GIT_CA_BUNDLE: no readable file at /nonexistent/ca.pem"),
        ("GIT_CA_BUNDLE", str(ROOT / "README.md"), "holds no PEM certificate"),
        ("GIT_CREDENTIALS_FILE", "/nonexistent/creds", "GIT_CREDENTIALS_FILE: no readable file"),
        ("GIT_TOKEN_USERNAME", "a:b", "GIT_TOKEN_USERNAME: String should match pattern"),
    ],
)
def test_a_missing_credentials_file_or_ca_bundle_stops_the_processor_at_start_up(
    setting: str, value: str, complaint: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), setting: value}
    result = subprocess.run(
        [sys.executable, "-m", "processor"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 78
    assert complaint in result.stderr
