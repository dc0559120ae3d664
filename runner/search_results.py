"""Where a search's results go: a pickle with everything, and a ``summary.json`` without pickle.

``{base_dir}/{kind}_results_{timestamp}.pkl`` (cloudpickle, so results that hold
functions or classes defined in ``__main__`` survive) carries the spec's fields
plus the full history. ``{base_dir}/summary.json`` beside it carries what a
person or a tool needs to read the search without unpickling anything, and is
rewritten as the search goes so that it also describes a search still running
or one that crashed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from typing import Any

import cloudpickle

__all__ = [
    "SUMMARY_FILE",
    "job_summary",
    "json_summary",
    "new_timestamp",
    "write_results_pickle",
    "write_summary",
]

SUMMARY_FILE = "summary.json"
_MAX_REPR = 200


def new_timestamp() -> str:
    """A sortable timestamp for results file names, e.g. ``20261124-101530``."""
    return time.strftime("%Y%m%d-%H%M%S")


def _atomic_write(path: str, data: bytes) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results_pickle(base_dir: str, kind: str, timestamp: str, payload: dict[str, Any]) -> str:
    """Write ``{base_dir}/{kind}_results_{timestamp}.pkl`` atomically; return its path.

    A second search finishing in the same second gets ``..._{timestamp}-1.pkl``
    rather than overwriting the first.
    """
    path = os.path.join(base_dir, f"{kind}_results_{timestamp}.pkl")
    n = 0
    while os.path.exists(path):
        n += 1
        path = os.path.join(base_dir, f"{kind}_results_{timestamp}-{n}.pkl")
    _atomic_write(path, cloudpickle.dumps(payload))
    return path


def write_summary(base_dir: str, summary: dict[str, Any]) -> str:
    """Write ``{base_dir}/summary.json`` atomically; return its path."""
    path = os.path.join(base_dir, SUMMARY_FILE)
    _atomic_write(path, (json.dumps(summary, indent=2, default=repr) + "\n").encode())
    return path


def json_summary(value: Any, *, depth: int = 0) -> Any:
    """A JSON-able view of a result: numbers, strings and small containers as they are.

    A ``GPUJobResult`` is summarised by its ``result``; anything else becomes a
    truncated ``repr``, so the summary never needs unpickling and never fails.
    """
    from runner.scheduler import GPUJobResult

    if isinstance(value, GPUJobResult):
        return json_summary(value.result, depth=depth)
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) or len(value) <= _MAX_REPR else value[:_MAX_REPR]
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        try:
            return json_summary(value.item(), depth=depth)
        except (TypeError, ValueError):
            pass
    if depth < 2 and isinstance(value, (list, tuple)) and len(value) <= 32:
        return [json_summary(v, depth=depth + 1) for v in value]
    if depth < 2 and isinstance(value, dict) and len(value) <= 32:
        return {str(k): json_summary(v, depth=depth + 1) for k, v in value.items()}
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def job_summary(result: Any) -> dict[str, Any]:
    """One job's line in ``summary.json``."""
    job = result.job
    return {
        "point": json_summary(getattr(job, "point", {})),
        "base_dir": os.path.dirname(result.out_file) if result.out_file else None,
        "status": getattr(result, "status", "ok" if result.success else "error"),
        "success": result.success,
        "result": json_summary(result.result) if result.success else None,
        "error": _last_line(result.error),
        "duration": getattr(result, "duration", None),
        "device": result.gpu_id,
        "reused": getattr(result, "reused", False),
    }


def _last_line(error: str | None) -> str | None:
    if not error:
        return None
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1][:_MAX_REPR] if lines else None
