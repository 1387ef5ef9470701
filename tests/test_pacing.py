"""How the pace is chosen: the selected history fills the video, whatever its shape."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from processor.pacing import choose, predict, read_history, select

DAY = 86400
START = int(datetime(2010, 4, 1, tzinfo=UTC).timestamp())


def uneven_history() -> list[int]:
    """Sixteen years of a web framework: most days a commit, 2014 silent, a release crunch in 2019."""
    rng = random.Random(1)  # noqa: S311 - a reproducible shape, not a secret
    days = [d for d in range(16 * 365) if rng.random() < 0.6 and not 4 * 365 <= d < 5 * 365]
    stamps = [START + d * DAY + rng.randrange(DAY) for d in days]
    stamps += [START + 9 * 365 * DAY + rng.randrange(7 * DAY) for _ in range(600)]
    return sorted(stamps)


def gaps(stamps: list[int]) -> list[float]:
    return [(b - a) / DAY for a, b in pairwise(stamps)]


def test_a_long_history_is_paced_to_fill_the_requested_length() -> None:
    stamps = uneven_history()

    for seconds in (10, 60, 300):
        pace = choose(stamps, seconds, ceiling=10)

        assert pace.fitted
        played = predict(gaps(stamps), pace.seconds_per_day, pace.auto_skip_seconds, pace.max_file_lag)
        assert 0.95 * seconds <= played <= seconds  # the whole history, within the length
        assert (pace.first, pace.last, pace.commits) == (stamps[0], stamps[-1], len(stamps))


def test_a_quiet_year_costs_a_moment_not_a_twelfth_of_the_video() -> None:
    stamps = uneven_history()
    pace = choose(stamps, 60, ceiling=10)

    quiet = max(gaps(stamps))
    assert quiet > 365
    spent = predict([quiet], pace.seconds_per_day, pace.auto_skip_seconds, pace.max_file_lag)
    assert spent < 0.05 * 60 < quiet * pace.seconds_per_day


def test_a_history_of_a_day_is_not_stretched_into_slow_motion() -> None:
    stamps = [START + hour * 3600 for hour in (0, 2, 3, 9, 20)]

    pace = choose(stamps, 60, ceiling=10)

    assert pace.seconds_per_day == 10  # the operator's ceiling is the slowest pace there is
    assert pace.play_seconds < 10  # so the video is shorter than asked


def test_a_requested_pace_is_kept_and_capped_by_the_operator() -> None:
    stamps = uneven_history()

    assert choose(stamps, 60, ceiling=10, requested=0.5).seconds_per_day == 0.5
    assert choose(stamps, 60, ceiling=10, requested=50).seconds_per_day == 10
    assert not choose(stamps, 60, ceiling=10, requested=0.5).fitted


def test_the_timestamps_gource_reads_come_from_git_and_custom_logs(tmp_path: Path) -> None:
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

    for history in (read_history(git_log, "git"), read_history(custom_log, "custom")):
        assert history.timestamps == [1262347200, 1293883200, 1325419200]
        assert history.positions[0] == 0
        assert history.positions == sorted(history.positions)


def test_dates_and_positions_leave_what_gource_will_play(tmp_path: Path) -> None:
    log = tmp_path / "git.log"
    log.write_text("".join(f"user:A\n{START + n * DAY}\n:000000 100644 0 1 A\tf{n}\n\n" for n in range(100)))
    history = read_history(log)

    assert select(history, start_date=START + 10 * DAY, stop_date=START + 19 * DAY) == [
        START + n * DAY for n in range(10, 20)
    ]
    halves = select(history, start_position=0.5), select(history, stop_position=0.5)
    assert abs(len(halves[0]) - 50) <= 1
    assert abs(len(halves[1]) - 50) <= 1
    assert halves[1][-1] < halves[0][0]
