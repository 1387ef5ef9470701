"""Every exit code of every command, in one table: they are part of the interface.

Kubernetes' podFailurePolicy keys on the processor's (78 fails the Job at once instead of
retrying it), CronJobs and CI steps on the loader's and the followers'. README's table of
exit codes lists exactly these (tests/test_docs.py checks it).

Two codes carry a signal: 143 is 128 + SIGTERM, what Kubernetes sends a pod it stops, and
a processor exits with it whether SIGTERM or Ctrl-C (SIGINT) stopped it; 130 is 128 +
SIGINT, Ctrl-C in a follower (`loader --wait`, `processor watch`), which stops only the
watching, never the renders.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """The queues are drained (processor); every request was loaded (loader); every request of
    the followed batch succeeded (`--wait`, `watch`); setup-broker did its work."""

    UNEXPECTED = 1
    """An error nobody planned for (processor; the log line before has the traceback)."""

    NOT_ALL_LOADED = 1
    """Not every input line was loaded (loader): the broker went away half-way."""

    INVALID_INPUT = 2
    """Invalid input, nothing published (loader)."""

    SOME_FAILED = 3
    """The followed batch finished, and some of its requests failed (`--wait`, `watch`)."""

    TIMED_OUT = 4
    """`--wait-timeout` or `watch --timeout` ran out before the batch finished."""

    UNKNOWN_BATCH = 5
    """No such batch to follow (`watch`): never loaded here, or expired after BATCH_TTL."""

    UNAVAILABLE = 69
    """sysexits EX_UNAVAILABLE: the broker or the object store stayed unreachable for CONNECT_TIMEOUT."""

    NO_MANAGEMENT = 75
    """sysexits EX_TEMPFAIL: setup-broker found no management API to apply the policies with."""

    CONFIGURATION = 78
    """sysexits EX_CONFIG: a bad setting, a missing bucket, refused credentials; the request in
    hand goes back to its queue."""

    INTERRUPTED = 130
    """128 + SIGINT: Ctrl-C stopped a follower (`--wait`, `watch`); the renders go on."""

    STOPPED = 143
    """128 + SIGTERM: the processor stopped on request (SIGTERM, or Ctrl-C), its request handed back."""
