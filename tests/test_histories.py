"""The generated histories (tests/histories.py) are what their docstrings say: what a big project,
an organisation, a rebased history and a flood of files look like in the log gource reads."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from histories import BACKWARDS, DAY, backwards_steps, generate, make_backwards_repo

from processor.git import LOG_ARGS


@dataclass
class Log:
    """What `git log` (processor/git.py LOG_ARGS) says of a repository."""

    stamps: list[int]
    authors: Counter[str]
    sizes: list[int]  # files per commit
    paths: set[str]
    alive: int

    @property
    def years(self) -> float:
        return (max(self.stamps) - min(self.stamps)) / DAY / 365.25


def read_log(repository: Path) -> Log:
    text = subprocess.run(
        ["git", "-c", "core.quotepath=off", "-C", str(repository), *LOG_ARGS],
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    stamps: list[int] = []
    authors: Counter[str] = Counter()
    sizes: list[int] = []
    paths: set[str] = set()
    author = None
    for line in text.splitlines():
        if line.startswith("user:"):
            author = line[5:]
        elif author is not None and line.isdigit():
            stamps.append(int(line))
            authors[author] += 1
            sizes.append(0)
            author = None
        elif line.startswith(":"):
            sizes[-1] += 1
            paths.add(line.split("\t", 1)[1])
    listed = subprocess.run(
        ["git", "-C", str(repository), "ls-tree", "-r", "--name-only", "HEAD"],
        capture_output=True,
        check=True,
    ).stdout
    return Log(stamps, authors, sizes, paths, listed.count(b"\n"))


def test_the_giant_history_is_a_big_project_of_fifteen_years(giant_repo: Path) -> None:
    log = read_log(giant_repo)
    assert len(log.stamps) >= 50_000
    assert log.alive >= 5_000
    assert len(log.authors) >= 2_000
    assert 14.9 <= log.years <= 15.1
    counts = [n for _, n in log.authors.most_common()]
    assert 0.3 <= sum(counts[:10]) / len(log.stamps) <= 0.5  # a few dozen people make most commits...
    assert sum(1 for n in counts if n == 1) >= 1_000  # ...and a long tail makes one each
    names = "".join(log.authors)
    assert any("\u4e00" <= c <= "\u9fff" for c in names)  # CJK
    assert any("\u0400" <= c <= "\u04ff" for c in names)  # Cyrillic
    assert "é" in names
    assert any(p.startswith("vendor/") for p in log.paths)
    assert any("/node_modules/" in p for p in log.paths)
    assert any(p.endswith(".min.js") for p in log.paths)
    assert max(p.count("/") for p in log.paths) >= 6  # component/lib/component/a/b/c/file
    assert max(log.sizes) >= 400  # mass commits: an import, a sweep
    assert sorted(log.sizes)[len(log.sizes) // 2] <= 2  # most commits touch a file or two
    by_year = Counter(datetime.fromtimestamp(s, UTC).year for s in log.stamps)
    assert by_year[2011] < by_year[2015] > by_year[2023]  # grows, then settles
    weekend = sum(1 for s in log.stamps if datetime.fromtimestamp(s, UTC).weekday() >= 5)
    assert weekend / len(log.stamps) < 0.25  # a weekly rhythm (no rhythm: 2/7 = 0.29)


def test_the_backwards_history_goes_back_in_time_often(backwards_repo: Path) -> None:
    log = read_log(backwards_repo)
    assert len(log.stamps) >= 3_000
    assert log.years >= 10
    count, largest = backwards_steps(log.stamps)
    assert count / len(log.stamps) >= 0.1
    assert largest >= 365


def test_an_organisation_is_repositories_of_very_different_sizes_and_ages_sharing_people(
    organisation: list[Path],
) -> None:
    logs = [read_log(repository) for repository in organisation]
    sizes = sorted(len(log.stamps) for log in logs)
    assert len(logs) == 10
    assert sizes[0] <= 10
    assert sizes[-1] >= 9_000
    assert len([s for s in sizes if 100 <= s <= 1_000]) >= 2
    starts = {datetime.fromtimestamp(min(log.stamps), UTC).year for log in logs}
    assert len(starts) >= 6
    people = Counter(name for log in logs for name in log.authors)
    assert sum(1 for n in people.values() if n >= 2) >= 10  # people who work on several repositories


def test_the_flood_repository_adds_two_hundred_thousand_files_in_one_commit(flood_repo: Path) -> None:
    log = read_log(flood_repo)
    assert log.sizes == [200_000]
    assert log.alive == 200_000


def test_a_seed_makes_the_same_history_and_another_seed_another(tmp_path: Path) -> None:
    def head(path: Path) -> str:
        return subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout

    assert head(make_backwards_repo(tmp_path / "a")) == head(make_backwards_repo(tmp_path / "b"))
    assert generate(BACKWARDS, 1)[-1].changes != generate(BACKWARDS, 2)[-1].changes
