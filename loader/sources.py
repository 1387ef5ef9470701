"""Where requests come from: `--repo` arguments, repository lists, JSON Lines files (or stdin)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from processor.contract import RenderRequest, parse_request
from processor.errors import InvalidRequest


@dataclass(frozen=True)
class Line:
    """One input item: a valid request, or the reason it is not one."""

    source: str
    number: int
    request: RenderRequest | None = None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.number}"


def _validated(source: str, number: int, item: str | dict[str, object], batch_id: str) -> Line:
    try:
        return Line(source, number, request=parse_request(item, batch_id))
    except InvalidRequest as exc:
        return Line(source, number, error=str(exc))


def from_repos(urls: Iterable[str], batch_id: str, **fields: str) -> Iterator[Line]:
    for number, url in enumerate(urls, 1):
        yield _validated("--repo", number, {"type": "gource", "repoURL": url, **fields}, batch_id)


def together(urls: list[str], batch_id: str, **fields: str) -> Line:
    """One request that renders every repository of `urls` into one video (an organisation's)."""
    return _validated("--together", 1, {"type": "gource", "repoURLs": urls, **fields}, batch_id)


def read_repos_file(path: str) -> list[str]:
    """Repository URLs, one a line; blank lines and lines starting with # are passed over."""
    stream = sys.stdin if path == "-" else Path(path).open(encoding="utf-8")  # noqa: SIM115
    try:
        return [text.strip() for text in stream if text.strip() and not text.lstrip().startswith("#")]
    finally:
        if stream is not sys.stdin:
            stream.close()


def from_jsonl(path: str, batch_id: str) -> Iterator[Line]:
    """One request per line; blank lines and lines starting with # are passed over."""
    stream = sys.stdin if path == "-" else Path(path).open(encoding="utf-8")  # noqa: SIM115
    name = "stdin" if path == "-" else path
    try:
        for number, text in enumerate(stream, 1):
            if text.strip() and not text.lstrip().startswith("#"):
                yield _validated(name, number, text, batch_id)
    finally:
        if stream is not sys.stdin:
            stream.close()
