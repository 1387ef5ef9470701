"""The history gource plays: read once from git's or a merged log, paths left out, the selection
applied, commits in time order, whatever order the log told them in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from processor.errors import NothingLeft, RepositoryRejected
from processor.exclusions import Exclusions
from processor.timeline import Selection, prepare, unquote

DAY = 86400
START = int(datetime(2010, 4, 1, tzinfo=UTC).timestamp())


def lines(timeline_log: Path) -> list[list[str]]:
    return [line.split("|") for line in timeline_log.read_text(encoding="utf-8").splitlines()]


def test_the_commits_gource_reads_come_from_git_and_custom_logs(tmp_path: Path) -> None:
    git_log = tmp_path / "git.log"
    git_log.write_text(
        "user:Alice\n1262347200\n:000000 100644 0 1 A\tREADME\n\n"
        "user:Bob\n1293883200\n:000000 100644 0 1 A\tsrc/a.c\n:000000 100644 0 1 A\tsrc/b.c\n\n"
        "user:12345\n1325419200\n:100644 100644 1 2 M\tsrc/a.c\n"
    )
    custom_log = tmp_path / "custom.log"
    custom_log.write_text(
        "1262347200|Alice|A|/org/one/README\n"
        "1293883200|Bob|A|/org/two/src/a.c\n1293883200|Bob|A|/org/two/src/b.c\n"
        "1325419200|Chen|M|/org/one/README\n"
    )

    for timeline in (prepare(git_log, "git"), prepare(custom_log, "custom")):
        assert list(timeline.timestamps) == [1262347200, 1293883200, 1325419200]
        assert [len(timeline.changes_of(c)) for c in range(3)] == [1, 2, 1]
        assert timeline.changes == 4


def test_dates_and_positions_leave_what_gource_will_play(tmp_path: Path) -> None:
    log = tmp_path / "git.log"
    log.write_text("".join(f"user:A\n{START + n * DAY}\n:000000 100644 0 1 A\tf{n}\n\n" for n in range(100)))

    dated = prepare(log, "git", Selection(start_date=START + 10 * DAY, stop_date=START + 19 * DAY))
    assert list(dated.timestamps) == [START + n * DAY for n in range(10, 20)]
    halves = (
        prepare(log, "git", Selection(start_position=0.5)),
        prepare(log, "git", Selection(stop_position=0.5)),
    )
    assert abs(halves[0].commits - 50) <= 1
    assert abs(halves[1].commits - 50) <= 1
    assert halves[1].timestamps[-1] < halves[0].timestamps[0]


def test_commits_told_out_of_order_are_played_in_time_order(tmp_path: Path) -> None:
    # A rebase with --committer-date-is-author-date: log order and time order disagree.
    order = [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]
    log = tmp_path / "git.log"
    log.write_text("".join(f"user:A\n{START + n * DAY}\n:000000 100644 0 1 A\tf{n}\n\n" for n in order))

    timeline = prepare(log, "git")
    timeline.write(tmp_path / "story.log", timeline.names.__getitem__)

    assert list(timeline.timestamps) == [START + n * DAY for n in range(10)]
    assert timeline.reordered == 4
    written = [int(fields[0]) for fields in lines(tmp_path / "story.log")]
    assert written == sorted(written)


def test_excluded_paths_are_left_out_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "git.log"
    log.write_text(
        "user:A\n1262347200\n:000000 100644 0 1 A\tsrc/app.js\n:000000 100644 0 1 A\tvendor/lib/x.js\n"
        ":000000 100644 0 1 A\tpublic/app.min.js\n:000000 100644 0 1 A\tweb/node_modules/y/z.js\n\n"
        "user:B\n1262433600\n:000000 100644 0 1 A\tvendor/other.c\n\n"
    )

    timeline = prepare(log, "git", exclusions=Exclusions(["vendor/**", "*.min.js", "node_modules/"]))

    assert timeline.paths == ["src/app.js"]
    assert timeline.excluded_changes == 4
    assert timeline.commits == 1  # the second commit changed nothing that is left


def test_a_merged_historys_exclusions_apply_inside_each_repository(tmp_path: Path) -> None:
    log = tmp_path / "merged.log"
    log.write_text(
        "1262347200|A|A|/api/vendor/x.c\n1262347200|A|A|/api/src/x.c\n1262433600|B|A|/vendor/src/y.c\n"
    )

    timeline = prepare(log, "custom", exclusions=Exclusions(["vendor/"]), strip_segments=1)

    assert timeline.paths == ["api/src/x.c", "vendor/src/y.c"]  # a repository called vendor stays


def test_an_exclusion_that_leaves_nothing_is_a_permanent_failure_that_says_so(tmp_path: Path) -> None:
    log = tmp_path / "git.log"
    log.write_text("user:A\n1262347200\n:000000 100644 0 1 A\tvendor/x.c\n")

    with pytest.raises(NothingLeft, match=r"exclusions \(vendor/\*\*\) leave none of the 1 changed files"):
        prepare(log, "git", exclusions=Exclusions(["vendor/**"]))
    with pytest.raises(RepositoryRejected, match="no commits in the selected dates"):
        prepare(log, "git", Selection(start_date=1262347200 + DAY))


def test_names_and_paths_that_would_break_a_log_line_are_made_safe(tmp_path: Path) -> None:
    log = tmp_path / "git.log"
    log.write_text(
        'user:Eve | Mallory\n1262347200\n:000000 100644 0 1 A\t"docs/a|b\\nc.txt"\n'
        ':000000 100644 0 1 A\t"caf\\303\\251.txt"\n',
        encoding="utf-8",
    )

    timeline = prepare(log, "git")
    timeline.write(tmp_path / "story.log", timeline.names.__getitem__)

    assert lines(tmp_path / "story.log") == [
        ["1262347200", "Eve ¦ Mallory", "A", "/docs/a¦b c.txt"],
        ["1262347200", "Eve ¦ Mallory", "A", "/café.txt"],
    ]


def test_git_quoted_paths_are_read_as_the_files_they_name() -> None:
    assert unquote('"caf\\303\\251 \\"x\\".txt"') == 'café "x".txt'
    assert unquote('"a\\tb"') == "a\tb"
    assert unquote("plain/path.c") == "plain/path.c"


def test_a_commit_that_floods_files_is_cut_to_an_even_sample(tmp_path: Path) -> None:
    log = tmp_path / "git.log"
    # git prints a commit's files sorted by path, as here.
    log.write_text(
        "user:A\n1262347200\n" + "".join(f":000000 100644 0 1 A\td{n // 100}/f{n:04}\n" for n in range(1000))
    )

    timeline = prepare(log, "git")
    written = timeline.write(tmp_path / "story.log", timeline.names.__getitem__, cap=100)

    folders = {fields[3].split("/")[1] for fields in lines(tmp_path / "story.log")}
    assert written == 100
    assert folders == {f"d{n}" for n in range(10)}  # every directory, not the first ones only
