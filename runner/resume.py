"""Resume: whether a job's folder holds a finished result for the job's current config, and why not.

A job is reused when its folder's ``job.json`` says "ok" with the job's current
config hash and its ``result.pkl`` holds ``("ok", value)``. Anything else is run
again, and :func:`check_reusable` says why, in words a log line can carry:
"never run", "failed before (error: ...)", "config changed", "corrupt result.pkl".

Example:
    >>> from runner.jobs import Job
    >>> check_reusable(Job(run_fn=len, config=[1], base_dir="/nonexistent")).reason
    'never run (no job.json)'
"""

from __future__ import annotations

import dataclasses
import logging
import os

from runner.job_folder import JOB_JSON, RESULT_PKL, read_result
from runner.job_record import JobRecord, JobState, job_config_hash, read_record_or_reason
from runner.job_result import GPUJobResult
from runner.jobs import job_dir_of

__all__ = ["Reusable", "check_reusable", "has_finished_result", "load_finished_result"]

logger = logging.getLogger("runner")


@dataclasses.dataclass(frozen=True)
class Reusable:
    """A finished result to reuse (``result``), or why the job must run again (``reason``)."""

    result: GPUJobResult | None
    reason: str = ""
    #: Whether the folder held anything of an earlier run (a never-run job is no news).
    ran_before: bool = False


def _record_verdict(job: object, job_dir: str) -> tuple[JobRecord | None, str, bool]:
    record, why = read_record_or_reason(job_dir)
    if record is None:
        if why == "missing":
            return None, f"never run (no {JOB_JSON})", False
        return None, why, True
    if record.status is not JobState.OK:
        detail = f": {record.error_summary}" if record.error_summary else ""
        if record.status in (JobState.QUEUED, JobState.RUNNING):
            return None, f"did not finish before (still {record.status.value!r} on disk)", True
        return None, f"failed before ({record.status.value}{detail})", True
    current = job_config_hash(job)
    if current is None:
        return None, "has no config to compare (jobs without a config are never reused)", True
    if record.config_hash != current:
        return None, "config changed since it ran", True
    return record, "", True


def check_reusable(job: object) -> Reusable:
    """Read ``job``'s folder: its finished result, or why it must run again. Never raises."""
    try:
        job_dir = job_dir_of(job)  # type: ignore[arg-type]
        record, reason, ran = _record_verdict(job, job_dir)
        if record is None:
            return Reusable(None, reason, ran)
        try:
            stored = read_result(job_dir)
        except Exception as exc:
            return Reusable(None, f"corrupt {RESULT_PKL} ({type(exc).__name__}: {exc})", True)
        if stored is None:
            return Reusable(None, f"{RESULT_PKL} is missing though job.json says ok", True)
        if stored[0] != "ok":
            return Reusable(None, f"{RESULT_PKL} holds an error though job.json says ok", True)
        return Reusable(record.to_result(job, result=stored[1], reused=True))
    except Exception as exc:  # a folder we can't even look at is rerun, with the reason
        return Reusable(None, f"unreadable folder ({type(exc).__name__}: {exc})", True)


def has_finished_result(job: object) -> bool:
    """Whether ``job``'s folder looks reusable, judged from job.json alone (nothing unpickled).

    Cheaper than :func:`load_finished_result`, for counting; that function still has the
    last word, since it also reads the result.
    """
    try:
        job_dir = job_dir_of(job)  # type: ignore[arg-type]
        record, _, _ = _record_verdict(job, job_dir)
        return record is not None and os.path.exists(os.path.join(job_dir, RESULT_PKL))
    except Exception:
        return False


def load_finished_result(job: object) -> GPUJobResult | None:
    """A previous run's result for ``job`` if its folder says it finished ok with the same config.

    Used by ``resume=True``: the folder must hold a job.json with status "ok" and a
    ``config_hash`` equal to the job's current one, and a readable result.pkl with
    ``("ok", value)``. A job with no config (no hash) is never reused. Never raises;
    :func:`check_reusable` says why a folder is not reused.

    Example:
        >>> from runner.jobs import Job
        >>> load_finished_result(Job(run_fn=len, config=[1], base_dir="/nonexistent")) is None
        True
    """
    return check_reusable(job).result
