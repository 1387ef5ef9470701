"""What gource draws, fitted to the history it is about to render, as the pace is fitted to its length.

Gource's defaults were made for watching a week of a small project: every changed file
shows its name for 4 s, every user who starts working shows theirs for 5 s, files never
leave and every directory is named. Played at a fitted pace (22 years in a minute is
0.007 s per day), 4 s of file names is 18 months of changes, and a big project's frame
is a grey block of thousands of names on top of each other. So, from the very changes
gource will draw (processor/timeline.py) placed on the video's clock by the pace model
(pacing.video_times), the processor works out how many labels, people and files each
choice would put on screen at once, and keeps each below what a frame of this size can
show legibly (the budgets below, in labels at once, measured at 1280x720 and scaled by
area and font size):

- **File names** only when few files change at a time: the longest name time (2..4 s,
  gource refuses less than 2) for which at most FILE_LABELS names are up at once in 95 %
  of the video; otherwise none.
- **People**: everyone is named when at most USER_LABELS people are on screen at once;
  otherwise the most active of each stretch of the video keep their names (while no moment
  shows more than USER_LABELS of them) and the others are drawn nameless, as a crowd of at
  most CROWD avatars that they share (gource has no option for this: the log names the
  crowd with blank characters of the font, processor/fonts.py). Hundreds of people at once
  are hundreds of avatars and beams: the costliest thing on a giant history's frame after
  the glow, and a haze of specks.
- **Files**: all of them stay while the tree holds at most FILES_ON_SCREEN; a bigger one
  lets files that have gone quiet go (`--file-idle-time`, the longest that keeps the
  tree within it) and caps what is left (`--max-files`; a commit that floods thousands of
  files is cut to an even sample of that many before gource reads it).
- **Directories**: names down to the deepest level whose directories fit DIR_LABELS,
  always shown (`--highlight-dirs`) when they fit: the tree's structure stays labelled.
- **Glow**: a dense tree's bloom adds up to a haze over everything, and it is the most
  expensive thing gource draws in software (processor/cost.py), so it is dimmed with size.
- **Churn**: a tree whose files come and go within seconds (idle time of 2 s or less)
  spreads them over many more directories; it holds two thirds of FILES_ON_SCREEN and does
  not glow.

Each choice can be overridden by the request (`hide`, `maxFiles`, `fileIdleTime`,
`filenameTime`, `userScale`, `cameraMode`, `fileExtensions`, and the bloom options).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from processor.contract import GourceOptions
from processor.timeline import Timeline

# Budgets at 1280x720 with gource's own font sizes (scaled by area and by font size).
FILE_LABELS = 10  # file names up at once
USER_LABELS = 10  # named people on screen at once
DIR_LABELS = 20  # directory names always shown
FILES_ON_SCREEN = 1200  # files in the tree at once
CHURNING_SHARE = 2 / 3  # of it for a tree whose files come and go within seconds
DENSE = 600  # files on screen from which the glow is dimmed
CROWD = 30  # avatars the nameless share
REFERENCE_AREA = 1280 * 720

NAME_TIMES = (4.0, 3.0, 2.0)  # gource's default file name time, down to its minimum
USER_VISIBLE = 4.0  # a user stays 3 s after their last change, then fades for 1 s (render.fit)
USER_WINDOW = 5.0  # a stretch of video whose most active people keep their names
CANDIDATES = 8  # the most active people of a stretch who may be named
SAMPLE_STEP = 0.5  # seconds between the moments the measures look at
SHARE = 0.95  # the measures hold in this share of those moments


@dataclass(frozen=True)
class Presentation:
    """What gource draws, and the measures that chose it (for the result event and the log)."""

    hide: tuple[str, ...]
    filename_time: float | None
    file_idle_time: int
    max_files: int | None
    dir_name_depth: int
    highlight_dirs: bool
    dir_font_size: int | None
    named: int  # authors who keep their names
    authors: int
    crowd: int | None  # avatars the others share (None: everyone has their own)
    font_scale: float
    user_scale: float | None = None
    camera_mode: str | None = None
    file_extensions: bool = False
    bloom_multiplier: float | None = None
    bloom_intensity: float | None = None
    measured: dict[str, float] = field(default_factory=dict)
    requested: tuple[str, ...] = ()  # the choices the request made itself

    def args(self) -> list[str]:
        """gource's argv for this presentation (the mouse and the progress bar always hidden)."""
        args = ["--hide", ",".join(("mouse", "progress", *self.hide))]
        if self.filename_time is not None and "filenames" not in self.hide:
            args += ["--filename-time", f"{self.filename_time:g}"]
        if self.file_idle_time:
            args += ["--file-idle-time", str(self.file_idle_time)]
        if self.max_files is not None:
            args += ["--max-files", str(self.max_files)]
        if self.dir_name_depth:
            args += ["--dir-name-depth", str(self.dir_name_depth)]
        if self.highlight_dirs:
            args.append("--highlight-dirs")
        if self.dir_font_size is not None:
            args += ["--dir-font-size", str(self.dir_font_size)]
        if self.dir_name_depth != 0 and "dirnames" not in self.hide and "filenames" in self.hide:
            # A name at its directory's own node, not midway along the branch from its parent:
            # a hub's children otherwise pile their names up around the hub (measured on rails:
            # 69 % of the text legible at 0.5, 80 % at 1; the medium history: 90 % and 100 %).
            # Not with file names, which sit around the node (the small history: 99 % and 72 %).
            args += ["--dir-name-position", "1"]
        if self.font_scale != 1:
            args += ["--font-scale", f"{self.font_scale:g}"]
        for flag, value in (
            ("--user-scale", self.user_scale),
            ("--camera-mode", self.camera_mode),
            ("--bloom-multiplier", self.bloom_multiplier),
            ("--bloom-intensity", self.bloom_intensity),
        ):
            if value is not None:
                args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        if self.file_extensions:
            args.append("--file-extensions")
        return args

    def as_dict(self) -> dict[str, object]:
        shown = {
            "hide": list(self.hide),
            "fileNames": "filenames" not in self.hide,
            "filenameTime": self.filename_time,
            "fileIdleTime": self.file_idle_time,
            "maxFiles": self.max_files,
            "dirNameDepth": self.dir_name_depth,
            "highlightDirs": self.highlight_dirs,
            "namedAuthors": self.named,
            "authors": self.authors,
            "crowd": self.crowd,
            "fontScale": self.font_scale,
            "userScale": self.user_scale,
            "cameraMode": self.camera_mode,
            "fileExtensions": self.file_extensions,
            "bloomMultiplier": self.bloom_multiplier,
            "bloomIntensity": self.bloom_intensity,
            "requested": list(self.requested),
            "measured": self.measured,
        }
        return {key: value for key, value in shown.items() if value is not None}

    def describe(self) -> str:
        names = "file names" if "filenames" not in self.hide else "no file names"
        files = f"files idle {self.file_idle_time} s leave" if self.file_idle_time else "every file stays"
        people = f"{self.named} of {self.authors} people named"
        if self.crowd is not None:
            people += f", the others as a crowd of {self.crowd}"
        glow = ", no glow" if "bloom" in self.hide else ""
        return f"{names}, {people}, {files}{glow}, directories named to depth {self.dir_name_depth or 'all'}"


