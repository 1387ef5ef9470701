"""The wire format: render requests in, result events out. The one schema both sides use.

Requests come from external producers, so three spellings of the same request are
accepted verbatim: the camelCase draft of the earlier "gource wizard" service (`type`,
`gource` with gource's own flag names), its snake_case twin, and the form its production
backend actually sent (`renderType`, `renderOptions` with camelCase names, `token`).
Gource options are user input: only the allow-listed keys below exist, each typed and
bounded; nothing here can name a file, a command or an endless run.
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
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from processor.errors import InvalidRequest, RepositoryRejected
from processor.logs import redact
from processor.repo_urls import transport

MAX_BODY_BYTES = 64 * 1024
# The schema's own ceiling on a repository list; MAX_REPOS_PER_VIDEO (an operator setting,
# applied by the processor) is usually lower.
MAX_REPO_URLS = 100
MAX_WIDTH, MAX_HEIGHT = 3840, 2160
MIN_SIDE = 64

VIDEO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_DATE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[ T](?P<time>\d{2}:\d{2}(?::\d{2})?))?"
    r"(?:\s*(?P<tz>[+-]\d{2}:?\d{2}|Z))?$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESOLUTION = re.compile(r"^-?(\d{2,5})x(\d{2,5})$")
FRAMERATES = (25, 30, 60)


def parse_resolution(value: str) -> tuple[int, int]:
    """`-1280x720` or `1280x720` as (width, height); ValueError when it is neither."""
    match = _RESOLUTION.match(value.strip())
    if not match:
        raise ValueError(f"resolution must look like 1280x720, got {value!r}")
    return int(match[1]), int(match[2])


def _check_framerate(value: int) -> int:
    if value not in FRAMERATES:
        raise ValueError("must be 25, 30 or 60")
    return value


# gource's --output-framerate takes exactly these; the operator's FRAMERATE and MAX_FRAMERATE too.
Framerate = Annotated[int, AfterValidator(_check_framerate)]


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


# The elements a request may hide (gource's names); the mouse and the progress bar are
# always hidden.
HIDEABLE = ("bloom", "date", "dirnames", "files", "filenames", "root", "tree", "users", "usernames")


def _hide(value: Any) -> Any:
    """`"filenames,usernames"` (gource's form) or a list of names: a sorted tuple of known elements."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        raise ValueError("hide is a comma list or a list of element names")
    chosen = {str(name).strip().lower() for name in names if str(name).strip()}
    unknown = chosen - set(HIDEABLE)
    if unknown:
        raise ValueError(f"cannot hide {', '.join(sorted(unknown))}; elements: {', '.join(HIDEABLE)}")
    return tuple(sorted(chosen))


MAX_EXCLUDES = 50
_GLOB = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


def _exclude(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        if not _GLOB.match(pattern) or pattern.strip("/") == "":
            raise ValueError(f"not a path pattern: {pattern[:40]!r} (1..200 printable characters)")
    return tuple(dict.fromkeys(pattern.strip() for pattern in patterns))


Resolution = Annotated[str, AfterValidator(_resolution)]
RepoURL = Annotated[str, Field(min_length=1, max_length=2048)]
GourceDate = Annotated[str, AfterValidator(_date)]
Title = Annotated[str, Field(max_length=200), AfterValidator(_title)]
VideoId = Annotated[str, Field(pattern=VIDEO_ID.pattern)]
Hide = Annotated[tuple[str, ...], BeforeValidator(_hide)]
# Glob patterns of paths to leave out (processor/exclusions.py): `vendor/**`, `*.min.js`.
Exclude = Annotated[tuple[str, ...], Field(max_length=MAX_EXCLUDES), AfterValidator(_exclude)]

# What a dead-lettered body holds instead of the request's token (see README).
REDACTED = "[redacted]"


def _option(flag: str, production: str, **bounds: Any) -> Any:
    """A gource option named by its flag (the wire form, `gource`) or by the production
    backend's camelCase name (`renderOptions`); both lead to the same bounds."""
    return Field(None, alias=flag, validation_alias=AliasChoices(flag, production), **bounds)


class GourceOptions(BaseModel):
    """The allow-list: every gource option a request may set, with its bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    resolution: Resolution | None = None
    start_date: GourceDate | None = _option("--start-date", "startDate")
    stop_date: GourceDate | None = _option("--stop-date", "stopDate")
    # Fractions of the whole history (0 = first commit, 1 = last), as the production
    # backend sent them in `renderOptions.start` / `renderOptions.stop`.
    start_position: float | None = _option("--start-position", "start", ge=0, lt=1)
    stop_position: float | None = _option("--stop-position", "stop", gt=0, le=1)
    stop_at_time: float | None = _option("--stop-at-time", "stopAtTime", gt=0, le=86400)
    seconds_per_day: float | None = _option("--seconds-per-day", "secondsPerDay", gt=0, le=86400)
    key: StrictBool | None = _option("--key", "key")
    time_scale: float | None = _option("--time-scale", "timeScale", gt=0, le=4)
    elasticity: float | None = _option("--elasticity", "elasticity", ge=0, le=10)
    output_framerate: Framerate | None = _option("--output-framerate", "outputFramerate")
    bloom_multiplier: float | None = _option("--bloom-multiplier", "bloomMultiplier", ge=0, le=10)
    bloom_intensity: float | None = _option("--bloom-intensity", "bloomIntensity", ge=0, le=10)
    title: Title | None = _option("--title", "title")
    # What gource draws: each overrides what the processor fits to the history (README:
    # presentation). None of them can name a file or a regular expression.
    hide: Hide | None = _option("--hide", "hide")
    max_files: int | None = _option("--max-files", "maxFiles", ge=1, le=100_000)
    file_idle_time: int | None = _option("--file-idle-time", "fileIdleTime", ge=0, le=86400)
    filename_time: float | None = _option("--filename-time", "filenameTime", ge=2, le=3600)
    user_scale: float | None = _option("--user-scale", "userScale", ge=0.1, le=10)
    camera_mode: Literal["overview", "track"] | None = _option("--camera-mode", "cameraMode")
    file_extensions: StrictBool | None = _option("--file-extensions", "fileExtensions")

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

    type: Literal[RequestType.gource] = Field(
        RequestType.gource, validation_alias=AliasChoices("type", "renderType")
    )
    # Exactly one of the two: one repository, or several merged into one video.
    repo_url: RepoURL | None = Field(None, alias="repoURL")
    repo_urls: list[RepoURL] | None = Field(None, alias="repoURLs", min_length=1, max_length=MAX_REPO_URLS)
    video_id: VideoId = Field(default_factory=lambda: str(uuid.uuid4()), alias="videoId")
    batch_id: VideoId | None = Field(None, alias="batchId")
    gource: GourceOptions = Field(
        default_factory=GourceOptions, validation_alias=AliasChoices("gource", "renderOptions")
    )
    # "tags": every release tag as a caption at its date; "off"; unset: the CAPTIONS default.
    captions: Literal["tags", "off"] | None = None
    # Paths to leave out of the history (glob patterns); unset: the operator's EXCLUDE.
    exclude: Exclude | None = None
    # The user's access token for a private repository: a secret from here on (its repr is
    # `**********`), sent to the git server only, as HTTP basic auth over https.
    token: SecretStr | None = Field(None, max_length=4096)

    @field_validator("type", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value  # the backend sent "GOURCE"

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # the backend sent "" for public repositories
        if not value.get_secret_value().isprintable():
            raise ValueError("the token must be printable text")
        return value

    @model_validator(mode="after")
    def _one_or_several_repositories(self) -> RenderRequest:
        if self.repo_url is None and self.repo_urls is None:
            raise ValueError("repoURL: Field required (or repoURLs, a list of repositories)")
        if self.repo_url is not None and self.repo_urls is not None:
            raise ValueError("give either repoURL (one repository) or repoURLs (several), not both")
        return self

    @model_validator(mode="after")
    def _token_over_https_only(self) -> RenderRequest:
        if self.token is None:
            return self
        for n, url in enumerate(self.repos):
            field = "repoURL" if self.repo_urls is None else f"repoURLs.{n}"  # as pydantic names it
            try:
                scheme = transport(url)
            except RepositoryRejected:
                scheme = "no transport"
            if scheme != "https":
                raise ValueError(f"a token is sent over https only, and {field} uses {scheme!r}")
            if "@" in urlsplit(url).netloc:
                raise ValueError(f"a token and credentials in {field}: send one or the other")
        return self

    @property
    def repos(self) -> tuple[str, ...]:
        """Every repository of the video, in the order given."""
        return tuple(self.repo_urls) if self.repo_urls is not None else (str(self.repo_url),)

    def to_wire(self) -> bytes:
        """The camelCase form every consumer of the old service understands."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"token"})
        if self.token is not None:
            data["token"] = self.token.get_secret_value()
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def describe_repos(urls: tuple[str, ...] | list[str]) -> str:
    """One line naming a video's repositories (credentials removed), for events and logs."""
    first = redact(urls[0]) if urls else "unknown"
    return first if len(urls) <= 1 else f"{first} and {len(urls) - 1} more"


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


_TOKEN = re.compile(rb'("token"\s*:\s*)"(?:[^"\\]|\\.)+"')


def without_token(body: bytes) -> bytes:
    """`body` with any token replaced by REDACTED: what a dead letter may keep.

    The rest stays as sent, byte for byte, so a dead letter still shows what the producer
    sent; a body that is not even JSON loses its `"token": "..."` text all the same.
    """
    redacted = _TOKEN.sub(rb'\1"' + REDACTED.encode() + b'"', body)
    try:
        data = json.loads(redacted)
    except ValueError:
        return redacted
    if isinstance(data, dict) and data.get("token") not in (None, "", REDACTED):  # an escaped key, a number
        return json.dumps({**data, "token": REDACTED}, ensure_ascii=False).encode()
    return redacted


@dataclass(frozen=True)
class Subject:
    """Who a result event is about; for a body that did not validate, what could be read."""

    video_id: str
    repo_url: str
    batch_id: str | None = None
    repo_urls: tuple[str, ...] | None = None  # redacted, for a several-repository request

    @classmethod
    def of(cls, request: RenderRequest) -> Subject:
        several = tuple(redact(url) for url in request.repo_urls) if request.repo_urls else None
        return cls(request.video_id, describe_repos(request.repos), request.batch_id, several)

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

        urls = data.get("repoURLs", data.get("repo_urls"))
        several = [u[:256] for u in urls if isinstance(u, str)] if isinstance(urls, list) else []
        single = text("repoURL", "repo_url")
        return cls(
            text("videoId", "video_id") or "unknown",
            redact(single) if single else describe_repos(several),
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
    repo_urls: list[str] | None = Field(None, alias="repoURLs")
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
    # Per repository of the video: its directory name in the video, commits, tags.
    repositories: list[dict[str, Any]] | None = None
    # How the history was told: secondsPerDay, fitted, commits, spanStart, spanEnd, ...
    pace: dict[str, Any] | None = None
    # What gource drew, fitted to the history (README: presentation): file names, people named, ...
    presentation: dict[str, Any] | None = None
    # The paths left out (the request's `exclude`, else EXCLUDE) and how many changes that removed.
    excluded: dict[str, Any] | None = None
    # The render's predicted wall time (the cost guard's) and the measured one.
    cost: dict[str, Any] | None = None

    def to_wire(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class RenderProgressEvent(BaseModel):
    """How far a render in flight is, for a progress bar: never a final word (ResultEvent is).

    Published every few seconds while gource | ffmpeg runs, on an exchange of its own, so
    consumers of result events never see one.
    """

    model_config = ConfigDict(populate_by_name=True)

    video_id: str = Field(alias="videoId")
    batch_id: str | None = Field(None, alias="batchId")
    state: Literal["rendering"] = "rendering"
    progress: float = Field(ge=0, le=1)  # frames done / frames total
    eta: float | None = Field(None, ge=0)  # seconds until the last frame; None until a frame is done
    frames_done: int = Field(alias="framesDone", ge=0)
    frames_total: int = Field(alias="framesTotal", ge=0)
    attempt: int = 1
    processor: str | None = None
    at: datetime

    def to_wire(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()  # `eta: null` says "not known yet"


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
