"""Turn a gource log into an MP4: `gource | ffmpeg` on a private Xvfb display.

The frames go from gource's stdout straight into ffmpeg's stdin through an OS pipe:
no Python in the frame path and no frames on disk. All three processes share one
process group, so a timeout or a shutdown stops them with one signal.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from processor.contract import GourceOptions, parse_resolution
from processor.errors import RenderFailed, RenderTimeout
from processor.fonts import blank_characters, font_for
from processor.pacing import Pace, choose, video_times
from processor.presentation import USER_VISIBLE, Presentation, present, shown_names, shown_text
from processor.procs import kill_group, spawn
from processor.render_progress import PROGRESS_FILE, FrameCount, ProgressFile
from processor.settings import ProcessorSettings
from processor.timeline import Selection, Timeline

# Gource draws 60 frames a second of video and exports every second (30 fps) or third (25 fps)
# of them (gource.cpp, `setFrameExporter`): the rest are drawn for nothing. Asked for 60 fps
# with its clock running 60/fps times as fast, it draws each exported frame once, at the same
# moments of the story (measured: half the CPU at 30 fps; README: render cost).
GOURCE_TICKS = 60
GOURCE_MAX_TIME_SCALE = 4.0  # gource refuses more


@dataclass(frozen=True)
class RenderPlan:
    """What will be rendered, after the operator's defaults and ceilings were applied."""

    width: int
    height: int
    framerate: int
    seconds: float
    gource_args: list[str]
    options: GourceOptions = field(default_factory=GourceOptions)
    several: bool = False  # several repositories merged: their names label the top level
    font_file: Path | None = None  # the operator's FONT_FILE, never the request's
    captions: bool = False
    caption_seconds: float = 0.0
    # What `fit` needs once the history is there.
    requested_pace: float | None = None
    pace_ceiling: float = 10.0
    selection: Selection = field(default_factory=Selection)


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe found in the finished file."""

    width: int
    height: int
    framerate: float
    duration: float
    frames: int
    size: int
    codec: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def plan(
    options: GourceOptions,
    settings: ProcessorSettings,
    *,
    several: bool = False,
    captions: bool = False,
) -> RenderPlan:
    """Map an allow-listed request onto gource argv, clamped to the operator's ceilings.

    `several`: the history merges several repositories (processor/history.py), each under a
    top-level directory of its name. `captions` sizes the captions of the processor's own
    caption file. The pace and the presentation are added by `fit`, once the history is known.
    """
    max_w, max_h = parse_resolution(settings.max_resolution)
    width, height = parse_resolution(options.resolution or settings.resolution)
    if width > max_w or height > max_h:
        scale = min(max_w / width, max_h / height)
        width, height = int(width * scale), int(height * scale)
    width, height = width - width % 2, height - height % 2  # yuv420p wants even sides
    framerate = min(options.output_framerate or settings.framerate, settings.max_framerate)
    seconds = min(options.stop_at_time or settings.video_seconds, settings.max_video_seconds)
    requested = options.seconds_per_day or settings.seconds_per_day
    if requested is not None:
        requested = min(requested, settings.max_seconds_per_day)

    args = [
        f"-{width}x{height}",
        *_clock(framerate, options.time_scale),
        "--stop-at-time", f"{seconds:g}",
        "--stop-at-end",
        "--disable-input",
        "--no-vsync",
    ]  # fmt: skip
    valued = [
        ("--elasticity", options.elasticity),
        # A value is always its own argv element: a title like "--logo x" stays text.
        ("--title", options.title),
    ]
    for flag, value in valued:
        if value is not None and value != "":
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if options.key:
        args.append("--key")
    caption_seconds = 0.0
    if captions:
        caption_seconds = max(1.0, min(4.0, seconds / 10))
        args += ["--caption-size", str(max(12, height // 22)), "--caption-duration", f"{caption_seconds:g}"]
    if requested is not None:  # else `fit` chooses it, once the history is there
        args += ["--seconds-per-day", f"{requested:g}"]
    selection = Selection(
        _epoch(options.start_date), _epoch(options.stop_date), options.start_position, options.stop_position
    )
    return RenderPlan(
        width,
        height,
        framerate,
        seconds,
        args,
        options,
        several,
        settings.font_file,
        captions,
        caption_seconds,
        requested,
        settings.max_seconds_per_day,
        selection,
    )


def _clock(framerate: int, time_scale: float | None) -> list[str]:
    """gource's frame rate and clock: one drawn frame per exported frame where gource allows it."""
    scaled = (time_scale or 1.0) * GOURCE_TICKS / framerate
    if scaled <= GOURCE_MAX_TIME_SCALE:
        return ["--output-framerate", str(GOURCE_TICKS), "--time-scale", f"{scaled:.6g}"]
    return ["--output-framerate", str(framerate), "--time-scale", f"{time_scale:g}"]


