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
    What a status table needs, readable without unpickling anything: the job's
    identity (config as a dict, config hash, point), its state (queued, running,
    ok, error, crashed, timeout, cancelled), device, host, pid, times, exit code or
    signal, and a one-line error or result summary. Written only by
    :class:`runner.job_record.JobRecord`, whose fields are its keys.

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

__all__ = [
    "JOB_JSON",
    "JOB_PKL",
    "RESULT_PKL",
    "atomic_write_bytes",
    "atomic_write_json",
    "error_summary",
    "read_job_json",
    "read_result",
    "result_summary",
]

logger = logging.getLogger("runner")

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


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return (
        value is None
        or isinstance(value, (bool, int, str))
        and (not isinstance(value, str) or len(value) <= _SUMMARY_REPR_CHARS)
    )


#: What :func:`_scalar_of` returns for a value that is no JSON scalar.
_NOT_SCALAR = object()


def _scalar_of(value: Any) -> Any:
    """``value`` as a JSON scalar (numpy / torch scalars unwrapped; NaN and infinities as
    their names), or :data:`_NOT_SCALAR`."""
    try:  # numpy / torch scalars; probing a user's object may raise anything
        if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
            value = value.item()
    except Exception:
        return _NOT_SCALAR
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'nan', 'inf': a diverged run says so, and the JSON stays valid
    return value if _is_scalar(value) else _NOT_SCALAR


def _short_repr(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text[:limit]


def result_summary(value: Any) -> Any:
    """A small JSON-able view of a job's return value, for status tables and plots.

    A dict keeps its scalar fields as they are (numpy scalars unwrapped), whatever its
    other fields hold: ``{"acc": np.float32(0.9), "curve": [...]}`` keeps ``acc`` a
    number, the curve a short text.

    Example:
        >>> result_summary(0.5), result_summary({"acc": 0.9}), result_summary(object())[:8]
        (0.5, {'acc': 0.9}, '<object ')
        >>> result_summary({"acc": 0.9, "loss": float("nan"), "curve": [[1, 2]]})
        {'acc': 0.9, 'loss': 'nan', 'curve': '[[1, 2]]'}
    """
    scalar = _scalar_of(value)
    if scalar is not _NOT_SCALAR:
        return scalar
    if isinstance(value, dict) and len(value) <= _SUMMARY_MAX_ITEMS:
        if all(isinstance(k, str) for k in value):
            fields = {k: _scalar_of(v) for k, v in value.items()}
            return {
                k: _short_repr(value[k], _SUMMARY_REPR_CHARS // 4) if v is _NOT_SCALAR else v
                for k, v in fields.items()
            }
    if isinstance(value, (list, tuple)) and len(value) <= _SUMMARY_MAX_ITEMS:
        items = [_scalar_of(v) for v in value]
        if all(v is not _NOT_SCALAR for v in items):
            return items
    return _short_repr(value, _SUMMARY_REPR_CHARS)


def error_summary(error: str | None) -> str | None:
    """The last non-empty line of an error text (the exception line of a traceback)."""
    if not error:
        return None
    for line in reversed(error.splitlines()):
        if line.strip():
            return line.strip()[:500]
    return None
