"""What the Ray and Slurm executors share: run the worker where the cluster put us, then
turn the job folder into a :class:`~runner.scheduler.GPUJobResult`.

Both sides assume a **shared filesystem**: the job folder the driver prepares
(job.pkl, job.json) is the folder the remote side runs in and writes to
(experiment_output.log, result.pkl, job.json), under the same absolute path.

Remote side (:func:`run_worker`, runs inside a Ray task or a Slurm job): start
``python -m runner._worker <job dir>`` exactly as the local executor does (own
session, stdout/stderr at the fd level into the job's log, the driver's
``sys.path``), enforce the job's timeout with SIGTERM, a grace period, SIGKILL to
the process group, and return how the process ended. Running the worker as a child
process (not in the Ray worker or submitit's process) gives identical semantics:
a segfault or ``os._exit`` of the job is reported, not fatal to the cluster's
process.

Driver side (:class:`RemoteAttempt`): prepare the folder like the local executor,
then map the remote outcome to a result with the local executor's texts and
statuses, so the conformance suite holds for every executor.

Example:
    >>> import asyncio, sys
    >>> from runner.jobs import Job
    >>> attempt = RemoteAttempt(Job(run_fn=sum, config=[1, 2], base_dir="/tmp/runner-doc-remote"))
    >>> attempt.prepare() is None
    True
    >>> outcome = run_worker(
    ...     attempt.job_dir, record=attempt.record, sys_path=sys.path, timeout=None, grace_period=1.0
    ... )
    >>> attempt.finish(outcome, grace_period=1.0).result
    3
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import cloudpickle

from runner._worker import ATTEMPT_ENV, SYS_PATH_ENV
from runner.executors.local import _SIGNAL_HINTS, _log_tail, _signal_name
from runner.job_folder import (
    JOB_PKL,
    RESULT_PKL,
    atomic_write_bytes,
    error_summary,
    job_identity,
    read_job_json,
    read_result,
    result_summary,
    write_job_json,
)
from runner.jobs import job_dir_of
from runner.scheduler import GPUJobResult

__all__ = ["RemoteAttempt", "gpu_id_of", "kill_group", "run_worker"]

#: How often the remote side checks its worker (for the timeout and for cancellation).
_POLL_S = 0.05


def gpu_id_of(visible: str | None) -> int | str | None:
    """``GPUJobResult.gpu_id`` for what a job saw in ``CUDA_VISIBLE_DEVICES``.

    Example:
        >>> gpu_id_of("1"), gpu_id_of("0,1"), gpu_id_of(""), gpu_id_of(None)
        (1, '0,1', None, None)
    """
    if not visible:
        return None
    return int(visible) if visible.isdigit() else visible


def kill_group(pgid: int, sig: int) -> None:
    """Signal a process group; a no-op once it is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate(popen: subprocess.Popen[bytes], grace_period: float) -> int:
    """SIGTERM the worker's group, wait up to the grace period, SIGKILL the group."""
    kill_group(popen.pid, signal.SIGTERM)
    try:
        popen.wait(timeout=grace_period)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # Always, even if the worker exited: its children may ignore SIGTERM or outlive it.
        kill_group(popen.pid, signal.SIGKILL)
    return popen.wait()


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no result (a failed job): nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exit_fields(rc: int) -> dict[str, Any]:
    if rc < 0:
        return {"exit_code": None, "signal": -rc, "signal_name": _signal_name(-rc)}
    return {"exit_code": rc, "signal": None, "signal_name": None}


