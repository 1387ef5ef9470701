"""What gource draws is fitted to the history: small ones keep gource's look, giant ones stay legible.

These are the decisions alone, on histories written as logs (no git, no render); the frames
they lead to are measured in test_legibility.py and by benchmarks/bench.py.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path

import pytest

from processor.contract import GourceOptions
from processor.fonts import blank_characters
from processor.pacing import video_times
from processor.render import Fitted, fit, plan
from processor.settings import ProcessorSettings
from processor.timeline import Timeline, prepare

DAY = 86400
START = int(datetime(2008, 1, 1, tzinfo=UTC).timestamp())


def history(
    tmp_path: Path,
    commits: int,
    authors: int,
    files: int,
    years: float,
    *,
    repositories: int = 0,
    seed: int = 1,
) -> Timeline:
    """A custom-format history: commits spread over `years`, Zipf-like authors, files in a tree."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible shape, not a secret
    names = [f"Person {n}" for n in range(authors)]
    weights = list(accumulate(1 / (n + 1) for n in range(authors)))
    folders = [f"part{n % 7}/lib/sub{n % 5}" for n in range(max(1, files // 40))]
    paths = [f"{rng.choice(folders)}/file{n}.c" for n in range(files)]
    stamps = sorted(START + int(rng.random() * years * 365 * DAY) for _ in range(commits))
    lines = []
    for n, stamp in enumerate(stamps):
        author = rng.choices(names, cum_weights=weights)[0]
        prefix = f"repo{n % repositories}/" if repositories else ""
        touched = paths[: min(files, n + 1)] if n < files else rng.sample(paths, rng.choice((1, 1, 2, 3)))
        for path in touched[-3:] if n < files else touched:
            lines.append(f"{stamp}|{author}|{'A' if n < files else 'M'}|/{prefix}{path}\n")
    log = tmp_path / "history.log"
    log.write_text("".join(lines))
    return prepare(log, "custom")


def fitted(timeline: Timeline, size: str = "1280x720", several: bool = False, **options: object) -> Fitted:
    request = GourceOptions.model_validate({"resolution": size, "--stop-at-time": 60, **options})
    return fit(plan(request, ProcessorSettings(), several=several), timeline)


def test_a_small_history_keeps_gources_own_look(tmp_path: Path) -> None:
    shown = fitted(history(tmp_path, commits=40, authors=3, files=12, years=0.2)).presentation

    assert "filenames" not in shown.hide  # a few names at a time: all readable
    assert (shown.named, shown.authors) == (3, 3)
    assert shown.file_idle_time == 0  # every file stays
    assert shown.max_files is None
    assert shown.highlight_dirs


def test_a_medium_history_hides_the_file_names_it_could_not_show_legibly(tmp_path: Path) -> None:
    shown = fitted(history(tmp_path, commits=3000, authors=8, files=1000, years=12)).presentation

    assert "filenames" in shown.hide
    assert shown.measured["fileNamesAtOnce"] > 10  # what gource's 4 s of names would have put up
    assert (shown.named, shown.authors) == (8, 8)  # eight people fit on screen with their names
    assert shown.file_idle_time == 0


@pytest.fixture(scope="module")
def giant(tmp_path_factory: pytest.TempPathFactory) -> Timeline:
    """Fifteen years, 50,000 commits, 2,000 people, 6,000 files."""
    return history(tmp_path_factory.mktemp("giant"), commits=50_000, authors=2000, files=6000, years=15)


def test_a_giant_history_names_the_few_most_active_and_lets_quiet_files_go(giant: Timeline) -> None:
    result = fitted(giant)
    shown = result.presentation

    assert "filenames" in shown.hide
    assert 5 <= shown.named <= 60  # the most active people of each stretch, not two thousand
    assert shown.authors == len(giant.names) > 1900
    assert shown.file_idle_time > 0
    assert shown.measured["filesOnScreen"] <= 800  # two thirds of the budget at 720p: it churns
    assert shown.max_files == 800
    assert "bloom" in shown.hide  # its churn would spread glow over many directories
    assert result.named is not None
    assert len(result.named) == shown.named


def test_a_giant_historys_named_people_are_its_most_active_and_never_a_pile(giant: Timeline) -> None:
    result = fitted(giant)
    assert result.named is not None
    fit_at = result.pace
    times = video_times(giant.timestamps, fit_at)

    busiest = Counter(giant.authors).most_common(1)[0][0]
    assert busiest in result.named  # the core team is named
    for moment in range(1, int(fit_at.play_seconds)):  # a person stays on screen 4 s after a commit
        lingering = {giant.authors[c] for c, at in enumerate(times) if moment - 4 < at <= moment}
        assert len(lingering & result.named) <= 10  # gource's names at once, at most the budget at 720p


def test_a_request_that_asks_for_a_glow_gets_one_on_a_churning_tree(giant: Timeline) -> None:
    shown = fitted(giant, **{"--bloom-multiplier": 0.6}).presentation

    assert "bloom" not in shown.hide
    assert "--bloom-multiplier" in shown.args()
    assert shown.max_files == 800  # the rest of the fitted choice stands


def test_a_bigger_frame_holds_more_and_a_smaller_one_less(tmp_path: Path) -> None:
    timeline = history(tmp_path, commits=20_000, authors=300, files=4000, years=10)

    small, large = fitted(timeline, "640x360").presentation, fitted(timeline, "1920x1080").presentation

    assert small.measured["filesOnScreen"] < large.measured["filesOnScreen"]
    assert large.font_scale == 1.5  # gource's fixed-size labels grow with the frame


def test_an_organisations_repositories_are_named_at_the_top_of_the_tree(tmp_path: Path) -> None:
    timeline = history(tmp_path, commits=5000, authors=40, files=2000, years=8, repositories=10)

    shown = fitted(timeline, several=True).presentation

    assert shown.dir_name_depth >= 1
    assert shown.highlight_dirs  # ten repositories' names stay on screen


def test_the_request_overrides_every_fitted_choice(giant: Timeline) -> None:
    result = fitted(
        giant,
        **{"--hide": "date", "--max-files": 123, "--file-idle-time": 7, "--filename-time": 3,
           "--user-scale": 2, "--camera-mode": "track", "--bloom-multiplier": 1.5},
    )  # fmt: skip
    shown, args = result.presentation, result.plan.gource_args

    assert shown.hide == ("date",)
    assert args[args.index("--hide") + 1] == "mouse,progress,date"
    chosen = {"--max-files": "123", "--file-idle-time": "7", "--filename-time": "3", "--user-scale": "2",
              "--camera-mode": "track", "--bloom-multiplier": "1.5"}  # fmt: skip
    assert {flag: args[args.index(flag) + 1] for flag in chosen} == chosen
    assert set(shown.requested) >= {"hide", "max_files", "file_idle_time", "camera_mode"}


def test_hiding_user_names_needs_no_nameless_authors(giant: Timeline) -> None:
    result = fitted(giant, hide="usernames")

    assert result.named is None
    assert result.presentation.named == result.presentation.authors


@pytest.mark.parametrize(
    ("font", "blank"),
    [
        (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), "\u3000"),
        (Path("/usr/share/fonts/truetype/freefont/FreeSans.ttf"), "\u00a0"),
    ],
)
def test_nameless_authors_are_named_with_characters_their_font_draws_as_nothing(
    font: Path, blank: str
) -> None:
    if not font.is_file():
        pytest.skip(f"{font} is not installed")

    assert blank_characters(font) == " " + blank


def test_the_log_names_the_named_and_gives_everyone_else_a_distinct_blank_name(tmp_path: Path) -> None:
    from processor.presentation import shown_names

    timeline = history(tmp_path, commits=2000, authors=300, files=200, years=3)
    named = {0, 1, 2}

    names = shown_names(timeline, named, " \u3000")

    assert [names[a] for a in sorted(named)] == [timeline.names[a] for a in sorted(named)]
    blank = [name for a, name in enumerate(names) if a not in named]
    assert len(set(blank)) == len(blank) == len(timeline.names) - 3  # each keeps an avatar of their own
    assert all(set(name) <= {" ", "\u3000"} and name for name in blank)
    assert max(map(len, blank)) <= 10  # short: drawing them costs next to nothing


def test_the_nameless_share_a_bounded_crowd_of_avatars(tmp_path: Path) -> None:
    from processor.presentation import shown_names

    timeline = history(tmp_path, commits=2000, authors=300, files=200, years=3)

    names = shown_names(timeline, {0, 1, 2}, " \u3000", crowd=30)

    blank = [name for a, name in enumerate(names) if a not in {0, 1, 2}]
    assert len(set(blank)) == 30  # nearly three hundred people, thirty avatars
    assert all(set(name) <= {" ", "\u3000"} for name in blank)


def test_a_giant_historys_crowd_is_bounded_and_said(giant: Timeline) -> None:
    shown = fitted(giant).presentation

    assert shown.crowd == 30
    assert "the others as a crowd of 30" in shown.describe()
    assert shown.as_dict()["crowd"] == 30