def _time_scale(args: list[str]) -> float:
    return float(args[args.index("--time-scale") + 1]) if "--time-scale" in args else 1.0


def _epoch(date: str | None) -> float | None:
    """A contract date (`YYYY-MM-DD hh:mm:ss +zzzz`) as gource reads it, in epoch seconds."""
    return None if date is None else datetime.strptime(date, "%Y-%m-%d %H:%M:%S %z").timestamp()


@dataclass(frozen=True)
class Fitted:
    """The plan with the pace and the presentation fitted to the selected history."""

    plan: RenderPlan
    pace: Pace
    presentation: Presentation
    named: set[int] | None  # authors who keep their names (None: all)
    font: Path | None  # None: gource's own


def fit(render_plan: RenderPlan, timeline: Timeline, *, captions: Sequence[str] = ()) -> Fitted:
    """Fit the pace (unless the request set one), the presentation and the font to `timeline`.

    With `captions` to show, the history ends a caption's time before the video does, so
    the last one (a release tag on the last commit, the usual place) stays its whole time.
    """
    tail = render_plan.caption_seconds + 0.5 if captions else 0.0
    pace = choose(
        timeline.timestamps,
        render_plan.seconds,
        render_plan.pace_ceiling,
        render_plan.requested_pace,
        tail=tail,
    )
    args = []
    if pace.fitted:  # a request's own pace keeps gource's own auto-skip and file lag, as before
        args += ["--seconds-per-day", f"{pace.seconds_per_day:.6g}"]
        args += ["--auto-skip-seconds", f"{pace.auto_skip_seconds:g}"]
        # Half a tick more than the model's lag: a lag of whole ticks sits on the edge of a test
        # gource makes every tick, and the first tick's race with its log reader tipped it
        # either way, so one request made two different videos (tests/legibility.py).
        half_tick = 0.5 * _time_scale(render_plan.gource_args) / GOURCE_TICKS
        args += ["--max-file-lag", f"{pace.max_file_lag + half_tick:.6g}"]
    presentation, named = present(
        timeline,
        video_times(timeline.timestamps, pace),
        min(render_plan.seconds, pace.play_seconds + USER_VISIBLE),  # the last people still on screen
        render_plan.options,
        size=(render_plan.width, render_plan.height),
        several=render_plan.several,
    )
    args += presentation.args()
    font = font_for(shown_text(timeline, presentation, named, [*captions, render_plan.options.title or ""]),
                    render_plan.font_file)  # fmt: skip
    if font is not None:
        args += ["--font-file", str(font)]
    plan_with = replace(render_plan, gource_args=[*render_plan.gource_args, *args])
    return Fitted(plan_with, pace, presentation, named, font)


def write_log(timeline: Timeline, fitted: Fitted, log: Path) -> int:
    """The log gource reads: the timeline with the presentation's names and file cap. Lines written."""
    names = shown_names(timeline, fitted.named, blank_characters(fitted.font), fitted.presentation.crowd)
    return timeline.write(log, names.__getitem__, fitted.presentation.max_files)


# gource's main loop (SDL) waits until 16 ms of real time have passed before each tick, a frame
# limiter for watching it live that caps an export at 60 frames a second of wall time: half a
# second per video second at 30 fps however little a frame holds. Run with its clock sped up
# (libfaketime), the wait is a twentieth of that. Frames do not depend on the wall clock when
# gource exports them (fixed time step, dates from the log): byte-identical videos either way,
# measured 1.6 times as fast on the 3,109-commit history at 1280x720@30 (README: render cost).
FAKETIME_LIBRARIES = "/usr/lib/*/faketime/libfaketimeMT.so.1"
CLOCK_SPEEDUP = 20