def _quantile(values: Sequence[float], share: float = SHARE) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def _moments(seconds: float) -> list[float]:
    return [n * SAMPLE_STEP for n in range(1, int(seconds / SAMPLE_STEP) + 1)]


class _Clock:
    """The history placed on the video's clock: when each commit plays, and what it brings."""

    def __init__(self, timeline: Timeline, times: Sequence[float], seconds: float):
        self.timeline, self.times, self.seconds = timeline, times, seconds
        self.moments = _moments(seconds)
        self.changes_before = list(timeline.first)  # changes of commits 0..c-1
        # When each change plays (its commit's time), for the per-file measures.
        self.change_times = [times[c] for c in range(timeline.commits) for _ in timeline.changes_of(c)]

    def window(self, end: float, length: float) -> range:
        """The commits played in (end - length, end]."""
        return range(bisect.bisect_right(self.times, end - length), bisect.bisect_right(self.times, end))

    def changes_in(self, end: float, length: float) -> int:
        commits = self.window(end, length)
        return self.changes_before[commits.stop] - self.changes_before[commits.start]


def _file_names(clock: _Clock, budget: float) -> tuple[float | None, float]:
    """The longest name time keeping names within budget, or None; and the load at gource's default."""
    loads = {t: _quantile([clock.changes_in(m, t) for m in clock.moments]) for t in NAME_TIMES}
    fitting = next((t for t in NAME_TIMES if loads[t] <= budget), None)
    return fitting, loads[NAME_TIMES[0]]


def _named_people(clock: _Clock, budget: float) -> tuple[set[int] | None, float]:
    """Who keeps a name (None: everyone), and how many people are on screen at once.

    Stretch by stretch of the video, its most active people keep their names while no moment
    would show more than `budget` named people: a big project's core team is named from the
    start, newcomers as they rise, and a frame never holds a pile of names."""
    on_screen = [{clock.timeline.authors[c] for c in clock.window(m, USER_VISIBLE)} for m in clock.moments]
    crowd = _quantile([len(people) for people in on_screen])
    if crowd <= budget:
        return None, crowd
    named: set[int] = set()
    shown = [0] * len(on_screen)  # named people on screen at each moment
    for end in _moments_every(clock.seconds, USER_WINDOW):
        active = Counter(clock.timeline.authors[c] for c in clock.window(end, USER_WINDOW))
        for author, _ in active.most_common(CANDIDATES):
            where = [i for i, people in enumerate(on_screen) if author in people]
            if author not in named and all(shown[i] + 1 <= budget for i in where):
                named.add(author)
                for i in where:
                    shown[i] += 1
    return named, crowd


