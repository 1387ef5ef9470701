"""How legible a gource video is, measured on its frames (issue 17), not by eye alone.

What is measured is the floating text: file, user and directory names, the labels that pile
up into a grey block on a big history. The date, title, key and captions sit where gource
always puts them and are left out.

Three renders of one film. Gource's simulation does not depend on what it draws, so the argv
plus `--hide filenames,usernames,dirnames` (the *bare* twin) is the very same film without
names: where a real frame is brighter than its bare twin is exactly where the names' white
glyphs are, over whatever lies under them (bloom, files, edges). The *tags* twin draws every
name at 2/7 of its size: a small mark at the top left of each label, scaled up 3.5 times it
says where each label lies, which tells two labels drawn over each other on one line apart
from one label. Three things in gource 0.54 make a twin need care; all three were found by
rendering one argv twice, and all three touch the processor's own renders too:

- Its frame exporter drops frames when the machine is busy (core/ppm.cpp: `dump()` replaces a
  frame that the writer thread has not taken yet), so frame n of one run can be frame n+k of
  another. Each sampled real frame is paired with the twin's frame that differs from it least
  (near where the frame before was found): the same moment differs only in the names (50k
  pixels of a 720p hairball frame), a neighbouring one everywhere (350k).
- A 30 fps video shows every other tick of a 60 Hz simulation, counted from gource's start,
  and the first simulated tick races gource's log-reading thread: which ticks a video shows
  changes from run to run. The measure films every tick (`--output-framerate 60`; gource
  simulates 60 ticks a second for 30 and 60 fps alike, 75 for 25 fps).
- The same race shifts gource's float clock by a tick or two; with `--max-file-lag` a whole
  number of ticks (the fitted 0.6 s is 36, gource's default 5 s too) its "file waited too
  long" test (user.cpp) flips one way or the other and runs drift apart. Half a tick more file
  lag keeps the test off that edge: every run of an argv is then the same film. The
  processor's fitted lag carries that half tick itself (processor/render.py, `fit`); the
  measure adds it only to an argv whose lag is still a whole number of ticks.

How piles are found. Glyph pixels (luminance at least GLYPH_STEP above the bare twin's) are
joined into word blobs (the letters and words of a label, after closing gaps of a few pixels).
One line of text is never taller than its font size (ring, accent and descender included),
so a blob taller than PILE_LINES font sizes is labels stacked over each other: a pile. Labels
whose tag boxes overlap (by SLACK pixels both ways) are a pile too, whatever their height.

The figures, per frame and per video (over `samples` frames spread evenly after the first
second):

- **overlap**: share of the frame covered by the bounding boxes of piles (0 is clean);
- **legible**: share of the glyph pixels that are not in a pile (1 is clean; None: no text);
- **text**: share of the frame that is glyph pixels, so "no text at all" shows as such.

Per video, overlap and text are means over the frames and legible is pooled over all glyph
pixels (a frame with much text weighs more); `worst` is the largest overlap of one frame.
A sampled frame no twin frame matches (stray differences away from glyphs) is left out and
counted. Run `python tests/legibility.py --help` for the command line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tests/legibility.py` uses this worktree's processor
    sys.path.insert(0, str(ROOT))

from processor.contract import GourceOptions  # noqa: E402
from processor.git import LOG_ARGS  # noqa: E402
from processor.procs import kill_group, spawn  # noqa: E402
from processor.render import Fitted, RenderPlan, _start_display, fit, plan, write_log  # noqa: E402
from processor.settings import ProcessorSettings  # noqa: E402
from processor.timeline import LogFormat, prepare  # noqa: E402

GLYPH_STEP = 32  # luminance a name's glyph adds at least (white text at 15 % opacity on #191919)
PILE_LINES = 1.4  # a blob taller than this many font sizes is labels over labels
MAX_STRAY = 0.4  # more of a twin's differences than this away from glyphs: not the same moment
_JOIN = np.ones((3, 6), dtype=bool)  # closes gaps inside a label: letters, words, an i's dot
NAMES = ("filenames", "usernames", "dirnames")
TICKS = 60  # gource simulates 60 ticks a second for 30 and 60 fps videos; the measure films every one
_GOURCE_NAME_SIZE = 14  # gource_settings.cpp: file, user and directory names
_NAME_SIZES = (
    ("--file-font-size", "filenames"),
    ("--user-font-size", "usernames"),
    ("--dir-font-size", "dirnames"),
)
TAG_RATIO = 2 / 7  # the tags render draws each name at 2/7 of its size: a mark where the label lies
TAG_STEP = 16  # luminance a tag adds at least (its tiny glyphs are thin)
SLACK = 2  # labels that overlap by less than this many pixels only touch
_TAG_LINE = 6  # pixels: the height of one line of tags (4 px names, accents and descenders)


# Pure measure ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameScore:
    """The figures of one frame."""

    frame: int  # its index in the video
    text: float  # share of the frame that is glyph pixels of names
    overlap: float  # share of the frame covered by the bounding boxes of piles
    legible: float | None  # share of glyph pixels outside piles; None when there is no text
    glyphs: int  # glyph pixels
    piled: int  # glyph pixels inside piles
    labels: int  # word blobs outside piles (a name with a space or an underscore may make two)
    piles: int  # separate regions of the frame under piles
    offset: int = 0  # the bare twin's tick paired with it, relative to its own (frames dropped)
    stray: float = 0.0  # share of the pixels that differ from the twin away from any glyph (0: well paired)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Blob:
    """A word blob: one label, or a pile of them."""

    top: int
    left: int
    bottom: int  # exclusive
    right: int  # exclusive
    glyphs: int
    pile: bool


def glyphs(real: np.ndarray, bare: np.ndarray) -> np.ndarray:
    """Where a name's glyphs are: the real frame at least GLYPH_STEP brighter than its bare twin."""
    return luminance(real) - luminance(bare) >= GLYPH_STEP


