"""Which font gource draws with, and which of its characters draw nothing.

Gource's own font (FreeSans) has no CJK glyphs, so an author named 李小龍 is drawn as three
boxes. With no FONT_FILE the processor looks at the text a video will show (the named
people, the title, the captions, the directory and file names) and keeps gource's own font
when it has every character, else takes an installed font that has more of them (the
images install WenQuanYi Zen Hei; Noto CJK or Droid Sans Fallback do as well): FreeSans
draws Latin text better, so it stays wherever it can. Fonts are read here, by their
character maps, rather than through fontconfig, which the images do not carry.

The presentation names only some authors and gives the others names made of blank
characters (processor/presentation.py), and a font draws a box for a character it lacks:
FreeSans has no U+3000, WenQuanYi no U+00A0. So the blank characters are the font's own.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

FONT_DIRECTORIES = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# Fonts known to cover Chinese, Japanese and Korean, best first; any other font with CJK
# glyphs is found by its character map.
KNOWN_CJK = ("wqy-zenhei.ttc", "NotoSansCJK-Regular.ttc", "wqy-microhei.ttc", "DroidSansFallbackFull.ttf")
# What gource uses without --font-file (Debian's gource finds it in fonts-freefont-ttf).
GOURCE_DEFAULT = Path("/usr/share/fonts/truetype/freefont/FreeSans.ttf")
CJK_PROBES = (0x4E00, 0x3042, 0xAC00)  # 一, あ, 가
BLANK_CANDIDATES = (0x3000, 0x00A0, 0x2007, 0x2002, 0x2003)


def _u16(data: mmap.mmap, at: int) -> int:
    return int(struct.unpack_from(">H", data, at)[0])


def _u32(data: mmap.mmap, at: int) -> int:
    return int(struct.unpack_from(">I", data, at)[0])


def _cmap_table(data: mmap.mmap) -> int | None:
    """Offset of the first font's `cmap` table (a .ttc holds several fonts; the first will do)."""
    font = _u32(data, 12) if data[:4] == b"ttcf" else 0
    for n in range(_u16(data, font + 4)):
        record = font + 12 + 16 * n
        if data[record : record + 4] == b"cmap":
            return _u32(data, record + 8)
    return None


def _glyph_4(data: mmap.mmap, sub: int, code: int) -> int:
    segments = _u16(data, sub + 6) // 2
    ends, starts = sub + 14, sub + 16 + 2 * segments
    deltas, ranges = starts + 2 * segments, starts + 4 * segments
    for n in range(segments):
        if code <= _u16(data, ends + 2 * n):
            start = _u16(data, starts + 2 * n)
            if code < start:
                return 0
            delta, offset = _u16(data, deltas + 2 * n), _u16(data, ranges + 2 * n)
            if offset == 0:
                return (code + delta) & 0xFFFF
            glyph = _u16(data, ranges + 2 * n + offset + 2 * (code - start))
            return (glyph + delta) & 0xFFFF if glyph else 0
    return 0


def _glyph_12(data: mmap.mmap, sub: int, code: int) -> int:
    for n in range(_u32(data, sub + 12)):
        start, end, first = struct.unpack_from(">III", data, sub + 16 + 12 * n)
        if start <= code <= end:
            return int(first + code - start)
    return 0


def covered(font: Path, codes: Iterable[int]) -> set[int]:
    """Which of `codes` the font has a glyph for (empty if it cannot be read as TrueType/OpenType)."""
    try:
        with font.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            cmap = _cmap_table(data)
            if cmap is None:
                return set()
            tables = []
            for n in range(_u16(data, cmap + 2)):
                platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * n)
                if platform == 0 or (platform == 3 and encoding in (1, 10)):
                    tables.append(cmap + offset)
            found = set()
            for code in codes:
                for sub in tables:
                    kind = _u16(data, sub)
                    glyph = (
                        _glyph_12(data, sub, code)
                        if kind == 12
                        else _glyph_4(data, sub, code)
                        if kind == 4
                        else 0
                    )
                    if glyph:
                        found.add(code)
                        break
            return found
    except (OSError, ValueError, struct.error):
        return set()


@lru_cache(maxsize=1)
def cjk_font() -> Path | None:
    """An installed font with Chinese, Japanese and Korean glyphs, or None."""
    fonts: list[Path] = []
    for folder in FONT_DIRECTORIES:
        if folder.is_dir():
            fonts += sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".ttf", ".ttc", ".otf"))
    fonts.sort(key=lambda p: KNOWN_CJK.index(p.name) if p.name in KNOWN_CJK else len(KNOWN_CJK))
    best: tuple[int, Path] | None = None
    for font in fonts:
        score = len(covered(font, CJK_PROBES))
        if score == len(CJK_PROBES):
            return font
        if score and (best is None or score > best[0]):
            best = (score, font)
    return best[1] if best else None


def font_for(texts: Iterable[str], operator: Path | None = None) -> Path | None:
    """The font to draw `texts` with: the operator's; else None (gource's own) when it has every
    character, or an installed font that has more of them (one with CJK glyphs)."""
    if operator is not None:
        return operator
    needed = {ord(c) for text in texts for c in text if c.isprintable() and not c.isspace()}
    if not needed or not GOURCE_DEFAULT.is_file():
        return None
    own = covered(GOURCE_DEFAULT, needed)
    if own == needed:
        return None
    other = cjk_font()
    return other if other is not None and len(covered(other, needed)) > len(own) else None


@lru_cache(maxsize=8)
def blank_characters(font: Path | None) -> str:
    """Two characters the font draws as nothing: a space and one more (names made of them are invisible)."""
    present = covered(font or GOURCE_DEFAULT, BLANK_CANDIDATES)
    second = next((chr(code) for code in BLANK_CANDIDATES if code in present), "\u00a0")
    return " " + second
