"""The typed job record: the only writer of ``job.json`` and the only source of :class:`GPUJobResult`.

One attempt of one job moves through the states of :class:`JobState`::

    queued ──▶ running ──▶ ok | error | crashed | timeout | cancelled
       └──────────────────▶ error | cancelled      (never started)

:meth:`JobRecord.move_to` checks each step, so a record can't say "ok" after
"cancelled", and every change of state is written by :meth:`JobRecord.write`.
A new attempt (a retry) starts a new record at "queued". ``GPUJobResult`` is
derived from a record (:meth:`JobRecord.to_result`): ``success`` is
``status == "ok"``, never set apart from it.

Reading is tolerant (:meth:`JobRecord.read` never raises): a missing or damaged
file gives ``None``, and the reason is available from :func:`read_record_or_reason`
for a resume that must say why it reruns a job.

Example:
    >>> record = JobRecord(status=JobState.QUEUED, out_file="/tmp/x/experiment_output.log")
    >>> record.move_to(JobState.RUNNING, start_time=1.0)
    >>> record.move_to(JobState.OK, end_time=3.5)
    >>> record.duration, record.to_result(job=None, result=7).success
    (2.5, True)
    >>> record.move_to(JobState.RUNNING)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InvalidTransitionError: job record of ...: 'ok' -> 'running' is not a valid transition
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import logging
import os
import signal as _signal
from typing import Any

from runner.job_folder import JOB_JSON, atomic_write_bytes, error_summary, result_summary
from runner.job_result import GPUJobResult
from runner.jobs import Job, config_to_dict, dict_hash
from runner.jobs import config_hash as _hash_config

__all__ = [
    "FINISHED_STATES",
    "InvalidTransitionError",
    "JobRecord",
    "JobState",
    "SCHEMA_VERSION",
    "error_summary",
    "job_config_hash",
    "read_record_or_reason",
    "result_summary",
    "signal_name",
]

logger = logging.getLogger("runner")

#: Version 2 added the "queued" state; version 1 records read the same otherwise.
SCHEMA_VERSION = 2
_READABLE_SCHEMAS = (1, 2)

#: Spaces after the JSON of a queued or running record: room to overwrite it in place with
#: its final state when the disk is full (JSON allows trailing white space).
_RESERVE_BYTES = 1024


class JobState(str, enum.Enum):
    """Where one attempt of a job stands; the value is what ``job.json`` says."""

    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


#: The states an attempt ends in.
FINISHED_STATES = frozenset(
    {JobState.OK, JobState.ERROR, JobState.CRASHED, JobState.TIMEOUT, JobState.CANCELLED}
)

_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.ERROR, JobState.CANCELLED}),
    JobState.RUNNING: FINISHED_STATES,
    **{state: frozenset() for state in FINISHED_STATES},
}


class InvalidTransitionError(RuntimeError):
    """A job record was asked to move to a state its current one can't lead to (a Runner bug)."""


def signal_name(sig: int) -> str:
    """``"SIGSEGV"`` for 11; ``"signal N"`` for a number that names no signal.

    Example:
        >>> signal_name(11), signal_name(200)
        ('SIGSEGV', 'signal 200')
    """
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _now() -> float:
    import time

    return time.time()


