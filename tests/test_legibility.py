"""The legibility measure (tests/legibility.py): text that reads well scores clean and labels drawn
over each other score as piles, on frames drawn here and on frames gource renders of histories
made to read well or badly; and gource, as the measure drives it, renders one argv as one film."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from legibility import (
    GLYPH_STEP,
    FrameScore,
    Legibility,
    blobs,
    film,
    font_px,
    glyphs,
    keep,
    luminance,
    measure,
    pair,
    renders,
    sample_frames,
    score,
)
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from support import require

# Frames drawn here, the way gource draws names -------------------------------------------------------
WIDTH, HEIGHT = 640, 360
TALL = "Ǻngström_ŸÉj_gpq.txt"  # ring and accent above, descenders below: the tallest one line gets


@pytest.fixture(scope="module")
def font() -> ImageFont.FreeTypeFont:
    """FreeSans at 14 px, gource's font and its size for names."""
    found = subprocess.run(
        ["fc-match", "-f", "%{file}", "FreeSans"], capture_output=True, text=True, check=False
    )
    require(
        found.returncode == 0 and found.stdout.endswith(".ttf"), "FreeSans (fonts-freefont-ttf) is missing"
    )
    return ImageFont.truetype(found.stdout, 14)


def scene() -> np.ndarray:
    """What lies under the names: gource's #191919, a grey glow (bloom) and coloured file dots."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    glow = 90 * np.exp(-((rows - 180) ** 2 + (cols - 320) ** 2) / (2 * 110**2))
    frame = np.clip(np.stack([25 + glow * 1.0, 25 + glow * 0.8, 25 + glow * 0.5], axis=2), 0, 255)
    picture = Image.fromarray(frame.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for n in range(40):
        x, y = 40 + (n * 137) % 560, 30 + (n * 71) % 300
        draw.ellipse((x, y, x + 7, y + 7), fill=((n * 53) % 255, (n * 97) % 255, 180))
    return np.asarray(picture)


def with_names(
    bare: np.ndarray, font: ImageFont.FreeTypeFont, labels: list[tuple[int, int, str]]
) -> np.ndarray:
    """The frame with white names, each over its black drop shadow one pixel down and right."""
    picture = Image.fromarray(bare)
    draw = ImageDraw.Draw(picture)
    for x, y, text in labels:
        draw.text((x + 1, y + 1), text, font=font, fill=(0, 0, 0))
        draw.text((x, y), text, font=font, fill=(255, 255, 255))
    return np.asarray(picture)


def test_one_readable_label_scores_clean(font: ImageFont.FreeTypeFont) -> None:
    bare = scene()
    result = score(with_names(bare, font, [(300, 170, "README.md")]), bare, 14)
    assert (result.overlap, result.legible, result.piles, result.labels) == (0.0, 1.0, 0, 1)
    assert 0 < result.text < 0.005


def test_readable_labels_apart_and_a_tidy_list_score_clean(font: ImageFont.FreeTypeFont) -> None:
    bare = scene()
    apart = [(30, 30, TALL), (400, 40, "Zoë Ünïcødé"), (60, 300, "李小龍"), (250, 200, "docs/user guide.md"),
             (450, 300, "Дмитрий Соколов"), (470, 150, "jquery-ui.min.js")]  # fmt: skip
    listed = [(200, 60 + 18 * n, f"module_{n:02d}_handler.py") for n in range(6)]  # 18 px apart: a tight list
    result = score(with_names(bare, font, apart + listed), bare, 14)
    assert result.overlap == 0.0
    assert result.legible == 1.0
    assert result.labels >= len(apart) + len(listed)


def test_sixty_labels_drawn_over_each_other_score_as_a_pile(font: ImageFont.FreeTypeFont) -> None:
    bare = scene()
    rng = np.random.default_rng(17)
    places = zip(rng.integers(220, 320, 60), rng.integers(130, 210, 60), strict=True)
    labels = [(int(x), int(y), f"module_{n:02d}_handler.py") for n, (x, y) in enumerate(places)]
    result = score(with_names(bare, font, labels), bare, 14)
    assert result.legible is not None
    assert result.legible < 0.1
    assert result.overlap > 0.04  # the pile's box: ~240 x 95 px of a 640 x 360 frame
    assert result.piles >= 1


def test_two_labels_overlapping_by_half_a_line_are_a_pile(font: ImageFont.FreeTypeFont) -> None:
    bare = scene()
    result = score(with_names(bare, font, [(300, 170, "handler.py"), (310, 177, "resolver.py")]), bare, 14)
    assert (result.piles, result.legible) == (1, 0.0)


def tagged(bare: np.ndarray, font: ImageFont.FreeTypeFont, labels: list[tuple[int, int, str]]) -> np.ndarray:
    """The tags render of these labels: a mark 2/7 the label's size at its top left corner."""
    picture = Image.fromarray(bare)
    draw = ImageDraw.Draw(picture)
    for x, y, text in labels:
        left, top, right, _ = draw.textbbox((x, y), text, font=font)
        draw.rectangle((left, top, left + round((right - left) * 2 / 7) - 1, top + 3), fill=(200, 200, 200))
    return np.asarray(picture)