def _moments_every(seconds: float, step: float) -> list[float]:
    return [step * n for n in range(1, math.ceil(seconds / step) + 1)]


def _lifetimes(clock: _Clock, idle: float | None) -> list[tuple[float, float, int]]:
    """(appears, leaves, file) spans: a file is on screen from its first change until it is
    deleted or, with `idle`, until `idle` seconds after its last change."""
    timeline, spans = clock.timeline, []
    open_spans: dict[int, list[float]] = {}
    forever, deleted = clock.seconds + 1, ord("D")
    for at, file, action in zip(clock.change_times, timeline.files, timeline.actions, strict=True):
        span = open_spans.get(file)
        if action == deleted:
            if span is not None:
                spans.append((span[0], min(at, span[1]), file))
                del open_spans[file]
            continue
        if span is not None and at <= span[1]:
            span[1] = forever if idle is None else at + idle
            continue
        if span is not None:
            spans.append((span[0], span[1], file))
        open_spans[file] = [at, forever if idle is None else at + idle]
    spans += [(start, end, file) for file, (start, end) in open_spans.items()]
    return spans


def _on_screen(clock: _Clock, spans: list[tuple[float, float, int]]) -> list[int]:
    """Files on screen at each moment."""
    starts = sorted(s for s, _, _ in spans)
    ends = sorted(e for _, e, _ in spans)
    return [bisect.bisect_right(starts, m) - bisect.bisect_right(ends, m) for m in clock.moments]


def _idle_time(clock: _Clock, budget: float) -> tuple[int, float]:
    """The file idle time (0: files stay) keeping the tree within budget; files on screen with it."""
    whole = _quantile(_on_screen(clock, _lifetimes(clock, None)))
    if whole <= budget:
        return 0, whole
    low, high = 1, max(2, math.ceil(clock.seconds))  # gource reads whole seconds
    while low < high:  # the longest idle time within budget
        middle = (low + high + 1) // 2
        if _quantile(_on_screen(clock, _lifetimes(clock, middle))) <= budget:
            low = middle
        else:
            high = middle - 1
    return low, _quantile(_on_screen(clock, _lifetimes(clock, low)))


def _alive_at(spans: list[tuple[float, float, int]], moments: Sequence[float]) -> list[set[int]]:
    """The files on screen at each of `moments` (sorted), from their spans."""
    events = sorted([(s, 1, f) for s, _, f in spans] + [(e, -1, f) for _, e, f in spans])
    alive: Counter[int] = Counter()
    seen, n = [], 0
    for moment in moments:
        while n < len(events) and events[n][0] <= moment:
            _, step, file = events[n]
            alive[file] += step
            if alive[file] <= 0:
                del alive[file]
            n += 1
        seen.append(set(alive))
    return seen


