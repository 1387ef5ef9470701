"""Fetch a repository's history, treating its URL as hostile.

Gource needs commits and trees, never file contents, so the clone is bare and blobless,
and one `git log --raw` run turns it into the log gource reads. The URL is user input:
only allowed transports, `--` before it, no prompts, no submodules, no system or global
git config, a time limit, and credentials never reach a log line or an error message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from processor.credentials import git_config_env
from processor.errors import AuthenticationFailed, CloneFailed, EmptyRepository, RepositoryRejected
from processor.logs import redact
from processor.procs import run
from processor.repo_urls import SCHEME, transport
from processor.settings import ProcessorSettings

# What gource itself asks git for (see NOTES.md), minus the shell.
LOG_ARGS = [
    "log",
    "--pretty=format:user:%aN%n%ct",
    "--reverse",
    "--raw",
    "--encoding=UTF-8",
    "--no-renames",
    "--no-show-signature",
]

_HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,253}$")
_NOT_FOUND = re.compile(
    r"not found|does not exist|does not appear to be a git repository|Could not read from remote|"
    r"Repository not found|returned error: 404",
    re.IGNORECASE,
)
# 401/403, or a 401 git had no credentials for (it may not prompt: GIT_TERMINAL_PROMPT=0).
_AUTH_FAILED = re.compile(
    r"Authentication failed|could not read (?:Username|Password)|returned error: 40[13]\b|"
    r"terminal prompts disabled",
    re.IGNORECASE,
)
_REDIRECTED = re.compile(r"returned error: 30[1278]\b")


def check_url(url: str, allowed: frozenset[str]) -> str | None:
    """RepositoryRejected unless `url` uses an allowed transport; returns its host, if any."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise RepositoryRejected("the repository URL contains control characters")
    scheme = transport(url)
    if scheme not in allowed:
        raise RepositoryRejected(
            f"the {scheme!r} transport is not allowed (GIT_ALLOWED_PROTOCOLS={','.join(sorted(allowed))})"
        )
    if scheme == "file":
        return None
    host = urlsplit(url).hostname if SCHEME.match(url) else url.split("@", 1)[-1].split(":", 1)[0]
    if not host or host.startswith("-") or not _HOST.match(host):
        raise RepositoryRejected("the repository URL has no valid host")
    return host


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(
    url: str, host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> list[str]:
    """The host's addresses, all of them public or inside an operator-allowed network.

    A repository URL must not reach the cluster's own services, a node's loopback or the
    cloud metadata address (169.254.169.254) just by naming them, or a name that points there.
    """
    port = urlsplit(url).port if SCHEME.match(url) else None
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise CloneFailed(f"cannot resolve {host}: {exc}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not _is_public(address) and not any(address in net for net in networks):
            raise RepositoryRejected(
                f"{host} resolves to {address}, a private, loopback or link-local address "
                "(GIT_ALLOWED_NETWORKS can allow it)"
            )
    return addresses


def _git_env(home: Path, allowed: frozenset[str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_ALLOW_PROTOCOL": ":".join(sorted(allowed)),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_PROTOCOL_FROM_USER": "0",
    }


def _size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _said(stderr: str | bytes, command: str, returncode: int) -> str:
    """The end of what a failed git command said, on one line, credentials removed."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    return " ".join(redact(text).split())[-500:] or f"git {command} exited {returncode}"


def _clone_error(
    stderr: str, returncode: int, token: SecretStr | None, settings: ProcessorSettings
) -> Exception:
    """What a failed clone means, said without credentials: permanent or worth a retry."""
    message = _said(stderr, "clone", returncode)
    if token is not None:
        message = message.replace(token.get_secret_value(), "***")
    if _AUTH_FAILED.search(message):
        return AuthenticationFailed(f"the git server refused the credentials: {message}")
    if _NOT_FOUND.search(message):
        return RepositoryRejected(f"repository not found: {message}")
    if _REDIRECTED.search(message) and not settings.git_follow_redirects:
        return RepositoryRejected(f"redirected, and GIT_FOLLOW_REDIRECTS is off: {message}")
    return CloneFailed(message)


def fetch_log(
    url: str,
    workdir: Path,
    settings: ProcessorSettings,
    cancelled: Callable[[], bool] = lambda: False,
    token: SecretStr | None = None,
    *,
    tags: bool = False,
) -> Path:
    """Clone `url` bare and blobless into `workdir`, write gource's log there, return its path.

    `token` is the request's own credential for `url`; without one, the operator's
    GIT_CREDENTIALS_FILE is offered for whatever host asks. With `tags`, the clone keeps the
    repository's tags (see `tag_dates`); still no blobs.
    """
    allowed = settings.git_allowed_protocols
    host = check_url(url, allowed)
    options = [
        "-c", "core.quotepath=off",
        "-c", "submodule.recurse=false",
        "-c", "protocol.file.allow=" + ("always" if "file" in allowed else "never"),
        "-c", "http.followRedirects=" + ("initial" if settings.git_follow_redirects else "false"),
        # A server that trickles bytes is dropped after a minute below 1 KiB/s.
        "-c", "http.lowSpeedLimit=1024", "-c", "http.lowSpeedTime=60",
    ]  # fmt: skip
    if host is not None:
        addresses = resolve(url, host, settings.git_allowed_networks)
        scheme = transport(url)
        if scheme in ("http", "https"):
            # Pin what was checked, so a second DNS answer cannot point git elsewhere.
            port = urlsplit(url).port or (443 if scheme == "https" else 80)
            options += ["-c", f"http.curloptResolve={host}:{port}:{','.join(addresses)}"]
    repo, log_path = workdir / "repo.git", workdir / "gource.log"
    env = _git_env(workdir, allowed)
    limit = settings.max_repo_mb << 20

    def too_big() -> str | None:
        if _size(repo) > limit:
            return f"the repository is larger than MAX_REPO_MB={settings.max_repo_mb}"
        return None

    clone = [
        "git",
        *options,
        "clone",
        "--bare",
        "--filter=blob:none",
        *([] if tags else ["--no-tags"]),
        "--quiet",
        "--",
        url,
        str(repo),
    ]
    clone_env = {**env, **git_config_env(url, token, settings)}
    result = run(clone, env=clone_env, timeout=settings.clone_timeout, cancelled=cancelled, abort_if=too_big)
    if result.cancelled:
        raise CloneFailed("git clone was stopped: the processor is shutting down")
    if result.aborted:
        raise RepositoryRejected(result.aborted)
    if result.timed_out:
        raise CloneFailed(f"git clone did not finish within CLONE_TIMEOUT={settings.clone_timeout:g} s")
    if result.returncode != 0:
        raise _clone_error(result.stderr, result.returncode, token, settings)
    # A clone that finished between two looks at its size is measured once more here.
    oversized = too_big()
    if oversized:
        raise RepositoryRejected(oversized)
    with log_path.open("wb") as out:
        log = subprocess.run(
            ["git", "-c", "core.quotepath=off", "--git-dir", str(repo), *LOG_ARGS],
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=settings.clone_timeout,
            check=False,
        )
    if log.returncode != 0:
        stderr = log.stderr.decode(errors="replace")
        if "does not have any commits" in stderr or "bad default revision" in stderr:
            raise EmptyRepository("the repository is empty: nothing to render")
        raise CloneFailed(_said(stderr, "log", log.returncode))
    if log_path.stat().st_size == 0:
        raise EmptyRepository("the repository has no commits to render")
    return log_path


def tag_dates(workdir: Path, settings: ProcessorSettings) -> list[tuple[int, str]]:
    """(unix time, name) of each tag in the clone `fetch_log(..., tags=True)` left in `workdir`.

    The date is the tagger's for an annotated tag, its commit's for a lightweight one. Names
    are whatever the remote sent (git drops the malformed): untrusted text.
    """
    result = subprocess.run(
        ["git", "--git-dir", str(workdir / "repo.git"), "for-each-ref",
         "--format=%(creatordate:unix) %(refname)", "refs/tags"],
        env=_git_env(workdir, settings.git_allowed_protocols),
        capture_output=True, timeout=settings.clone_timeout, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CloneFailed(_said(result.stderr, "for-each-ref", result.returncode))
    found = []
    for line in result.stdout.decode(errors="replace").splitlines():
        stamp, _, ref = line.partition(" ")
        if stamp.isdigit() and ref.startswith("refs/tags/"):
            found.append((int(stamp), ref.removeprefix("refs/tags/")))
    return found
