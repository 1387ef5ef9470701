"""The history gource plays, prepared once: paths left out, the selection applied, time in order.

Gource shows a log as it comes, and a commit older than the one before it turns its clock
back (gource.cpp, `Gource::logic`): a history whose commit times run backwards in log order
(rewritten with committer date = author date, rebased with --committer-date-is-author-date,
imported) ended its video years before its last commit. So the processor writes the log
gource reads itself, in gource's custom format (`time|author|A/M/D|/path`), with commits in
time order (a stable sort: commits of one second keep their order). The request's dates and
positions are applied here too, and the excluded paths (processor/exclusions.py) left out,
so gource reads exactly the commits the pace is fitted to (processor/pacing.py) and the
presentation is chosen from the very changes it will draw (processor/presentation.py).

A big project's history (100,000 commits, a million changes) is held in flat arrays, tens of
MiB, and the raw log is streamed: it can be hundreds of MiB.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, Literal

from processor.errors import NothingLeft, RepositoryRejected
from processor.exclusions import Exclusions

LogFormat = Literal["git", "custom"]
ACTIONS = b"AMD"


@dataclass(frozen=True)
class Selection:
    """What of the history a request asks for: dates (epoch seconds, inclusive), positions (0..1)."""

    start_date: float | None = None
    stop_date: float | None = None
    start_position: float | None = None
    stop_position: float | None = None


@dataclass
class RawCommit:
    """One commit as a log tells it, before anything is left out."""

    timestamp: int
    author: str
    position: float  # where it starts in the log file (0..1): what gource's positions mean
    changes: list[tuple[str, str]] = field(default_factory=list)  # (A/M/D, path without leading /)


def unquote(path: str) -> str:
    """A path as git prints it: C-quoted (`"a\\tb"`, octal bytes) when it holds odd characters."""
    if not (len(path) >= 2 and path[0] == '"' and path[-1] == '"'):
        return path
    raw, out, n = path[1:-1].encode("utf-8", "surrogateescape"), bytearray(), 0
    escapes = {ord("n"): 10, ord("t"): 9, ord("r"): 13, ord('"'): 34, ord("\\"): 92, ord("a"): 7,
               ord("b"): 8, ord("f"): 12, ord("v"): 11}  # fmt: skip
    while n < len(raw):
        if raw[n] == 92 and n + 1 < len(raw):
            following = raw[n + 1]
            if 48 <= following <= 55 and n + 3 < len(raw):
                out.append(int(raw[n + 1 : n + 4], 8) & 0xFF)
                n += 4
                continue
            out.append(escapes.get(following, following))
            n += 2
            continue
        out.append(raw[n])
        n += 1
    return out.decode("utf-8", errors="replace")


def _git_commits(lines: BinaryIO, size: int) -> Iterator[RawCommit]:
    """Commits of `git log --pretty=format:user:%aN%n%ct --raw` (processor/git.py LOG_ARGS)."""
    commit: RawCommit | None = None
    pending: tuple[str, float] | None = None  # a "user:" line waiting for its time
    offset = 0
    for line in lines:
        text = line.rstrip(b"\r\n")
        if pending is not None and text.isdigit():
            if commit is not None:
                yield commit
            commit = RawCommit(int(text), pending[0], pending[1])
            pending = None
        elif text.startswith(b"user:"):
            name = text[5:].decode("utf-8", errors="replace").strip()
            pending = (name, offset / size)
        elif text.startswith(b":") and b"\t" in text and commit is not None:
            status, _, path = text.partition(b"\t")
            kind = status.rsplit(b" ", 1)[-1][:1]
            action = "A" if kind == b"A" else "D" if kind == b"D" else "M"
            commit.changes.append((action, unquote(path.decode("utf-8", errors="replace"))))
        offset += len(line)
    if commit is not None:
        yield commit


def _custom_commits(lines: BinaryIO, size: int) -> Iterator[RawCommit]:
    """Commits of gource's custom format: consecutive lines of one time and author are one commit."""
    commit: RawCommit | None = None
    offset = 0
    for line in lines:
        fields = line.rstrip(b"\r\n").decode("utf-8", errors="replace").split("|")
        if len(fields) >= 4 and fields[0].strip().lstrip("-").isdigit():
            stamp, author, action = int(fields[0]), fields[1] or "Unknown", fields[2][:1] or "A"
            if commit is None or (stamp, author) != (commit.timestamp, commit.author):
                if commit is not None:
                    yield commit
                commit = RawCommit(stamp, author, offset / size)
            commit.changes.append((action if action in "AMD" else "M", fields[3].lstrip("/")))
        offset += len(line)
    if commit is not None:
        yield commit


def raw_commits(log: Path, log_format: LogFormat) -> Iterator[RawCommit]:
    """The commits of a log file, streamed, in log order."""
    size = max(log.stat().st_size, 1)
    with log.open("rb") as lines:
        yield from (_git_commits if log_format == "git" else _custom_commits)(lines, size)


