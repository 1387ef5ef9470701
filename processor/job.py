"""One render request, start to finish: clone, pace, render, poster, upload. No broker in sight.

Runs on a worker thread while the broker thread keeps the connection alive; it checks
`cancelled` so a shutdown stops it promptly, and its work directory is removed whatever
happens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from processor import metrics
from processor.captions import write_caption_file
from processor.contract import RenderRequest, Timings
from processor.history import fetch_history
from processor.outputs import Outputs
from processor.pacing import LogFormat
from processor.render import RenderPlan, fit, plan, poster, render
from processor.render_progress import FrameCount
from processor.settings import ProcessorSettings
from processor.storage import FINGERPRINT, Storage

log = logging.getLogger(__name__)


@dataclass
class Produced:
    """What a finished job left behind."""

    key: str
    url: str
    http_url: str | None
    skipped: bool
    timings: Timings = field(default_factory=Timings)
    video: dict[str, object] | None = None
    size: int = 0
    repositories: list[dict[str, object]] | None = None
    pace: dict[str, object] | None = None
    poster_url: str | None = None
    poster_http_url: str | None = None
    playlist_url: str | None = None
    playlist_http_url: str | None = None


def fingerprint(request: RenderRequest, gource_args: list[str]) -> str:
    """Same repositories in the same order, same effective options: the same video."""
    repos = request.repo_url if request.repo_urls is None else list(request.repo_urls)
    canonical = json.dumps([repos, gource_args], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plan(request: RenderRequest, settings: ProcessorSettings) -> RenderPlan:
    """The render plan: one repository's git log, or several merged into a custom one."""
    several = request.repo_urls is not None
    captions = (request.captions or settings.captions) == "tags"
    log_format: LogFormat = "custom" if several else "git"
    return plan(request.gource, settings, log_format, captions=captions, label_repositories=several)


def _links(storage: Storage, outputs: Outputs, skipped: bool) -> Produced:
    """Where the video, its poster and its playlist are (or will be) found."""
    key = outputs.main
    done = Produced(key, storage.url_for(key), storage.http_url_for(key), skipped)
    done.poster_url, done.poster_http_url = (
        storage.url_for(outputs.poster),
        storage.http_url_for(outputs.poster),
    )
    if outputs.playlist is not None:
        done.playlist_url = storage.url_for(outputs.playlist)
        done.playlist_http_url = storage.http_url_for(outputs.playlist)
    return done


def produce(
    request: RenderRequest,
    settings: ProcessorSettings,
    storage: Storage,
    cancelled: Callable[[], bool] = lambda: False,
    frames: FrameCount | None = None,
) -> Produced:
    """Render `request` and store the video; skip the work if it is already stored.

    `frames` follows the render's frames, for the main thread to report (processor/render_progress.py).
    """
    render_plan = _plan(request, settings)
    outputs = Outputs.of(storage, request.video_id, settings.output_format)
    mark = fingerprint(request, [*render_plan.gource_args, f"output={settings.output_format}"])
    if outputs.already_stored(storage, mark):
        log.info("everything this request writes is already stored; not rendering again")
        return _links(storage, outputs, skipped=True)

    settings.work_dir.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f"{request.video_id}.", dir=settings.work_dir)
    timings = Timings()
    try:
        work = Path(workdir)
        started = time.monotonic()
        history = fetch_history(request, work, settings, cancelled, tags=render_plan.captions)
        caption_file = work / "captions.txt" if render_plan.captions else None
        if caption_file is not None:
            log.info("%d release tag(s) as captions", write_caption_file(caption_file, history.tags))
        timings.clone = round(time.monotonic() - started, 3)
        metrics.CLONE_SECONDS.observe(timings.clone)
        log.info("cloned in %.1f s", timings.clone)

        started = time.monotonic()
        paced_plan, pace = fit(render_plan, history.log)
        info = render(
            history.log, paced_plan, work / "video.mp4", settings, cancelled,
            caption_file=caption_file, frames=frames,
        )  # fmt: skip
        drawn = time.monotonic()
        poster(work / "video.mp4", work / "poster.jpg", info)
        timings.poster = round(time.monotonic() - drawn, 3)
        timings.render = round(time.monotonic() - started, 3)
        metrics.RENDER_SECONDS.observe(timings.render)
        log.info(
            "rendered %dx%d@%d, %.1f s of video in %.1f s: %s",
            info.width, info.height, render_plan.framerate, info.duration, timings.render, pace.describe(),
        )  # fmt: skip

        started = time.monotonic()
        metadata = {FINGERPRINT: mark, "video-id": request.video_id}
        if request.batch_id:
            metadata["batch-id"] = request.batch_id
        stored = outputs.store(storage, work / "video.mp4", work / "poster.jpg", metadata)
        timings.upload = round(time.monotonic() - started, 3)
        metrics.UPLOAD_SECONDS.observe(timings.upload)
        metrics.UPLOADED_BYTES.inc(stored.size)
        log.info("stored %s (%d bytes) in %.1f s", stored.url, stored.size, timings.upload)
        done = _links(storage, outputs, skipped=False)
        done.timings, done.video, done.size, done.pace = timings, info.as_dict(), stored.size, pace.as_dict()
        done.repositories = [r.as_dict() for r in history.repositories] if history.repositories else None
        return done
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
