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
    >>> outcome = run_worker(attempt.job_dir, **attempt.worker_kwargs(cuda_visible_devices=None))
    >>> attempt.finish_outcome(outcome).result
    3
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from runner import _process_tree
from runner._worker import ATTEMPT_ENV, SYS_PATH_ENV
from runner.devices import Device
from runner.errors import MissingDependencyError
from runner.executors._outcome import (
    CANCELLED_SUMMARY,
    EXIT_ALREADY_RUNNING,
    fsync_if_present,
    judge_exit,
)
from runner.executors.attempt import Attempt
from runner.executors.launchers import spawn_worker
from runner.job_folder import RESULT_PKL, error_summary, result_summary
from runner.job_lock import JobRunningElsewhere, job_lock_holder, open_job_log
from runner.job_record import JobRecord, JobState
from runner.job_result import GPUJobResult

logger = logging.getLogger("runner")

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
    """SIGTERM the job's whole tree, wait up to the grace period, SIGKILL what is left.

    The worker is a child subreaper: while it lives, every process the job started is
    its descendant (daemons that left its session too), so the tree is taken first.
    """
    tree = _process_tree.descendants(popen.pid) if popen.poll() is None else []
    _process_tree.signal_tree(tree, signal.SIGTERM, groups=[popen.pid])  # the job's group
    try:
        popen.wait(timeout=grace_period)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # Always, even if the worker exited: what it started may ignore SIGTERM or outlive
        # it. Its descendants first, the worker (their subreaper) last.
        if popen.returncode is None:
            _process_tree.kill_descendants(popen.pid, also=tree)
        else:
            _process_tree.signal_tree(tree, signal.SIGKILL)
        kill_group(popen.pid, signal.SIGKILL)
    return popen.wait()


def _end_adopted() -> None:
    """Kill and reap what this subreaper adopted: all its children, once the worker is reaped."""
    adopted = _process_tree.children(os.getpid())
    killed = list(adopted)
    for pid in adopted:
        killed.extend(_process_tree.kill_descendants(pid))
    _process_tree.signal_tree(adopted, signal.SIGKILL)
    _process_tree.wait_gone(killed, 2.0)
    for pid in adopted:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


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
    adopt_orphans: bool = False,
) -> dict[str, Any]:
    """Run one attempt of the job in ``job_dir`` in a child process; return how it ended.

    Runs on the cluster (inside a Ray task or a Slurm job). ``CUDA_VISIBLE_DEVICES``
    is what the cluster set for us unless ``cuda_visible_devices`` overrides it.
    Writes job.json "running" with this host, pid and device. Interrupted
    (KeyboardInterrupt from ``ray.cancel``, SIGINT from submitit's local mode,
    SystemExit from submitit's requeue), it kills the worker's group (SIGTERM, grace,
    SIGKILL), records "cancelled" in job.json and re-raises.

    ``adopt_orphans``: this process runs this job only (a Slurm job's process), so it
    becomes a child subreaper: a scheduler's cancel signals every process of the job at
    once, and the job's process may die before it can end what it detached; those
    orphans then come here, stay in the scheduler's view, and are killed here.

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

    try:
        # Locked while anything of the job runs (its stdout holds the lock), here on the
        # node: a driver that dies does not release it, so a resume started meanwhile does
        # not run this job a second time beside it.
        log_fd = open_job_log(out_file)
    except JobRunningElsewhere:
        return _already_running(job_dir, out_file, host, device)
    return _run_worker_logged(
        job_dir,
        log_fd,
        record=record,
        env=env,
        timeout=timeout,
        grace_period=grace_period,
        adopt_orphans=adopt_orphans,
        out_file=out_file,
        host=host,
        device=device,
    )


#: Lines of the log quoted in the error summary the node works out (the driver quotes its own).
_NODE_TAIL_LINES = 20


def _write_quietly(record: JobRecord, job_dir: str) -> None:
    """Write the node's record; a failure is logged, never stops the supervision of the job."""
    try:
        record.write(job_dir)
    except OSError as exc:
        logger.warning("Could not write %s's job.json on this node: %s", job_dir, exc)