def test_labels_drawn_over_each_other_on_one_line_are_a_pile_when_their_tags_say_so(
    font: ImageFont.FreeTypeFont,
) -> None:
    bare = scene()
    overlapping = [
        (200, 170, "epsilon_notes.txt"),
        (260, 170, "gamma_notes.txt"),
    ]  # one line: blob height says 1
    real = with_names(bare, font, overlapping)
    assert score(real, bare, 14).piles == 0
    result = score(real, bare, 14, tagged(bare, font, overlapping))
    assert result.piles == 1
    assert result.legible == 0.0
    apart = [(60, 170, "epsilon_notes.txt"), (260, 170, "gamma_notes.txt"), (60, 186, "zeta_notes.txt")]
    result = score(with_names(bare, font, apart), bare, 14, tagged(bare, font, apart))
    assert (result.piles, result.legible) == (0, 1.0)  # side by side and one line below: apart


def test_a_frame_without_names_has_no_text_rather_than_perfect_text() -> None:
    bare = scene()
    result = score(bare.copy(), bare, 14)
    assert (result.text, result.legible, result.overlap) == (0.0, None, 0.0)
    assert Legibility([result], [], [], 14, 0.0).legible is None


def test_faint_and_dark_pixels_are_not_glyphs() -> None:
    bare = scene()
    real = bare.astype(np.int16)
    real[10:20, 10:20] += GLYPH_STEP - 2  # a fading bloom, or a name at 10 % opacity
    real[30:40, 30:40] -= 60  # a drop shadow alone
    assert not glyphs(np.clip(real, 0, 255).astype(np.uint8), bare).any()


def test_video_figures_pool_the_glyphs_and_average_the_overlap() -> None:
    frames = [
        FrameScore(30, 0.01, 0.0, 1.0, glyphs=100, piled=0, labels=3, piles=0),
        FrameScore(60, 0.03, 0.2, 0.25, glyphs=300, piled=225, labels=2, piles=1),
    ]
    video = Legibility(frames, [], [], 14, 0.0)
    assert video.overlap == pytest.approx(0.1)
    assert video.worst == pytest.approx(0.2)
    assert video.legible == pytest.approx(1 - 225 / 400)
    assert video.text == pytest.approx(0.02)


def test_blob_heights_decide_what_is_a_pile(font: ImageFont.FreeTypeFont) -> None:
    bare = scene()
    found = blobs(glyphs(with_names(bare, font, [(100, 100, TALL)]), bare), 14)
    assert max(b.bottom - b.top for b in found) < 1.4 * 14  # the tallest single line stays below a pile


