"""Generated git histories shaped like the world, to measure how a video reads at every scale.

Each is written by ONE `git fast-import` run and is deterministic for a seed. They copy the
shapes of real big projects (rails: 99k commits 2004-2026, 6,469 authors of whom 3,606 made
one commit, the top 10 make 37 % of the commits and the top 50 two thirds; a quarter of the
commits are merges that `git log --raw` shows without files; most commits touch one to three
files, a few touch hundreds): activity that grows, peaks and settles, a weekly rhythm, release
crunches, a few mass commits, Zipf-like authors with names in many scripts, a deep tree, and
the directories people want left out of a video (`vendor/`, `node_modules/`, `*.min.js`).

Measured on the 2-core machine (make: generation and the one fast-import run, on a quiet
machine; three times as long under a load of 7; log: `git log` with processor/git.py LOG_ARGS):

| history | commits | files alive at end | authors | span | make | log |
| --- | --- | --- | --- | --- | --- | --- |
| make_giant_repo | 55,000 (6,466 without files) | 8,121 | 2,201 | 2010-01-04 .. 2025-01-02 | 6 s | 14.0 MB |
| make_backwards_repo | 4,000 | 712 | 127 | 2011-01-03 .. 2023-01-02 | 0.5 s | 0.9 MB |
| make_organisation | 31,706 in 10 repositories | 6 .. 1,453 each | 406 | 2012 .. 2024 | 6 s | 6.9 MB merged |
| make_flood_repo | 1 | 200,000 | 1 | 2023-11-14 | 0.9 s | 10.8 MB |

The giant: 138,488 file changes; 1,372 people made one commit, the top 10 made 41 % of the
commits and the top 50 70 %; weekends run at about half the pace of weekdays; the largest
commits are a node_modules directory committed by accident (1,260 files, removed three
commits later), a vendored editor imported, upgraded and dropped (470 files), a rename sweep
and a licence-header sweep (800 files); 383 files alive at the end are under vendor/,
node_modules/ or *.min.js; most files sit three to six directories deep; .git is 39 MB.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

DAY = 86400


def _words(text: str) -> list[str]:
    return text.split()


# People -------------------------------------------------------------------------------------------
# Names as big projects' logs spell them: accents, CJK, Cyrillic, Hangul, handles and bots.
_FIRST = _words(
    "Alice Bob Carlos Dana Emeka Fatima Gustav Hiroshi Ingrid Jamal Katarzyna Lars Mei Nadia Oluwaseun "
    "Priya Quentin Rosa Sven Tomás Ursula Viktor Wanjiru Xavier Yusuf Zoë Amélie Björn Çağla Dóra Élodie "
    "François Gonçalo Håkon Íñigo Jürgen Kristóf Łukasz Mårten Noémie Øystein Pál Renée Søren Thérèse "
    "Ümit Václav Wojciech Žofia Aarav Beatriz Chidi Diego Esther Farah Giulia Hamza Isabel Jonas Kwame"
)
_LAST = _words(
    "Smith García Müller Nakamura Kowalski Okafor Johansson Rossi Dubois Novák Fernández Öztürk Ødegaard "
    "Szabó Nguyen Kim Silva Jensen Horváth Petrović Andersson Ćosić Dvořák Ekström Gómez Hernández Ibáñez "
    "Jankowski Kovačević Lindqvist Martínez Nørgaard O'Brien Pérez Quispe Rodríguez Schäfer Tanaka "
    "Uysal Virtanen Wójcik Yılmaz Zielińska Abebe Brown Chatterjee Delacroix Esposito Fischer Gallagher "  # noqa: RUF001 - Turkish dotless i
    "Haddad Iwu Jovanović Karlsson Larsen Mendonça Nieminen Oyelaran Papadopoulos"
)
_CJK = (
    [
        f + g
        for f in "王李张刘陈杨赵黄周吴"
        for g in ("伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "杰", "丽")
    ]
    + [f + g for f in ("佐藤", "鈴木", "高橋", "田中", "山本") for g in ("健", "花子", "翔", "陽菜", "大輔")]
    + [f + g for f in "김이박최정" for g in ("민준", "서연", "지훈", "수빈")]
)
_CYRILLIC = [
    f"{first} {last}"
    for first in ("Иван", "Мария", "Алексей", "Ольга", "Дмитрий", "Наталья", "Сергей", "Анна")
    for last in ("Петров", "Смирнов", "Кузнецов", "Соколов", "Попов", "Волков")
]
_HANDLES = [
    f"{w}{n}" for w in ("octo", "devnull", "kernel", "pixel", "rustacean", "nullptr") for n in (7, 42, 99)
]
BOTS = ("dependabot[bot]", "renovate[bot]", "github-actions[bot]")


def people(rng: random.Random, count: int) -> list[str]:
    """`count` distinct names: mostly Latin-script with accents, then CJK, Cyrillic and handles."""
    pool = [f"{first} {last}" for first in _FIRST for last in _LAST]
    rng.shuffle(pool)
    exotic = [*_CJK, *_CYRILLIC, *_HANDLES]
    rng.shuffle(exotic)
    names: list[str] = []
    # About one name in six from the exotic pool, spread through the ranks.
    while len(names) < count and (pool or exotic):
        source = exotic if exotic and (rng.random() < 1 / 6 or not pool) else pool
        names.append(source.pop())
    if len(names) < count:
        raise ValueError(f"only {len(names)} distinct names available, {count} asked")
    return names


def _email(name: str, index: int) -> str:
    slug = "".join(c for c in name.lower().replace(" ", ".") if c.isascii() and (c.isalnum() or c == "."))
    return f"{slug or 'dev'}.{index}@example.com"


# Trees --------------------------------------------------------------------------------------------
_AREAS = _words(
    "adapters connection middleware encoding cache routing serializers validations callbacks "
    "associations migrations templates helpers renderers parsers queues storage notifications "
    "instrumentation security sessions streaming compiler runtime reactivity scheduler plugins"
)
_STEMS = _words(
    "base core abstract table column schema record query builder context handler resolver manager "
    "registry factory adapter client server request response stream buffer token lexer parser node "
    "visitor emitter watcher effect computed ref proxy collection errors utils helpers config options"
)
_EXTS = ("rb", "py", "ts", "js", "go", "c", "rs")
_DOC_NAMES = (
    "index.md",
    "user guide.md",
    "getting-started.md",
    "api.md",
    "faq.md",
    "はじめに.md",
    "überblick.md",
)


class _Files:
    """A set of paths with O(1) add, remove and random choice."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.where: dict[str, int] = {}

    def add(self, path: str) -> None:
        if path not in self.where:
            self.where[path] = len(self.items)
            self.items.append(path)

    def discard(self, path: str) -> None:
        index = self.where.pop(path, None)
        if index is None:
            return
        last = self.items.pop()
        if index < len(self.items):
            self.items[index] = last
            self.where[last] = index

    def choice(self, rng: random.Random) -> str:
        return self.items[rng.randrange(len(self.items))]

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class _Tree:
    """The files alive, each with its current blob (one of a few shared ones), by directory and component."""

    blobs: dict[str, int] = field(default_factory=dict)
    by_dir: dict[str, _Files] = field(default_factory=dict)
    by_top: dict[str, _Files] = field(default_factory=dict)

    def add(self, path: str) -> str:
        """The fast-import command that creates `path` (or changes it, if it is there)."""
        if path in self.blobs:
            return self.modify(path)
        self.blobs[path] = 1
        self.by_dir.setdefault(path.rsplit("/", 1)[0], _Files()).add(path)
        self.by_top.setdefault(path.split("/", 1)[0], _Files()).add(path)
        return f"M 100644 :1 {path}"

    def modify(self, path: str) -> str:
        self.blobs[path] = self.blobs[path] % _BLOBS + 1  # a different blob, so git sees a change
        return f"M 100644 :{self.blobs[path]} {path}"

    def delete(self, path: str) -> str:
        del self.blobs[path]
        self.by_dir[path.rsplit("/", 1)[0]].discard(path)
        self.by_top[path.split("/", 1)[0]].discard(path)
        return f"D {path}"


