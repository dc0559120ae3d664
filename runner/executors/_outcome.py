"""How an attempt ended, judged the same for every executor.

The local, Ray and Slurm executors all run ``python -m runner._worker <job dir>`` and
then read the same folder; :func:`judge_exit` turns the worker's end (its result file,
exit code or signal, whether it timed out) into one status and error text, so a job
that fails reads the same whichever executor ran it (the conformance suite checks it).
:class:`runner.executors.attempt.Attempt` records it.

Example:
    >>> judge_exit("/nonexistent", -9, timed_out=False, timeout=None, grace_period=5.0,
    ...            out_file="/nonexistent/log", tail_lines=0).status
    'crashed'
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from typing import Any

from runner.job_folder import read_result
from runner.job_record import signal_name

__all__ = [
    "CANCELLED_SUMMARY",
    "DEFAULT_GRACE_PERIOD",
    "EXIT_ALREADY_RUNNING",
    "SIGNAL_HINTS",
    "Ending",
    "fsync_if_present",
    "judge_exit",
    "log_tail",
]

logger = logging.getLogger("runner")

#: The exit code of an attempt that found its job already running in another process.
EXIT_ALREADY_RUNNING = 75

#: Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
DEFAULT_GRACE_PERIOD = 5.0

#: job.json's error summary of an attempt cancelled by the driver.
CANCELLED_SUMMARY = "cancelled (Ctrl-C, SIGTERM, SIGHUP or scheduler shutdown)"

#: Bytes read from the end of a log to quote its last lines.
_TAIL_BYTES = 16384

#: What a signal that killed a job usually means, appended to its name in the error.
SIGNAL_HINTS: dict[int, str] = {
    signal.SIGKILL: " (often the kernel's out-of-memory killer; check `dmesg` or the job's memory use)",
    signal.SIGSEGV: " (a segmentation fault, usually in a C extension, CUDA or a driver)",
    signal.SIGABRT: " (abort(), e.g. a failed C/C++ assertion or a fatal CUDA error)",
    signal.SIGBUS: " (a bus error, e.g. shared memory /dev/shm too small)",
}


def log_tail(path: str, lines: int) -> str:
    """The last ``lines`` lines of the log at ``path`` (for error texts), or why it can't be read."""
    if lines <= 0:  # [-0:] would be every line
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    text = data.decode("utf-8", errors="replace").splitlines()[-lines:]
    return "\n".join(text)


def fsync_if_present(path: str) -> None:
    """Flush ``path`` to disk; a no-op when it is absent (the worker itself does not fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # absent (a failed job) or removed meanwhile: nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        logger.debug("fsync of %s failed: %s", path, exc)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Ending:
    """How an attempt ended: ``status`` "ok" with ``value``, or a failure with its ``error`` text.

    ``summary`` is the cause in one line, for job.json and status tables: the signal,
    the exit code, the timeout (None: the error's own last line, e.g. the exception).
    """

    status: str
    error: str | None = None
    value: Any = None
    summary: str | None = None


def judge_exit(
    job_dir: str,
    rc: int,
    *,
    timed_out: bool,
    timeout: float | None,
    grace_period: float,
    out_file: str,
    tail_lines: int,
) -> Ending:
    """Judge a finished worker from its return code and the folder's result.pkl.

    Statuses: "timeout" (the executor killed it at the job's timeout), "crashed" (a
    signal: its name, a hint, the log's tail), "error" (the job raised: its traceback;
    or the process exited non-zero or without a result: the code and the log's tail,
    or the result does not unpickle here), else "ok" with the returned value.

    Args:
        job_dir: The job folder (result.pkl is read from it).
        rc: The worker's return code, negative ``-N`` for signal N.
        timed_out: Whether the executor killed the worker at the job's timeout.
        timeout: The job's timeout in seconds (quoted in the error).
        grace_period: Seconds between SIGTERM and SIGKILL (quoted in the error).
        out_file: The job's log, whose last ``tail_lines`` lines are quoted.
        tail_lines: How many lines of the log to quote.
    """
    if timed_out:
        return Ending(
            "timeout",
            summary=f"timed out after {timeout} s",
            error=f"The job timed out after {timeout} s: its process group got SIGTERM, then SIGKILL "
            f"after a grace period of {grace_period} s. Raise the job's timeout if it "
            f"needs longer. Last lines of {out_file}:\n{log_tail(out_file, tail_lines)}",
        )
    if rc < 0:
        return Ending(
            "crashed",
            summary=f"killed by {signal_name(-rc)} ({-rc}){SIGNAL_HINTS.get(-rc, '')}",
            error=f"The job's process was killed by {signal_name(-rc)} ({-rc}){SIGNAL_HINTS.get(-rc, '')}. "
            f"Last lines of {out_file}:\n{log_tail(out_file, tail_lines)}",
        )
    try:
        stored = read_result(job_dir)
    except Exception as exc:
        return Ending(
            "error",
            summary=f"its result could not be loaded in the driver: {type(exc).__name__}: {exc}",
            error=f"The job exited with code {rc} but its result could not be loaded in the driver "
            f"({type(exc).__name__}: {exc}); return values must be importable here too.",
        )
    if stored is not None and stored[0] == "error":
        return Ending("error", error=str(stored[1]))
    if stored is None or rc != 0:
        why = (
            "without returning a result (sys.exit or os._exit?)" if rc == 0 else "without a result"
        )
        return Ending(
            "error",
            summary=f"exited with code {rc} {why}",
            error=f"The job's process exited with code {rc} {why}. "
            f"Last lines of {out_file}:\n{log_tail(out_file, tail_lines)}",
        )
    return Ending("ok", value=stored[1])