@dataclasses.dataclass
class JobRecord:
    """What ``job.json`` holds: the job's identity, and how its latest attempt stands.

    The fields are ``job.json``'s keys (README, "Resume"); ``status`` is a
    :class:`JobState`, every other field a JSON value.
    """

    status: JobState = JobState.QUEUED
    job_type: str | None = None
    #: The config as a dict (``runner.jobs.config_to_dict``), or None for a job without one.
    config: Any = None
    #: The identity a resume compares (``job_config_hash``).
    config_hash: str | None = None
    #: The sweep point that made this job, e.g. ``{"lr": 0.1, "seed": 1}``.
    point: Any = None
    out_file: str = ""
    timeout: float | None = None
    runner_version: str | None = None
    #: The child's ``CUDA_VISIBLE_DEVICES`` entry; None on CPU.
    device: str | None = None
    #: As in ``GPUJobResult.gpu_id``: an int index, a verbatim id, or None.
    gpu_id: int | str | None = None
    host: str | None = None
    pid: int | None = None
    attempt: int = 1
    start_time: float | None = None
    end_time: float | None = None
    duration: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    signal_name: str | None = None
    #: One line: the cause of a failure (exception and message, signal, exit code, timeout).
    error_summary: str | None = None
    #: A small JSON view of the returned value (``result_summary``); None unless ok.
    result_summary: Any = None
    schema_version: int = SCHEMA_VERSION

    # -- building -------------------------------------------------------------------

    @classmethod
    def for_job(cls, job: Any, *, attempt: int = 1) -> JobRecord:
        """A "queued" record of ``job``'s attempt ``attempt``.

        Raises:
            Exception: Whatever describing the job raised (a config whose ``to_dict``
                fails, an out file that is not a path); a failure of the job, as data.
        """
        from runner import __version__

        point = getattr(job, "point", None)
        config = config_to_dict(job.config) if hasattr(job, "config") else None
        cls_ = type(job)
        return cls(
            status=JobState.QUEUED,
            job_type=f"{cls_.__module__}.{cls_.__qualname__}",
            config=config,
            config_hash=job_config_hash(job, config),
            point=config_to_dict(point) if point is not None else None,
            out_file=os.path.abspath(str(job.get_out_file())),
            timeout=getattr(job, "timeout", None),
            runner_version=__version__,
            attempt=attempt,
        )

    # -- state ----------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the attempt has ended (any state but queued and running)."""
        return self.status in FINISHED_STATES

    def move_to(self, status: JobState | str, **fields: Any) -> None:
        """Change state (checked), set ``fields``, and, on a finished state, the end time.

        Raises:
            InvalidTransitionError: ``status`` can't follow the current state.
            TypeError: A field name that a record does not have.
        """
        status = JobState(status)
        if status not in _TRANSITIONS[self.status]:
            raise InvalidTransitionError(
                f"job record of {self.out_file}: {self.status.value!r} -> {status.value!r} is "
                "not a valid transition (a finished attempt never changes again; a retry "
                "starts a new record)"
            )
        for name, value in fields.items():
            if name == "status" or name not in _FIELD_NAMES:
                raise TypeError(f"JobRecord has no field {name!r} to set")
            setattr(self, name, value)
        self.status = status
        if status is JobState.RUNNING and self.start_time is None:
            self.start_time = _now()
        if status in FINISHED_STATES:
            if self.end_time is None:
                self.end_time = _now()
            if self.start_time is not None:
                self.duration = self.end_time - self.start_time

    def set_exit(self, rc: int | None) -> None:
        """``exit_code``, ``signal`` and ``signal_name`` from a return code (``-N``: signal N)."""
        if rc is None:
            self.exit_code = self.signal = self.signal_name = None
        elif rc < 0:
            self.exit_code, self.signal, self.signal_name = None, -rc, signal_name(-rc)
        else:
            self.exit_code, self.signal, self.signal_name = rc, None, None

    # -- results --------------------------------------------------------------------

    def to_result(
        self, job: Any, *, result: Any = None, error: str | None = None, reused: bool = False
    ) -> GPUJobResult:
        """The :class:`GPUJobResult` this record stands for (``success`` is ``status == "ok"``)."""
        success = self.status is JobState.OK
        return GPUJobResult(
            success=success,
            error=None if success else (error or self.error_summary or self.status.value),
            gpu_id=self.gpu_id,
            out_file=self.out_file,
            job=job,
            result=result if success else None,
            status=self.status.value,
            duration=self.duration,
            start_time=self.start_time,
            end_time=self.end_time,
            exit_code=self.exit_code,
            signal=self.signal,
            attempts=self.attempt,
            reused=reused,
            host=self.host,
            pid=self.pid,
        )

    # -- disk -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """``job.json``'s content: ``schema_version`` and ``status`` first, then the rest."""
        # Field by field, not dataclasses.asdict: that deep-copies the config on every write.
        data: dict[str, Any] = {"schema_version": self.schema_version, "status": self.status.value}
        for name in _ORDERED_FIELDS:
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: Any) -> JobRecord:
        """A record from ``job.json``'s content (schema 1 or 2); unknown keys are ignored.

        Raises:
            ValueError: Not a job record: not an object, an unknown status or schema.
        """
        if not isinstance(data, dict):
            raise ValueError(f"job.json holds {type(data).__name__}, not an object")
        version = data.get("schema_version", 1)
        if version not in _READABLE_SCHEMAS:
            raise ValueError(
                f"job.json has schema_version {version!r}; this Runner reads "
                f"{', '.join(map(str, _READABLE_SCHEMAS))} (written by a newer Runner?)"
            )
        try:
            status = JobState(data.get("status"))
        except ValueError:
            raise ValueError(f"job.json has an unknown status {data.get('status')!r}") from None
        fields = {k: v for k, v in data.items() if k in _FIELD_NAMES and k != "status"}
        fields["schema_version"] = SCHEMA_VERSION
        return cls(status=status, **fields)

    def encode(self) -> bytes:
        """``job.json``'s bytes; an unfinished record carries room for its final state."""
        text = json.dumps(self.to_json(), indent=2, default=repr, allow_nan=True) + "\n"
        if not self.finished:
            text += " " * _RESERVE_BYTES + "\n"
        return text.encode()

    def write(self, job_dir: str, *, fsync: bool = True) -> None:
        """Atomically replace ``<job_dir>/job.json`` with this record.

        ``fsync=False`` keeps the write atomic for readers and against a crash of the
        process, not against a power loss: for records a resume does not trust anyway
        (queued, running), or whose flush the caller does off the event loop. On a full
        disk, where a new file can't be made, the old record is overwritten in place
        (its blocks are already allocated), so no record is left saying "running".

        Raises:
            OSError: The write failed (a read-only folder; a full disk with no room).
        """
        path = os.path.join(job_dir, JOB_JSON)
        data = self.encode()
        try:
            atomic_write_bytes(path, data, fsync=fsync)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _overwrite_in_place(path, data):
                raise
            logger.warning(
                "%s: the disk is full; recorded %r in place (not atomically)",
                path,
                self.status.value,
            )

    @classmethod
    def read(cls, job_dir: str) -> JobRecord | None:
        """The folder's record, or None when it is missing or damaged (never raises)."""
        record, _ = read_record_or_reason(job_dir)
        return record


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(JobRecord))
_ORDERED_FIELDS = tuple(
    f.name for f in dataclasses.fields(JobRecord) if f.name not in ("schema_version", "status")
)


