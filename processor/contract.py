"""The wire format: render requests in, result events out. The one schema both sides use.

Requests come from external producers in the camelCase form of the earlier "gource
wizard" service, so that form is accepted verbatim; the snake_case spelling of the same
fields is accepted too. Gource options are user input: only the allow-listed keys below
exist, each typed and bounded; nothing here can name a file, a command or an endless run.
Operator ceilings (which depend on settings) are applied by the renderer, not here.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from processor.errors import InvalidRequest
from processor.settings import Framerate, parse_resolution, redact

MAX_BODY_BYTES = 64 * 1024
MAX_WIDTH, MAX_HEIGHT = 3840, 2160
MIN_SIDE = 64

VIDEO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_DATE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[ T](?P<time>\d{2}:\d{2}(?::\d{2})?))?"
    r"(?:\s*(?P<tz>[+-]\d{2}:?\d{2}|Z))?$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _resolution(value: str) -> str:
    width, height = parse_resolution(value)
    if not (MIN_SIDE <= width <= MAX_WIDTH and MIN_SIDE <= height <= MAX_HEIGHT):
        raise ValueError(f"resolution must be within {MIN_SIDE}x{MIN_SIDE} and {MAX_WIDTH}x{MAX_HEIGHT}")
    return f"{width}x{height}"


def _date(value: str) -> str:
    """A date gource understands (YYYY-MM-DD [hh:mm[:ss]] [+zzzz]), normalised."""
    match = _DATE.match(value.strip())
    if not match:
        raise ValueError("date must look like 2024-01-31 or 2024-01-31 12:00:00 +0000")
    time = match["time"] or "00:00:00"
    if len(time) == 5:
        time += ":00"
    tz = (match["tz"] or "+0000").replace(":", "").replace("Z", "+0000")
    try:
        datetime.strptime(f"{match['date']} {time} {tz}", "%Y-%m-%d %H:%M:%S %z")
    except ValueError as exc:
        raise ValueError(f"not a real date: {value!r}") from exc
    return f"{match['date']} {time} {tz}"


def _title(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("title must not contain control characters")
    return value


Resolution = Annotated[str, AfterValidator(_resolution)]
GourceDate = Annotated[str, AfterValidator(_date)]
Title = Annotated[str, Field(max_length=200), AfterValidator(_title)]
VideoId = Annotated[str, Field(pattern=VIDEO_ID.pattern)]


class GourceOptions(BaseModel):
    """The allow-list: every gource option a request may set, with its bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    resolution: Resolution | None = None
    start_date: GourceDate | None = Field(None, alias="--start-date")
    stop_date: GourceDate | None = Field(None, alias="--stop-date")
    # Fractions of the whole history (0 = first commit, 1 = last), as the production
    # backend sent them in `renderOptions.start` / `renderOptions.stop`.
    start_position: float | None = Field(None, alias="--start-position", ge=0, lt=1)
    stop_position: float | None = Field(None, alias="--stop-position", gt=0, le=1)
    stop_at_time: float | None = Field(None, alias="--stop-at-time", gt=0, le=86400)
    seconds_per_day: float | None = Field(None, alias="--seconds-per-day", gt=0, le=86400)
    key: StrictBool | None = Field(None, alias="--key")
    time_scale: float | None = Field(None, alias="--time-scale", gt=0, le=4)
    elasticity: float | None = Field(None, alias="--elasticity", ge=0, le=10)
    output_framerate: Framerate | None = Field(None, alias="--output-framerate")
    bloom_multiplier: float | None = Field(None, alias="--bloom-multiplier", ge=0, le=10)
    bloom_intensity: float | None = Field(None, alias="--bloom-intensity", ge=0, le=10)
    title: Title | None = Field(None, alias="--title")

    @model_validator(mode="after")
    def _positions_in_order(self) -> GourceOptions:
        start, stop = self.start_position or 0.0, self.stop_position or 1.0
        if start >= stop:
            raise ValueError("--start-position must be below --stop-position")
        return self


class RequestType(StrEnum):
    gource = "gource"


class RenderRequest(BaseModel):
    """One render request, as published on the work queues."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal[RequestType.gource] = RequestType.gource
    repo_url: str = Field(alias="repoURL", min_length=1, max_length=2048)
    video_id: VideoId = Field(default_factory=lambda: str(uuid.uuid4()), alias="videoId")
    batch_id: VideoId | None = Field(None, alias="batchId")
    gource: GourceOptions = Field(default_factory=GourceOptions)

    def to_wire(self) -> bytes:
        """The camelCase form every consumer of the old service understands."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


