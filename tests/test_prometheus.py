"""The Grafana dashboard against a real Prometheus: Debian's Prometheus scrapes two processors
every 30 s while they render a small batch, Debian's Pushgateway receives their final figures
when they exit, and every query of charts/gource-batch/dashboards/gource-batch.json is
evaluated through Prometheus's HTTP API over the batch's time range, its variables replaced
the way Grafana's Prometheus data source replaces them.

30 s is the scrape interval operators really run (kube-prometheus-stack's default, also what
its Grafana data source is told), and a batch pod may live less than that: here the second
processor lives about 15 s. The test takes about 3 minutes, most of it waiting for scrapes.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Pipeline, free_port, require

from processor import metrics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DASHBOARD = Path(__file__).resolve().parent.parent / "charts/gource-batch/dashboards/gource-batch.json"
SCRAPE_INTERVAL = 30  # seconds
SCRAPE_JOB = "gource-batch"  # a PodMonitor's job is "<namespace>/<name>": any name but the pushed one
MAX_DATA_POINTS = 1000  # what Grafana asks for a panel about 1000 pixels wide


# --- Prometheus and the Pushgateway, as Debian ships them ------------------------------------


@dataclass
class Prometheus:
    url: str
    pushgateway: str

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def instant(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        data = self.api("query", query=expr, **({"time": f"{at:.3f}"} if at is not None else {}))
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def series(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")
        assert data["resultType"] == "matrix", data
        return list(data["result"])

    def wait_for(self, expr: str, timeout: float) -> None:
        """Until the instant query returns something (a comparison that holds)."""
        deadline = time.monotonic() + timeout
        while not self.instant(expr):
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus never answered {expr!r} within {timeout:.0f} s")
            time.sleep(1)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def _daemon(argv: list[str], url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{argv[0]} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def prometheus(workdir: Path, processor_ports: list[int]) -> Iterator[Prometheus]:
    """A Prometheus scraping the processors' ports and a Pushgateway (honor_labels, as the
    prometheus-pushgateway chart's ServiceMonitor does), each with its own port and data."""
    binaries = {name: shutil.which(name) for name in ("prometheus", "prometheus-pushgateway")}
    for name, path in binaries.items():
        require(path is not None, f"{name} is not installed (apt: {name}; scripts/setup.sh installs it)")
    gateway_port, prometheus_port = free_port(), free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    config = workdir / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": f"{SCRAPE_INTERVAL}s"},
                "scrape_configs": [
                    {
                        "job_name": SCRAPE_JOB,
                        "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in processor_ports]}],
                    },
                    {
                        "job_name": "pushgateway",
                        "honor_labels": True,
                        "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}],
                    },
                ],
            }
        )
    )
    url = f"http://127.0.0.1:{prometheus_port}"
    with (
        _daemon(
            [
                str(binaries["prometheus-pushgateway"]),
                f"--web.listen-address=127.0.0.1:{gateway_port}",
                f"--persistence.file={workdir / 'pushgateway.data'}",
            ],
            gateway,
            workdir / "pushgateway.log",
        ),
        _daemon(
            [
                str(binaries["prometheus"]),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            url,
            workdir / "prometheus.log",
        ),
    ):
        yield Prometheus(url, gateway)


# --- the dashboard, as Grafana runs it ------------------------------------------------------


@dataclass
class Evaluated:
    panel: str
    ref: str
    expr: str
    instant: bool
    result: list[dict[str, Any]]

    def values(self, **labels: str) -> list[float]:
        """Every value (every point of every series) whose labels include `labels`."""
        out = []
        for series in self.result:
            if labels.items() <= series["metric"].items():
                points = series["values"] if "values" in series else [series["value"]]
                out += [float(v) for _, v in points]
        return out


def grafana_step(start: float, end: float) -> float:
    """Grafana's $__interval: range / max data points, never below the data source's scrape
    interval (Grafana rounds it to a nice number too, which only matters for ranges over 8 h)."""
    assert (end - start) / MAX_DATA_POINTS <= SCRAPE_INTERVAL, "a longer range needs Grafana's rounding"
    return SCRAPE_INTERVAL


def interpolate(expr: str, start: float, end: float, variables: dict[str, str]) -> str:
    """Grafana's Prometheus data source (pkg/promlib/models/query.go, InterpolateVariables)."""
    step = grafana_step(start, end)
    rate_interval = max(step + SCRAPE_INTERVAL, 4 * SCRAPE_INTERVAL)  # calculateRateInterval
    for name, value in {
        "$__rate_interval": _go_duration(rate_interval),
        "$__interval": f"{step}s",
        "$__range_s": str(round(end - start)),
        "$__range": f"{round(end - start)}s",
        **variables,
    }.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable Grafana would replace is left: {expr}"
    return expr


def _go_duration(seconds: int) -> str:
    """time.Duration.String(): 2m0s, 1h0m0s, 45s."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def variable_values(prom: Prometheus, dashboard: dict[str, Any], start: float, end: float) -> dict[str, str]:
    """Each query variable's label_values() run as Grafana runs it (/api/v1/series), then set
    to "All", which Grafana writes as the variable's allValue."""
    chosen = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        definition = variable["query"]["query"]
        inner = definition.removeprefix("label_values(").removesuffix(")")
        match, label = (part.strip() for part in inner.rsplit(",", 1))
        found = {s.get(label) for s in prom.api("series", **{"match[]": match, "start": start, "end": end})}
        assert found - {None}, f"variable {variable['name']}: {definition} found no values"
        assert variable["includeAll"]
        chosen[f"${variable['name']}"] = variable["allValue"]
    return chosen


def evaluate(prom: Prometheus, start: float, end: float) -> dict[tuple[str, str], Evaluated]:
    """Every target of every panel, as the panel would run it over [start, end]."""
    dashboard = json.loads(DASHBOARD.read_text())
    variables = variable_values(prom, dashboard, start, end)
    step = grafana_step(start, end)
    out = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = interpolate(target["expr"], start, end, variables)
            if target.get("instant"):
                result = prom.instant(expr, at=end)  # at the range's end, not aligned
            else:
                # Grafana aligns both ends down to a multiple of the step (AlignTimeRange).
                result = prom.series(expr, start // step * step, end // step * step, step)
            out[(panel["title"], target["refId"])] = Evaluated(
                panel["title"], target["refId"], expr, bool(target.get("instant")), result
            )
    return out


# --- what the batch really did --------------------------------------------------------------


def pushed_histogram(prom: Prometheus, name: str, at: float) -> dict[float, float]:
    """A histogram summed over every pushed group: le -> observations at most le."""
    buckets: dict[float, float] = {}
    for sample in prom.instant(f'{name}_bucket{{job="{metrics.JOB}"}}', at):
        le = float(sample["metric"]["le"])
        buckets[le] = buckets.get(le, 0) + float(sample["value"][1])
    return buckets


def quantile_bounds(buckets: dict[float, float]) -> tuple[float, float]:
    """Where every quantile of these observations lies, whatever window of them a rate() sees:
    above the largest bound that holds none of them, at or below the smallest that holds all."""
    total = buckets[math.inf]
    assert total > 0
    bounds = sorted(buckets)
    low = max([0.0] + [le for le in bounds if buckets[le] == 0])
    high = min(le for le in bounds if buckets[le] == total)
    return low, high


def request(video: str, repo: str, seconds: float, **gource: object) -> dict[str, Any]:
    options = {"--stop-at-time": seconds, **gource}
    return {"type": "gource", "repoURL": repo, "videoId": video, "gource": options}


def load(pipeline: Pipeline, lines: list[dict[str, Any]]) -> None:
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    loaded = pipeline.load("--file", "-", stdin=stdin)
    assert loaded.returncode == 0, loaded.stderr


def test_every_dashboard_query_agrees_with_what_a_batch_of_short_lived_processors_did(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    repo = sample_repo.as_uri()
    ports = [free_port(), free_port()]
    with prometheus(tmp_path, ports) as prom:
        start = time.time()
        env = {"PUSHGATEWAY_URL": prom.pushgateway}
        # The first processor starts on a long render (longer than a scrape interval, so some
        # scrape sees it in progress) and two short ones, and idles long enough to be scraped
        # after them (about 45 s: 2,500 frames at 1080p60).
        long = request("long", repo, 90, resolution="1920x1080", **{"--output-framerate": 60})
        load(pipeline, [long, request("short-1", repo, 2), request("short-2", repo, 2)])
        first = pipeline.start_processor(METRICS_PORT=ports[0], IDLE_TIMEOUT=45, **env)
        prom.wait_for(
            f'gource_batch_renders_total{{job="{SCRAPE_JOB}",instance="127.0.0.1:{ports[0]}",'
            'outcome="succeeded"} == 3',
            timeout=420,
        )
        # Then four more, one of them refused, and a second processor that lives seconds.
        load(
            pipeline,
            [*(request(f"short-{n}", repo, 2) for n in (3, 4, 5)),
             {"type": "gource", "repoURL": "https://example.com/forbidden.git", "videoId": "refused"}],
        )  # fmt: skip
        second = pipeline.start_processor(METRICS_PORT=ports[1], IDLE_TIMEOUT=2, **env)
        born = time.monotonic()
        assert second.wait(300) == 0
        second_lived = time.monotonic() - born
        assert first.wait(300) == 0
        # Both final pushes have reached Prometheus through the Pushgateway.
        prom.wait_for(f'count(push_time_seconds{{job="{metrics.JOB}"}}) == 2', timeout=3 * SCRAPE_INTERVAL)
        end = time.time()

        panels = evaluate(prom, start, end)
        truth_bytes = sum(o["Size"] for o in pipeline.objects().values())
        histograms = {
            name: quantile_bounds(pushed_histogram(prom, name, end))
            for name in ("gource_batch_queue_wait_seconds", "gource_batch_clone_duration_seconds",
                         "gource_batch_render_duration_seconds", "gource_batch_upload_duration_seconds")
        }  # fmt: skip

    report = "\n".join(
        f"{e.panel} [{e.ref}]: {len(e.result)} series, {e.values()[-6:]} <- {e.expr}" for e in panels.values()
    )
    print(f"second processor lived {second_lived:.1f} s\n{report}")
    assert len(pipeline.videos()) == 6
    assert len(panels) == 14

    # Every query returns data.
    assert all(e.result for e in panels.values()), report

    # The totals, from the Pushgateway: exactly what the batch did.
    assert panels[("Renders succeeded", "A")].values() == [6], report
    assert panels[("Renders failed", "A")].values() == [1], report
    assert panels[("Video uploaded", "A")].values() == [truth_bytes], report

    # The scrape: never more than two processors rendering, and a scrape saw one at work.
    busy = panels[("Processors rendering now", "A")].values()
    assert set(busy) <= {0, 1, 2}, report
    assert max(busy) >= 1, report

    # Renders per minute: successes seen, and nothing that did not happen.
    by_outcome = panels[("Renders by outcome", "A")]
    assert max(by_outcome.values(outcome="succeeded")) > 0, report
    never = by_outcome.values(outcome="retried") + by_outcome.values(outcome="already_stored")
    assert set(never) == {0}, report
    assert min(by_outcome.values()) >= 0, report
    assert max(panels[("Upload throughput", "A")].values()) > 0, report
    assert min(panels[("Upload throughput", "A")].values()) >= 0, report

    # Quantiles lie where the observations do, and p50 never above p95.
    for title, metric in (
        ("Queue wait (p50, p95)", "gource_batch_queue_wait_seconds"),
        ("Clone duration (p50, p95)", "gource_batch_clone_duration_seconds"),
        ("Render + encode duration (p50, p95)", "gource_batch_render_duration_seconds"),
        ("Upload duration (p50, p95)", "gource_batch_upload_duration_seconds"),
    ):
        low, high = histograms[metric]
        p50, p95 = (_finite(panels[(title, ref)]) for ref in ("A", "B"))
        assert p50, f"{title}: no finite p50\n{report}"
        assert p95, f"{title}: no finite p95\n{report}"
        assert all(low <= v <= high for v in [*p50.values(), *p95.values()]), (title, low, high, report)
        assert all(p50[t] <= p95[t] for t in p50.keys() & p95.keys()), (title, report)


def _finite(evaluated: Evaluated) -> dict[float, float]:
    """Timestamp -> value of a one-series quantile result, NaN (no observation in the window) left out."""
    (series,) = evaluated.result
    return {float(t): float(v) for t, v in series["values"] if not math.isnan(float(v))}