_BLOBS = 8  # distinct tiny contents shared by every file: fast-import writes 8 blobs in all


# Shapes -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """What a history looks like, in a few numbers."""

    start: datetime
    years: float
    commits: int
    components: tuple[str, ...]
    core: int  # the few dozen people who make most commits
    regulars: int  # people who come for a while
    drive_by: int  # one-commit contributors
    peak: float = 0.3  # share of the span activity takes to reach its peak
    settle: float = 0.55  # activity at the end, relative to the peak
    crunches_per_year: float = 2.0  # release crunches: ten days at three times the pace
    merges: float = 0.12  # commits that `git log --raw` shows without files (merges)
    mass: bool = False  # vendored import and removal, node_modules accident, rename and licence sweeps
    people: tuple[str, ...] = ()  # names to use first (an organisation's shared people)


@dataclass
class Commit:
    author: str
    email: str
    when: int  # author time, epoch seconds
    changes: list[str]
    message: str
    committed: int = 0  # committer time (%ct); the author time unless rewritten


def generate(shape: Shape, seed: int) -> list[Commit]:
    """The commits of a history of this shape, in log order, committer time = author time."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible history, not a secret
    times = _times(rng, shape)
    authors, emails = _authors(rng, shape, times)
    tree = _Tree()
    commits: list[Commit] = []
    mass = _mass_events(rng, shape, times) if shape.mass else {}
    born = {c: (0.0 if n < 4 else rng.uniform(0.05, 0.7)) for n, c in enumerate(shape.components)}
    heat = {c: rng.paretovariate(1.2) for c in shape.components}
    span = max(1, times[-1] - times[0])
    for n, when in enumerate(times):
        author = authors[n]
        where = (when - times[0]) / span
        if n in mass:
            changes, message = mass[n](tree), "mass change"
        elif author in BOTS:
            changes, message = _bot_change(rng, tree, shape), "Bump dependencies"
        elif n > 0 and rng.random() < shape.merges:
            changes, message = [], f"Merge pull request #{n}"
        else:
            live = [c for c in shape.components if born[c] <= where] or list(shape.components[:1])
            component = rng.choices(live, weights=[heat[c] for c in live])[0]
            changes, message = _ordinary_change(rng, tree, component, where), f"change {n}"
        commits.append(Commit(author, emails[author], when, changes, message, when))
    return commits


def _times(rng: random.Random, shape: Shape) -> list[int]:
    """Commit times: growth to a peak then settling, a weekly rhythm, crunches, quiet Christmases."""
    days = int(shape.years * 365.25)
    first = int(shape.start.timestamp())
    crunch_days: set[int] = set()
    for _ in range(round(shape.crunches_per_year * shape.years)):
        begin = rng.randrange(days)
        crunch_days.update(range(begin, begin + 10))
    month_noise = [rng.lognormvariate(0, 0.3) for _ in range(days // 30 + 2)]
    weights = []
    for day in range(days):
        x = day / days
        level = (
            max(0.04, (x / shape.peak) ** 1.5)
            if x < shape.peak
            else (1 - (1 - shape.settle) * (x - shape.peak) / (1 - shape.peak))
        )
        date = shape.start + timedelta(days=day)
        weekly = 0.55 if date.weekday() >= 5 else 1.0
        holiday = (
            0.35 if (date.month == 12 and date.day >= 22) or (date.month == 1 and date.day <= 2) else 1.0
        )
        crunch = 3.0 if day in crunch_days else 1.0
        weights.append(level * weekly * holiday * crunch * month_noise[day // 30])
    chosen = rng.choices(range(days), weights=weights, k=shape.commits - 2)
    # A working day somewhere on Earth: most commits between 07:00 and 23:00 UTC.
    stamps = [first + d * DAY + int(rng.triangular(5, 24, 15) * 3600) + rng.randrange(3600) for d in chosen]
    return [first, *sorted(stamps), first + days * DAY - 3600]


def _authors(rng: random.Random, shape: Shape, times: list[int]) -> tuple[list[str], dict[str, str]]:
    """Who made each commit: Zipf-like core and regulars, each active for a while, then drive-bys."""
    count = shape.core + shape.regulars + shape.drive_by
    names = list(dict.fromkeys([*shape.people, *people(rng, count + len(shape.people))]))[:count]
    core, regulars, drive_by = (
        names[: shape.core],
        names[shape.core : shape.core + shape.regulars],
        names[shape.core + shape.regulars :],
    )
    if shape.mass:  # a big project's bots bump dependencies in its later years
        core[-len(BOTS) :] = BOTS
    first, last = times[0], times[-1]
    span = max(1, last - first)

    def window(rank: int, group: str) -> tuple[int, int]:
        if group == "core":
            begin = 0.0 if rank < 3 else rng.uniform(0, 0.6)
            length = rng.uniform(0.5, 1.0)
        else:
            begin = rng.uniform(0, 0.97)
            length = min(1.0, rng.expovariate(1 / 0.15) + 0.02)
        if rank >= 0 and group == "core" and core[rank] in BOTS:
            begin, length = rng.uniform(0.45, 0.6), 1.0
        return first + int(begin * span), first + int(min(1.0, begin + length) * span)

    windows = {n: window(r, "core") for r, n in enumerate(core)}
    windows.update({n: window(r, "regular") for r, n in enumerate(regulars)})
    weights = {n: 1 / (r + 1) ** 0.9 for r, n in enumerate(core)}
    weights.update({n: 1 / (r + 1) ** 0.8 for r, n in enumerate(regulars)})
    months = max(1, span // (30 * DAY) + 1)
    active: list[dict[str, list[str]]] = []
    for m in range(months):
        moment = first + m * 30 * DAY
        active.append(
            {
                group: [n for n in members if windows[n][0] <= moment + 30 * DAY and windows[n][1] >= moment]
                or members[:3]
                for group, members in (("core", core), ("regular", regulars))
            }
        )
    authors = []
    for when in times:
        month = active[min(months - 1, (when - first) // (30 * DAY))]
        group = "core" if (not regulars or rng.random() < 0.64) else "regular"
        members = month[group]
        authors.append(rng.choices(members, weights=[weights[n] for n in members])[0])
    # Drive-bys: one commit each, anywhere after the project got going.
    slots = rng.sample(range(max(1, len(times) // 20), len(times)), min(len(drive_by), len(times) * 9 // 10))
    for slot, name in zip(slots, drive_by, strict=False):
        authors[slot] = name
    emails = {name: _email(name, n) for n, name in enumerate([*core, *regulars, *drive_by])}
    return authors, emails


def _new_path(rng: random.Random, tree: _Tree, component: str, where: float) -> str:
    """A new file somewhere plausible in a component: lib, test or docs, 3 to 6 directories deep."""
    ext = _EXTS[sum(map(ord, component)) % len(_EXTS)]
    kind = rng.choices(("lib", "test", "docs"), weights=(6, 3, 1))[0]
    known = tree.by_top.get(component)
    beside = known.choice(rng).rsplit("/", 1)[0] if known else ""
    if beside.count("/") >= 2 and rng.random() < 0.75:  # usually beside an existing file
        folder = beside
        if rng.random() < 0.1 and folder.count("/") < 5:
            folder += "/" + rng.choice(_AREAS)
    elif kind == "docs":
        folder = f"{component}/docs/{rng.choice(_AREAS)}"
        return f"{folder}/{rng.choice(_DOC_NAMES)}"
    else:
        depth = rng.choice((1, 1, 2, 2, 3))
        inner = "/".join(rng.choice(_AREAS) for _ in range(depth))
        folder = f"{component}/lib/{component}/{inner}" if kind == "lib" else f"{component}/test/{inner}"
    stem = f"{rng.choice(_STEMS)}_{rng.choice(_STEMS)}"
    if "/test/" in folder + "/":
        stem += "_test"
    return f"{folder}/{stem}.{ext}"


def _ordinary_change(rng: random.Random, tree: _Tree, component: str, where: float) -> list[str]:
    """One to a few dozen files, mostly in one directory, as a person's commit is."""
    size = rng.choices((1, 2, 3, 4, 6, 9, 15, 30), weights=(46, 18, 10, 8, 7, 5, 4, 2))[0]
    known = tree.by_top.get(component)
    focus = known.choice(rng).rsplit("/", 1)[0] if known else None
    add_share = 0.10 - 0.06 * where  # young projects grow fast; old ones mostly change what they have
    done: set[str] = set()
    changes = []
    for _ in range(size):
        roll = rng.random()
        pool = tree.by_dir.get(focus) if focus else None
        if not pool or roll < add_share:
            path = _new_path(rng, tree, component, where)
            if path in done:
                continue
            changes.append(tree.add(path))
        else:
            path = pool.choice(rng) if rng.random() < 0.7 else tree.by_top[component].choice(rng)
            if path in done:
                continue
            if roll > 0.955 and len(pool) > 2:
                changes.append(tree.delete(path))
            else:
                changes.append(tree.modify(path))
        done.add(path)
    if known and rng.random() < 0.08:
        changelog = f"{component}/CHANGELOG.md"
        if changelog not in done:
            changes.append(tree.add(changelog))
    return changes


