"""The one place that says what can be configured, its default, and what is valid.

Every setting is an environment variable (the Kubernetes way) and a CLI flag of the same
name (`RENDER_TIMEOUT` / `--render-timeout`); flags win. Values are validated once, at
start-up, into a frozen object that is passed down; nothing else reads the environment
for its own configuration (boto3 reads its standard `AWS_*` variables itself).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from processor.contract import Framerate, parse_resolution
from processor.exit_codes import ExitCode


class Settings(BaseSettings):
    """Base of every settings class: read once from the environment and flags, frozen, no unknown names."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", case_sensitive=False)


class BrokerSettings(Settings):
    """Where the broker is, and the layout of the queues on it."""

    amqp_url: str = Field(
        "amqp://guest:guest@localhost:5672/%2F",
        description="RabbitMQ connection URL (amqp:// or amqps://).",
    )
    render_queue: str = Field(
        "render",
        description="Base name of the queues, so several pipelines or tests can share a broker.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,100}$",
    )
    queue_type: Literal["auto", "quorum", "classic"] = Field(
        "auto",
        description=(
            "x-queue-type of the work queues when this project creates them; auto: none, the "
            "broker's default, as a producer's plain declare (quorum for the internal queues)."
        ),
    )
    delivery_limit: int = Field(
        5,
        ge=1,
        le=100,
        description=(
            "Deliveries that killed their processor after which a request is dead-lettered "
            "(reason delivery-limit) instead of handed out again."
        ),
    )
    management_url: str | None = Field(
        None,
        description=(
            "RabbitMQ management API for `setup-broker` (default: AMQP_URL's host, port 15672, "
            "its credentials)."
        ),
    )
    connect_timeout: float = Field(
        60.0, gt=0, description="Seconds to keep retrying the broker connection (start-up and reconnects)."
    )

    @field_validator("management_url")
    @classmethod
    def _management_scheme(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        return value or None

    @field_validator("amqp_url")
    @classmethod
    def _amqp_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("amqp", "amqps"):
            raise ValueError("must start with amqp:// or amqps://")
        return value


class RetrySettings(Settings):
    """How often and how late a failed render is tried again.

    Every side reads them, not only the processor: each retry delay is a queue of the layout
    (processor/topology.py), which whoever connects first declares.
    """

    max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts of a failing render before it is dead-lettered."
    )
    retry_delay: int = Field(
        30, ge=1, le=86400, description="Seconds before the first retry; later ones grow by RETRY_BACKOFF."
    )
    retry_backoff: float = Field(4.0, ge=1, le=10, description="Factor between successive retry delays.")

    @property
    def retry_delays(self) -> tuple[int, ...]:
        """Seconds before attempt 2, 3, ...: exponential back-off, one delay queue each."""
        return tuple(round(self.retry_delay * self.retry_backoff**n) for n in range(self.max_attempts - 1))


class LogSettings(Settings):
    """How every command logs (processor/logs.py)."""

    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: readable text on a terminal, JSON lines elsewhere."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")


# pydantic lists the fields of the last base first: the broker's, then the retries', then logging's.
class SharedSettings(LogSettings, RetrySettings, BrokerSettings):
    """What the loader, the processor and the operator tools all read."""


class LoaderSettings(SharedSettings):
    """The loader's own settings: its batch's progress queue, and the processor Job it may launch."""

    batch_ttl: int = Field(
        86400,
        ge=0,
        le=30 * 86400,
        description=(
            "Seconds a batch's progress queue (`watch --batch`, `loader --wait`) is kept after "
            "its last reader left; 0: loaders make none."
        ),
    )

    launch_job_template: Path | None = Field(
        None,
        description="After loading, create a processor Job from this Job manifest, sized to the backlog.",
    )
    launch_min: int = Field(1, ge=1, le=1000, description="Fewest processors a launched Job gets.")
    launch_max: int = Field(4, ge=1, le=1000, description="Most processors a launched Job gets.")
    requests_per_processor: int = Field(
        10, ge=1, le=100000, description="Waiting requests per processor when sizing a launched Job."
    )
    launch_namespace: str | None = Field(
        None, description="Namespace of the launched Job (default: the template's, then the pod's own)."
    )

    @model_validator(mode="after")
    def _launch_bounds(self) -> LoaderSettings:
        if self.launch_min > self.launch_max:
            raise ValueError("LAUNCH_MIN is above LAUNCH_MAX")
        return self


