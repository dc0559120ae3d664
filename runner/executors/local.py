"""The local executor: each job attempt in a fresh ``python -m runner._worker`` process.

The child runs in its own session (so its own process group: a terminal's Ctrl-C
does not reach it, and cancel can kill the whole group, grandchildren included),
with ``CUDA_VISIBLE_DEVICES`` set in its environment only, the parent's
``sys.path`` and working directory, and stdout/stderr pointed at the job's log at
the file-descriptor level (so C-level output lands there too).

Waiting costs no thread: the child's exit is watched with a pidfd registered on
the event loop (Linux >= 5.3). Elsewhere a thread waits per *running* job.
Spawning is isolated in :class:`ProcessLauncher` so a fork server can replace it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import cloudpickle

from runner._worker import ATTEMPT_ENV, SYS_PATH_ENV
from runner.devices import Device
from runner.executors.base import Executor
from runner.job_folder import (
    JOB_PKL,
    RESULT_PKL,
    atomic_write_bytes,
    error_summary,
    job_identity,
    read_result,
    result_summary,
    write_job_json,
)
from runner.jobs import job_dir_of
from runner.scheduler import GPUJobResult

__all__ = ["DEFAULT_GRACE_PERIOD", "LocalExecutor", "ProcessLauncher", "WorkerProcess"]

logger = logging.getLogger("runner")

#: Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
DEFAULT_GRACE_PERIOD = 5.0

_HOST = socket.gethostname()
_TAIL_BYTES = 16384

_SIGNAL_HINTS: dict[int, str] = {
    signal.SIGKILL: " (often the kernel's out-of-memory killer; check `dmesg` or the job's memory use)",
    signal.SIGSEGV: " (a segmentation fault, usually in a C extension, CUDA or a driver)",
    signal.SIGABRT: " (abort(), e.g. a failed C/C++ assertion or a fatal CUDA error)",
    signal.SIGBUS: " (a bus error, e.g. shared memory /dev/shm too small)",
}


class WorkerProcess:
    """A started worker: its pid and a future that resolves with its return code once it exits.

    The return code follows :mod:`subprocess`: negative ``-N`` when killed by signal N.
    """

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.pid = popen.pid
        self._popen = popen
        self._loop = loop
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):  # not Linux >= 5.3: a thread waits instead
            fut = loop.run_in_executor(None, popen.wait)
            fut.add_done_callback(self._on_thread_wait)
        else:
            loop.add_reader(self._pidfd, self._on_pidfd_readable)

    def _on_pidfd_readable(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        rc = self._popen.wait()  # the child has exited: this only reaps it
        if not self.exited.done():
            self.exited.set_result(rc)

    def _on_thread_wait(self, fut: asyncio.Future[int]) -> None:
        if not self.exited.done():
            if fut.cancelled() or fut.exception() is not None:
                self.exited.set_result(self._popen.wait())
            else:
                self.exited.set_result(fut.result())

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker's whole process group; a no-op once the group is gone."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class ProcessLauncher:
    """Starts ``python -m runner._worker <job dir>``; the seam a fork server can replace."""

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> WorkerProcess:
        """Start the worker for ``job_dir`` with ``env``, its stdout and stderr on ``log_fd``."""
        popen = subprocess.Popen(
            [sys.executable, "-m", "runner._worker", job_dir],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            env=env,
            start_new_session=True,
        )
        return WorkerProcess(popen, asyncio.get_running_loop())


def _log_tail(path: str, lines: int) -> str:
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


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


class LocalExecutor(Executor):
    """Runs each job attempt in a fresh child process on this machine.

    Args:
        grace_period: Seconds between SIGTERM and SIGKILL of a cancelled or timed-out job.
        launcher: What starts the worker process (default :class:`ProcessLauncher`).
        tail_lines: Lines of the log quoted in the error of a crash or a bad exit.

    Example:
        >>> import asyncio
        >>> from runner.devices import CPU_DEVICE
        >>> from runner.jobs import Job
        >>> job = Job(run_fn=sum, config=[1, 2], base_dir="/tmp/runner-doc-local")
        >>> asyncio.run(LocalExecutor(grace_period=1.0).execute(job, CPU_DEVICE)).result
        3
    """

    def __init__(
        self,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        *,
        launcher: ProcessLauncher | None = None,
        tail_lines: int = 20,
    ) -> None:
        if (
            isinstance(grace_period, bool)
            or not isinstance(grace_period, (int, float))
            or grace_period < 0
        ):
            raise ValueError(
                f"grace_period={grace_period!r} must be a number of seconds >= 0, e.g. 5.0"
            )
        self.grace_period = float(grace_period)
        self.launcher = launcher or ProcessLauncher()
        self.tail_lines = tail_lines

    async def _terminate(self, proc: WorkerProcess) -> int:
        """SIGTERM the group, wait up to the grace period for the worker, SIGKILL the group."""
        proc.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait({proc.exited}, timeout=self.grace_period)
        finally:
            # Always, even if the worker exited: its children may ignore SIGTERM or outlive it.
            proc.signal_group(signal.SIGKILL)
        await asyncio.wait({proc.exited})
        return proc.exited.result()

    def _child_env(self, device: Device, attempt: int) -> dict[str, str]:
        env = dict(os.environ)  # a copy: the parent's environment is never mutated
        env["CUDA_VISIBLE_DEVICES"] = device.visible_devices
        env[SYS_PATH_ENV] = json.dumps(sys.path)
        env[ATTEMPT_ENV] = str(attempt)
        env.setdefault("PYTHONUNBUFFERED", "1")  # the log shows progress as it happens
        return env

    async def execute(self, job: Any, device: Device, *, attempt: int = 1) -> GPUJobResult:
        """Run one attempt of ``job`` on ``device`` in a child process; see :class:`Executor`."""
        out_file = os.path.abspath(str(job.get_out_file()))
        job_dir = job_dir_of(job)
        timeout = getattr(job, "timeout", None)
        try:
            os.makedirs(job_dir, exist_ok=True)
            record: dict[str, Any] = job_identity(job)
        except Exception as exc:  # failures are data, even before the job starts
            return GPUJobResult(
                success=False,
                error=f"Could not prepare the job folder {job_dir}: {type(exc).__name__}: {exc}",
                gpu_id=device.gpu_id,
                out_file=out_file,
                job=job,
                status="error",
                attempts=attempt,
                host=_HOST,
            )
        record.update(
            status="running",
            device=device.cuda_id,
            gpu_id=device.gpu_id,
            host=_HOST,
            pid=None,
            attempt=attempt,
            start_time=None,
            end_time=None,
            duration=None,
            exit_code=None,
            signal=None,
            signal_name=None,
            error_summary=None,
            result_summary=None,
        )

        def fail(status: str, error: str, **extra: Any) -> GPUJobResult:
            end = time.time()
            start = record["start_time"] or end
            record.update(
                status=status,
                end_time=end,
                duration=end - start,
                error_summary=error_summary(error),
                **extra,
            )
            write_job_json(job_dir, record)
            return GPUJobResult(
                success=False,
                error=error,
                gpu_id=device.gpu_id,
                out_file=out_file,
                job=job,
                status=status,
                duration=record["duration"],
                start_time=start,
                end_time=end,
                exit_code=record["exit_code"],
                signal=record["signal"],
                attempts=attempt,
                host=_HOST,
                pid=record["pid"],
            )

        if attempt == 1 or not os.path.exists(os.path.join(job_dir, JOB_PKL)):
            try:
                data = cloudpickle.dumps(job)
            except Exception as exc:
                return fail(
                    "error",
                    f"The job could not be pickled to send it to its process "
                    f"({type(exc).__name__}: {exc}); make the job, its run function and its "
                    "config picklable (no open files, locks or live connections).",
                )
            atomic_write_bytes(os.path.join(job_dir, JOB_PKL), data)
        try:
            os.unlink(os.path.join(job_dir, RESULT_PKL))  # a stale result must never be read back
        except FileNotFoundError:
            pass

        log_fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            record["start_time"] = time.time()
            proc = await self.launcher.launch(
                job_dir, env=self._child_env(device, attempt), log_fd=log_fd
            )
        except OSError as exc:
            return fail("error", f"Could not start the job's process: {type(exc).__name__}: {exc}")
        finally:
            os.close(log_fd)
        record["pid"] = proc.pid
        write_job_json(job_dir, record)

        timed_out = False
        try:
            # asyncio.wait never cancels proc.exited, so the kill path can still await it.
            done, _ = await asyncio.wait({proc.exited}, timeout=timeout)
            if not done:
                timed_out = True
                logger.info("Job %s timed out after %s s; terminating it", out_file, timeout)
                await self._terminate(proc)
        except asyncio.CancelledError:
            try:
                await self._terminate(proc)
            finally:
                proc.signal_group(signal.SIGKILL)  # if a second cancel cut the grace period short
                if not proc.exited.done():
                    with contextlib.suppress(asyncio.CancelledError):  # we re-raise below anyway
                        await asyncio.wait({proc.exited}, timeout=2.0)  # SIGKILL is prompt
                end = time.time()
                record.update(
                    status="cancelled",
                    end_time=end,
                    duration=end - record["start_time"],
                    error_summary="cancelled (Ctrl-C, SIGTERM or scheduler shutdown)",
                )
                if proc.exited.done():
                    self._record_exit(record, proc.exited.result())
                write_job_json(job_dir, record)
            raise
        rc = proc.exited.result()
        proc.signal_group(signal.SIGKILL)  # no orphans: whatever the finished job left running
        self._record_exit(record, rc)

        if timed_out:
            return fail(
                "timeout",
                f"The job timed out after {timeout} s: its process group got SIGTERM, then SIGKILL "
                f"after a grace period of {self.grace_period} s. Raise the job's timeout if it "
                f"needs longer. Last lines of {out_file}:\n{_log_tail(out_file, self.tail_lines)}",
            )
        if rc < 0:
            name = _signal_name(-rc)
            return fail(
                "crashed",
                f"The job's process was killed by {name} ({-rc}){_SIGNAL_HINTS.get(-rc, '')}. "
                f"Last lines of {out_file}:\n{_log_tail(out_file, self.tail_lines)}",
            )
        try:
            stored = read_result(job_dir)
        except Exception as exc:
            return fail(
                "error",
                f"The job exited with code {rc} but its result could not be loaded in the driver "
                f"({type(exc).__name__}: {exc}); return values must be importable here too.",
            )
        if stored is not None and stored[0] == "error":
            return fail("error", str(stored[1]))
        if stored is None or rc != 0:
            why = (
                "without returning a result (sys.exit or os._exit?)"
                if rc == 0
                else "without a result"
            )
            return fail(
                "error",
                f"The job's process exited with code {rc} {why}. "
                f"Last lines of {out_file}:\n{_log_tail(out_file, self.tail_lines)}",
            )

        value = stored[1]
        end = time.time()
        record.update(
            status="ok",
            end_time=end,
            duration=end - record["start_time"],
            result_summary=result_summary(value),
        )
        write_job_json(job_dir, record)
        return GPUJobResult(
            success=True,
            error=None,
            gpu_id=device.gpu_id,
            out_file=out_file,
            job=job,
            result=value,
            status="ok",
            duration=record["duration"],
            start_time=record["start_time"],
            end_time=end,
            exit_code=rc,
            attempts=attempt,
            host=_HOST,
            pid=proc.pid,
        )

    @staticmethod
    def _record_exit(record: dict[str, Any], rc: int) -> None:
        if rc < 0:
            record.update(exit_code=None, signal=-rc, signal_name=_signal_name(-rc))
        else:
            record.update(exit_code=rc, signal=None, signal_name=None)
