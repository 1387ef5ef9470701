"""The processor's Prometheus metrics, scraped over HTTP after real renders, and pushed on exit."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import Pipeline, free_port

pytestmark = pytest.mark.slow


def samples(text: str) -> dict[str, float]:
    """Every sample as {'name{label="value"}': value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


class FakePushgateway:
    """Records what is pushed, as a Pushgateway would receive it."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, str, str]] = []
        pushes = self.pushes

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                pushes.append((self.command, self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def pushgateway() -> Iterator[FakePushgateway]:
    gateway = FakePushgateway()
    yield gateway
    gateway.server.shutdown()
    gateway.server.server_close()


def test_metrics_are_served_while_rendering_and_the_final_figures_are_pushed_on_exit(
    pipeline: Pipeline, sample_repo: Path, pushgateway: FakePushgateway
) -> None:
    lines = [
        {"type": "gource", "repoURL": sample_repo.as_uri(), "videoId": "measured"},
        {"type": "gource", "repoURL": "https://example.com/forbidden.git", "videoId": "rejected"},
    ]
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    assert pipeline.load("--file", "-", stdin=stdin).returncode == 0
    port = free_port()
    processor = pipeline.start_processor(METRICS_PORT=port, IDLE_TIMEOUT=6, PUSHGATEWAY_URL=pushgateway.url)

    scraped: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                scraped = samples(response.read().decode())
        except OSError:
            pass  # not listening yet
        settled = [
            scraped.get(f'gource_batch_renders_total{{outcome="{o}"}}') for o in ("succeeded", "failed")
        ]
        if settled == [1, 1]:
            break
        time.sleep(0.2)
    assert processor.wait(60) == 0

    size = sum(o["Size"] for o in pipeline.objects().values())  # the video and its poster
    assert scraped['gource_batch_renders_total{outcome="succeeded"}'] == 1
    assert scraped['gource_batch_renders_total{outcome="failed"}'] == 1
    assert scraped['gource_batch_renders_total{outcome="retried"}'] == 0
    assert scraped['gource_batch_renders_total{outcome="already_stored"}'] == 0
    assert scraped["gource_batch_clone_duration_seconds_count"] == 1  # the rejected one never clones
    assert scraped["gource_batch_render_duration_seconds_count"] == 1
    assert scraped["gource_batch_render_duration_seconds_sum"] > 0
    assert scraped["gource_batch_upload_duration_seconds_count"] == 1
    assert scraped["gource_batch_queue_wait_seconds_count"] == 2
    assert scraped["gource_batch_uploaded_bytes_total"] == size
    assert scraped["gource_batch_requests_in_progress"] == 0

    [(method, path, body)] = pushgateway.pushes
    assert method == "PUT"
    assert path == f"/metrics/job/gource-batch-processor/instance/{socket.gethostname()}/pid/{processor.pid}"
    pushed = samples(body)
    assert pushed['gource_batch_renders_total{outcome="succeeded"}'] == 1
    assert pushed["gource_batch_uploaded_bytes_total"] == size
