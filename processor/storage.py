"""Where finished videos go: an S3 bucket (boto3) or a local directory.

The object key is a pure function of the request (`{prefix}/{videoId}.mp4`), so a
redelivered request overwrites the same object, and a video already there for the same
request fingerprint is recognised and not rendered again. boto3 errors are translated
here: throttling and 5xx are transient, a missing bucket or refused credentials are a
configuration error.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, unquote, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processor.errors import ConfigurationError, StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_TYPE = "video/mp4"
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

    def key_for(self, video_id: str) -> str: ...

    def url_for(self, key: str) -> str:
        """Where the video of `key` is, as the result event reports it."""

    def http_url_for(self, key: str) -> str | None:
        """An HTTP link to it, where the store has one."""

    def fingerprint_of(self, key: str) -> str | None:
        """The fingerprint stored with an existing video, or None if there is none."""

    def put(self, path: Path, key: str, metadata: dict[str, str]) -> Stored: ...


def _join(prefix: str, video_id: str) -> str:
    return f"{prefix.strip('/')}/{video_id}.mp4" if prefix.strip("/") else f"{video_id}.mp4"


class S3Storage:
    """Bucket and prefix from `s3://bucket/prefix`; everything else from boto3's environment."""

    def __init__(self, bucket: str, prefix: str):
        self.bucket, self.prefix = bucket, prefix
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

    def key_for(self, video_id: str) -> str:
        return _join(self.prefix, video_id)

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def http_url_for(self, key: str) -> str | None:
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

    def put(self, path: Path, key: str, metadata: dict[str, str]) -> Stored:

        # Multipart above 16 MiB, at most 4 x 16 MiB in memory at a time.
        transfer = TransferConfig(
            multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4
        )
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": CONTENT_TYPE, "Metadata": metadata},
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


class FileStorage:
    """A local directory, for laptops and demos; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path):
        self.root = root

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create {self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise ConfigurationError(f"{self.root} is not writable")

    def key_for(self, video_id: str) -> str:
        return _join("", video_id)

    def url_for(self, key: str) -> str:
        return (self.root / key).as_uri()

    def http_url_for(self, key: str) -> str | None:
        return None

    def _meta(self, key: str) -> Path:
        return self.root / f".{key}.fingerprint"

    def fingerprint_of(self, key: str) -> str | None:
        if not (self.root / key).exists() or not self._meta(key).exists():
            return None
        return self._meta(key).read_text().strip()

    def put(self, path: Path, key: str, metadata: dict[str, str]) -> Stored:
        target = self.root / key
        temp = target.with_name(f".{target.name}.partial")
        try:
            shutil.copyfile(path, temp)
            os.replace(temp, target)
            self._meta(key).write_text(metadata.get(FINGERPRINT, ""))
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageUnavailable(f"writing {target}: {exc}") from exc
        return Stored(key, self.url_for(key), target.stat().st_size)


def open_storage(output_url: str) -> Storage:
    parts = urlsplit(output_url)
    if parts.scheme == "s3":
        return S3Storage(parts.netloc, parts.path.strip("/"))
    return FileStorage(Path(unquote(parts.path)))
