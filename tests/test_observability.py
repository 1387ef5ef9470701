"""Progress bookkeeping, the Grafana dashboard and compose.yaml, without services."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from processor import metrics
from processor.broker.batches import BatchMessage
from processor.contract import BatchManifest, ManifestEntry, ResultEvent, State
from processor.progress import BatchState, summary

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "gource-batch"


def manifest(*video_ids: str, loaded_at: float = 1000.0) -> BatchMessage:
    from datetime import UTC, datetime

    body = BatchManifest(
        batch_id="b",
        loaded_at=datetime.fromtimestamp(loaded_at, UTC),
        requests=[ManifestEntry(video_id=v, repo_url=f"https://x/{v}.git") for v in video_ids],
    )
    return BatchMessage(True, body.to_wire())


def event(video_id: str, state: State, **fields: object) -> BatchMessage:
    body = ResultEvent(video_id=video_id, batch_id="b", repo_url=f"https://x/{video_id}.git", state=state)
    return BatchMessage(False, body.model_copy(update=fields).to_wire())


def test_a_batch_is_finished_only_once_its_manifest_and_every_listed_event_arrived() -> None:
    state = BatchState("b", clock=lambda: 1060.0)
    state.add(event("a", State.succeeded))
    assert not state.finished()  # events before the manifest: the total is not known yet
    state.add(manifest("a", "b"))
    assert (state.total, state.done, state.finished()) == (2, 1, False)
    state.add(event("b", State.failed, error="boom"))
    assert (state.succeeded, state.failed, state.finished()) == (1, 1, True)


def test_a_request_reported_twice_counts_once_and_its_latest_event_wins() -> None:
    state = BatchState("b", clock=lambda: 1060.0)
    state.add(manifest("a"))
    state.add(event("a", State.failed, error="first"))
    state.add(event("a", State.succeeded, url="s3://v/a.mp4"))
    assert (state.done, state.failed, state.succeeded) == (1, 0, 1)


def test_rate_and_time_left_count_from_when_the_batch_was_loaded() -> None:
    state = BatchState("b", clock=lambda: 1120.0)  # two minutes after loading
    state.add(manifest("a", "b", "c", "d", "e"))
    state.add(event("a", State.succeeded))
    state.add(event("b", State.succeeded))
    assert state.rate() == pytest.approx(1.0)  # per minute
    assert state.eta() == pytest.approx(180)
    assert state.status() == "2/5 done, 0 failed | 1.0/min | ETA 3m00s"


def test_the_summary_lists_every_request_with_its_video_error_or_pending_state() -> None:
    state = BatchState("b", clock=lambda: 1065.0)
    state.add(manifest("ok", "bad", "waiting"))
    state.add(event("ok", State.succeeded, url="s3://videos/ok.mp4"))
    state.add(event("bad", State.failed, error="CloneFailed: timed\nout"))
    out = io.StringIO()
    summary(state, out)
    assert out.getvalue().splitlines() == [
        "VIDEO ID  REPOSITORY             STATE      URL / ERROR",
        "ok        https://x/ok.git       succeeded  s3://videos/ok.mp4",
        "bad       https://x/bad.git      failed     CloneFailed: timed out",
        "waiting   https://x/waiting.git  pending",
        "batch b: 1 succeeded, 1 failed, 1 pending of 3 (1m05s since loading)",
    ]


def test_every_metric_the_dashboard_queries_is_one_the_processor_exports() -> None:
    dashboard = json.loads((CHART / "dashboards" / "gource-batch.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queried = {
        re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"gource_batch_\w+", e)
    }
    exported = {m.name for m in metrics.REGISTRY.collect()}
    exported |= {f"{name}_total" for name in exported}
    assert queried
    assert queried <= exported
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_dashboard_totals_read_the_pushgateway_and_everything_else_the_scrape() -> None:
    """The pushed job is the processor's own constant; tests/test_prometheus.py runs the queries."""
    dashboard = json.loads((CHART / "dashboards" / "gource-batch.json").read_text())
    totals = {"Renders succeeded", "Renders failed", "Video uploaded"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if panel["title"] in totals:
                assert f'job="{metrics.JOB}"' in target["expr"], panel["title"]
                assert "$job" not in target["expr"], panel["title"]
                assert target["instant"], panel["title"]
            else:
                assert f'job=~"$job",job!="{metrics.JOB}"' in target["expr"], panel["title"]
    assert {p["title"] for p in dashboard["panels"]} >= totals


def test_the_chart_ships_the_dashboard_only_when_asked() -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not installed")

    def configmaps(*args: str) -> dict[str, dict[str, object]]:
        out = subprocess.run(
            [helm, "template", "t", str(CHART), "--kube-version", "1.30.0", *args],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        docs = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "ConfigMap"]
        return {d["metadata"]["name"]: d for d in docs}

    assert "t-gource-batch-dashboard" not in configmaps()
    shipped = configmaps("--values", str(CHART / "ci" / "observability-values.yaml"))
    dashboard = shipped["t-gource-batch-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"  # type: ignore[index]
    data = dashboard["data"]["gource-batch.json"]  # type: ignore[index]
    assert json.loads(data) == json.loads((CHART / "dashboards" / "gource-batch.json").read_text())
    config = shipped["t-gource-batch-config"]["data"]  # type: ignore[index]
    assert config["PUSHGATEWAY_URL"] == "http://prometheus-pushgateway.monitoring:9091"  # type: ignore[index]


def test_compose_runs_a_broker_a_store_with_its_bucket_a_processor_and_a_loader() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"rabbitmq", "minio", "minio-init", "processor", "loader"}
    assert "management" in services["rabbitmq"]["image"]
    assert "15672:15672" in services["rabbitmq"]["ports"]
    assert "mc mb --ignore-existing local/videos" in services["minio-init"]["command"][0]
    processor, loader = services["processor"], services["loader"]
    assert processor["build"] == {"context": ".", "dockerfile": "Dockerfile.processor"}
    assert loader["build"] == {"context": ".", "dockerfile": "Dockerfile.loader"}
    assert processor["depends_on"] == {
        "rabbitmq": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    assert processor["environment"]["OUTPUT_URL"].startswith("s3://videos/")
    assert processor["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    for service in (processor, loader):
        assert service["environment"]["AMQP_URL"] == "amqp://guest:guest@rabbitmq:5672/%2F"
    assert "--wait" in loader["command"]
    # Every variable given to the processor or loader is one they (or boto3) read.
    from processor.settings import LoaderSettings, ProcessorSettings, environment_names

    known = set(environment_names(ProcessorSettings)) | set(environment_names(LoaderSettings))
    aws = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    for service in (processor, loader):
        assert set(service["environment"]) <= known | aws