_LOCKFILES = ("Gemfile.lock", "package.json", "yarn.lock", ".github/workflows/ci.yml")


def _bot_change(rng: random.Random, tree: _Tree, shape: Shape) -> list[str]:
    return [tree.add(p) for p in rng.sample(_LOCKFILES, rng.choice((1, 2)))]


def _mass_events(rng: random.Random, shape: Shape, times: list[int]) -> dict[int, object]:
    """Mass commits at fixed points of the span: what makes a big project's log hostile."""
    n = len(times)
    vendored = [
        f"vendor/assets/ace/src/{kind}/{name}{i}.js"
        for kind in ("mode", "theme", "snippets", "ext", "worker", "keybinding")
        for name in ("lang", "style", "snip", "feature", "worker", "keys")
        for i in range(13)
    ][:470]
    modules = [
        f"web/node_modules/{pkg}{p}/lib/{part}{i}.js"
        for p in range(60)
        for pkg in ("left-pad", "lodash", "chalk", "debug")[p % 4 : p % 4 + 1]
        for part in ("index", "util", "core")
        for i in range(7)
    ]
    toolchain = [
        f"guides/node_modules/{pkg}/{part}/{i}.js"
        for pkg in ("markdown-it", "highlight.js", "katex", "mermaid")
        for part in ("lib", "dist", "src")
        for i in range(25)
    ]
    jquery = [
        f"vendor/assets/javascripts/{name}{i}.js"
        for name in ("jquery", "jquery-ui", "rails-ujs")
        for i in range(20)
    ]
    minified = [f"web/public/assets/{name}-{h:08x}.min.js" for name in ("app", "vendor", "admin", "editor")
                for h in (rng.getrandbits(32) for _ in range(6))]  # fmt: skip
    component = shape.components[1]
    renamed_from = f"{component}/lib/{component}/legacy"

    def added(paths: Iterable[str]) -> object:
        return lambda tree: [tree.add(p) for p in paths]

    def deleted(paths: Iterable[str]) -> object:
        return lambda tree: [tree.delete(p) for p in paths if p in tree.blobs]

    def updated(paths: Sequence[str], share: float) -> object:
        return lambda tree: [tree.modify(p) for p in paths if p in tree.blobs and rng.random() < share]

    def rename_sweep(tree: _Tree) -> list[str]:
        old = [p for p in tree.blobs if p.startswith(renamed_from + "/")]
        return [
            *(tree.delete(p) for p in old),
            *(tree.add(p.replace("/legacy/", "/modern/", 1)) for p in old),
        ]

    def licence_sweep(tree: _Tree) -> list[str]:
        code = [p for p in tree.blobs if "/lib/" in p and not p.startswith(("vendor/", "web/"))]
        return [tree.modify(p) for p in rng.sample(code, min(800, len(code)))]

    def seed_legacy(tree: _Tree) -> list[str]:
        return [
            tree.add(f"{renamed_from}/{a}/{s}_{i}.rb")
            for a in _AREAS[:12]
            for s in _STEMS[:10]
            for i in (1, 2)
        ]

    events: dict[int, object] = {
        int(n * 0.12): seed_legacy,  # a subsystem that will be renamed later
        int(n * 0.20): added(vendored),  # a vendored editor imported whole
        int(n * 0.35): added(modules),  # node_modules committed by accident...
        int(n * 0.35) + 3: deleted(modules),  # ...and removed
        int(n * 0.45): updated(vendored, 0.65),  # the vendored library upgraded
        int(n * 0.55): rename_sweep,  # legacy/ renamed to modern/
        int(n * 0.70): licence_sweep,  # a licence header in every source file
        int(n * 0.85): deleted(vendored),  # the vendored library dropped
        int(n * 0.30): added(jquery),  # vendored scripts that stay
        int(n * 0.60): added(toolchain),  # the guides' node_modules, committed on purpose
        int(n * 0.80): updated([*toolchain, *jquery], 0.8),
    }
    # Generated bundles, rebuilt every few hundred commits.
    for k in range(int(n * 0.25), n, 300):
        events.setdefault(k, added(minified) if k == int(n * 0.25) else updated(minified, 1.0))
    return events