def run_worker(
    job_dir: str,
    *,
    record: dict[str, Any],
    sys_path: list[str],
    timeout: float | None,
    grace_period: float,
    attempt: int = 1,
    cuda_visible_devices: str | None = None,
) -> dict[str, Any]:
    """Run one attempt of the job in ``job_dir`` in a child process; return how it ended.

    Runs on the cluster (inside a Ray task or a Slurm job). ``CUDA_VISIBLE_DEVICES``
    is what the cluster set for us unless ``cuda_visible_devices`` overrides it.
    Writes job.json "running" with this host, pid and device. Interrupted
    (KeyboardInterrupt from ``ray.cancel``, SIGINT from submitit's local mode,
    SystemExit from submitit's requeue), it kills the worker's group (SIGTERM, grace,
    SIGKILL), records "cancelled" in job.json and re-raises.

    Returns:
        ``{"rc", "timed_out", "pid", "host", "device", "start_time", "end_time"}``;
        ``rc`` is negative ``-N`` when signal N killed the worker.
    """
    env = dict(os.environ)  # a copy: the Ray worker / submitit process is left as it is
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    env[SYS_PATH_ENV] = json.dumps(sys_path)
    env[ATTEMPT_ENV] = str(attempt)
    env.setdefault("PYTHONUNBUFFERED", "1")
    device = env.get("CUDA_VISIBLE_DEVICES")
    host = socket.gethostname()
    out_file = str(record["out_file"])

    log_fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        start = time.time()
        popen = subprocess.Popen(
            [sys.executable, "-m", "runner._worker", job_dir],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            env=env,
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
    record = dict(
        record,
        status="running",
        host=host,
        pid=popen.pid,
        device=device or None,
        gpu_id=gpu_id_of(device),
        attempt=attempt,
        start_time=start,
    )
    write_job_json(job_dir, record)

    deadline = None if timeout is None else start + timeout
    timed_out = False
    try:
        # Short waits in Python, not one long blocking wait: ray.cancel delivers its
        # KeyboardInterrupt between bytecodes, and signal handlers run only there too.
        while True:
            try:
                rc = popen.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and time.time() >= deadline:
                    timed_out = True
                    rc = _terminate(popen, grace_period)
                    break
    except BaseException:
        rc = _terminate(popen, grace_period)
        end = time.time()
        record.update(
            status="cancelled",
            end_time=end,
            duration=end - start,
            error_summary="cancelled (Ctrl-C, SIGTERM, scheduler shutdown or requeue)",
            **_exit_fields(rc),
        )
        write_job_json(job_dir, record)
        raise
    kill_group(popen.pid, signal.SIGKILL)  # no orphans: whatever the finished job left running
    _fsync(
        os.path.join(job_dir, RESULT_PKL)
    )  # the worker does not; here it costs the driver nothing
    return {
        "rc": rc,
        "timed_out": timed_out,
        "pid": popen.pid,
        "host": host,
        "device": device,
        "start_time": start,
        "end_time": time.time(),
    }


class RemoteAttempt:
    """The driver's side of one attempt: prepare the job folder, then map the outcome.

    Args:
        job: The job (``run()``, ``get_out_file()``, optional ``timeout``).
        attempt: 1 for the first try.
        tail_lines: Lines of the log quoted in a crash or bad-exit error.
    """

    def __init__(self, job: Any, *, attempt: int = 1, tail_lines: int = 20) -> None:
        self.job = job
        self.attempt = attempt
        self.tail_lines = tail_lines
        self.out_file = os.path.abspath(str(job.get_out_file()))
        self.job_dir = job_dir_of(job)
        self.timeout: float | None = getattr(job, "timeout", None)
        self.record: dict[str, Any] = {}

    def prepare(self) -> GPUJobResult | None:
        """Create the folder, write job.pkl (first attempt) and drop a stale result.

        Returns:
            A failed result when the folder or the pickle cannot be written, else None.
        """
        try:
            os.makedirs(self.job_dir, exist_ok=True)
            self.record = job_identity(self.job)
        except Exception as exc:  # failures are data, even before the job starts
            return GPUJobResult(
                success=False,
                error=f"Could not prepare the job folder {self.job_dir}: {type(exc).__name__}: {exc}",
                out_file=self.out_file,
                job=self.job,
                status="error",
                attempts=self.attempt,
            )
        self.record.update(
            status="running",
            device=None,
            gpu_id=None,
            host=None,
            pid=None,
            attempt=self.attempt,
            start_time=None,
            end_time=None,
            duration=None,
            exit_code=None,
            signal=None,
            signal_name=None,
            error_summary=None,
            result_summary=None,
        )
        if self.attempt == 1 or not os.path.exists(os.path.join(self.job_dir, JOB_PKL)):
            try:
                data = cloudpickle.dumps(self.job)
            except Exception as exc:
                return self.fail(
                    "error",
                    f"The job could not be pickled to send it to its process "
                    f"({type(exc).__name__}: {exc}); make the job, its run function and its "
                    "config picklable (no open files, locks or live connections).",
                )
            atomic_write_bytes(os.path.join(self.job_dir, JOB_PKL), data)
        try:
            os.unlink(os.path.join(self.job_dir, RESULT_PKL))  # never read back a stale result
        except FileNotFoundError:
            pass
        # "running" with pid null until the cluster starts it: a status table sees it, and a
        # cancel never mistakes the previous run's pid for this one's.
        write_job_json(self.job_dir, self.record)
        return None

    def _result(self, **fields: Any) -> GPUJobResult:
        r = self.record
        return GPUJobResult(
            gpu_id=r.get("gpu_id"),
            out_file=self.out_file,
            job=self.job,
            duration=r.get("duration"),
            start_time=r.get("start_time"),
            end_time=r.get("end_time"),
            exit_code=r.get("exit_code"),
            signal=r.get("signal"),
            attempts=self.attempt,
            host=r.get("host"),
            pid=r.get("pid"),
            **fields,
        )

    def fail(self, status: str, error: str) -> GPUJobResult:
        """Record a failed end in job.json and return it as a result."""
        end = time.time()
        start = self.record.get("start_time") or end
        self.record.update(
            status=status,
            start_time=start,
            end_time=end,
            duration=end - start,
            error_summary=error_summary(error),
        )
        write_job_json(self.job_dir, self.record)
        return self._result(success=False, error=error, status=status)

    def tail(self) -> str:
        """The last lines of the job's log (for error texts)."""
        return _log_tail(self.out_file, self.tail_lines)

    def finish(self, outcome: dict[str, Any], *, grace_period: float) -> GPUJobResult:
        """Map :func:`run_worker`'s outcome (and the folder's result.pkl) to a result.

        The statuses and texts are the local executor's: "timeout", "crashed" (signal
        name and hint, log tail), "error" (the traceback, or the exit code and log tail).
        """
        rc = int(outcome["rc"])
        self.record.update(
            host=outcome.get("host"),
            pid=outcome.get("pid"),
            device=outcome.get("device") or None,
            gpu_id=gpu_id_of(outcome.get("device")),
            start_time=outcome.get("start_time"),
            **_exit_fields(rc),
        )
        out_file = self.out_file
        if outcome.get("timed_out"):
            return self.fail(
                "timeout",
                f"The job timed out after {self.timeout} s: its process group got SIGTERM, then "
                f"SIGKILL after a grace period of {grace_period} s. Raise the job's timeout if it "
                f"needs longer. Last lines of {out_file}:\n{self.tail()}",
            )
        if rc < 0:
            return self.fail(
                "crashed",
                f"The job's process was killed by {_signal_name(-rc)} ({-rc})"
                f"{_SIGNAL_HINTS.get(-rc, '')}. Last lines of {out_file}:\n{self.tail()}",
            )
        try:
            stored = read_result(self.job_dir)
        except Exception as exc:
            return self.fail(
                "error",
                f"The job exited with code {rc} but its result could not be loaded in the driver "
                f"({type(exc).__name__}: {exc}); return values must be importable here too.",
            )
        if stored is not None and stored[0] == "error":
            return self.fail("error", str(stored[1]))
        if stored is None or rc != 0:
            why = (
                "without returning a result (sys.exit or os._exit?)"
                if rc == 0
                else "without a result"
            )
            return self.fail(
                "error",
                f"The job's process exited with code {rc} {why}. "
                f"Last lines of {out_file}:\n{self.tail()}",
            )
        value = stored[1]
        end = time.time()
        self.record.update(
            status="ok",
            end_time=end,
            duration=end - float(self.record["start_time"] or end),
            result_summary=result_summary(value),
        )
        write_job_json(self.job_dir, self.record)
        return self._result(success=True, error=None, result=value, status="ok")

    def mark_cancelled(self) -> None:
        """Record "cancelled" unless the remote side already did (it knows the exit signal)."""
        on_disk = read_job_json(self.job_dir) or {}
        if on_disk.get("status") == "cancelled":
            return
        end = time.time()
        start = on_disk.get("start_time") or self.record.get("start_time") or end
        record = dict(self.record)
        record.update({k: on_disk[k] for k in ("host", "pid", "device", "gpu_id") if k in on_disk})
        record.update(
            status="cancelled",
            start_time=start,
            end_time=end,
            duration=end - start,
            error_summary="cancelled (Ctrl-C, SIGTERM or scheduler shutdown)",
        )
        write_job_json(self.job_dir, record)

    def kill_if_local(self) -> None:
        """SIGKILL the worker's group when it ran on this host: no orphan, whatever the cluster did."""
        on_disk = read_job_json(self.job_dir) or {}
        pid = on_disk.get("pid")
        if (
            isinstance(pid, int)
            and pid > 0
            and on_disk.get("attempt") == self.attempt
            and on_disk.get("host") == socket.gethostname()
        ):
            kill_group(pid, signal.SIGKILL)
