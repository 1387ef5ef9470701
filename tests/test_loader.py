"""What a user of `python -m loader` sees: validation first, confirmed publishing, a summary."""

from __future__ import annotations

import json
import subprocess
import sys

from support import ROOT, Pipeline


def test_nothing_is_published_when_a_line_is_invalid(pipeline: Pipeline) -> None:
    lines = [
        json.dumps({"repoURL": "https://example.com/a.git"}),
        json.dumps({"repoURL": "https://example.com/b.git", "gource": {"--loop": True}}),
        "{not json",
    ]
    result = pipeline.load("--file", "-", stdin="\n".join(lines))

    assert result.returncode == 2
    assert "stdin:2: invalid request: gource.--loop" in result.stderr
    assert "stdin:3: invalid request: not valid JSON" in result.stderr
    assert "loaded 0, skipped 2, failed 0" in result.stdout
    assert pipeline.ready(pipeline.base) == 0


def test_skip_invalid_loads_the_valid_lines_and_reports_the_rest(pipeline: Pipeline) -> None:
    lines = [json.dumps({"repoURL": "https://example.com/a.git"}), '{"repoURL": 3}']
    result = pipeline.load("--file", "-", "--skip-invalid", stdin="\n".join(lines))

    assert "loaded 1, skipped 1, failed 0" in result.stdout
    assert result.returncode == 1  # not everything was loaded
    assert pipeline.ready(pipeline.base) == 1


def test_loaded_requests_carry_a_video_id_and_the_batch_id(pipeline: Pipeline) -> None:
    result = pipeline.load("--repo", "https://example.com/a.git", "--repo", "https://example.com/b.git",
                           "--priority", "high")  # fmt: skip
    assert result.returncode == 0
    batch = result.stdout.split()[1].rstrip(":")

    bodies = [body for _, body in pipeline.drain(f"{pipeline.base}.high")]
    assert [b["repoURL"] for b in bodies] == ["https://example.com/a.git", "https://example.com/b.git"]
    assert all(b["batchId"] == batch for b in bodies)
    assert len({b["videoId"] for b in bodies}) == 2


def test_an_unreachable_broker_is_reported_and_nothing_counts_as_loaded(pipeline: Pipeline) -> None:
    result = pipeline.load(
        "--repo",
        "https://example.com/a.git",
        AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F",
        CONNECT_TIMEOUT=2,
    )

    assert result.returncode != 0
    assert "loaded 0" in result.stdout


def test_launching_processors_without_a_cluster_is_a_configuration_error(pipeline: Pipeline) -> None:
    template = ROOT / "kubernetes" / "processor-job.yaml"
    result = pipeline.load(
        "--repo", "https://example.com/a.git", "--launch-job-template", str(template),
        KUBECONFIG="/nonexistent", KUBERNETES_SERVICE_HOST="",
    )  # fmt: skip

    assert result.returncode == 78
    assert "no Kubernetes configuration" in result.stderr
    assert "loaded 1, skipped 0, failed 0" in result.stdout  # the batch itself is safe in the queue
    assert pipeline.ready(pipeline.base) == 1


def test_a_bad_setting_is_one_clear_line_and_exit_78(pipeline: Pipeline) -> None:
    result = pipeline.load("--repo", "https://example.com/a.git", LAUNCH_MIN=5, LAUNCH_MAX=2)

    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        "configuration error: settings: LAUNCH_MIN is above LAUNCH_MAX"
    ]


def test_the_loader_loads_none_of_the_processors_machinery() -> None:
    """Validating and publishing needs the contract and the broker: not git, the renderer, the
    object store, nor the processor's process control (which loads libc through ctypes)."""
    listing = "import sys, loader.__main__; print(*sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", listing], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()

    assert "processor.contract" in loaded
    machinery = {"processor.procs", "processor.git", "processor.render", "processor.storage", "boto3"}
    assert machinery & set(loaded) == set()
