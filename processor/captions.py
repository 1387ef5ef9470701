"""Release tags as captions: gource's `--caption-file`, written from untrusted tag names.

A tag name is whatever a repository's owner typed, so it is only ever text on screen:
control and format characters (terminal escapes, right-to-left overrides) are removed,
its length and the number of captions are bounded, and it never names a file. The caption
file is the processor's own, in its work directory; nothing in a request can name it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

MAX_CAPTIONS = 200
MAX_CAPTION_CHARS = 80


def clean(text: str) -> str:
    """`text` fit to show: one line, printable, at most MAX_CAPTION_CHARS long ("" to drop)."""
    shown = "".join(" " if unicodedata.category(c).startswith(("C", "Z")) else c for c in text)
    shown = " ".join(shown.split())
    if len(shown) > MAX_CAPTION_CHARS:
        shown = shown[: MAX_CAPTION_CHARS - 1].rstrip() + "…"
    return shown


def spread(captions: list[tuple[int, str]], limit: int = MAX_CAPTIONS) -> list[tuple[int, str]]:
    """At most `limit` captions, in time order, evenly spread from the first to the last."""
    ordered = sorted(captions)
    if len(ordered) <= limit:
        return ordered
    if limit == 1:
        return ordered[-1:]
    step = (len(ordered) - 1) / (limit - 1)
    return [ordered[round(n * step)] for n in range(limit)]


def shown(captions: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """The captions a video shows: cleaned, at most MAX_CAPTIONS, spread over the history."""
    return spread([(stamp, text) for stamp, text in ((s, clean(t)) for s, t in captions) if text])


def write_caption_file(path: Path, captions: Iterable[tuple[int, str]]) -> int:
    """Write gource's `unix time|text` lines for the captions shown; how many were written."""
    chosen = shown(captions)
    path.write_text("".join(f"{stamp}|{text}\n" for stamp, text in chosen), encoding="utf-8")
    return len(chosen)
