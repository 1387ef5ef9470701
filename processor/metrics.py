"""Prometheus metrics of one processor: served while it runs, pushed when it exits.

The metrics live in a registry of their own (not prometheus_client's global one), so
what is served and pushed is exactly this list:

gource_batch_renders_total{outcome}         requests settled: succeeded, already_stored,
                                            retried (an attempt failed, another follows),
                                            failed (dead-lettered, a failed result event)
gource_batch_clone_duration_seconds         clone + `git log` of a repository
gource_batch_render_duration_seconds        the gource | ffmpeg pipeline, encoding included
gource_batch_upload_duration_seconds        storing the video
gource_batch_queue_wait_seconds             publish (message timestamp) to pick-up
gource_batch_uploaded_bytes_total           bytes of video stored
gource_batch_requests_in_progress           1 while this processor holds a request
gource_batch_render_progress_ratio          frames done / frames planned of the render in hand
                                            (0..1; 0 when none)
gource_batch_render_eta_seconds             seconds until its last frame at the rate so far
                                            (0 when no render is in hand or no frame is done)

There is no separate encode histogram on purpose: gource and ffmpeg run at the same time,
joined by a pipe, and ffmpeg encodes each frame as gource draws it, so the wall time of the
pipeline cannot be split into a "render" and an "encode" part; any split would be made up.
The render histogram is the whole pipeline.

Batch processors are short-lived, so a scrape may miss the last renders: with
PUSHGATEWAY_URL set, the final figures are pushed when the processor exits, grouped by
`instance` (the host name: the pod's name) and `pid`, so neither parallel pods nor
processors sharing a host overwrite each other's figures.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway, start_http_server

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
JOB = "gource-batch-processor"

OUTCOMES = ("succeeded", "already_stored", "retried", "failed")

RENDERS = Counter(
    "gource_batch_renders",
    "Render requests settled by this processor, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
for _outcome in OUTCOMES:
    RENDERS.labels(_outcome)

CLONE_SECONDS = Histogram(
    "gource_batch_clone_duration_seconds",
    "Seconds to clone a repository and read its history.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
RENDER_SECONDS = Histogram(
    "gource_batch_render_duration_seconds",
    "Seconds of the gource | ffmpeg pipeline (rendering and encoding run together).",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
UPLOAD_SECONDS = Histogram(
    "gource_batch_upload_duration_seconds",
    "Seconds to store a finished video.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
QUEUE_WAIT_SECONDS = Histogram(
    "gource_batch_queue_wait_seconds",
    "Seconds from publishing a request (or its retry) to a processor taking it.",
    buckets=(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400),
    registry=REGISTRY,
)
UPLOADED_BYTES = Counter(
    "gource_batch_uploaded_bytes",
    "Bytes of video stored.",
    registry=REGISTRY,
)
IN_PROGRESS = Gauge(
    "gource_batch_requests_in_progress",
    "Requests this processor holds right now (0 or 1).",
    registry=REGISTRY,
)

# No videoId label: a processor holds one request at a time, and its log lines say which.
RENDER_PROGRESS = Gauge(
    "gource_batch_render_progress_ratio",
    "Frames done / frames planned of the render this processor runs (0..1; 0 when none).",
    registry=REGISTRY,
)
RENDER_ETA = Gauge(
    "gource_batch_render_eta_seconds",
    "Seconds until the render in hand draws its last frame, at the rate so far (0: none or unknown).",
    registry=REGISTRY,
)


def settled(outcome: str) -> None:
    RENDERS.labels(outcome).inc()


def queue_wait(seconds: float | None) -> None:
    """Requests without a timestamp (some foreign producers) are not counted."""
    if seconds is not None:
        QUEUE_WAIT_SECONDS.observe(seconds)


def render_progress(progress: float, eta: float | None) -> None:
    RENDER_PROGRESS.set(progress)
    RENDER_ETA.set(eta or 0.0)


@contextmanager
def exposed(port: int, pushgateway_url: str | None) -> Iterator[None]:
    """Serve the metrics on `port` (0: not at all) while the block runs; push them after."""
    server = None
    if port:
        try:
            server, _thread = start_http_server(port, registry=REGISTRY)
            log.info("serving metrics on :%d/metrics", port)
        except OSError as exc:
            # Metrics are for watching; a busy port must not stop the renders.
            log.error("cannot serve metrics on port %d (%s); rendering without them", port, exc)
    try:
        yield
    finally:
        if pushgateway_url:
            push(pushgateway_url)
        if server is not None:
            server.shutdown()
            server.server_close()


def push(url: str) -> None:
    """The final figures to a Pushgateway, in a group of this process's own."""
    group = {"instance": socket.gethostname(), "pid": str(os.getpid())}
    try:
        push_to_gateway(url, job=JOB, registry=REGISTRY, grouping_key=group, timeout=10)
        log.info("pushed final metrics to %s (job=%s, instance=%s, pid=%s)", url, JOB, *group.values())
    except OSError as exc:
        log.warning("could not push metrics to %s: %s", url, exc)