def _snake_to_wire(data: dict[str, Any]) -> dict[str, Any]:
    """Accept `repo_url`, `start_date`, ... by mapping them onto the wire names."""
    gource = data.get("gource")
    if isinstance(gource, dict):
        aliases = {name: field.alias for name, field in GourceOptions.model_fields.items() if field.alias}
        data = {**data, "gource": {aliases.get(k, k): v for k, v in gource.items()}}
    return data


def _pointed_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "request"
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_request(body: bytes | str | dict[str, Any], batch_id: str | None = None) -> RenderRequest:
    """Validate one request from bytes, text or a decoded object; InvalidRequest if not.

    `batch_id` is given to a request that names no batch of its own.
    """
    if isinstance(body, dict):
        data: Any = body
    else:
        raw = body.encode() if isinstance(body, str) else body
        if len(raw) > MAX_BODY_BYTES:
            raise InvalidRequest(f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidRequest(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"a request is a JSON object, not {type(data).__name__}")
    if batch_id is not None and "batchId" not in data and "batch_id" not in data:
        data = {**data, "batchId": batch_id}
    try:
        return RenderRequest.model_validate(_snake_to_wire(data))
    except ValidationError as exc:
        raise InvalidRequest(_pointed_errors(exc)) from None


@dataclass(frozen=True)
class Subject:
    """Who a result event is about; for a body that did not validate, what could be read."""

    video_id: str
    repo_url: str
    batch_id: str | None = None

    @classmethod
    def of(cls, request: RenderRequest) -> Subject:
        return cls(request.video_id, redact(request.repo_url), request.batch_id)

    @classmethod
    def guessed_from(cls, body: bytes) -> Subject:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return cls("unknown", "unknown")

        def text(*names: str) -> str | None:
            for name in names:
                value = data.get(name)
                if isinstance(value, str) and value.isprintable() and len(value) <= 256:
                    return value
            return None

        return cls(
            text("videoId", "video_id") or "unknown",
            redact(text("repoURL", "repo_url") or "unknown"),
            text("batchId", "batch_id"),
        )


class State(StrEnum):
    succeeded = "succeeded"
    failed = "failed"


class Timings(BaseModel):
    """Seconds spent in each phase; `queued` is from publish to pick-up."""

    model_config = ConfigDict(populate_by_name=True)

    queued: float | None = None
    clone: float | None = None
    render: float | None = None
    poster: float | None = None  # part of render
    upload: float | None = None
    total: float | None = None


class ResultEvent(BaseModel):
    """What a backend needs to "update the database with the link to the video"."""

    model_config = ConfigDict(populate_by_name=True)

    video_id: str = Field(alias="videoId")
    batch_id: str | None = Field(None, alias="batchId")
    repo_url: str = Field(alias="repoURL")
    state: State
    url: str | None = None
    http_url: str | None = Field(None, alias="httpUrl")
    key: str | None = None
    poster_url: str | None = Field(None, alias="posterUrl")
    poster_http_url: str | None = Field(None, alias="posterHttpUrl")
    playlist_url: str | None = Field(None, alias="playlistUrl")
    playlist_http_url: str | None = Field(None, alias="playlistHttpUrl")
    error: str | None = None
    reason: str | None = None
    attempts: int = 1
    priority: str | None = None
    processor: str | None = None
    started_at: datetime | None = Field(None, alias="startedAt")
    finished_at: datetime | None = Field(None, alias="finishedAt")
    timings: Timings = Field(default_factory=Timings)
    video: dict[str, Any] | None = None
    # How the history was told: secondsPerDay, fitted, commits, spanStart, spanEnd, ...
    pace: dict[str, Any] | None = None

    def to_wire(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class ManifestEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    video_id: str = Field(alias="videoId")
    repo_url: str = Field(alias="repoURL")


class BatchManifest(BaseModel):
    """What one loader run put into a batch; published to the batch's own queue only."""

    model_config = ConfigDict(populate_by_name=True)

    batch_id: str = Field(alias="batchId")
    loaded_at: datetime = Field(alias="loadedAt")
    requests: list[ManifestEntry]

    def to_wire(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