# The argv the measure runs ---------------------------------------------------------------------------------
PLAN = ["-1280x720", "--output-framerate", "30", "--stop-at-time", "60", "--hide", "mouse,progress",
        "--seconds-per-day", "0.0140277", "--auto-skip-seconds", "0.6", "--max-file-lag", "0.6"]  # fmt: skip


def test_the_twins_hide_or_shrink_only_the_names_and_all_film_every_tick_with_a_little_more_file_lag() -> (
    None
):
    real, bare, tags = renders(PLAN)
    assert real == [PLAN[0], "--output-framerate", "60", *PLAN[3:-1], "0.608333"]  # 36 ticks + 1/2
    assert bare == [*real[:6], "mouse,progress,filenames,usernames,dirnames", *real[7:]]
    assert tags == [*real, "--file-font-size", "4", "--user-font-size", "4", "--dir-font-size", "4"]
    real, bare, tags = renders(["-640x360", "--time-scale", "2", "--dir-font-size", "25"])
    assert real[-2:] == ["--max-file-lag", "5.016667"]  # gource's own 5 s; ticks twice as long
    assert bare == [*real, "--hide", "filenames,usernames,dirnames"]
    assert tags[tags.index("--dir-font-size") + 1] == "7"


def test_the_name_size_follows_what_the_argv_shows() -> None:
    assert font_px(PLAN, 720) == 14
    assert font_px(PLAN, 1600) == 28  # gource doubles its fonts from 1600 lines up
    assert font_px([*PLAN, "--font-scale", "1.5"], 720) == 21
    organisation = ["--hide", "mouse,progress,filenames", "--dir-font-size", "25"]
    assert font_px(organisation, 720) == 25
    assert font_px(["--hide", "filenames", "--file-font-size", "30"], 720) == 14


def test_samples_are_spread_evenly_after_the_first_second() -> None:
    frames = sample_frames(60, 30, 12)
    assert len(frames) == 12
    assert frames[0] > 30
    assert frames[-1] < 1800
    steps = np.diff(frames)
    assert steps.max() - steps.min() <= 1


# Frames gource renders --------------------------------------------------------------------------------------
T0 = 1_700_000_000
RENDER = ["--output-framerate", "30", "--stop-at-end", "--disable-input", "--no-vsync",
         "--seconds-per-day", "1", "--filename-time", "30"]  # fmt: skip
APART = {
    "alpha": "first",
    "beta": "second",
    "gamma": "third",
    "delta": "fourth",
    "epsilon": "fifth",
    "zeta": "sixth",
}


def custom_log(path: Path, changes: list[str]) -> Path:
    path.write_text("".join(f"{T0 + 3600 * n}|Alice|A|{change}\n" for n, change in enumerate(changes)))
    return path


@pytest.fixture(scope="module")
def apart_log(tmp_path_factory: pytest.TempPathFactory, renderer: None) -> Path:
    """Six files in six far-apart directories, named by file name only: labels apart."""
    folder = tmp_path_factory.mktemp("legibility")
    return custom_log(folder / "apart.log", [f"/{d}/one/two/three/{f}.txt" for d, f in APART.items()])


@pytest.fixture(scope="module")
def films(apart_log: Path) -> dict[str, dict[int, tuple[int, np.ndarray]]]:
    """Ticks 150, 210 and 270 of one argv rendered twice, and of its bare twin (paired by content):
    from 2.5 s on, every name has faded in."""
    real, bare, _ = renders(
        [f"-{WIDTH}x{HEIGHT}", *RENDER, "--hide", "mouse,progress,usernames,dirnames", "--stop-at-time", "4"]
    )
    size = {"width": WIDTH, "height": HEIGHT, "workdir": apart_log.parent}
    with film(apart_log, "custom", real, **size) as stream:
        first = keep(stream, [150, 210, 270])
    with film(apart_log, "custom", real, **size) as stream:
        again = pair(first, stream, 10)
    with film(apart_log, "custom", bare, **size) as stream:
        twin = pair(first, stream, 10)
    return {"first": {k: (k, v) for k, v in first.items()}, "again": again, "twin": twin}


