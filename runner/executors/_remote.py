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
statuses (one function, :func:`runner.executors._outcome.judge_exit`, serves all
three), so the conformance suite holds for every executor.

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

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from runner._worker import ATTEMPT_ENV, SYS_PATH_ENV
from runner.devices import Device
from runner.errors import MissingDependencyError
from runner.executors._outcome import (
    CANCELLED_SUMMARY,
    exit_fields,
    fsync_if_present,
    judge_exit,
    log_tail,
    prepare_error,
    running_record,
    write_job_pickle,
)
from runner.job_folder import (
    RESULT_PKL,
    error_summary,
    read_job_json,
    result_summary,
    write_job_json,
)
from runner.jobs import job_dir_of
from runner.scheduler import GPUJobResult

__all__ = ["RemoteAttempt", "import_extra", "kill_group", "run_worker"]

#: How often the remote side checks its worker (for the timeout and for cancellation).
_POLL_S = 0.05


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


def import_extra(module: str, *, executor: str, what: str, extra: str) -> Any:
    """``import module``, or a :class:`MissingDependencyError` naming the extra to install.

    Example:
        >>> import_extra("json", executor="ray", what="Ray", extra="ray").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f'executor="{executor}" needs {what}, which is not installed ({exc}). Install it with '
            f'`pip install -e ".[{extra}]"` (or `pip install {module}`).'
        ) from exc


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
        gpu_id=Device(device or None).gpu_id,
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
            error_summary=CANCELLED_SUMMARY,
            **exit_fields(rc),
        )
        write_job_json(job_dir, record)
        raise
    kill_group(popen.pid, signal.SIGKILL)  # no orphans: whatever the finished job left running
    # The worker does not fsync its result; here it costs the driver nothing.
    fsync_if_present(os.path.join(job_dir, RESULT_PKL))
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
            self.record = running_record(self.job, attempt=self.attempt)
        except Exception as exc:  # failures are data, even before the job starts
            return GPUJobResult(
                success=False,
                error=prepare_error(self.job_dir, exc),
                out_file=self.out_file,
                job=self.job,
                status="error",
                attempts=self.attempt,
            )
        unpicklable = write_job_pickle(self.job, self.job_dir, attempt=self.attempt, fsync=True)
        if unpicklable is not None:
            return self.fail("error", unpicklable)
        # "running" with pid null until the cluster starts it: a status table sees it, and a
        # cancel never mistakes the previous run's pid for this one's.
        write_job_json(self.job_dir, self.record)
        return None

    def worker_kwargs(
        self, *, grace_period: float, cuda_visible_devices: str | None
    ) -> dict[str, Any]:
        """The keyword arguments of :func:`run_worker` for this attempt (after :meth:`prepare`)."""
        return {
            "record": self.record,
            "sys_path": list(sys.path),
            "timeout": self.timeout,
            "grace_period": grace_period,
            "attempt": self.attempt,
            "cuda_visible_devices": cuda_visible_devices,
        }

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
        return log_tail(self.out_file, self.tail_lines)

    def finish(self, outcome: dict[str, Any], *, grace_period: float) -> GPUJobResult:
        """Map :func:`run_worker`'s outcome (and the folder's result.pkl) to a result.

        The statuses and texts are the local executor's, from the same
        :func:`~runner.executors._outcome.judge_exit`: "timeout", "crashed" (signal name
        and hint, log tail), "error" (the traceback, or the exit code and log tail).
        """
        rc = int(outcome["rc"])
        self.record.update(
            host=outcome.get("host"),
            pid=outcome.get("pid"),
            device=outcome.get("device") or None,
            gpu_id=Device(outcome.get("device") or None).gpu_id,
            start_time=outcome.get("start_time"),
            **exit_fields(rc),
        )
        ending = judge_exit(
            self.job_dir,
            rc,
            timed_out=bool(outcome.get("timed_out")),
            timeout=self.timeout,
            grace_period=grace_period,
            out_file=self.out_file,
            tail_lines=self.tail_lines,
        )
        if ending.error is not None:
            return self.fail(ending.status, ending.error)
        value = ending.value
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
            error_summary=CANCELLED_SUMMARY,
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
