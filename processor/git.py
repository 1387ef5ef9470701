"""Fetch a repository's history, treating its URL as hostile.

Gource needs commits and trees, never file contents, so the clone is bare and blobless,
and one `git log --raw` run turns it into the log gource reads. The URL is user input:
only allowed transports, `--` before it, no prompts, no submodules, no system or global
git config, a time limit, and credentials never reach a log line or an error message.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from processor.errors import CloneFailed, RepositoryRejected
from processor.procs import run
from processor.settings import redact

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

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"^[^/:]+@[^/:]+:")
_NOT_FOUND = re.compile(
    r"not found|does not exist|does not appear to be a git repository|Could not read from remote|"
    r"Repository not found|returned error: 404",
    re.IGNORECASE,
)


def transport(url: str) -> str:
    """The git transport a URL would use: https, http, ssh, git, file, or what it names."""
    if url.startswith("-"):
        raise RepositoryRejected("a repository URL must not start with '-'")
    match = _SCHEME.match(url)
    if match:
        return match[1].lower()
    if "::" in url:
        return url.split("::", 1)[0].lower()  # remote helpers such as ext::
    if _SCP_LIKE.match(url):
        return "ssh"
    return "file"  # a plain path


def check_url(url: str, allowed: frozenset[str]) -> None:
    """RepositoryRejected unless `url` uses an allowed transport and names a real host."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise RepositoryRejected("the repository URL contains control characters")
    scheme = transport(url)
    if scheme not in allowed:
        raise RepositoryRejected(
            f"the {scheme!r} transport is not allowed (GIT_ALLOWED_PROTOCOLS={','.join(sorted(allowed))})"
        )
    if scheme in ("https", "http", "ssh", "git"):
        host = urlsplit(url).hostname if _SCHEME.match(url) else url.split("@", 1)[-1].split(":", 1)[0]
        if not host or host.startswith("-"):
            raise RepositoryRejected("the repository URL has no valid host")


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


def fetch_log(
    url: str,
    workdir: Path,
    allowed: frozenset[str],
    timeout: float,
    cancelled: Callable[[], bool] = lambda: False,
) -> Path:
    """Clone `url` bare and blobless into `workdir`, write gource's log there, return its path."""
    check_url(url, allowed)
    repo, log_path = workdir / "repo.git", workdir / "gource.log"
    env = _git_env(workdir, allowed)
    clone = [
        "git",
        "-c", "core.quotepath=off",
        "-c", "http.followRedirects=initial",
        "-c", "submodule.recurse=false",
        "-c", "protocol.file.allow=" + ("always" if "file" in allowed else "never"),
        "clone", "--bare", "--filter=blob:none", "--no-tags", "--quiet",
        "--", url, str(repo),
    ]  # fmt: skip
    result = run(clone, env=env, timeout=timeout, cancelled=cancelled)
    if result.cancelled:
        raise CloneFailed("git clone was stopped: the processor is shutting down")
    if result.timed_out:
        raise CloneFailed(f"git clone did not finish within {timeout:.0f} s")
    if result.returncode != 0:
        message = " ".join(redact(result.stderr).split())[-500:] or f"git clone exited {result.returncode}"
        if _NOT_FOUND.search(message):
            raise RepositoryRejected(f"repository not found: {message}")
        raise CloneFailed(message)
    with log_path.open("wb") as out:
        log = subprocess.run(
            ["git", "-c", "core.quotepath=off", "--git-dir", str(repo), *LOG_ARGS],
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    if log.returncode != 0:
        stderr = log.stderr.decode(errors="replace")
        if "does not have any commits" in stderr or "bad default revision" in stderr:
            raise RepositoryRejected("the repository is empty: nothing to render")
        raise CloneFailed(" ".join(redact(stderr).split())[-500:] or f"git log exited {log.returncode}")
    if log_path.stat().st_size == 0:
        raise RepositoryRejected("the repository has no commits to render")
    return log_path