@dataclass
class Timeline:
    """The selected history in play order, as flat arrays; what pacing and presentation read.

    Commits are numbered in play order; commit `c`'s changes are `first[c]:first[c + 1]`.
    """

    timestamps: array[int] = field(default_factory=lambda: array("q"))
    authors: array[int] = field(default_factory=lambda: array("I"))  # per commit, into `names`
    first: array[int] = field(default_factory=lambda: array("Q", [0]))
    files: array[int] = field(default_factory=lambda: array("I"))  # per change, into `paths`
    actions: bytearray = field(default_factory=bytearray)  # per change: A, M or D
    paths: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    excluded_changes: int = 0
    reordered: int = 0  # commits that were older than the one before them in the log

    @property
    def commits(self) -> int:
        return len(self.timestamps)

    @property
    def changes(self) -> int:
        return len(self.files)

    def changes_of(self, commit: int) -> range:
        return range(self.first[commit], self.first[commit + 1])

    def write(self, log: Path, shown_name: Callable[[int], str], cap: int | None = None) -> int:
        """Write gource's custom log; at most `cap` changes a commit (spread over it). Lines written."""
        written = 0
        with log.open("w", encoding="utf-8") as out:
            for commit in range(self.commits):
                stamp, name = self.timestamps[commit], shown_name(self.authors[commit])
                changes = self.changes_of(commit)
                if cap is not None and len(changes) > cap:  # a flood of files: an even sample of it
                    changes = range(changes.start, changes.stop, -(-len(changes) // cap))
                for change in changes:
                    action = chr(self.actions[change])
                    out.write(f"{stamp}|{name}|{action}|/{self.paths[self.files[change]]}\n")
                    written += 1
        return written


def safe_text(text: str) -> str:
    """Text that cannot break a custom-format line (its separator, a line break)."""
    return text.replace("|", "¦").replace("\n", " ").replace("\r", " ")


def prepare(
    log: Path,
    log_format: LogFormat,
    selection: Selection | None = None,
    exclusions: Exclusions | None = None,
    *,
    strip_segments: int = 0,
) -> Timeline:
    """Read `log` once: what is left after exclusions, within the selection, in time order.

    `strip_segments`: leading path segments the exclusion patterns do not see (a merged
    history's repository directories, so `vendor/**` means each repository's own vendor/).
    RepositoryRejected when the selection holds no commit; NothingLeft when the exclusions
    leave none of its changes.
    """
    selection, exclusions = selection or Selection(), exclusions or Exclusions(())
    stamps, authors, starts = array("q"), array("I"), array("Q")
    files, actions = array("I"), bytearray()
    path_ids: dict[str, int] = {}
    name_ids: dict[str, int] = {}
    timeline = Timeline()
    selected_any = False
    for raw in raw_commits(log, log_format):
        if not _wanted(raw, selection):
            continue
        selected_any = True
        kept = 0
        for action, path in raw.changes:
            if exclusions and exclusions.excludes(path.split("/", strip_segments)[-1]):
                timeline.excluded_changes += 1
                continue
            if kept == 0:
                stamps.append(raw.timestamp)
                author = safe_text(raw.author) or "Unknown"
                authors.append(name_ids.setdefault(author, len(name_ids)))
                starts.append(len(files))
            files.append(path_ids.setdefault(safe_text(path), len(path_ids)))
            actions.append(ord(action))
            kept += 1
    if not selected_any:
        raise RepositoryRejected("no commits in the selected dates or positions: nothing to render")
    if not stamps:
        raise NothingLeft(
            f"the exclusions ({', '.join(exclusions.patterns)}) leave none of the "
            f"{timeline.excluded_changes} changed files of the selected history: nothing to render"
        )
    order = sorted(range(len(stamps)), key=stamps.__getitem__)  # stable: ties keep log order
    timeline.reordered = sum(1 for a, b in pairwise(stamps) if b < a)
    ends = array("Q", starts[1:])
    ends.append(len(files))
    for commit in order:
        timeline.timestamps.append(stamps[commit])
        timeline.authors.append(authors[commit])
        timeline.files.extend(files[starts[commit] : ends[commit]])
        timeline.actions.extend(actions[starts[commit] : ends[commit]])
        timeline.first.append(len(timeline.files))
    timeline.paths = list(path_ids)
    timeline.names = list(name_ids)
    return timeline


def _wanted(raw: RawCommit, selection: Selection) -> bool:
    if selection.start_position is not None and raw.position < selection.start_position:
        return False
    if selection.stop_position is not None and raw.position >= selection.stop_position:
        return False
    if selection.start_date is not None and raw.timestamp < selection.start_date:
        return False
    return selection.stop_date is None or raw.timestamp <= selection.stop_date
