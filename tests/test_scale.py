"""Videos that read well at every scale: the presentation the processor chooses, measured on frames.

Small, medium and giant histories and an organisation of ten repositories, each told as the
processor tells it in a minute at 1280x720: what it chose, and how legible sampled frames of
the first seconds are (tests/legibility.py: `overlap` is the share of the frame under piled-up
labels, `legible` the share of the drawn text that is not in a pile). Before issue 17 the same
histories scored legible 4 % (medium) and 1.7 % (giant), overlap 10 % and 59 %.
The full minute of each, with the render's cost, is `python benchmarks/bench.py --skip-loader
--skip-render --skip-organisation --skip-story`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from legibility import git_log, measure_plan, presentation

from processor.contract import GourceOptions
from processor.history import gather
from processor.render import Fitted
from processor.settings import ProcessorSettings

pytestmark = pytest.mark.slow

MINUTE = GourceOptions.model_validate(
    {"resolution": "1280x720", "--output-framerate": 30, "--stop-at-time": 60}
)
SECONDS = 6  # of each video, sampled
SAMPLES = 6


def told(history: Path, folder: Path, several: bool = False) -> tuple[Path, Fitted]:
    """What the processor writes for gource, and its plan, for a minute's video of `history`."""
    folder.mkdir(parents=True, exist_ok=True)
    log = history if history.is_file() else git_log(history, folder / "git.log")
    return presentation(log, folder, "custom" if several else "git", MINUTE, several=several)


def test_a_small_history_keeps_file_names_and_everyones_name_legibly(
    sample_repo: Path, tmp_path: Path
) -> None:
    log, fitted = told(sample_repo, tmp_path)
    shown = fitted.presentation

    assert "filenames" not in shown.hide
    assert shown.named == shown.authors == 4
    seen = measure_plan(log, fitted.plan, tmp_path / "frames", samples=SAMPLES, seconds=SECONDS)
    assert seen.text > 0  # there are names to read...
    assert seen.overlap < 0.001  # ...and they do not pile up
    assert seen.legible is not None
    assert seen.legible > 0.9


def test_a_medium_history_reads_without_file_names(long_repo: Path, tmp_path: Path) -> None:
    log, fitted = told(long_repo, tmp_path)

    assert "filenames" in fitted.presentation.hide
    seen = measure_plan(log, fitted.plan, tmp_path / "frames", samples=SAMPLES, seconds=SECONDS)
    assert seen.overlap < 0.002
    assert seen.legible is not None
    assert seen.legible > 0.85


def test_a_giant_history_names_few_people_lets_quiet_files_go_and_stays_legible(
    giant_repo: Path, tmp_path: Path
) -> None:
    log, fitted = told(giant_repo, tmp_path)
    shown = fitted.presentation

    assert "filenames" in shown.hide
    assert shown.named <= 40 < shown.authors
    assert shown.file_idle_time > 0
    assert shown.max_files is not None
    seen = measure_plan(log, fitted.plan, tmp_path / "frames", samples=SAMPLES, seconds=SECONDS)
    assert seen.overlap < 0.01  # was 59 % before issue 17
    assert seen.legible is not None
    assert seen.legible > 0.6  # was 1.7 %


def test_an_organisation_names_its_repositories_and_stays_legible(
    organisation: list[Path], tmp_path: Path
) -> None:
    settings = ProcessorSettings(git_allowed_protocols="file", work_dir=tmp_path)
    merged, repositories = gather(tuple(r.as_uri() for r in organisation), tmp_path, settings)
    log, fitted = told(merged, tmp_path / "told", several=True)
    shown = fitted.presentation

    assert shown.dir_name_depth == 1  # the repositories' names
    assert shown.highlight_dirs
    assert len(repositories) == 10
    seen = measure_plan(log, fitted.plan, tmp_path / "frames", samples=SAMPLES, seconds=SECONDS)
    assert seen.overlap < 0.01
    assert seen.legible is not None
    assert seen.legible > 0.5