@lru_cache(maxsize=1)
def gource_clock() -> dict[str, str]:
    """gource's environment additions for a sped-up clock; none when libfaketime is not installed."""
    found = sorted(glob.glob(FAKETIME_LIBRARIES))
    return {"LD_PRELOAD": found[0], "FAKETIME": f"+0 x{CLOCK_SPEEDUP}"} if found else {}


def _start_display(width: int, height: int) -> tuple[subprocess.Popen[bytes], str]:
    """A private Xvfb that picks its own free display number and tells us which."""
    read_fd, write_fd = os.pipe()
    try:
        xvfb = spawn(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        line = pipe.readline().strip()  # EOF (b"") if Xvfb died
    if not line.isdigit():
        kill_group(xvfb.pid)
        raise RenderFailed("Xvfb did not start")
    return xvfb, f":{line.decode()}"


def render(
    log_path: Path,
    render_plan: RenderPlan,
    output: Path,
    settings: ProcessorSettings,
    cancelled: Callable[[], bool] = lambda: False,
    *,
    caption_file: Path | None = None,
    frames: FrameCount | None = None,
    total_frames: int | None = None,
) -> VideoInfo:
    """Render `log_path` into `output` within RENDER_TIMEOUT; check the result with ffprobe.

    `caption_file` is the processor's own (processor/captions.py), never a request's.
    `frames`, when given, learns how many frames ffmpeg has encoded, as it goes, of
    `total_frames` (the cost estimate's: a short history ends before the length).
    """
    xvfb, display = _start_display(render_plan.width, render_plan.height)
    group = xvfb.pid
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(output.parent),
        "DISPLAY": display,
        "LIBGL_ALWAYS_SOFTWARE": "1",
        "LANG": "C.UTF-8",
    }
    errors = output.parent / "render.err"
    report = ProgressFile(output.parent / PROGRESS_FILE)
    deadline = time.monotonic() + settings.render_timeout
    argv = ["gource", "--log-format", "custom", *render_plan.gource_args]
    if caption_file is not None:
        argv += ["--caption-file", str(caption_file)]
    started: list[subprocess.Popen[bytes]] = [xvfb]
    try:
        with errors.open("wb") as err:
            gource = spawn(
                [*argv, "-o", "-", str(log_path)],
                group=group, env={**env, **gource_clock()}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=err,
            )  # fmt: skip
            started.append(gource)
            if gource.stdout is None:  # pragma: no cover - Popen(stdout=PIPE) always sets it
                raise RenderFailed("gource has no stdout")
            ffmpeg = spawn(
                [
                    "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-progress", report.path.name,
                    "-f", "image2pipe", "-vcodec", "ppm", "-framerate", str(render_plan.framerate),
                    "-i", "-",
                    "-vcodec", settings.ffmpeg_codec, "-preset", settings.ffmpeg_preset,
                    "-crf", str(settings.ffmpeg_crf), "-pix_fmt", "yuv420p",
                    "-r", str(render_plan.framerate), "-t", f"{render_plan.seconds:g}",
                    *output_args(output, settings.output_format),
                ],
                group=group, env=env, stdin=gource.stdout, stdout=subprocess.DEVNULL, stderr=err,
                cwd=output.parent,  # names relative to it: the tee muxer's syntax needs no escaping
            )  # fmt: skip
            started.append(ffmpeg)
            gource.stdout.close()  # ffmpeg holds the only reader now
            if frames is not None:
                frames.start(total_frames or round(render_plan.framerate * render_plan.seconds))
            while ffmpeg.poll() is None:
                if cancelled():
                    raise RenderFailed("render stopped: the processor is shutting down")
                if time.monotonic() > deadline:
                    raise RenderTimeout(f"render exceeded RENDER_TIMEOUT={settings.render_timeout:g} s")
                if frames is not None:
                    frames.update(report.read())
                time.sleep(0.1)
            # ffmpeg's -t is the hard length ceiling; gource ignores the closed pipe and
            # would go on drawing, so whatever it still does is of no use now.
            gource_code = gource.poll()
    finally:
        kill_group(group)
        for proc in started:  # reaped here, not whenever Python gets round to it
            proc.wait()
    if (gource_code not in (None, 0)) or ffmpeg.returncode != 0:
        detail = errors.read_bytes()[-800:].decode(errors="replace").strip()
        raise RenderFailed(f"gource exited {gource_code}, ffmpeg exited {ffmpeg.returncode}: {detail}")
    if frames is not None:
        frames.update(report.read())
        frames.finish()
    return probe(output, render_plan)