def _already_running(job_dir: str, out_file: str, host: str, device: str | None) -> dict[str, Any]:
    """The outcome of an attempt that found its job running in another process: not run."""
    now = time.time()
    message = (
        f"runner: this job is already running in another process "
        f"({job_lock_holder(job_dir) or 'unknown'}); not running it twice.\n"
    )
    with contextlib.suppress(OSError):
        fd = os.open(out_file, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.write(fd, message.encode())
        finally:
            os.close(fd)
    return {
        "rc": EXIT_ALREADY_RUNNING,
        "timed_out": False,
        "pid": None,
        "host": host,
        "device": device,
        "start_time": now,
        "end_time": now,
    }


def _run_worker_logged(
    job_dir: str,
    log_fd: int,
    *,
    record: dict[str, Any],
    env: dict[str, str],
    timeout: float | None,
    grace_period: float,
    adopt_orphans: bool,
    out_file: str,
    host: str,
    device: str | None,
) -> dict[str, Any]:
    if adopt_orphans:
        _process_tree.become_subreaper()
    try:
        start = time.time()
        popen = spawn_worker(job_dir, env, log_fd)
    finally:
        os.close(log_fd)
    job_record = JobRecord.from_json(record)
    deadline = None if timeout is None else start + timeout
    timed_out = False
    try:
        job_record.move_to(
            JobState.RUNNING,
            host=host,
            pid=popen.pid,
            device=device or None,
            gpu_id=Device(device or None).gpu_id,
            start_time=start,
        )
        _write_quietly(job_record, job_dir)
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
        if adopt_orphans:
            _end_adopted()
        job_record.set_exit(rc)
        job_record.move_to(JobState.CANCELLED, error_summary=CANCELLED_SUMMARY)
        _write_quietly(job_record, job_dir)
        raise
    kill_group(popen.pid, signal.SIGKILL)  # no orphans: whatever the finished job left running
    if adopt_orphans:
        _end_adopted()
    # The worker does not fsync its result; here it costs the driver nothing.
    fsync_if_present(os.path.join(job_dir, RESULT_PKL))
    # The node records the end itself, before the job lock is released: a driver that died
    # meanwhile leaves a folder that says how the job ended, which a resume then reuses.
    ending = judge_exit(
        job_dir,
        rc,
        timed_out=timed_out,
        timeout=timeout,
        grace_period=grace_period,
        out_file=out_file,
        tail_lines=_NODE_TAIL_LINES,
    )
    job_record.set_exit(rc)
    if ending.error is None:
        job_record.move_to(JobState.OK, result_summary=result_summary(ending.value))
    else:
        job_record.move_to(
            JobState(ending.status), error_summary=ending.summary or error_summary(ending.error)
        )
    _write_quietly(job_record, job_dir)
    return {
        "rc": rc,
        "timed_out": timed_out,
        "pid": popen.pid,
        "host": host,
        "device": device,
        "start_time": start,
        "end_time": time.time(),
    }


class RemoteAttempt(Attempt):
    """The driver's side of one remote attempt: the shared :class:`Attempt` lifecycle, plus
    what the cluster adds (the node records "running" itself; the outcome comes back as data).

    Args:
        job: The job (``run()``, ``get_out_file()``, optional ``timeout``).
        attempt: 1 for the first try.
        tail_lines: Lines of the log quoted in a crash or bad-exit error.
        grace_period: Seconds between SIGTERM and SIGKILL on the node.
    """

    #: The node's side (:func:`run_worker`) opens and locks the job's log.
    holds_job_lock = False
    #: Pending in the cluster's queue, possibly for long: job.json says "queued".
    records_queued = True

    def prepare(self, *, fsync: bool = True) -> GPUJobResult | None:
        """As :meth:`Attempt.prepare`, flushed: another machine reads job.pkl next."""
        return super().prepare(fsync=fsync)

    def worker_kwargs(self, *, cuda_visible_devices: str | None) -> dict[str, Any]:
        """The keyword arguments of :func:`run_worker` for this attempt (after :meth:`prepare`)."""
        return {
            "record": self.record.to_json(),
            "sys_path": list(sys.path),
            "timeout": self.timeout,
            "grace_period": self.grace_period,
            "attempt": self.attempt,
            "cuda_visible_devices": cuda_visible_devices,
        }

    def _on_disk(self) -> JobRecord | None:
        """This attempt's record as the node last wrote it (None: another attempt's, or none)."""
        record = JobRecord.read(self.job_dir)
        return record if record is not None and record.attempt == self.attempt else None

    def _catch_up(self, on_disk: JobRecord | None) -> None:
        """Take "running" (host, pid, device, start) from what the node recorded."""
        if self.record.status is not JobState.QUEUED or on_disk is None:
            return
        if on_disk.status is JobState.QUEUED or on_disk.pid is None:
            return
        self.record.move_to(
            JobState.RUNNING,
            host=on_disk.host,
            pid=on_disk.pid,
            device=on_disk.device,
            gpu_id=on_disk.gpu_id,
            start_time=on_disk.start_time,
        )

    def finish_outcome(self, outcome: dict[str, Any]) -> GPUJobResult:
        """Map :func:`run_worker`'s outcome (and the folder's result.pkl) to a result.

        The statuses and texts are the local executor's, from the same
        :func:`~runner.executors._outcome.judge_exit`: "timeout", "crashed" (signal name
        and hint, log tail), "error" (the traceback, or the exit code and log tail).
        """
        device = outcome.get("device") or None
        if outcome.get("rc") == EXIT_ALREADY_RUNNING and outcome.get("pid") is None:
            # The node found the job running in another process: its folder is that
            # process's, so nothing is written to it.
            error = (
                "This job was already running in another process on the cluster when this "
                "attempt reached its node; it was not started twice. Wait for it to end, "
                "then resume to reuse its result."
            )
            self.record.move_to(JobState.ERROR, error_summary=error)
            return self.record.to_result(self.job, error=error)
        if self.record.status is JobState.QUEUED:
            self.record.move_to(
                JobState.RUNNING,
                host=outcome.get("host"),
                pid=outcome.get("pid"),
                device=device,
                gpu_id=Device(device).gpu_id,
                start_time=outcome.get("start_time"),
            )
        return self.finish(int(outcome["rc"]), timed_out=bool(outcome.get("timed_out")))

    def fail(self, status: str, error: str, *, summary: str | None = None) -> GPUJobResult:
        """As :meth:`Attempt.fail`, after taking what the node recorded (it may have run)."""
        self._catch_up(self._on_disk())
        return super().fail(status, error, summary=summary)

    def mark_cancelled(self) -> None:
        """Record "cancelled" unless the node already did (it knows the exit signal)."""
        on_disk = self._on_disk()
        if on_disk is not None and on_disk.status is JobState.CANCELLED:
            self.record = on_disk
            return
        self._catch_up(on_disk)
        self.cancel()

    def kill_if_local(self) -> None:
        """SIGKILL the worker's group when it ran on this host: no orphan, whatever the cluster did."""
        on_disk = self._on_disk()
        if (
            on_disk is not None
            and isinstance(on_disk.pid, int)
            and on_disk.pid > 0
            and on_disk.host == socket.gethostname()
        ):
            kill_group(on_disk.pid, signal.SIGKILL)
