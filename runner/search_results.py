"""Where a search's results go: a pickle with everything, and a ``summary.json`` without pickle.

``{base_dir}/{kind}_results_{timestamp}.pkl`` (cloudpickle, so results that hold
functions or classes defined in ``__main__`` survive) carries the spec's fields
plus the full history. ``{base_dir}/summary.json`` beside it carries what a
person or a tool needs to read the search without unpickling anything, and is
rewritten as the search goes so that it also describes a search still running
or one that crashed.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import cloudpickle

from runner.job_folder import atomic_write_bytes, atomic_write_json
from runner.searches.summary import SUMMARY_FILE, JobSummary, SearchSummary, json_summary

__all__ = [
    "SUMMARY_FILE",
    "job_summary",
    "json_summary",
    "new_timestamp",
    "write_results_pickle",
    "write_summary",
]

logger = logging.getLogger("runner")


def new_timestamp() -> str:
    """A sortable timestamp for results file names, e.g. ``20261124_101530``."""
    return time.strftime("%Y%m%d_%H%M%S")


def write_results_pickle(base_dir: str, kind: str, timestamp: str, payload: dict[str, Any]) -> str:
    """Write ``{base_dir}/{kind}_results_{timestamp}.pkl`` atomically; return its path.

    A second search finishing in the same second gets ``..._{timestamp}-1.pkl``
    rather than overwriting the first. An entry that can't be pickled (a result
    holding a lock, say) is stored as its ``repr`` with a warning, listed under
    ``"unpicklable"``: the rest of a finished sweep is never lost to one value.
    """
    path = os.path.join(base_dir, f"{kind}_results_{timestamp}.pkl")
    n = 0
    while os.path.exists(path):
        n += 1
        path = os.path.join(base_dir, f"{kind}_results_{timestamp}-{n}.pkl")
    os.makedirs(base_dir, exist_ok=True)
    atomic_write_bytes(path, _dumps_what_pickles(payload, path))
    return path


def _dumps_what_pickles(payload: dict[str, Any], path: str) -> bytes:
    try:
        return cloudpickle.dumps(payload)
    except Exception:
        pass
    safe: dict[str, Any] = {}
    unpicklable: list[str] = []
    for key, value in payload.items():
        try:
            cloudpickle.dumps(value)
            safe[key] = value
        except Exception as exc:
            safe[key] = f"<unpicklable {type(value).__name__}: {exc}> {value!r:.500}"
            unpicklable.append(key)
    safe["unpicklable"] = unpicklable
    logger.warning(
        "%s: could not pickle %s; stored their repr instead (return picklable values from "
        "agg_results and run_experiment_config to keep them)",
        path,
        ", ".join(unpicklable),
    )
    return cloudpickle.dumps(safe)


def write_summary(base_dir: str, summary: SearchSummary) -> str:
    """Write ``{base_dir}/summary.json`` atomically from ``summary``; return its path.

    Only a finished search's summary is fsynced: the ones rewritten while it runs are
    superseded within a round, and an fsync on the event loop would delay every job
    of the next round.
    """
    path = os.path.join(base_dir, SUMMARY_FILE)
    os.makedirs(base_dir, exist_ok=True)
    atomic_write_json(path, summary.to_json(), fsync=summary.status != "running")
    return path


def job_summary(result: Any) -> dict[str, Any]:
    """One job's line in ``summary.json``, as JSON (see :class:`JobSummary`)."""
    return JobSummary.from_result(result).to_json()