HLS_DIR, PLAYLIST = "hls", "index.m3u8"
SEGMENT_SECONDS = 4


def output_args(output: Path, output_format: str) -> list[str]:
    """ffmpeg's output options: the MP4, and for HLS the same encoded frames through the tee
    muxer into a playlist and MPEG-TS segments beside it (one encode, no second pass)."""
    if output_format == "mp4":
        return ["-movflags", "+faststart", "-f", "mp4", output.name]
    (output.parent / HLS_DIR).mkdir(exist_ok=True)
    hls = (
        f"[f=hls:hls_time={SEGMENT_SECONDS}:hls_playlist_type=vod:hls_segment_type=mpegts:"
        f"hls_segment_filename={HLS_DIR}/segment%03d.ts]{HLS_DIR}/{PLAYLIST}"
    )
    return [
        # A keyframe every 2 s, so segments can be cut near SEGMENT_SECONDS.
        "-force_key_frames", "expr:gte(t,n_forced*2)", "-flags", "+global_header",
        "-map", "0:v", "-f", "tee", f"[f=mp4:movflags=+faststart]{output.name}|{hls}",
    ]  # fmt: skip


def hls_files(output: Path) -> tuple[list[Path], Path]:
    """The segments and the playlist `render` wrote beside `output`."""
    folder = output.parent / HLS_DIR
    return sorted(folder.glob("segment*.ts")), folder / PLAYLIST


def poster(video: Path, output: Path, info: VideoInfo) -> None:
    """A JPEG of the grown tree, for a page to show before the video loads: a frame near the end.

    The very end can be the users fading out, so the frame is 97 % of the way in (or 0.5 s
    before the end of a short video).
    """
    at = max(0.0, min(info.duration * 0.97, info.duration - 0.5))
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-ss", f"{at:.3f}",
         "-i", str(video), "-frames:v", "1", "-q:v", "3", str(output)],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0 or not output.exists() or output.stat().st_size == 0:
        raise RenderFailed(f"no poster: {result.stderr.decode(errors='replace')[-300:]}")


def probe(path: Path, render_plan: RenderPlan) -> VideoInfo:
    """Check the file is the video we asked for; RenderFailed if not."""
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
            "-show_entries", "stream=width,height,r_frame_rate,codec_name,nb_read_packets:format=duration",
            "-of", "json", str(path),
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RenderFailed(
            f"ffprobe could not read the video: {result.stderr.decode(errors='replace')[-300:]}"
        )
    data = json.loads(result.stdout)
    streams = data.get("streams") or []
    if not streams:
        raise RenderFailed("the output has no video stream")
    stream = streams[0]
    num, _, den = stream.get("r_frame_rate", "0/1").partition("/")
    info = VideoInfo(
        width=int(stream.get("width", 0)),
        height=int(stream.get("height", 0)),
        framerate=float(num) / float(den or 1),
        duration=float(data.get("format", {}).get("duration", 0) or 0),
        frames=int(stream.get("nb_read_packets", 0) or 0),
        size=path.stat().st_size,
        codec=str(stream.get("codec_name", "")),
    )
    problems = []
    if (info.width, info.height) != (render_plan.width, render_plan.height):
        problems.append(f"size {info.width}x{info.height}, expected {render_plan.width}x{render_plan.height}")
    if abs(info.framerate - render_plan.framerate) > 0.01:
        problems.append(f"frame rate {info.framerate:g}, expected {render_plan.framerate}")
    if info.duration <= 0 or info.frames == 0:
        problems.append("no frames")
    if info.duration > render_plan.seconds + 1:
        problems.append(f"duration {info.duration:.1f} s, ceiling {render_plan.seconds:g} s")
    if problems:
        raise RenderFailed("the video does not check out: " + "; ".join(problems))
    return info
