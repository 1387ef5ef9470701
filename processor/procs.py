"""Child processes that never outlive their request, nor the processor.

Every child starts in a new process group (so a whole `Xvfb | gource | ffmpeg` pipeline is
stopped with one signal) and with a parent-death signal (so a SIGKILLed processor leaves
no orphans behind). Groups still alive are tracked so shutdown can end them all.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

_live_groups: set[int] = set()
_lock = threading.Lock()


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGKILL to this child when its parent thread ends."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def track(pgid: int) -> None:
    with _lock:
        _live_groups.add(pgid)


def kill_group(pgid: int) -> None:
    """SIGKILL the whole group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with _lock:
        _live_groups.discard(pgid)


def kill_all() -> None:
    """End every child group still running (shutdown)."""
    with _lock:
        groups = list(_live_groups)
    for pgid in groups:
        kill_group(pgid)


def spawn(argv: list[str], *, group: int | None = None, **kwargs: object) -> subprocess.Popen[bytes]:
    """Popen leading a new process group (or joining `group`), dying with its parent."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        argv,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl only, async-signal-safe
        close_fds=True,
        process_group=group or 0,
        **kwargs,
    )
    track(group or proc.pid)
    return proc


@dataclass(frozen=True)
class Result:
    returncode: int
    stderr: str
    timed_out: bool
    cancelled: bool = False
    aborted: str | None = None


def run(
    argv: list[str],
    *,
    env: dict[str, str],
    timeout: float,
    cancelled: Callable[[], bool] = lambda: False,
    abort_if: Callable[[], str | None] = lambda: None,
) -> Result:
    """Run to completion, the time limit, cancellation or `abort_if()` giving a reason.

    stderr is kept (bounded) for error messages.
    """
    proc = spawn(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    stderr = b""
    try:
        while True:
            try:
                _, err = proc.communicate(timeout=0.5)
                stderr = err or b""
                break
            except subprocess.TimeoutExpired:
                reason = abort_if()
                if cancelled() or reason or time.monotonic() > deadline:
                    kill_group(proc.pid)
                    proc.communicate()
                    stopped = cancelled()
                    return Result(
                        -9, "", timed_out=not (stopped or reason), cancelled=stopped, aborted=reason
                    )
    finally:
        kill_group(proc.pid)
    return Result(proc.returncode, stderr.decode(errors="replace")[-4000:], timed_out=False)