def _overwrite_in_place(path: str, data: bytes) -> bool:
    """Overwrite ``path``'s existing bytes with ``data`` (compacted, padded); False if it won't fit."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if len(data) > size:
            data = json.dumps(json.loads(data), separators=(",", ":"), allow_nan=True).encode()
        if len(data) > size:
            return False
        os.write(fd, data + b" " * (size - len(data)))
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def read_record_or_reason(job_dir: str) -> tuple[JobRecord | None, str]:
    """The folder's record and "", or None and why not ("missing", or what is damaged)."""
    path = os.path.join(job_dir, JOB_JSON)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as exc:
        return None, f"unreadable {JOB_JSON} ({type(exc).__name__}: {exc})"
    try:
        return JobRecord.from_json(data), ""
    except (TypeError, ValueError) as exc:
        return None, f"damaged {JOB_JSON} ({exc})"


def job_config_hash(job: Any, config_dict: Any = None) -> str | None:
    """The job's identity for resume: its own ``config_hash()`` if it defines one, else the
    hash of ``job.config`` (of ``config_dict``, when the caller already converted it), else None."""
    method = getattr(job, "config_hash", None)
    if callable(method) and getattr(method, "__func__", None) is not Job.config_hash:
        return str(method())
    if config_dict is not None:
        return dict_hash(config_dict)
    if hasattr(job, "config"):
        return _hash_config(job.config)
    return None