def _directory_depth(clock: _Clock, idle: int, budget: float) -> tuple[int, bool]:
    """Directory names down to which depth, and whether always shown."""
    looks = clock.moments[:: max(1, len(clock.moments) // 40)]  # 40 looks are enough
    alive = _alive_at(_lifetimes(clock, idle or None), looks)
    folders = [tuple(path.split("/")[:-1]) for path in clock.timeline.paths]
    deepest = 0
    for depth in (1, 2, 3, 4):
        named = [
            len({folders[f][:level] for f in files for level in range(1, depth + 1)} - {()})
            for files in alive
        ]
        if _quantile(named) > budget:
            break
        deepest = depth
    if deepest:
        return deepest, True
    return 1, False  # too many even at the top: the top level's names, as they change


def present(
    timeline: Timeline,
    times: Sequence[float],
    seconds: float,
    options: GourceOptions,
    *,
    size: tuple[int, int],
    several: bool = False,
) -> tuple[Presentation, set[int] | None]:
    """The presentation for this history at this pace and size, with the request's own choices
    applied; and which authors keep their names (None: all)."""
    width, height = size
    font_scale = round(max(1.0, height / 720), 2)
    area = width * height / REFERENCE_AREA / font_scale**2
    clock = _Clock(timeline, times, seconds)

    name_time, file_label_load = _file_names(clock, max(2.0, FILE_LABELS * area))
    named, people_at_once = _named_people(clock, max(3.0, USER_LABELS * area))
    file_budget = max(300.0, FILES_ON_SCREEN * area)
    idle, files_on_screen = _idle_time(clock, file_budget)
    depth, highlight = _directory_depth(clock, idle, max(4.0, DIR_LABELS * area))
    # Files that come and go within seconds (a giant history's churn) spread over many more
    # directories than a settled tree of as many files: more branches and glows to draw for
    # the same files. Such a tree holds fewer and does not glow (measured on the giant history
    # at 720p30: 11 % of the render's wall time; giant / medium 1.67 before, 1.41 after).
    churning = 0 < idle <= 2 and files_on_screen > DENSE
    # What the idle time cannot keep within budget (a giant history's churn at 1 s) is capped.
    cap = None if not idle else math.ceil(file_budget * (CHURNING_SHARE if churning else 1))
    if cap is not None:  # gource holds no more (and a flooding commit is cut to that many)
        files_on_screen = min(files_on_screen, cap)
    dense = files_on_screen > DENSE
    crowd = None if named is None else max(5, round(CROWD * area))
    hide: tuple[str, ...] = ("filenames",) if name_time is None else ()
    if churning:
        hide += ("bloom",)

    requested = tuple(name for name, value in options if name in _OVERRIDES and value is not None)
    if options.hide is not None:
        hide = tuple(h for h in options.hide if h not in ("mouse", "progress"))
    else:  # asking for a name time or extensions is asking for file names; for a bloom, a glow
        if options.filename_time is not None or options.file_extensions:
            hide = tuple(h for h in hide if h != "filenames")
        if options.bloom_multiplier is not None or options.bloom_intensity is not None:
            hide = tuple(h for h in hide if h != "bloom")
    if "usernames" in hide:
        named, crowd = None, None  # nothing to rename: no name is drawn
    presentation = Presentation(
        hide=hide,
        filename_time=options.filename_time or (None if name_time == NAME_TIMES[0] else name_time),
        file_idle_time=idle if options.file_idle_time is None else options.file_idle_time,
        max_files=options.max_files or cap,
        dir_name_depth=1 if several else depth,
        highlight_dirs=highlight,
        # Several repositories: their names tell the story, a size up from gource's 14 px at 720p
        # (18 px: 25 px names collided on a ten-repository frame, 42 % of the text legible, 58 % at 18).
        dir_font_size=max(11, height // 40) if several else None,
        named=timeline_authors(timeline) if named is None else len(named),
        authors=timeline_authors(timeline),
        crowd=crowd,
        font_scale=font_scale,
        user_scale=options.user_scale,
        camera_mode=options.camera_mode,
        file_extensions=bool(options.file_extensions),
        bloom_multiplier=options.bloom_multiplier
        if options.bloom_multiplier is not None
        else (0.4 if dense and not churning else None),
        bloom_intensity=options.bloom_intensity
        if options.bloom_intensity is not None
        else (0.5 if dense and not churning else None),
        measured={
            "fileNamesAtOnce": file_label_load,
            "peopleAtOnce": people_at_once,
            "filesOnScreen": files_on_screen,
        },
        requested=requested,
    )
    return presentation, named


def timeline_authors(timeline: Timeline) -> int:
    return len(set(timeline.authors))


def shown_names(
    timeline: Timeline, named: set[int] | None, blanks: str, crowd: int | None = None
) -> list[str]:
    """The name gource is given for each author: their own, or (not among `named`) one of
    `crowd` strings of the font's blank characters (each its own, without a crowd): an avatar
    with no label. The nameless take the crowd's avatars in turn, in order of appearance, so
    people who work at the same time mostly have avatars of their own."""
    if named is None:
        return list(timeline.names)
    shown, nameless = [], 0
    for author, name in enumerate(timeline.names):
        if author in named:
            shown.append(name)
            continue
        code, digits = (nameless % crowd if crowd else nameless) + 1, []
        nameless += 1
        while code:
            digits.append(blanks[code % len(blanks)])
            code //= len(blanks)
        shown.append("".join(digits))
    return shown


_OVERRIDES = {
    "hide", "max_files", "file_idle_time", "filename_time", "user_scale", "camera_mode", "file_extensions",
    "bloom_multiplier", "bloom_intensity",
}  # fmt: skip


def shown_text(
    timeline: Timeline, presentation: Presentation, named: set[int] | None, other: Sequence[str]
) -> list[str]:
    """Every text the video may draw: the names it shows, directory and file names, `other`."""
    people = [name for author, name in enumerate(timeline.names) if named is None or author in named]
    depth = presentation.dir_name_depth or None
    folders = {part for path in timeline.paths for part in path.split("/")[:-1][:depth]}
    files = [] if "filenames" in presentation.hide else [path.rsplit("/", 1)[-1] for path in timeline.paths]
    return [*people, *folders, *files, *other]
