"""Paths to leave out of a history: vendored code, dependencies, generated files.

Patterns are globs as people write them in `.gitignore`: `vendor/**`, `node_modules/`,
`*.min.js`, `docs/generated/*.html`. A pattern without a slash matches a name at any depth;
one with a slash is anchored at the repository's root; a trailing slash or `/**` takes a
whole directory. `*` and `?` stay within one path segment, `**` spans segments, `[abc]`
is a set. Matching is our own, segment by segment (no regular expression is built from a
request, so no pattern can make matching slow), and case-sensitive like git.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from functools import cache


def _segments(pattern: str) -> tuple[str, ...]:
    directory = pattern.endswith("/")
    parts = [part for part in pattern.strip("/").split("/") if part]
    if "/" not in pattern.strip("/"):
        parts = ["**", *parts]  # a bare name: at any depth
    if directory:
        parts.append("**")
    return tuple(parts)


def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Whether `path` (segments) matches `pattern` (segments, `**` spanning any number)."""

    @cache
    def at(p: int, s: int) -> bool:
        if p == len(pattern):
            return s == len(path)
        if pattern[p] == "**":
            return at(p + 1, s) or (s < len(path) and at(p, s + 1))
        return s < len(path) and fnmatchcase(path[s], pattern[p]) and at(p + 1, s + 1)

    return at(0, 0)


class Exclusions:
    """A set of patterns; `excludes(path)` says whether a changed file is left out."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = tuple(dict.fromkeys(p.strip() for p in patterns if p.strip()))
        self._compiled = [_segments(p) for p in self.patterns]
        # A history names the same files and directories again and again: each is matched once.
        self._seen: dict[str, bool] = {}
        self._directories: dict[tuple[str, ...], bool] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _matches(self, parts: tuple[str, ...]) -> bool:
        return any(_match(pattern, parts) for pattern in self._compiled)

    def excludes(self, path: str) -> bool:
        """True when the file, or a directory it is in, matches a pattern."""
        if not self._compiled:
            return False
        seen = self._seen.get(path)
        if seen is None:
            seen = self._seen[path] = self._excludes(path)
        return seen

    def _excludes(self, path: str) -> bool:
        parts = tuple(part for part in path.split("/") if part)
        for depth in range(1, len(parts)):
            directory = parts[:depth]
            left_out = self._directories.get(directory)
            if left_out is None:
                left_out = self._directories[directory] = self._matches(directory)
            if left_out:
                return True
        return self._matches(parts)