def luminance(frame: np.ndarray) -> np.ndarray:
    rgb = frame.astype(np.int32)
    return (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) // 1000


def blobs(glyph_mask: np.ndarray, font_px: int) -> list[Blob]:
    """The word blobs of a glyph mask; those taller than PILE_LINES font sizes are piles."""
    joined = ndimage.binary_closing(glyph_mask, structure=_JOIN) | glyph_mask
    labels, _ = ndimage.label(joined, structure=np.ones((3, 3), dtype=bool))
    counts = np.bincount(labels.ravel(), weights=glyph_mask.ravel())
    found = []
    for number, where in enumerate(ndimage.find_objects(labels), start=1):
        if where is None or counts[number] == 0:
            continue
        rows, cols = where
        height = rows.stop - rows.start
        found.append(
            Blob(
                rows.start,
                cols.start,
                rows.stop,
                cols.stop,
                int(counts[number]),
                height > PILE_LINES * font_px,
            )
        )
    return found


@dataclass(frozen=True)
class Box:
    """Where a label lies, estimated from its tag: the tag's box scaled up from its top left corner."""

    top: int
    left: int
    bottom: int  # exclusive
    right: int  # exclusive


def labels(tags: np.ndarray, bare: np.ndarray, scale: float = 1 / TAG_RATIO) -> list[Box]:
    """The labels of a frame, one per tag: the tags render against the bare twin."""
    mask = luminance(tags) - luminance(bare) >= TAG_STEP
    joined = ndimage.binary_closing(mask, structure=np.ones((1, 3), dtype=bool)) | mask
    found, _ = ndimage.label(joined, structure=np.ones((3, 3), dtype=bool))
    boxes = []
    for rows, cols in filter(None, ndimage.find_objects(found)):
        # A tag sits at the top left of its label: its width scales up, its height grows by the rest
        # of a line (many tags run together in a pile: the line is added once, not scaled up).
        height, width = rows.stop - rows.start, cols.stop - cols.start
        bottom = rows.stop + round(min(height, _TAG_LINE) * (scale - 1))
        boxes.append(Box(rows.start, cols.start, bottom, cols.start + round(width * scale)))
    return boxes