# Writing --------------------------------------------------------------------------------------------
def write(path: Path, commits: Sequence[Commit], branch: str = "main") -> Path:
    """A repository at `path` holding `commits` in this order, written by one `git fast-import` run."""
    blobs = b"".join(b"blob\nmark :%d\ndata 2\n%d\n\n" % (k, k) for k in range(1, _BLOBS + 1))
    return _fast_import(path, blobs + b"".join(_commit_bytes(c, branch) for c in commits), branch)


def _commit_bytes(commit: Commit, branch: str) -> bytes:
    message = commit.message.encode()
    author = f"{commit.author} <{commit.email}>".encode()
    changes = "".join(c + "\n" for c in commit.changes).encode()
    return b"commit refs/heads/%s\nauthor %s %d +0000\ncommitter %s %d +0000\ndata %d\n%s\n%s\n" % (
        branch.encode(), author, commit.when, author, commit.committed, len(message), message, changes,
    )  # fmt: skip


def _fast_import(path: Path, stream: bytes, branch: str) -> Path:
    path.mkdir(parents=True)
    quiet = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True, env=quiet)
    subprocess.run(
        ["git", "-C", str(path), "config", "uploadpack.allowFilter", "true"], check=True, env=quiet
    )
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=stream, check=True, env=quiet)
    return path


