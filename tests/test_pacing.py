"""How the pace is chosen: the selected history fills the video, whatever its shape."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from processor.pacing import choose, predict, video_times

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
    spent = predict([quiet, 1.0], pace.seconds_per_day, pace.auto_skip_seconds, pace.max_file_lag)  # and on
    assert spent < 0.05 * 60 < quiet * pace.seconds_per_day


def test_the_gap_before_the_last_commit_plays_in_full_as_gource_plays_it() -> None:
    # Once gource has read the last commit its log is finished and it no longer skips ahead.
    stamps = [START + day * DAY for day in (*range(9), 8 + 365)]

    pace = choose(stamps, 60, ceiling=10)
    times = video_times(stamps, pace)

    assert times[-1] - times[-2] == pytest.approx(365 * pace.seconds_per_day)
    assert times[-1] <= 60  # the pace makes room for it: the last commit is still in the video


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


def test_a_caption_at_the_end_gets_its_whole_time_before_the_video_ends() -> None:
    stamps = uneven_history()

    pace = choose(stamps, 60, ceiling=10, tail=4.5)

    assert 55 <= pace.play_seconds <= 55.5  # 60 s less 4 s of caption and half a second


def test_video_times_place_each_commit_on_the_videos_clock() -> None:
    stamps = uneven_history()
    pace = choose(stamps, 60, ceiling=10)

    times = video_times(stamps, pace)

    assert times[0] == 0
    assert times == sorted(times)
    assert abs(times[-1] - pace.play_seconds) < 0.01
