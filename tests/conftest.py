"""Real services for the tests: a RabbitMQ broker, an S3 server on 127.0.0.1, git repositories.

Locally a missing service skips the tests that need it; under CI (CI=true) it fails them,
so a green CI run always means the real thing ran.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from histories import make_backwards_repo, make_flood_repo, make_giant_repo, make_organisation
from support import (
    AMQP_URL,
    Pipeline,
    make_long_repo,
    make_sample_repo,
    require,
    s3_server,
)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception as exc:
        require(False, f"no RabbitMQ broker at {AMQP_URL}: {exc!r}")
    return AMQP_URL


@pytest.fixture(scope="session")
def renderer() -> None:
    for tool in ("git", "gource", "ffmpeg", "ffprobe", "Xvfb"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto in server mode: a real S3 API over HTTP on 127.0.0.1."""
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def sample_repo(tmp_path_factory: pytest.TempPathFactory, renderer: None) -> Path:
    """Several authors (some non-ASCII), renames, deletions, a merge, names with spaces."""
    return make_sample_repo(tmp_path_factory.mktemp("repos") / "sample")


@pytest.fixture(scope="session")
def long_repo(tmp_path_factory: pytest.TempPathFactory, renderer: None) -> Path:
    """Twelve uneven years, 3,109 commits by eight people: a quiet 2014 and a 600-commit week."""
    return make_long_repo(tmp_path_factory.mktemp("repos") / "long")


@pytest.fixture(scope="session")
def giant_repo(tmp_path_factory: pytest.TempPathFactory, renderer: None) -> Path:
    """Fifteen years, 55,000 commits by 2,201 people, 8,000 files alive: a big project (histories.py)."""
    return make_giant_repo(tmp_path_factory.mktemp("repos") / "giant")


@pytest.fixture(scope="session")
def organisation(tmp_path_factory: pytest.TempPathFactory, renderer: None) -> list[Path]:
    """Ten repositories of one organisation, 6 to 10,000 commits, people shared between them."""
    return make_organisation(tmp_path_factory.mktemp("repos") / "organisation")


@pytest.fixture(scope="session")
def backwards_repo(tmp_path_factory: pytest.TempPathFactory, renderer: None) -> Path:
    """Twelve years rebased with committer date = author date: commit times often run backwards."""
    return make_backwards_repo(tmp_path_factory.mktemp("repos") / "backwards")


@pytest.fixture(scope="session")
def flood_repo(tmp_path_factory: pytest.TempPathFactory, renderer: None) -> Path:
    """One commit adding 200,000 empty files."""
    return make_flood_repo(tmp_path_factory.mktemp("repos") / "flood")


@pytest.fixture(scope="session")
def ocr() -> None:
    require(shutil.which("tesseract") is not None, "tesseract is not installed (apt: tesseract-ocr)")


@pytest.fixture
def pipeline(amqp_url: str, s3_endpoint: str, renderer: None, tmp_path: Path) -> Iterator[Pipeline]:
    """A private queue set and bucket, with helpers to load, process and inspect."""
    base = f"t{uuid.uuid4().hex[:10]}"
    p = Pipeline(amqp_url=amqp_url, s3_endpoint=s3_endpoint, base=base, bucket=base, workdir=tmp_path)
    p.create_bucket()
    yield p
    p.close()


# The fixtures that bring up a real service (or depend on one that does).
SERVICES = {"amqp_url", "s3_endpoint", "renderer", "ocr", "sample_repo", "long_repo", "pipeline"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `fast` every test that needs none of the services: `pytest -m fast` is the inner loop."""
    for item in items:
        marked = any(item.get_closest_marker(name) for name in ("slow", "cluster", "broker"))
        if not marked and not SERVICES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fast)


def pytest_report_header() -> list[str]:
    return [f"python {sys.version.split()[0]}; CI={os.environ.get('CI', '')!r}; AMQP_URL={AMQP_URL}"]
