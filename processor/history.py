"""Several repositories, one video: their histories merged into one gource timeline.

Each repository is cloned under exactly the rules of a single one (processor/git.py), one
at a time, and its `git log` turned into gource's custom format (`unix time|author|A/M/D|
/path`) with every path under a top-level directory named after the repository. The
per-repository logs are then merged by time into the one log gource reads. Each clone is
removed once its log is written, so a pod holds one clone at a time; the merged history
is bounded by MAX_HISTORY_CHANGES. One repository that cannot be fetched fails the whole
request, named in the error: no video shows part of what was asked for.
"""

from __future__ import annotations

import heapq
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pydantic import SecretStr

from processor.contract import RenderRequest
from processor.errors import CloneFailed, EmptyRepository, GourceBatchError, RepositoryRejected
from processor.git import check_url, fetch_log, tag_dates
from processor.logs import redact
from processor.settings import ProcessorSettings
from processor.timeline import LogFormat, raw_commits, safe_text

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Repository:
    """One repository of a video: where it came from and what it brought."""

    url: str
    name: str  # its top-level directory in the video
    commits: int = 0
    changes: int = 0
    tags: list[tuple[int, str]] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "repoURL": redact(self.url),
            "name": self.name,
            "commits": self.commits,
            "changes": self.changes,
            "tags": len(self.tags or []),
        }


def directory_names(urls: list[str] | tuple[str, ...]) -> list[str]:
    """A top-level directory name per URL: its last path segment without `.git`, made safe
    and unique (`repo`, `repo-2`, ...) even when two repositories share a name."""
    names: list[str] = []
    taken: set[str] = set()
    for url in urls:
        last = re.split(r"[/:\\]", url.split("?", 1)[0].split("#", 1)[0].rstrip("/"))[-1]
        base = _UNSAFE.sub("-", last.removesuffix(".git")).strip(".-")[:60] or "repo"
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        names.append(name)
    return names


def _custom_lines(git_log: Path, name: str, repository: Repository) -> Iterator[str]:
    """gource's custom log lines for one repository's `git log --raw` (processor/git.py)."""
    for commit in raw_commits(git_log, "git"):
        repository.commits += 1
        author = safe_text(commit.author) or "unknown"
        for action, path in commit.changes:
            repository.changes += 1
            yield f"{commit.timestamp}|{author}|{action}|/{name}/{safe_text(path)}\n"


class _Line(NamedTuple):
    """A line of gource's custom log, and the time it starts with (what the merge orders by)."""

    at: int
    text: str


def _read_back(path: Path) -> Iterator[_Line]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            yield _Line(int(line.split("|", 1)[0]), line)


@dataclass
class History:
    """The fetched history, and what it is made of."""

    log: Path
    repositories: list[Repository] | None  # None: a single-repository request
    tags: list[tuple[int, str]]  # (date, caption text), prefixed with the repository's name when several

    @property
    def log_format(self) -> LogFormat:
        """git's own log for one repository; gource's custom format for several merged."""
        return "git" if self.repositories is None else "custom"


def fetch_history(
    request: RenderRequest,
    work: Path,
    settings: ProcessorSettings,
    cancelled: Callable[[], bool] = lambda: False,
    tags: bool = False,
) -> History:
    """The request's one repository's own git log, or its several merged; their tags if asked."""
    if request.repo_urls is None:
        log = fetch_log(str(request.repo_url), work, settings, cancelled, request.token, tags=tags)
        return History(log, None, tag_dates(work, settings) if tags else [])
    log, repositories = gather(request.repos, work, settings, cancelled, tags=tags, token=request.token)
    named = [(stamp, f"{r.name}: {tag}") for r in repositories for stamp, tag in r.tags or []]
    return History(log, repositories, named)


def gather(
    urls: tuple[str, ...],
    work: Path,
    settings: ProcessorSettings,
    cancelled: Callable[[], bool] = lambda: False,
    *,
    tags: bool = False,
    token: SecretStr | None = None,
) -> tuple[Path, list[Repository]]:
    """Fetch every repository, merge their histories; the merged custom log and the repositories.

    A request's `token` is offered to every repository's own https origin.
    """
    if len(urls) > settings.max_repos_per_video:
        raise RepositoryRejected(
            f"{len(urls)} repositories in one video; MAX_REPOS_PER_VIDEO={settings.max_repos_per_video}"
        )
    repositories = [Repository(url, name) for url, name in zip(urls, directory_names(urls), strict=True)]
    for number, repository in enumerate(repositories, 1):  # refuse a bad URL before any clone
        with _naming(number, len(repositories), repository):
            check_url(repository.url, settings.git_allowed_protocols)
    total = 0
    parts = []
    for number, repository in enumerate(repositories, 1):
        if cancelled():
            raise CloneFailed("fetching stopped: the processor is shutting down")
        folder = work / f"repo-{number}"
        folder.mkdir()
        with _naming(number, len(repositories), repository):
            try:
                git_log = fetch_log(repository.url, folder, settings, cancelled, token, tags=tags)
            except EmptyRepository:
                shutil.rmtree(folder, ignore_errors=True)
                continue  # an organisation has empty repositories; they add nothing to show
            if tags:
                repository.tags = tag_dates(folder, settings)
            part = work / f"repo-{number}.log"
            with part.open("w", encoding="utf-8") as out:
                for line in _custom_lines(git_log, repository.name, repository):
                    total += 1
                    if total > settings.max_history_changes:
                        raise RepositoryRejected(
                            "the merged history is longer than "
                            f"MAX_HISTORY_CHANGES={settings.max_history_changes} file changes"
                        )
                    out.write(line)
            parts.append(part)
        shutil.rmtree(folder, ignore_errors=True)  # one clone on disk at a time
    if total == 0:
        raise EmptyRepository(f"none of the {len(urls)} repositories has a commit that changes a file")
    merged = work / "merged.log"
    with merged.open("w", encoding="utf-8") as out:
        for merged_line in heapq.merge(*(_read_back(p) for p in parts), key=lambda line: line.at):
            out.write(merged_line.text)
    for part in parts:
        part.unlink()
    return merged, repositories


@contextmanager
def _naming(number: int, count: int, repository: Repository) -> Iterator[None]:
    """Re-raise an error of one repository with its number, name and URL in the message."""
    try:
        yield
    except GourceBatchError as exc:
        where = f"repository {number} of {count} ({repository.name}, {redact(repository.url)})"
        raise type(exc)(f"{where}: {exc}") from exc