# The histories ----------------------------------------------------------------------------------------
GIANT = Shape(
    start=datetime(2010, 1, 4, tzinfo=UTC),
    years=15,
    commits=55_000,
    components=tuple(
        _words("core web db mailer jobs cable storage text view model support cli guides auth search metrics")
    ),
    core=40,
    regulars=900,
    drive_by=1_300,
    mass=True,
)


def make_giant_repo(path: Path, seed: int = 17) -> Path:
    """A 15-year, 55,000-commit project with 2,200 authors and 7,000 files (see the module docstring)."""
    return write(path, generate(GIANT, seed))


BACKWARDS = Shape(
    start=datetime(2011, 1, 3, tzinfo=UTC),
    years=12,
    commits=4_000,
    components=("app", "lib", "docs", "tests", "tools", "web"),
    core=12,
    regulars=60,
    drive_by=140,
    merges=0.0,  # rebased and landed one by one: a linear history
)


def make_backwards_repo(path: Path, seed: int = 23) -> Path:
    """Twelve years, 4,000 commits landed by rebase with committer date = author date.

    Each pull request (one to six commits by one author) keeps its author dates and lands
    when its review ends (days to weeks later; one in fifty is a stale branch revived a
    year or two on), so in log order the commit time (%ct) runs backwards often: 584 of the
    4,000 commits (15 %) are older than the one before them in `git log --reverse`, 533 of
    those by more than a day (the median step back is 6.7 days), and the largest step back is
    693 days.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible history, not a secret
    commits = generate(BACKWARDS, seed)
    requests: list[list[Commit]] = []
    n = 0
    while n < len(commits):
        size = rng.choice((1, 1, 1, 2, 2, 3, 4, 6))
        requests.append(commits[n : n + size])
        n += size
    landing = []
    for number, request in enumerate(requests):
        for commit in request[1:]:  # a pull request is one person's work
            commit.author, commit.email = request[0].author, request[0].email
        review = rng.lognormvariate(math.log(3 * DAY), 1.3)
        if rng.random() < 0.02:
            review += rng.uniform(300, 700) * DAY
        landing.append((request[-1].when + review, number))
    ordered = [c for _, number in sorted(landing) for c in requests[number]]
    return write(path, ordered)


def backwards_steps(stamps: Sequence[int]) -> tuple[int, float]:
    """How often and how far commit times go back in log order: (count, largest step in days)."""
    steps = [a - b for a, b in pairwise(stamps) if b < a]
    return len(steps), max(steps, default=0) / DAY


ORGANISATION = (
    # name, first year, years, commits, own people
    ("dotfiles", 2024.5, 0.02, 6, 0),
    ("design-system", 2021.0, 3.5, 180, 6),
    ("docs-site", 2016.0, 9.0, 420, 25),
    ("cli", 2019.0, 5.8, 900, 12),
    ("sdk-python", 2017.5, 7.4, 1_500, 30),
    ("infra", 2014.0, 11.0, 2_400, 20),
    ("mobile", 2018.0, 6.9, 3_600, 35),
    ("data-pipeline", 2015.0, 9.9, 5_200, 40),
    ("web", 2013.0, 12.0, 7_500, 90),
    ("api", 2012.0, 12.9, 10_000, 120),
)


def make_organisation(path: Path, count: int = 10, seed: int = 31) -> list[Path]:
    """`count` repositories of an organisation (up to ten), from a 6-commit dotfiles repository to a
    13-year, 10,000-commit API: different ages and sizes, people shared between them.

    | repository | span | commits |
    | --- | --- | --- |
    | dotfiles | 2024-07, one week | 6 |
    | design-system | 2021-2024 | 180 |
    | docs-site | 2016-2024 | 420 |
    | cli | 2019-2024 | 900 |
    | sdk-python | 2017-2024 | 1,500 |
    | infra | 2014-2024 | 2,400 |
    | mobile | 2018-2024 | 3,600 |
    | data-pipeline | 2015-2024 | 5,200 |
    | web | 2013-2024 | 7,500 |
    | api | 2012-2024 | 10,000 |

    All ten: 31,706 commits by 406 people, 40 of whom work on two or more of them; 6 s to make.
    """
    if not 1 <= count <= len(ORGANISATION):
        raise ValueError(f"an organisation of 1 to {len(ORGANISATION)} repositories, not {count}")
    rng = random.Random(seed)  # noqa: S311 - a reproducible history, not a secret
    staff = people(rng, 60)  # the organisation's own people, who work on several repositories
    paths = []
    for number, (name, year, years, commits, own) in enumerate(ORGANISATION[:count]):
        start = datetime(int(year), 1, 1, tzinfo=UTC) + timedelta(days=(year % 1) * 365)
        shared = tuple(rng.sample(staff, 1 + min(20, commits // 400)))
        core = max(1, min(len(shared), 2 + commits // 1500))
        shape = Shape(
            start=start,
            years=years,
            commits=commits,
            components=tuple(rng.sample(_AREAS, 3 + min(5, commits // 1500))),
            core=core,
            regulars=len(shared) - core + own // 2,
            drive_by=own - own // 2,
            merges=0.1 if commits > 100 else 0.0,
            crunches_per_year=1.0,
            people=shared,
        )
        paths.append(write(path / name, generate(shape, seed * 100 + number)))
    return paths


def make_flood_repo(path: Path, files: int = 200_000) -> Path:
    """One commit adding `files` empty files in directories of a thousand: a hostile repository.

    200,000 files make a 10.8 MB log in 0.9 s, but only 0.5 MB of .git: every entry names the one
    empty blob, so the trees compress well (the same files in one flat directory take fast-import
    65 s). A repository heavy in git bytes as well is test_hostile_input.make_oversized_repo.
    """
    changes = [f"M 100644 :1 flood/{n // 1000:03d}/{n:06d}.txt" for n in range(files)]
    commit = Commit("Flo Od", "flood@example.com", 1_700_000_000, changes, "add everything", 1_700_000_000)
    return _fast_import(path, b"blob\nmark :1\ndata 0\n\n" + _commit_bytes(commit, "main"), "main")
