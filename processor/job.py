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

from processor import cost, metrics
from processor.captions import shown, write_caption_file
from processor.contract import RenderRequest, Timings
from processor.exclusions import Exclusions
from processor.history import History, fetch_history
from processor.outputs import Outputs
from processor.render import Fitted, RenderPlan, fit, plan, poster, render, write_log
from processor.render_progress import FrameCount
from processor.settings import ProcessorSettings
from processor.storage import FINGERPRINT, Storage
from processor.timeline import Timeline, prepare

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
    presentation: dict[str, object] | None = None
    excluded: dict[str, object] | None = None
    cost: dict[str, object] | None = None
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
    """The render plan: one repository, or several merged into one history."""
    captions = (request.captions or settings.captions) == "tags"
    return plan(request.gource, settings, several=request.repo_urls is not None, captions=captions)


@dataclass(frozen=True)
class Story:
    """The history as gource will tell it: what is shown, how, at what pace, at what cost."""

    log: Path
    timeline: Timeline
    fitted: Fitted
    estimate: cost.Estimate


def _tell(
    history: History, render_plan: RenderPlan, settings: ProcessorSettings, *, exclusions: Exclusions,
    captions: list[str], log_path: Path,
) -> Story:  # fmt: skip
    """Prepare the history, fit pace and presentation, write gource's log; refuse what would not
    finish within RENDER_TIMEOUT before anything is drawn."""
    timeline = prepare(
        history.log, history.log_format, render_plan.selection, exclusions,
        strip_segments=1 if render_plan.several else 0,
    )  # fmt: skip
    fitted = fit(render_plan, timeline, captions=captions)
    changes = write_log(timeline, fitted, log_path)
    estimate = cost.estimate(fitted, changes)
    log.info(
        "%s; %s; %d change(s) left out; predicted render %.0f s",
        fitted.pace.describe(), fitted.presentation.describe(), timeline.excluded_changes, estimate.seconds,
    )  # fmt: skip
    cost.check(estimate, fitted.plan, settings.render_timeout)
    return Story(log_path, timeline, fitted, estimate)


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
    exclusions = Exclusions(settings.exclude if request.exclude is None else request.exclude)
    outputs = Outputs.of(storage, request.video_id, settings.output_format)
    effective = [
        *render_plan.gource_args,
        f"output={settings.output_format}",
        f"exclude={exclusions.patterns}",
    ]
    mark = fingerprint(request, effective)
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
        captions = [text for _, text in shown(history.tags)] if caption_file is not None else []
        if caption_file is not None:
            log.info("%d release tag(s) as captions", write_caption_file(caption_file, history.tags))
        timings.clone = round(time.monotonic() - started, 3)
        metrics.CLONE_SECONDS.observe(timings.clone)
        log.info("cloned in %.1f s", timings.clone)

        started = time.monotonic()
        story = _tell(
            history,
            render_plan,
            settings,
            exclusions=exclusions,
            captions=captions,
            log_path=work / "story.log",
        )
        info = render(
            story.log, story.fitted.plan, work / "video.mp4", settings, cancelled,
            caption_file=caption_file, frames=frames, total_frames=story.estimate.frames,
        )  # fmt: skip
        drawn = time.monotonic()
        poster(work / "video.mp4", work / "poster.jpg", info)
        timings.poster = round(time.monotonic() - drawn, 3)
        timings.render = round(time.monotonic() - started, 3)
        metrics.RENDER_SECONDS.observe(timings.render)
        log.info(
            "rendered %dx%d@%d, %.1f s of video in %.1f s (predicted %.0f s): %s; %s",
            info.width, info.height, render_plan.framerate, info.duration, timings.render,
            story.estimate.seconds, story.fitted.pace.describe(), story.fitted.presentation.describe(),
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
        done.timings, done.video, done.size = timings, info.as_dict(), stored.size
        done.pace, done.presentation = story.fitted.pace.as_dict(), story.fitted.presentation.as_dict()
        done.cost = {**story.estimate.as_dict(), "measuredSeconds": timings.render}
        done.excluded = {"patterns": list(exclusions.patterns), "changes": story.timeline.excluded_changes}
        done.repositories = [r.as_dict() for r in history.repositories] if history.repositories else None
        return done
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
