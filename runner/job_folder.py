"""The on-disk format of one job folder: the unit of truth a search resumes from.

A job's folder is the folder of its ``get_out_file()`` (for :class:`runner.jobs.Job`,
its ``base_dir``) and holds:

``experiment_output.log``
    Everything the job printed (stdout and stderr, Python and C level), appended,
    after one header line per attempt naming the device, host, pid and start time.
``job.pkl``
    The job, cloudpickled (so functions defined in ``__main__`` or a notebook load).
``result.pkl``
    ``("ok", value)`` or ``("error", traceback_text)``, pickled by the worker.
``job.json``
    What a status table needs, readable without unpickling anything:

    ========================  ==========================================================
    ``schema_version``        ``1``
    ``status``                "running", then "ok", "error" (raised / exited non-zero),
                              "crashed" (killed by a signal), "timeout" or "cancelled"
    ``job_type``              e.g. "runner.jobs.Job"
    ``config``                the config as a dict (``runner.jobs.config_to_dict``), or null
    ``config_hash``           ``job.config_hash()``, else ``config_hash(job.config)``, or null
    ``point``                 the sweep point (``job.point``), or null
    ``out_file``              the log's path
    ``device``                the child's ``CUDA_VISIBLE_DEVICES`` entry; null on CPU
    ``gpu_id``                as in ``GPUJobResult.gpu_id`` (int index, verbatim id, null)
    ``host``, ``pid``         where the (last) attempt ran; pid is null before spawn
    ``attempt``               the attempt number (1 + retries used so far)
    ``timeout``               the job's timeout in seconds, or null
    ``start_time``            epoch seconds; ``end_time`` and ``duration`` once it ended
    ``exit_code``, ``signal`` how the process ended (``signal_name`` e.g. "SIGSEGV")
    ``error_summary``         the last line of the error, or null
    ``result_summary``        the value if it is a JSON scalar or a small dict/list of
                              scalars, else its repr cut to 200 characters; null unless ok
    ``runner_version``        the Runner version that wrote it
    ========================  ==========================================================

Every write is atomic (temp file in the same folder, fsync, ``os.replace``), so a
crash never leaves a half-written file that a resume would trust.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import socket
import threading
from typing import Any

from runner.job_result import GPUJobResult
from runner.jobs import Job, config_to_dict, dict_hash, job_dir_of
from runner.jobs import config_hash as _hash_config

__all__ = [
    "JOB_JSON",
    "JOB_PKL",
    "RESULT_PKL",
    "SCHEMA_VERSION",
    "atomic_write_bytes",
    "atomic_write_json",
    "job_config_hash",
    "job_identity",
    "has_finished_result",
    "load_finished_result",
    "read_job_json",
    "read_result",
    "result_summary",
    "error_summary",
    "runner_version",
    "write_job_json",
]

logger = logging.getLogger("runner")

SCHEMA_VERSION = 1
JOB_JSON = "job.json"
JOB_PKL = "job.pkl"
RESULT_PKL = "result.pkl"

_HOST = socket.gethostname()
_SUMMARY_REPR_CHARS = 200
_SUMMARY_MAX_ITEMS = 20


def atomic_write_bytes(path: str, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The temporary file is named by host, process and thread, which no other live writer
    shares, on a shared filesystem too (a leftover of a dead process whose pid came back
    is replaced). Not ``tempfile``: every job process would pay for its import and for
    seeding its random names. The file gets the usual permissions (0o666 less the
    umask), like any file a job writes.
    """
    directory, name = os.path.split(os.path.abspath(path))
    writer = f"{_HOST}.{os.getpid()}.{threading.get_ident()}"
    tmp = os.path.join(directory, f".{name}.{writer}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileExistsError:  # a dead writer's leftover: a fresh file, not its permissions
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path: str, obj: Any, *, fsync: bool = True) -> None:
    """Atomically write ``obj`` as indented JSON (non-JSON values fall back to their repr)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=repr, allow_nan=True)
    atomic_write_bytes(path, (text + "\n").encode(), fsync=fsync)


def write_job_json(job_dir: str, record: dict[str, Any], *, fsync: bool = True) -> None:
    """Atomically replace ``<job_dir>/job.json`` with ``record``.

    ``fsync=False`` keeps the write atomic for readers and against a crash of the
    process, not against a power loss: for records a resume does not trust anyway
    ("running"), or whose flush to disk the caller does off the event loop.
    """
    atomic_write_json(os.path.join(job_dir, JOB_JSON), record, fsync=fsync)


def read_job_json(job_dir: str) -> dict[str, Any] | None:
    """The folder's job.json as a dict, or ``None`` if it is missing or unreadable (never raises).

    Example:
        >>> read_job_json("/nonexistent/folder") is None
        True
    """
    path = os.path.join(job_dir, JOB_JSON)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.debug("Unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def read_result(job_dir: str) -> tuple[str, Any] | None:
    """The folder's result.pkl as ``(tag, payload)``, or ``None`` if missing.

    Raises:
        Exception: Whatever unpickling raises for a corrupt file or an unimportable class.
    """
    path = os.path.join(job_dir, RESULT_PKL)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    value = pickle.loads(data)
    if not (isinstance(value, tuple) and len(value) == 2 and value[0] in ("ok", "error")):
        raise ValueError(f"{path} holds {type(value).__name__}, not ('ok'|'error', payload)")
    return value


def runner_version() -> str:
    """The Runner version that writes job folders (the package's, read without a metadata lookup)."""
    from runner import __version__

    return __version__


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


def job_identity(job: Any) -> dict[str, Any]:
    """The job-describing part of job.json (computed once per job, not per write)."""
    has_config = hasattr(job, "config")
    point = getattr(job, "point", None)
    cls = type(job)
    config = config_to_dict(job.config) if has_config else None
    return {
        "schema_version": SCHEMA_VERSION,
        "job_type": f"{cls.__module__}.{cls.__qualname__}",
        "config": config,
        "config_hash": job_config_hash(job, config),
        "point": config_to_dict(point) if point is not None else None,
        "out_file": os.path.abspath(job.get_out_file()),
        "timeout": getattr(job, "timeout", None),
        "runner_version": runner_version(),
    }


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return (
        value is None
        or isinstance(value, (bool, int, str))
        and (not isinstance(value, str) or len(value) <= _SUMMARY_REPR_CHARS)
    )


def result_summary(value: Any) -> Any:
    """A small JSON-able view of a job's return value, for status tables.

    Example:
        >>> result_summary(0.5), result_summary({"acc": 0.9}), result_summary(object())[:8]
        (0.5, {'acc': 0.9}, '<object ')
    """
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        try:  # numpy / torch scalars
            value = value.item()
        except Exception:
            pass
    if _is_scalar(value):
        return value
    if isinstance(value, dict) and len(value) <= _SUMMARY_MAX_ITEMS:
        if all(isinstance(k, str) and _is_scalar(v) for k, v in value.items()):
            return dict(value)
    if isinstance(value, (list, tuple)) and len(value) <= _SUMMARY_MAX_ITEMS:
        if all(_is_scalar(v) for v in value):
            return list(value)
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text[:_SUMMARY_REPR_CHARS]


def error_summary(error: str | None) -> str | None:
    """The last non-empty line of an error text (the exception line of a traceback)."""
    if not error:
        return None
    for line in reversed(error.splitlines()):
        if line.strip():
            return line.strip()[:500]
    return None


def _matching_record(job_dir: str, job: Any) -> dict[str, Any] | None:
    """The folder's job.json if it says the job finished ok with the job's current config."""
    record = read_job_json(job_dir)
    if record is None:
        return None
    if record.get("status") != "ok":
        logger.debug("Not reusing %s: status is %r", job_dir, record.get("status"))
        return None
    current = job_config_hash(job)
    if current is None or record.get("config_hash") != current:
        logger.debug(
            "Not reusing %s: config hash %r on disk, %r now",
            job_dir,
            record.get("config_hash"),
            current,
        )
        return None
    return record


def has_finished_result(job: Any) -> bool:
    """Whether ``job``'s folder looks reusable, judged from job.json alone (nothing unpickled).

    Cheaper than :func:`load_finished_result`, for counting; that function still has the
    last word, since it also reads the result.
    """
    try:
        job_dir = job_dir_of(job)
        return _matching_record(job_dir, job) is not None and os.path.exists(
            os.path.join(job_dir, RESULT_PKL)
        )
    except Exception:
        return False


def load_finished_result(job: Any) -> GPUJobResult | None:
    """A previous run's result for ``job`` if its folder says it finished ok with the same config.

    Used by ``resume=True``: the folder must hold a job.json with status "ok" and a
    ``config_hash`` equal to the job's current one, and a readable result.pkl with
    ``("ok", value)``. A job with no config (no hash) is never reused. Never raises:
    a missing, corrupt or half-written folder gives ``None`` (logged at debug).

    Example:
        >>> from runner.jobs import Job
        >>> load_finished_result(Job(run_fn=len, config=[1], base_dir="/nonexistent")) is None
        True
    """
    try:
        job_dir = job_dir_of(job)
        record = _matching_record(job_dir, job)
        if record is None:
            return None
        stored = read_result(job_dir)
        if stored is None or stored[0] != "ok":
            logger.debug("Not reusing %s: result.pkl missing or not ok", job_dir)
            return None
        return GPUJobResult(
            success=True,
            error=None,
            gpu_id=record.get("gpu_id"),
            out_file=str(job.get_out_file()),
            job=job,
            result=stored[1],
            status="ok",
            duration=record.get("duration"),
            start_time=record.get("start_time"),
            end_time=record.get("end_time"),
            exit_code=record.get("exit_code"),
            signal=None,
            attempts=int(record.get("attempt") or 1),
            reused=True,
            host=record.get("host"),
            pid=record.get("pid"),
        )
    except Exception as exc:
        logger.debug("Not reusing the folder of %r: %s: %s", job, type(exc).__name__, exc)
        return None