class ProcessorSettings(SharedSettings):
    """Everything the processor needs; operator-owned render defaults and ceilings."""

    output_url: str = Field(
        default_factory=(Path.cwd() / "videos").as_uri,
        description="Where videos go: s3://bucket/prefix or file:///absolute/dir (default: ./videos).",
    )
    public_url_base: str | None = Field(
        None,
        description=(
            "Base of the links in result events (httpUrl, posterHttpUrl): a CDN or public bucket "
            "in front of OUTPUT_URL; the object key is appended."
        ),
    )
    presign_seconds: int = Field(
        0,
        ge=0,
        le=7 * 86400,
        description=(
            "Without PUBLIC_URL_BASE: links are presigned S3 URLs valid this many seconds "
            "(a private bucket); 0: plain endpoint URLs."
        ),
    )
    git_allowed_protocols: Annotated[frozenset[str], NoDecode] = Field(
        frozenset({"https"}),
        description="Comma list of git transports repository URLs may use (https, http, ssh, git, file).",
    )
    git_allowed_networks: Annotated[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode] = (
        Field(
            (),
            description=(
                "Comma list of CIDRs repository hosts may resolve to although private, loopback or "
                "link-local (e.g. an internal Git server); public addresses are always allowed."
            ),
        )
    )
    git_follow_redirects: bool = Field(
        False, description="Let git follow an HTTP redirect on the first request (it may lead elsewhere)."
    )
    git_token_username: str = Field(
        "x-access-token",
        pattern=r"^[^:\s]{1,100}$",
        description=(
            "User name sent with a request's `token` (HTTP basic auth); GitHub and Gitea take "
            "x-access-token, GitLab oauth2."
        ),
    )
    git_credentials_file: Path | None = Field(
        None,
        description=(
            "git-credentials file (https://user:token@host per line, mounted from a Secret) for "
            "requests that bring no token of their own; read, never written."
        ),
    )
    git_ca_bundle: Path | None = Field(
        None,
        description=(
            "PEM file of the certificate authorities git trusts for https, instead of the "
            "system's (an internal GitLab or Gitea behind a private CA)."
        ),
    )
    max_repo_mb: int = Field(
        1024, ge=1, description="Largest blobless clone, in MiB, before the clone is stopped."
    )
    max_repos_per_video: int = Field(
        20, ge=1, le=100, description="Most repositories one request may merge into one video (`repoURLs`)."
    )
    max_history_changes: int = Field(
        2_000_000,
        ge=1,
        description=(
            "Most file changes (gource log lines) in the merged history of a several-repository "
            "video; a longer one is refused, so a list of giants cannot exhaust a pod."
        ),
    )
    captions: Literal["off", "tags"] = Field(
        "off",
        description="Default for requests that do not say: `tags` shows each release tag as a caption.",
    )
    shutdown_grace: float = Field(
        20.0,
        gt=0,
        description="Seconds SIGTERM waits for the request in hand to stop before children are killed.",
    )
    work_dir: Path = Field(
        Path("/tmp/gource-batch"),
        description="Parent of the per-request temporary directories.",
    )
    idle_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds with nothing to take (and no peer holding a request) before exiting 0.",
    )
    wait_for_peers: bool = Field(
        True,
        description=(
            "Stay while another processor still holds a request, so one that dies is "
            "picked up again (see README: draining)."
        ),
    )
    poll_interval: float = Field(1.0, gt=0, le=60, description="Seconds between looks at empty queues.")
    clone_timeout: float = Field(300.0, gt=0, description="Seconds a clone may take.")
    render_timeout: float = Field(
        1200.0,
        gt=0,
        description="Seconds a render may take; keep it below the broker's consumer_timeout.",
    )
    resolution: str = Field("1280x720", description="Default video size when a request names none.")
    max_resolution: str = Field("1920x1080", description="Largest video size a request may ask for.")
    framerate: Framerate = Field(30, description="Default frame rate.")
    max_framerate: Framerate = Field(60, description="Highest frame rate a request may ask for.")
    video_seconds: float = Field(60.0, gt=0, description="Default video length (gource --stop-at-time).")
    max_video_seconds: float = Field(300.0, gt=0, description="Ceiling on --stop-at-time.")
    seconds_per_day: float | None = Field(
        None,
        gt=0,
        description=(
            "Pace (gource --seconds-per-day) for requests that set none; unset: fitted so the "
            "selected history fills the video (see README: pace)."
        ),
    )
    max_seconds_per_day: float = Field(10.0, gt=0, description="Ceiling on --seconds-per-day.")
    font_file: Path | None = Field(
        None,
        description=(
            "Font gource draws text with; unset: gource's own, or an installed font with CJK glyphs "
            "(fonts-wqy-zenhei) for a video whose names, title or captions need one."
        ),
    )
    exclude: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "Comma list of path globs left out of every history (`vendor/**,node_modules/,*.min.js`) "
            "for requests that bring no `exclude` of their own."
        ),
    )
    output_format: Literal["mp4", "hls", "both"] = Field(
        "mp4",
        description=(
            "mp4: one file; hls: a playlist and segments under {prefix}/{videoId}/ for streaming "
            "players (hls.js, Safari); both: the two, from one encode."
        ),
    )
    ffmpeg_codec: Literal["libx264", "libx265"] = Field("libx264", description="Video encoder.")
    ffmpeg_preset: str = Field(
        "veryfast",
        pattern=r"^(ultrafast|superfast|veryfast|faster|fast|medium|slow|slower|veryslow)$",
        description="Encoder speed/size trade-off.",
    )
    ffmpeg_crf: int = Field(23, ge=0, le=51, description="Encoder quality (lower is better).")
    metrics_port: int = Field(
        9102, ge=0, le=65535, description="Port of the Prometheus metrics endpoint; 0 turns it off."
    )
    pushgateway_url: str | None = Field(
        None,
        description="Prometheus Pushgateway to push the final figures to when the processor exits.",
    )

    @field_validator("git_allowed_protocols", mode="before")
    @classmethod
    def _split_protocols(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {p.strip().lower() for p in value.split(",") if p.strip()}
        unknown = set(value) - {"https", "http", "ssh", "git", "file"}
        if unknown:
            raise ValueError(f"unknown protocol(s): {', '.join(sorted(unknown))}")
        if not value:
            raise ValueError("at least one protocol must be allowed")
        return frozenset(value)

    @field_validator("public_url_base", "pushgateway_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("exclude", mode="before")
    @classmethod
    def _split_globs(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        return tuple(value)

    @field_validator("git_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        return tuple(ipaddress.ip_network(v, strict=False) for v in value)

    @field_validator("font_file")
    @classmethod
    def _font_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such font file: {value}")
        return value

    @field_validator("git_credentials_file", "git_ca_bundle")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.is_file() or not os.access(value, os.R_OK):
            raise ValueError(f"no readable file at {value}")
        return value.resolve()

    @field_validator("git_ca_bundle")
    @classmethod
    def _pem(cls, value: Path | None) -> Path | None:
        if value is not None and b"-----BEGIN CERTIFICATE-----" not in value.read_bytes():
            raise ValueError(f"{value} holds no PEM certificate")
        return value

    @field_validator("output_url")
    @classmethod
    def _output_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "s3":
            if not parts.netloc:
                raise ValueError("s3:// URL needs a bucket: s3://bucket/prefix")
        elif parts.scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise ValueError("file:// URL needs an absolute path: file:///abs/dir")
        else:
            raise ValueError("must be s3://bucket/prefix or file:///absolute/dir")
        return value

    @field_validator("resolution", "max_resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        width, height = parse_resolution(value)
        return f"{width}x{height}"

    @model_validator(mode="after")
    def _defaults_within_ceilings(self) -> ProcessorSettings:
        (w, h), (mw, mh) = parse_resolution(self.resolution), parse_resolution(self.max_resolution)
        pairs = [
            ("resolution", w <= mw and h <= mh),
            ("framerate", self.framerate <= self.max_framerate),
            ("video_seconds", self.video_seconds <= self.max_video_seconds),
            ("seconds_per_day", (self.seconds_per_day or 0) <= self.max_seconds_per_day),
        ]
        for name, ok in pairs:
            if not ok:
                raise ValueError(f"{name.upper()} is above MAX_{name.upper()}")
        return self


S = TypeVar("S", bound=Settings)


def add_flags(parser: argparse.ArgumentParser, settings_class: type[Settings]) -> None:
    """One `--flag` per setting, named after its environment variable, default from env."""
    group = parser.add_argument_group("settings (environment variable in capitals, flag wins)")
    for name, field in settings_class.model_fields.items():
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=argparse.SUPPRESS,
            metavar=name.upper(),
            help=field.description,
        )


def load(settings_class: type[S], args: argparse.Namespace) -> S:
    """Build the settings from env + flags, or exit with one line per invalid value."""
    given = {k: v for k, v in vars(args).items() if k in settings_class.model_fields}
    try:
        return settings_class(**given)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            message = error["msg"].removeprefix("Value error, ")
            print(f"configuration error: {name}: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.CONFIGURATION) from None
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(ExitCode.CONFIGURATION) from None


def environment_names(settings_class: type[Settings]) -> list[str]:
    return [name.upper() for name in settings_class.model_fields]


__all__ = [
    "BrokerSettings",
    "LoaderSettings",
    "LogSettings",
    "ProcessorSettings",
    "RetrySettings",
    "Settings",
    "SharedSettings",
    "add_flags",
    "environment_names",
    "load",
]
