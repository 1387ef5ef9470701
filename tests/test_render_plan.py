"""How a request's gource options become argv: the operator's defaults, ceilings and font."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from processor.contract import GourceOptions
from processor.errors import RepositoryRejected
from processor.fonts import CJK_PROBES, covered
from processor.render import Fitted, RenderPlan, fit, plan
from processor.settings import ProcessorSettings
from processor.timeline import prepare


def options(**values: object) -> GourceOptions:
    return GourceOptions.model_validate(values)


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def fitted(render_plan: RenderPlan, log: Path) -> Fitted:
    return fit(render_plan, prepare(log, "git", render_plan.selection))


def git_log(tmp_path: Path, *days: int) -> Path:
    """A log as processor.git writes it: one commit a day, on each of `days` of January 2024."""
    log = tmp_path / "gource.log"
    log.write_text(
        "".join(
            f"user:Alice\n{1704067200 + day * 86400}\n:000000 100644 0 1 A\tf{day}.txt\n\n" for day in days
        )
    )
    return log


def test_a_request_without_options_gets_the_operators_defaults(tmp_path: Path) -> None:
    settings = ProcessorSettings(resolution="640x360", framerate=25, video_seconds=12, seconds_per_day=0.5)

    rendered = fitted(plan(options(), settings), git_log(tmp_path, 1, 2, 3)).plan

    assert (rendered.width, rendered.height, rendered.framerate, rendered.seconds) == (640, 360, 25, 12)
    assert flag(rendered.gource_args, "--seconds-per-day") == "0.5"
    assert "--stop-at-end" in rendered.gource_args


def test_requests_above_the_operators_ceilings_are_brought_down_to_them(tmp_path: Path) -> None:
    settings = ProcessorSettings(max_resolution="1280x720", max_framerate=30, max_video_seconds=60)

    result = fitted(
        plan(
            options(**{"resolution": "3840x2160", "--output-framerate": 60, "--stop-at-time": 600,
                       "--seconds-per-day": 500}),
            settings,
        ),
        git_log(tmp_path, 1, 5),
    )  # fmt: skip
    rendered, pace = result.plan, result.pace

    assert (rendered.width, rendered.height) == (1280, 720)  # scaled, aspect kept
    assert (rendered.framerate, rendered.seconds) == (30, 60)
    assert flag(rendered.gource_args, "--seconds-per-day") == "10"  # MAX_SECONDS_PER_DAY
    assert pace.as_dict()["fitted"] is False


def test_odd_sizes_are_rounded_to_what_the_encoder_accepts() -> None:
    rendered = plan(options(resolution="641x361"), ProcessorSettings())

    assert (rendered.width, rendered.height) == (640, 360)


def test_the_operator_can_give_gource_a_font_with_cjk_glyphs(tmp_path: Path) -> None:
    font = tmp_path / "font.ttf"
    font.write_bytes(b"not really a font, but a file")

    rendered = fitted(plan(options(), ProcessorSettings(font_file=font)), git_log(tmp_path, 1, 2)).plan

    assert flag(rendered.gource_args, "--font-file") == str(font)


def test_names_in_any_script_are_drawn_with_a_font_that_has_their_glyphs(tmp_path: Path) -> None:
    log = tmp_path / "git.log"
    log.write_text("user:李小龍\n1704067200\n:000000 100644 0 1 A\tREADME\n", encoding="utf-8")
    latin = fitted(plan(options(), ProcessorSettings()), git_log(tmp_path, 1, 2))

    cjk = fitted(plan(options(), ProcessorSettings()), log)

    assert "--font-file" not in latin.plan.gource_args  # gource's own font draws Latin text best
    assert cjk.font is not None, "no font with CJK glyphs installed (Debian: fonts-wqy-zenhei)"
    assert covered(cjk.font, CJK_PROBES) == set(CJK_PROBES)
    assert flag(cjk.plan.gource_args, "--font-file") == str(cjk.font)
    title = fitted(plan(options(**{"--title": "東京 2024"}), ProcessorSettings()), git_log(tmp_path, 1, 2))
    assert title.font == cjk.font


def test_a_missing_font_file_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError, match="no such font file"):
        ProcessorSettings(font_file=Path("/nonexistent/font.ttf"))


def test_a_title_is_one_argv_element_whatever_it_says() -> None:
    title = "--load-config /etc/passwd $(touch /tmp/x)"

    args = plan(options(**{"--title": title}), ProcessorSettings()).gource_args

    assert flag(args, "--title") == title
    assert "--load-config" not in args


def test_start_and_stop_positions_choose_what_gource_reads_in_order_or_are_refused(tmp_path: Path) -> None:
    rendered = plan(options(**{"--start-position": 0.2, "--stop-position": 0.9}), ProcessorSettings())

    selected = prepare(git_log(tmp_path, *range(1, 31)), "git", rendered.selection)
    assert selected.commits == 21  # commits 7..27 of 30: the log's bytes from 20 % to 90 %
    assert "--start-position" not in rendered.gource_args  # gource reads only what was selected
    with pytest.raises(ValidationError, match="below --stop-position"):
        options(**{"--start-position": 0.9, "--stop-position": 0.2})


def test_a_date_range_without_commits_is_refused_not_retried(tmp_path: Path) -> None:
    empty = options(**{"--start-date": "2030-01-01", "--stop-date": "2031-01-01"})

    with pytest.raises(RepositoryRejected, match="no commits in the selected"):
        fitted(plan(empty, ProcessorSettings()), git_log(tmp_path, 1, 2, 3))