def collisions(boxes: Sequence[Box]) -> list[Box]:
    """The bounding boxes of groups of labels drawn over each other (overlapping by SLACK pixels or
    more both ways); a label alone is in none."""
    if len(boxes) < 2:
        return []
    top, left, bottom, right = (
        np.array([getattr(b, side) for b in boxes]) for side in ("top", "left", "bottom", "right")
    )
    wide = np.minimum(right[:, None], right[None, :]) - np.maximum(left[:, None], left[None, :])
    tall = np.minimum(bottom[:, None], bottom[None, :]) - np.maximum(top[:, None], top[None, :])
    touching = (wide >= SLACK) & (tall >= SLACK)
    np.fill_diagonal(touching, False)
    count, member = _components(touching)
    found = []
    for group in range(count):
        members = np.flatnonzero(member == group)
        if len(members) > 1:
            found.append(Box(int(top[members].min()), int(left[members].min()), int(bottom[members].max()),
                             int(right[members].max())))  # fmt: skip
    return found


def _components(adjacent: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a symmetric adjacency matrix: how many, and each node's component."""
    member = np.full(len(adjacent), -1)
    count = 0
    for start in range(len(adjacent)):
        if member[start] >= 0:
            continue
        stack = [start]
        member[start] = count
        while stack:
            node = stack.pop()
            for other in np.flatnonzero(adjacent[node] & (member < 0)):
                member[other] = count
                stack.append(int(other))
        count += 1
    return count, member


@dataclass(frozen=True)
class Assessment:
    """What the measure saw in a frame: its glyphs, its word blobs and the boxes of its piles."""

    glyphs: np.ndarray
    blobs: list[Blob]
    piles: list[Box]  # tall blobs, and groups of labels drawn over each other on a line


def assess(real: np.ndarray, bare: np.ndarray, font_px: int, tags: np.ndarray | None = None) -> Assessment:
    """A real frame against its bare twin, names drawn at `font_px` pixels; with the `tags` render,
    labels drawn over each other on one line count as piles too."""
    mask = glyphs(real, bare)
    found = blobs(mask, font_px)
    tall = [Box(b.top, b.left, b.bottom, b.right) for b in found if b.pile]
    groups = collisions(labels(tags, bare) if tags is not None else [])
    return Assessment(mask, found, [*tall, *filter(None, (_inked(mask, box) for box in groups))])


def _inked(mask: np.ndarray, box: Box) -> Box | None:
    """The box shrunk to the glyphs in it: tags say where labels lie, glyphs how far they reach."""
    inside = mask[box.top : box.bottom, box.left : box.right]
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not len(rows):
        return None
    top, left = box.top + int(rows[0]), box.left + int(cols[0])
    return Box(top, left, box.top + int(rows[-1]) + 1, box.left + int(cols[-1]) + 1)


def score(
    real: np.ndarray,
    bare: np.ndarray,
    font_px: int,
    tags: np.ndarray | None = None,
    *,
    frame: int = 0,
    offset: int = 0,
) -> FrameScore:
    """The figures of a real frame (see `assess`)."""
    seen = assess(real, bare, font_px, tags)
    covered = np.zeros(seen.glyphs.shape, dtype=bool)
    for box in seen.piles:
        covered[box.top : box.bottom, box.left : box.right] = True
    total = int(seen.glyphs.sum())
    piled = int((seen.glyphs & covered).sum())
    changed = (real != bare).any(axis=2)
    stray = changed & ~ndimage.binary_dilation(seen.glyphs, iterations=3)
    _, piles = ndimage.label(covered)
    return FrameScore(
        frame=frame,
        text=total / covered.size,
        overlap=float(covered.mean()),
        legible=None if total == 0 else 1 - piled / total,
        glyphs=total,
        piled=piled,
        labels=sum(1 for b in seen.blobs if not covered[b.top : b.bottom, b.left : b.right].any()),
        piles=int(piles),
        offset=offset,
        stray=float(stray.sum() / max(1, changed.sum())),
    )


def font_px(gource_args: Sequence[str], height: int) -> int:
    """The pixel size gource draws the names in that this argv shows (the largest, if they differ)."""
    scale = float(_option(gource_args, "--font-scale") or (1 + height // 1600))  # gource.cpp, no HiDPI
    hidden = set((_option(gource_args, "--hide") or "").split(","))
    sizes = [
        int(_option(gource_args, flag) or _GOURCE_NAME_SIZE)
        for flag, kind in _NAME_SIZES
        if kind not in hidden and not (kind == "filenames" and "files" in hidden)
    ]
    return max(1, int(max(sizes, default=_GOURCE_NAME_SIZE) * scale))


def _option(args: Sequence[str], flag: str) -> str | None:
    """The value of the last `flag VALUE` in argv (gource reads one value per option)."""
    value = None
    for name, following in zip(args, [*args[1:], None], strict=True):
        if name == flag:
            value = following
    return value


def _with_option(args: Sequence[str], flag: str, value: str) -> list[str]:
    """argv with `flag` set to `value`: replaced where it is, appended where it is not."""
    out, found = list(args), False
    for n, name in enumerate(out[:-1]):
        if name == flag:
            out[n + 1], found = value, True
    return out if found else [*out, flag, value]


def renders(gource_args: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """The real argv as the measure renders it, its bare twin and its tags twin (see the module
    docstring): a frame for every simulated tick, a file lag off the edge of a tick."""
    scale = float(_option(gource_args, "--time-scale") or 1)
    lag = float(_option(gource_args, "--max-file-lag") or 5.0)  # gource's default
    real = _with_option(gource_args, "--output-framerate", str(TICKS))
    ticks = lag / (scale / TICKS)
    if abs(ticks - round(ticks)) < 0.25:
        real = _with_option(real, "--max-file-lag", f"{lag + 0.5 * scale / TICKS:.6f}")
    hidden = [h for h in (_option(real, "--hide") or "").split(",") if h]
    bare = _with_option(real, "--hide", ",".join([*hidden, *(n for n in NAMES if n not in hidden)]))
    tags = real
    for flag, _ in _NAME_SIZES:
        size = int(_option(real, flag) or _GOURCE_NAME_SIZE)
        tags = _with_option(tags, flag, str(max(1, round(size * TAG_RATIO))))
    return real, bare, tags


def sample_frames(seconds: float, framerate: int, count: int = 12) -> list[int]:
    """`count` frame indices spread evenly over the video after its first second (the middle of each
    of `count` equal stretches)."""
    start = min(1.0, seconds / 2)
    step = (seconds - start) / count
    return sorted({min(int(seconds * framerate) - 1, round((start + (k + 0.5) * step) * framerate))
                   for k in range(count)})  # fmt: skip


# Rendering -------------------------------------------------------------------------------------------
@contextmanager
def film(
    log: Path, log_format: LogFormat, args: Sequence[str], *, width: int, height: int, workdir: Path
) -> Iterator[Iterator[np.ndarray]]:
    """gource's PPM frames as arrays, read straight from its stdout, on a private Xvfb display.

    The frames come to Python rather than ffmpeg because the bare twin's are paired by content.
    """
    xvfb, display = _start_display(width, height)  # processor/render.py's own display
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "DISPLAY": display,
        "LIBGL_ALWAYS_SOFTWARE": "1",
        "LANG": "C.UTF-8",
    }
    started = [xvfb]
    try:
        with (workdir / "gource.err").open("ab") as errors:
            gource = spawn(
                ["gource", "--log-format", log_format, *args, "-o", "-", str(log)],
                group=xvfb.pid, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
            )  # fmt: skip
        started.append(gource)
        if gource.stdout is None:  # pragma: no cover - Popen(stdout=PIPE) always sets it
            raise RuntimeError("gource has no stdout")
        with gource.stdout:
            yield _read_ppm(gource.stdout, width, height)
    finally:
        kill_group(xvfb.pid)
        for proc in started:
            proc.wait()


def _read_ppm(stream: IO[bytes], width: int, height: int) -> Iterator[np.ndarray]:
    header = b"P6\n%d %d 255\n" % (width, height)  # core/ppm.cpp
    size = width * height * 3
    while True:
        head = stream.read(len(header))
        if len(head) < len(header):
            return
        if head != header:
            raise RuntimeError(f"gource wrote {head!r}, not a {width}x{height} PPM frame")
        body = stream.read(size)
        if len(body) < size:
            return
        yield np.frombuffer(body, dtype=np.uint8).reshape(height, width, 3)


def keep(stream: Iterator[np.ndarray], wanted: Sequence[int]) -> dict[int, np.ndarray]:
    """The frames of a film at these indices (fewer if it ends first); stops reading after the last."""
    kept: dict[int, np.ndarray] = {}
    last = max(wanted, default=-1)
    for index, frame in enumerate(stream):
        if index in wanted:
            kept[index] = frame
        if index >= last:
            break
    return kept


def pair(
    frames: dict[int, np.ndarray], stream: Iterator[np.ndarray], window: int
) -> dict[int, tuple[int, np.ndarray]]:
    """For each of `frames`, the frame of `stream` that differs from it least, with its index: the
    same moment of the film, whatever frames either run dropped.

    Drops only add up, so each frame is looked for within `window` indices of where the one
    before it was found (its index plus the offset found so far); ties go to the nearest.
    """
    targets = sorted(frames)
    best: dict[int, tuple[tuple[int, int], int, np.ndarray]] = {}
    shift, current = 0, 0  # offset of the last target settled; the first target not settled
    for index, frame in enumerate(stream):
        while current < len(targets) and index > targets[current] + shift + window:
            if targets[current] in best:
                shift = best[targets[current]][1] - targets[current]
            current += 1
        if current == len(targets):
            break
        for target in targets[current:]:
            if target + shift - window > index:
                break
            rank = (_difference(frames[target], frame), abs(index - target - shift))
            if target not in best or rank < best[target][0]:
                best[target] = (rank, index, frame)
    return {target: (index, frame) for target, (_, index, frame) in best.items()}


def _difference(a: np.ndarray, b: np.ndarray) -> int:
    """Pixels that differ, on a 1-in-16 grid: how far apart two frames are in the film."""
    return int(np.count_nonzero((a[::4, ::4] != b[::4, ::4]).any(axis=2)))


@dataclass(frozen=True)
class Legibility:
    """The figures of a video, frame by frame, and where to look at its frames."""

    frames: list[FrameScore]
    pictures: list[Path]  # the real frames
    marked: list[Path]  # the same, piles outlined in red
    font_px: int
    seconds: float  # wall time of both renders
    left_out: list[str] = field(default_factory=list)  # sampled frames no twin frame matched, and why

    @property
    def overlap(self) -> float:
        return float(np.mean([f.overlap for f in self.frames])) if self.frames else 0.0

    @property
    def worst(self) -> float:
        return max((f.overlap for f in self.frames), default=0.0)

    @property
    def text(self) -> float:
        return float(np.mean([f.text for f in self.frames])) if self.frames else 0.0

    @property
    def legible(self) -> float | None:
        total = sum(f.glyphs for f in self.frames)
        return None if total == 0 else 1 - sum(f.piled for f in self.frames) / total

    def describe(self) -> str:
        legible = "no text" if self.legible is None else f"{self.legible:.1%}"
        return (
            f"overlap {self.overlap:.2%} (worst frame {self.worst:.2%}), legible {legible}, "
            f"text {self.text:.2%} of the frame, {len(self.frames)} frames"
            + (f" ({len(self.left_out)} left out: no twin)" if self.left_out else "")
            + f", names at {self.font_px} px"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "overlap": round(self.overlap, 5),
            "worstOverlap": round(self.worst, 5),
            "legible": None if self.legible is None else round(self.legible, 5),
            "text": round(self.text, 5),
            "fontPx": self.font_px,
            "leftOut": self.left_out,
            "frames": [f.as_dict() for f in self.frames],
            "pictures": [str(p) for p in self.pictures],
        }


def measure(
    log: Path,
    log_format: LogFormat,
    gource_args: Sequence[str],
    *,
    width: int,
    height: int,
    framerate: int,
    seconds: float,
    folder: Path,
    samples: int = 12,
    frames: Sequence[int] | None = None,
    window: int = 150,
) -> Legibility:
    """Render `seconds` of the video gource makes of `log` with `gource_args` (as processor/render.py
    builds them), and its bare twin; score `samples` frames spread over it (or the given `frames`).

    Writes `real-NN.png` (the frames a person sees) and `piles-NN.png` (piles outlined) into
    `folder`. Both renders run one after the other: in parallel, more frames drop.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted = sorted(set(frames)) if frames is not None else sample_frames(seconds, framerate, samples)
    # Which exported frame shows video frame `index`: gource ticks TICKS times a simulated
    # second, exports every tick here, and its clock runs `--time-scale` times as fast.
    per_frame = TICKS / framerate / float(_option(gource_args, "--time-scale") or 1)
    at_tick = {round(index * per_frame): index for index in wanted}
    argvs = [_with_option(a, "--stop-at-time", f"{seconds:g}") for a in renders(gource_args)]
    size = {"width": width, "height": height, "workdir": folder}
    started = time.monotonic()
    with film(log, log_format, argvs[0], **size) as stream:
        real = keep(stream, sorted(at_tick))
    with film(log, log_format, argvs[1], **size) as stream:
        bare = pair(real, stream, window)
    with film(log, log_format, argvs[2], **size) as stream:  # tags differ from the bare twin least
        tags = pair({tick: frame for tick, (_, frame) in bare.items()}, stream, window)
    elapsed = time.monotonic() - started
    px = font_px(gource_args, height)
    scores, pictures, marked, left_out = [], [], [], []
    for number, tick in enumerate(sorted(real)):
        why = _unpaired(real[tick], bare.get(tick), tags.get(tick), px)
        if why:
            left_out.append(f"{at_tick[tick] / framerate:.2f} s: {why}")
            continue
        scores.append(
            score(
                real[tick], bare[tick][1], px, tags[tick][1], frame=at_tick[tick], offset=bare[tick][0] - tick
            )
        )
        pictures.append(folder / f"real-{number:02d}.png")
        Image.fromarray(real[tick]).save(pictures[-1])
        marked.append(folder / f"piles-{number:02d}.png")
        outline(real[tick], assess(real[tick], bare[tick][1], px, tags[tick][1])).save(marked[-1])
    return Legibility(scores, pictures, marked, px, elapsed, left_out)


def _unpaired(
    real: np.ndarray, bare: tuple[int, np.ndarray] | None, tags: tuple[int, np.ndarray] | None, font_px: int
) -> str | None:
    """Why a real frame has no twin of the same moment, if it has none.

    Near a name is within 3 pixels of its glyphs, or below them by up to a line: gource draws a
    person's name with its bottom above the avatar, so a tiny tag sits that much lower."""
    if bare is None or tags is None:
        return "a twin's film ended before it"
    seen = glyphs(real, bare[1])
    near = ndimage.binary_dilation(seen, iterations=3)
    for drop in range(1, font_px + 1):
        near[drop:] |= seen[:-drop]
    for name, twin in (("bare", bare[1]), ("tags", tags[1])):
        changed = (twin != (real if name == "bare" else bare[1])).any(axis=2)
        stray = (changed & ~near).sum() / max(1, changed.sum())
        if stray > MAX_STRAY:
            return f"{stray:.0%} of the differences of the {name} twin lie away from any name"
    return None


def outline(frame: np.ndarray, seen: Assessment) -> Image.Image:
    """The frame with each pile outlined in red, each clean word underlined in green."""
    picture = Image.fromarray(frame)
    draw = ImageDraw.Draw(picture)
    for box in seen.piles:
        draw.rectangle((box.left - 1, box.top - 1, box.right, box.bottom), outline=(255, 40, 40))
    for blob in seen.blobs:
        if not blob.pile:
            draw.line((blob.left, blob.bottom + 1, blob.right - 1, blob.bottom + 1), fill=(40, 220, 40))
    return picture


# The processor's presentation -----------------------------------------------------------------------
def presentation(
    history: Path,
    folder: Path,
    log_format: LogFormat = "git",
    options: GourceOptions | None = None,
    settings: ProcessorSettings | None = None,
    *,
    several: bool = False,
) -> tuple[Path, Fitted]:
    """What the processor renders for a request's `options` (default: none) of this history: the
    log it writes for gource (in `folder`) and the fitted plan."""
    chosen = plan(options or GourceOptions(), settings or ProcessorSettings(), several=several)
    timeline = prepare(history, log_format, chosen.selection, strip_segments=1 if several else 0)
    fitted = fit(chosen, timeline)
    write_log(timeline, fitted, folder / "story.log")
    return folder / "story.log", fitted


def measure_plan(
    log: Path,
    render_plan: RenderPlan,
    folder: Path,
    *,
    samples: int = 12,
    seconds: float | None = None,
    frames: Sequence[int] | None = None,
) -> Legibility:
    """`measure` a plan on the log the processor wrote for it: its argv, size and frame rate;
    `seconds` renders only the start of it (at the pace fitted to the whole length)."""
    return measure(
        log,
        "custom",
        render_plan.gource_args,
        width=render_plan.width,
        height=render_plan.height,
        framerate=render_plan.framerate,
        seconds=seconds or render_plan.seconds,
        folder=folder,
        samples=samples,
        frames=frames,
    )


def git_log(repository: Path, out: Path) -> Path:
    """The log processor/git.py writes for a repository (LOG_ARGS)."""
    with out.open("wb") as log:
        subprocess.run(
            ["git", "-c", "core.quotepath=off", "--git-dir", str(_git_dir(repository)), *LOG_ARGS],
            stdout=log,
            check=True,
        )
    return out


def _git_dir(repository: Path) -> Path:
    return repository / ".git" if (repository / ".git").exists() else repository


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/legibility.py",
        description="How legible the processor's video of a history is today: overlap, legible, text.",
    )
    parser.add_argument("history", type=Path, help="a git repository (bare or not) or a gource log file")
    parser.add_argument("--custom", action="store_true", help="the log is gource's custom format (merged)")
    parser.add_argument("--seconds", type=float, default=None, help="render only this much of the video")
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--picture", type=Path, help="write the real frame nearest --picture-at here")
    parser.add_argument("--picture-at", type=float, default=None, help="seconds into the video (default 3/4)")
    parser.add_argument("--out", type=Path, help="keep every frame here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    log_format: LogFormat = "custom" if args.custom else "git"
    with tempfile.TemporaryDirectory(prefix="legibility-") as temporary:
        folder = args.out or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        history = args.history if args.history.is_file() else git_log(args.history, folder / "gource.log")
        log, fitted = presentation(history, folder, log_format, several=args.custom)
        render_plan, pace = fitted.plan, fitted.pace
        seconds = args.seconds or render_plan.seconds
        frames = sample_frames(seconds, render_plan.framerate, args.samples)
        if args.picture:
            at = seconds * 0.75 if args.picture_at is None else min(args.picture_at, seconds - 0.1)
            picture_frame = round(at * render_plan.framerate)
            frames = sorted({*frames, picture_frame})
        result = measure_plan(log, render_plan, folder, seconds=seconds, frames=frames)
        print(pace.describe())
        print(fitted.presentation.describe())
        print("gource " + " ".join(render_plan.gource_args))
        if args.json:
            import json

            print(json.dumps(result.as_dict(), indent=2))
        else:
            for frame in result.frames:
                legible = "no text" if frame.legible is None else f"{frame.legible:6.1%}"
                print(
                    f"  {frame.frame / render_plan.framerate:6.2f} s  overlap {frame.overlap:6.2%}  "
                    f"legible {legible}  text {frame.text:6.2%}  piles {frame.piles:3d}  "
                    f"labels {frame.labels:3d}  (twin {frame.offset:+d}, stray {frame.stray:.0%})"
                )
            print(result.describe() + f"; {result.seconds:.0f} s of rendering")
            for why in result.left_out:
                print(f"  left out at {why}")
        if args.picture:
            chosen = next(
                (p for f, p in zip(result.frames, result.pictures, strict=True) if f.frame == picture_frame),
                None,
            )
            if chosen is None:
                print("the picture frame is past the end of the video", file=sys.stderr)
                return 1
            args.picture.write_bytes(chosen.read_bytes())
            print(f"wrote {args.picture} ({picture_frame / render_plan.framerate:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
