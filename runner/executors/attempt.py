"""The one attempt lifecycle every executor uses: prepare, start, finish or fail, cancel.

An executor decides *how* a job's worker process runs (a local child, a Ray task,
a Slurm job); :class:`Attempt` decides what the job folder says about it, so every
state change is written in one place, by :class:`runner.job_record.JobRecord`:

* :meth:`Attempt.prepare`: create the folder, open the job's log locked for this run
  (:mod:`runner.job_lock`), write ``job.pkl`` (first attempt), drop a stale
  ``result.pkl``, and, for a cluster job that may wait in its queue, record "queued".
* :meth:`Attempt.started`: the worker runs; record "running" with host, pid, device.
* :meth:`Attempt.finish`: judge the worker's end (:func:`judge_exit`) and record it.
* :meth:`Attempt.fail` / :meth:`Attempt.cancel`: record a failure or a cancel.

Failures are data: a folder that can't be written (a full disk, a read-only
folder) or a job that can't be pickled gives a failed :class:`GPUJobResult`, never
an exception out of the executor.

Example:
    >>> from runner.jobs import Job
    >>> attempt = Attempt(Job(run_fn=sum, config=[1, 2], base_dir="/tmp/runner-doc-attempt"))
    >>> attempt.prepare() is None, attempt.record.status.value
    (True, 'queued')
    >>> attempt.cancel()  # never started: recorded as cancelled, the log's lock released
    >>> attempt.record.status.value
    'cancelled'
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Callable
from typing import ClassVar

from runner.devices import Device
from runner.executors._outcome import CANCELLED_SUMMARY, DEFAULT_GRACE_PERIOD, judge_exit, log_tail
from runner.job_folder import JOB_PKL, RESULT_PKL, atomic_write_bytes, error_summary, result_summary
from runner.job_lock import JobRunningElsewhere, job_lock_holder, open_job_log
from runner.job_pickle import dump_job
from runner.job_record import JobRecord, JobState
from runner.job_result import GPUJobResult
from runner.jobs import job_dir_of

__all__ = ["Attempt", "HOST"]

logger = logging.getLogger("runner")

#: This machine's name, as job records give it.
HOST = socket.gethostname()


class Attempt:
    """One attempt of one job: its folder, its record, and the result it ends with.

    Args:
        job: The job (``run()``, ``get_out_file()``, optional ``timeout``).
        attempt: 1 for the first try, 2 for the first retry, ...
        tail_lines: Lines of the log quoted in a crash or bad-exit error.
        grace_period: Seconds between SIGTERM and SIGKILL (quoted in a timeout's error).
        flush_behind: Called with the job folder after a final record is written without
            fsync, to flush it to disk off the caller's thread (the local executor's
            event loop); None writes final records with fsync.
    """

    #: Whether "queued" is written to job.json: a cluster job may wait there for long;
    #: a local one starts the moment it is prepared (it has its slot), so its first
    #: record is "running", one file write less per job.
    records_queued: ClassVar[bool] = False
    #: Whether this side opens the job's log, locked, for the job (a remote attempt only
    #: checks the lock: the node opens and locks the log, see ``run_worker``).
    holds_job_lock: ClassVar[bool] = True

    def __init__(
        self,
        job: object,
        *,
        attempt: int = 1,
        tail_lines: int = 20,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        flush_behind: Callable[[str], None] | None = None,
    ) -> None:
        self.job = job
        self.attempt = attempt
        self.tail_lines = tail_lines
        self.grace_period = grace_period
        self._flush_behind = flush_behind
        self.out_file = os.path.abspath(str(job.get_out_file()))  # type: ignore[attr-defined]
        self.job_dir = job_dir_of(job)  # type: ignore[arg-type]
        self.timeout: float | None = getattr(job, "timeout", None)
        #: Until :meth:`prepare` could describe the job, a bare record of its out file.
        self.record = JobRecord(out_file=self.out_file, attempt=attempt)
        self._log_fd: int | None = None

    # -- the lifecycle --------------------------------------------------------------

    def prepare(self, *, fsync: bool = False) -> GPUJobResult | None:
        """Create the folder, open the job's log (locked), write job.pkl (first attempt), drop
        a stale result, record "queued" (:attr:`records_queued`).

        ``fsync=False`` (the local executor): job.pkl and the queued record only have to
        outlive this attempt, and a resume never trusts them.

        Returns:
            A failed result when the job can't be described or pickled, or the folder
            can't be written; else None.
        """
        try:
            os.makedirs(self.job_dir, exist_ok=True)
        except OSError as exc:
            return self.fail(
                "error",
                f"Could not prepare the job folder {self.job_dir}: {type(exc).__name__}: {exc}",
            )
        refused = self._open_log()
        if refused is not None:
            return refused
        try:
            self.record = JobRecord.for_job(self.job, attempt=self.attempt)
        except Exception as exc:  # failures are data, even before the job starts
            return self.fail(
                "error",
                f"Could not prepare the job folder {self.job_dir}: {type(exc).__name__}: {exc}",
            )
        if self.attempt == 1 or not os.path.exists(os.path.join(self.job_dir, JOB_PKL)):
            try:
                data = dump_job(self.job)
            except OSError as exc:  # the search's shared file could not be written
                return self.fail("error", _write_error(self.job_dir, exc))
            except Exception as exc:
                return self.fail(
                    "error",
                    f"The job could not be pickled to send it to its process "
                    f"({type(exc).__name__}: {exc}); make the job, its run function and its "
                    "config picklable (no open files, locks, generators or live connections).",
                )
        else:
            data = None
        try:
            if data is not None:
                atomic_write_bytes(os.path.join(self.job_dir, JOB_PKL), data, fsync=fsync)
            try:
                os.unlink(os.path.join(self.job_dir, RESULT_PKL))  # never read a stale result
            except FileNotFoundError:
                pass
            if self.records_queued:
                self.record.write(self.job_dir, fsync=fsync)
        except OSError as exc:
            return self.fail("error", _write_error(self.job_dir, exc))
        return None

    def _open_log(self) -> GPUJobResult | None:
        """Open the job's log, locked for this run of the job (:mod:`runner.job_lock`), or,
        :attr:`holds_job_lock` False, check that nothing holds it; a failed result when
        it can't be opened, or is held (then written nowhere: the folder is in use).

        A job an earlier driver started may outlive it (on a cluster, say): running it
        again beside itself would double its load and race its result file.
        """
        if not self.holds_job_lock:
            holder = job_lock_holder(self.job_dir)
        else:
            try:
                self._log_fd = open_job_log(self.out_file)
                return None
            except JobRunningElsewhere:
                holder = job_lock_holder(self.job_dir) or "a process of an earlier run"
            except OSError as exc:
                return self.fail(
                    "error",
                    f"Could not open the job's log: {exc}. Check that {self.job_dir} is "
                    "writable and has space, then resume.",
                )
        if holder is None:
            return None
        error = (
            f"This job is still running in another process ({holder}), started by an "
            "earlier run whose driver is gone; it was not started twice. Wait for it to "
            "end (or cancel it: scancel, ray stop, kill), then resume to reuse its result."
        )
        # Its folder is the other process's: nothing is written to it.
        self.record.move_to(JobState.ERROR, error_summary=error_summary(error))
        return self.record.to_result(self.job, error=error)

    def take_log(self) -> int:
        """The locked log's descriptor (after :meth:`prepare`), for the job's stdout and
        stderr; the caller closes it once the job's process has it (the lock goes on)."""
        fd, self._log_fd = self._log_fd, None
        if fd is None:
            raise RuntimeError("Attempt.take_log() before prepare(), or twice")
        return fd

    def _release_job_lock(self) -> None:
        fd, self._log_fd = self._log_fd, None
        if fd is not None:
            os.close(fd)

    def started(
        self, *, pid: int, device: str | None, host: str = HOST, start_time: float | None = None
    ) -> str | None:
        """Record "running": the worker ``pid`` runs on ``host`` with ``CUDA_VISIBLE_DEVICES=device``.

        Returns:
            None, or the error text when the record could not be written; the caller then
            stops the worker and reports :meth:`fail` with it.
        """
        self.record.move_to(
            JobState.RUNNING,
            pid=pid,
            host=host,
            device=device or None,
            gpu_id=Device(device or None).gpu_id,
            start_time=start_time,
        )
        try:
            self.record.write(self.job_dir, fsync=False)  # "running": a resume never trusts it
        except OSError as exc:
            return _write_error(self.job_dir, exc)
        return None

    def finish(self, rc: int, *, timed_out: bool, exit_observed: bool = True) -> GPUJobResult:
        """Judge the worker's end (return code, result.pkl) and record it.

        ``exit_observed=False``: the return code was inferred from the result file (the
        fork server died while the job ran), so job.json gives no exit code.
        """
        self.record.set_exit(rc if exit_observed else None)
        ending = judge_exit(
            self.job_dir,
            rc,
            timed_out=timed_out,
            timeout=self.timeout,
            grace_period=self.grace_period,
            out_file=self.out_file,
            tail_lines=self.tail_lines,
        )
        if ending.error is not None:
            return self.fail(ending.status, ending.error, summary=ending.summary)
        problem = self._end(JobState.OK, result_summary=result_summary(ending.value))
        if problem is not None:  # the disk can't say "ok", so the job did not finish
            return self.record.to_result(self.job, error=problem)
        return self.record.to_result(self.job, result=ending.value)

    def fail(self, status: str, error: str, *, summary: str | None = None) -> GPUJobResult:
        """Record a failed end ("error", "crashed", "timeout") and return it as a result.

        ``summary`` is the cause in one line for job.json (default: the error's last
        line, the exception of a traceback). A queued attempt that never started ends
        here too (status "error").
        """
        state = JobState(status)
        if self.record.status is JobState.QUEUED and state is not JobState.CANCELLED:
            state = JobState.ERROR  # it never ran, so it can't have crashed or timed out
        problem = self._end(state, error_summary=summary or error_summary(error))
        if problem is not None:
            error = f"{error}\n(also: {problem})"
        return self.record.to_result(self.job, error=error)

    def cancel(self, rc: int | None = None) -> None:
        """Record "cancelled" (``rc``: how the killed worker ended, when known). Never raises."""
        if self.record.finished:
            return
        self.record.set_exit(rc)
        self.record.move_to(JobState.CANCELLED, error_summary=CANCELLED_SUMMARY)
        try:
            self.record.write(self.job_dir, fsync=True)
        except OSError as exc:
            logger.warning("Could not record the cancel of %s: %s", self.job_dir, exc)
        finally:
            self._release_job_lock()

    def tail(self) -> str:
        """The last lines of the job's log (for error texts)."""
        return log_tail(self.out_file, self.tail_lines)

    # -- writing --------------------------------------------------------------------

    def _end(self, state: JobState, **fields: object) -> str | None:
        """Move the record to the finished ``state`` and write it.

        Returns:
            None, or the error text when the disk refused the record: the record then
            ends as "error" with that text instead (what a resume will see).
        """
        ending = dataclasses.replace(self.record)
        ending.move_to(state, **fields)
        try:
            self._write(ending)
        except OSError as exc:
            problem = _write_error(self.job_dir, exc)
            logger.warning("Could not record how %s ended: %s", self.job_dir, exc)
            if not self.record.finished:
                self.record.move_to(JobState.ERROR, error_summary=error_summary(problem))
            with contextlib.suppress(OSError):
                self._write(self.record)
            self._release_job_lock()
            return problem
        self.record = ending
        self._release_job_lock()
        return None

    def _write(self, record: JobRecord) -> None:
        if self._flush_behind is None:
            record.write(self.job_dir, fsync=True)
        else:
            record.write(self.job_dir, fsync=False)
            self._flush_behind(self.job_dir)


def _write_error(job_dir: str, exc: OSError) -> str:
    return (
        f"Could not write to the job folder {job_dir}: {type(exc).__name__}: {exc}. "
        "Free space or fix the folder's permissions, then resume (resume=True / --resume) "
        "to rerun only what did not finish."
    )
