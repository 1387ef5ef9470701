"""Where finished videos go: an S3 bucket (boto3) or a local directory.

The object keys are a pure function of the request (`{prefix}/{videoId}.mp4` and its poster
`{prefix}/{videoId}.jpg`), so a redelivered request overwrites the same objects, and a video
already there for the same request fingerprint is recognised and not rendered again.
Links for people: PUBLIC_URL_BASE + key (a CDN or public bucket), else a presigned URL
valid PRESIGN_SECONDS (a private bucket), else the S3 endpoint's path-style URL. boto3 errors are translated
here: throttling and 5xx are transient, a missing bucket or refused credentials are a
configuration error.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processor.errors import ConfigurationError, StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_TYPE = "video/mp4"
POSTER_TYPE = "image/jpeg"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"
FINGERPRINT = "fingerprint"
_CONFIG_CODES = {
    "NoSuchBucket",
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "AuthorizationHeaderMalformed",
    "403",
    "404",
}


@dataclass(frozen=True)
class Stored:
    key: str
    url: str
    size: int


class Storage(Protocol):
    def check(self) -> None:
        """ConfigurationError if videos cannot be stored here at all."""

    def key_for(self, video_id: str, extension: str = "mp4") -> str: ...

    def url_for(self, key: str) -> str:
        """Where the video of `key` is, as the result event reports it."""

    def http_url_for(self, key: str) -> str | None:
        """An HTTP link to it, where the store has one."""

    def fingerprint_of(self, key: str) -> str | None:
        """The fingerprint stored with an existing video, or None if there is none."""

    def put(
        self, path: Path, key: str, metadata: dict[str, str], content_type: str = CONTENT_TYPE
    ) -> Stored: ...

    def keys_under(self, folder: str) -> list[str]:
        """Every key below `folder/` (an HLS rendition's playlist and segments)."""

    def delete(self, keys: list[str]) -> None: ...


def _join(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def _public(base: str | None, key: str) -> str | None:
    return None if not base else f"{base.rstrip('/')}/{quote(key)}"


class S3Storage:
    """Bucket and prefix from `s3://bucket/prefix`; everything else from boto3's environment."""

    def __init__(
        self, bucket: str, prefix: str, public_url_base: str | None = None, presign_seconds: int = 0
    ):
        self.bucket, self.prefix = bucket, prefix
        self.public_url_base, self.presign_seconds = public_url_base, presign_seconds
        self.client: S3Client = boto3.client(
            "s3", config=Config(retries={"mode": "standard", "max_attempts": 5})
        )

    def _translate(self, exc: Exception, doing: str) -> Exception:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _CONFIG_CODES:
                return ConfigurationError(
                    f"{doing} s3://{self.bucket}: {code}: the bucket or credentials are wrong"
                )
            return StorageUnavailable(f"{doing} s3://{self.bucket}: {code or exc}")
        if isinstance(exc, BotoCoreError):
            if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                return ConfigurationError(f"no S3 credentials: {exc}")
            return StorageUnavailable(f"{doing} s3://{self.bucket}: {exc}")
        return exc

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "checking") from exc

    def key_for(self, video_id: str, extension: str = "mp4") -> str:
        return _join(self.prefix, f"{video_id}.{extension}")

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def http_url_for(self, key: str) -> str | None:
        if self.public_url_base:
            return _public(self.public_url_base, key)
        if self.presign_seconds:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.presign_seconds
            )
        return f"{self.client.meta.endpoint_url}/{self.bucket}/{quote(key)}"

    def fingerprint_of(self, key: str) -> str | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._translate(exc, "looking up") from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "looking up") from exc
        return head.get("Metadata", {}).get(FINGERPRINT)

    def put(self, path: Path, key: str, metadata: dict[str, str], content_type: str = CONTENT_TYPE) -> Stored:
        # Multipart above 16 MiB, at most 4 x 16 MiB in memory at a time.
        transfer = TransferConfig(
            multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4
        )
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type, "Metadata": metadata},
                Config=transfer,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "uploading to") from exc
        except Exception as exc:  # S3UploadFailedError wraps the ClientError
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError | BotoCoreError):
                raise self._translate(cause, "uploading to") from exc
            raise StorageUnavailable(f"uploading to s3://{self.bucket}: {exc}") from exc
        return Stored(key, self.url_for(key), path.stat().st_size)

    def keys_under(self, folder: str) -> list[str]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder.rstrip("/") + "/"
            )
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "listing") from exc

    def delete(self, keys: list[str]) -> None:
        try:
            for start in range(0, len(keys), 1000):  # the API's limit per call
                chunk: Any = [{"Key": key} for key in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "deleting from") from exc


class FileStorage:
    """A local directory, for laptops and demos; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path, public_url_base: str | None = None):
        self.root, self.public_url_base = root, public_url_base

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create {self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise ConfigurationError(f"{self.root} is not writable")

    def key_for(self, video_id: str, extension: str = "mp4") -> str:
        return f"{video_id}.{extension}"

    def url_for(self, key: str) -> str:
        return (self.root / key).as_uri()

    def http_url_for(self, key: str) -> str | None:
        return _public(self.public_url_base, key)  # e.g. a web server serving the directory

    def _meta(self, key: str) -> Path:
        target = self.root / key
        return target.with_name(f".{target.name}.fingerprint")

    def fingerprint_of(self, key: str) -> str | None:
        if not (self.root / key).exists() or not self._meta(key).exists():
            return None
        return self._meta(key).read_text().strip()

    def put(self, path: Path, key: str, metadata: dict[str, str], content_type: str = CONTENT_TYPE) -> Stored:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.partial")
        try:
            shutil.copyfile(path, temp)
            os.replace(temp, target)
            self._meta(key).write_text(metadata.get(FINGERPRINT, ""))
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageUnavailable(f"writing {target}: {exc}") from exc
        return Stored(key, self.url_for(key), target.stat().st_size)

    def keys_under(self, folder: str) -> list[str]:
        found = (self.root / folder).rglob("*")
        return sorted(p.relative_to(self.root).as_posix() for p in found if p.is_file() and p.name[0] != ".")

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            (self.root / key).unlink(missing_ok=True)
            self._meta(key).unlink(missing_ok=True)


def open_storage(output_url: str, public_url_base: str | None = None, presign_seconds: int = 0) -> Storage:
    parts = urlsplit(output_url)
    if parts.scheme == "s3":
        return S3Storage(parts.netloc, parts.path.strip("/"), public_url_base, presign_seconds)
    return FileStorage(Path(unquote(parts.path)), public_url_base)