@pytest.mark.slow
def test_one_argv_renders_the_same_film_twice(films: dict[str, dict[int, tuple[int, np.ndarray]]]) -> None:
    assert sorted(films["first"]) == [150, 210, 270]
    for index, (_, frame) in films["first"].items():
        _, again = films["again"][index]
        assert np.array_equal(frame, again), f"frame {index} differs between two runs of one argv"


@pytest.mark.slow
def test_hiding_the_names_changes_nothing_but_the_names(
    films: dict[str, dict[int, tuple[int, np.ndarray]]],
) -> None:
    for index, (_, real) in films["first"].items():
        _, bare = films["twin"][index]
        mask = glyphs(real, bare)
        assert mask.sum() > 300  # six names are there...
        changed = (real != bare).any(axis=2)
        away = changed & ~ndimage.binary_dilation(mask, iterations=3)  # not a name, its shadow or edge
        assert away.sum() < 0.01 * changed.sum(), f"tick {index}: the twin differs away from the names"
        step = np.abs(luminance(real).astype(int) - luminance(bare))
        assert (step[away] < GLYPH_STEP).all()  # and what does is faint


def measured(
    log: Path,
    hide: str,
    folder: Path,
    frames: list[int] | None = None,
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> Legibility:
    width, height = size
    return measure(
        log, "custom", [f"-{width}x{height}", *RENDER, "--hide", hide], width=width, height=height,
        framerate=30, seconds=4, folder=folder, samples=4, frames=frames,
    )  # fmt: skip


SETTLED = [60, 80, 100, 118]  # 2 s to 4 s: the names have faded in and spread out


@pytest.mark.slow
def test_gource_frames_of_one_label_and_of_labels_apart_score_clean(
    apart_log: Path, tmp_path: Path, renderer: None
) -> None:
    one_log = custom_log(tmp_path / "one.log", ["/README.md"])
    one = measured(one_log, "mouse,progress,usernames", tmp_path / "one", SETTLED)
    # At 720p the six directories lie apart; at 360p gource zooms out and their names collide.
    apart = measured(apart_log, "mouse,progress,usernames,dirnames", tmp_path / "apart", SETTLED, (1280, 720))
    for result, names in ((one, 1), (apart, len(APART))):
        assert [f.frame for f in result.frames] == SETTLED
        assert result.overlap == 0.0
        assert result.legible == 1.0
        assert all(names <= f.labels <= 2 * names for f in result.frames)  # a name may break at a _
        assert all(p.exists() for p in [*result.pictures, *result.marked])


@pytest.mark.slow
def test_gource_frames_of_sixty_files_in_one_directory_score_as_piled(tmp_path: Path, renderer: None) -> None:
    log = tmp_path / "pile.log"
    log.write_text("".join(f"{T0}|Alice|A|/src/module_{n:02d}_handler.py\n" for n in range(60)))
    result = measured(log, "mouse,progress", tmp_path / "pile")
    assert result.legible is not None
    assert result.legible < 0.2
    assert result.overlap > 0.05
    assert all(f.piles >= 1 for f in result.frames)


@pytest.mark.slow
def test_the_command_line_prints_the_figures_of_a_repository_and_writes_a_picture(
    sample_repo: Path, tmp_path: Path
) -> None:
    picture, frames = tmp_path / "frame.png", tmp_path / "frames"
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "legibility.py"), str(sample_repo), "--seconds", "2",
         "--samples", "2", "--picture", str(picture), "--picture-at", "1.5", "--out", str(frames)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "commits from 2024-01-01 to 2024-01-11" in result.stdout
    assert re.search(r"overlap [\d.]+% \(worst frame [\d.]+%\), legible ([\d.]+%|no text)", result.stdout)
    with Image.open(picture) as shown:
        assert shown.size == (1280, 720)
    assert sorted(p.name for p in (tmp_path / "frames").glob("real-*.png")) == [
        "real-00.png",
        "real-01.png",
        "real-02.png",
    ]
