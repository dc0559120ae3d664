"""Reading sweeps back from disk: status rows (a grid's mean +- std per point) and
readable results; plots are in :mod:`runner.plots` (their names import from here too).

Everything here reads ``job.json`` and ``summary.json`` only, never ``result.pkl``
or a results pickle, except :func:`load_results_file` on a ``.pkl`` the user
names (which unpickles, and so runs code: trusted files only).

Example:
    >>> rows = job_rows("/nonexistent")
    >>> rows
    []
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import time
from collections.abc import Sequence
from typing import Any, Literal

from runner._process_tree import pid_alive
from runner._sweep_tokens import sort_key
from runner.errors import ReportError
from runner.grid_points import PointTable, point_stats
from runner.search_results import SUMMARY_FILE
from runner.searches.summary import SearchSummary
from runner.sweep_files import (
    check_dir,
    each_row,
    job_records,
    read_json_object,
    read_summary_object,
    walk_files,
)

__all__ = [
    "JobRow",
    "ReportError",
    "grid_points",
    "jobs_of",
    "SearchRow",
    "job_rows",
    "load_results_file",
    "search_rows",
    "label_grid_aggregate",
    "to_jsonable",
]

logger = logging.getLogger("runner")

_HOST = socket.gethostname()
#: A job not ended yet: waiting for a slot (or, on a cluster, pending), or running.
_UNFINISHED = ("queued", "running")
#: The states that are not a failure: ended ok, or not ended yet.
_NOT_FAILED = ("ok", *_UNFINISHED)


# -- status -----------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class JobRow:
    """One job folder, as ``runner status`` shows it."""

    folder: str
    status: str
    device: str
    duration: float | None
    #: The result summary when ok, else the last line of the error.
    detail: str
    point: dict[str, Any] | None
    host: str | None
    pid: int | None
    start_time: float | None
    #: What the job returned, as job.json summarises it (ok jobs only).
    result: Any = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def failed(self) -> bool:
        """Ended without a result: error, crash, timeout, cancelled, or its driver lost."""
        return self.status not in _NOT_FAILED

    def sort_key(self) -> tuple[Any, ...]:
        """Folder by folder, then by the point's values as numbers (4 before 16)."""
        values = tuple(sort_key(v) for v in (self.point or {}).values())
        return (os.path.dirname(self.folder), values, _natural(os.path.basename(self.folder)))


def _natural(text: str) -> tuple[Any, ...]:
    """``w=4`` before ``w=16``: digit runs compare as numbers."""
    import re

    return tuple(
        (0, float(part)) if i % 2 else (1, part)
        for i, part in enumerate(re.split(r"(\d+(?:\.\d+)?)", text))
    )


def _short(value: Any, width: int = 80) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value)  # as JSON writes a finite number, without its encoder's cost
    else:
        text = json.dumps(value, default=repr)
    return text if len(text) <= width else text[: width - 3] + "..."


def _job_row(folder: str, record: dict[str, Any], now: float) -> JobRow:
    # Called once per job of every sweep under the folder (100,000 for a big grid): the
    # record is read once per key and the row built positionally.
    get = record.get
    status = str(get("status") or "unknown")
    pid, host = get("pid"), get("host")
    start = get("start_time")
    duration = get("duration")
    result = get("result_summary")
    device = get("device")
    point = get("point")
    detail = ""
    if status == "running":
        # A job whose driver died (kill -9, a reboot) stays "running" in job.json forever;
        # on this host its pid tells. On another host we can't know.
        if host == _HOST and isinstance(pid, int) and not pid_alive(pid):
            status = "lost"
            detail = f"pid {pid} is gone but job.json says running: the driver died?"
        elif isinstance(start, (int, float)):
            duration = now - start
    elif status == "ok":
        detail = _short(result)
    else:
        detail = _short(get("error_summary") or "")
    return JobRow(
        folder,
        status,
        "cpu" if device is None or device == "" else str(device),
        duration if isinstance(duration, (int, float)) else None,
        detail,
        point if isinstance(point, dict) else None,
        host,
        pid if isinstance(pid, int) else None,
        start if isinstance(start, (int, float)) else None,
        result if status == "ok" else None,
    )


def job_rows(
    root: str, *, sort: bool = True, summaries: list[str] | None = None
) -> list[JobRow]:
    """Every job folder under ``root`` (a folder holding ``job.json``), read without unpickling,
    sorted by folder and then by point values as numbers.

    A job.json that says "running" whose process no longer exists on this host is
    reported as "lost".

    Example:
        >>> [(row.status, row.device) for row in job_rows("runs/sweep")]  # doctest: +SKIP
        [('ok', '0'), ('lost', '1')]
    """
    if not os.path.isdir(root):
        return []
    now = time.time()
    rows = [
        each_row(folder, _job_row, record, now)
        for folder, record in job_records(root, summaries)
    ]
    kept = [row for row in rows if row is not None]
    if sort:  # by folder, then point values as numbers; a table of a few sorts faster
        kept.sort(key=JobRow.sort_key)
    return kept


@dataclasses.dataclass
class SearchRow:
    """One search (a folder holding ``summary.json``), as ``runner status`` shows it."""

    base_dir: str
    kind: str
    status: str
    jobs: str
    #: Run time from its first job's start: a search that waited for slots behind
    #: another does not count the wait (None while it waits).
    duration: float | None
    detail: str
    summary: dict[str, Any]
    #: Seconds left at this run's rate (running searches only).
    eta: float | None = None
    #: A grid's results per point (None for other kinds, or no numeric result yet).
    points: PointTable | None = None
    #: A threshold search's answer: interval, estimate, outside_range, contradictions.
    threshold: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("summary", "points")
        }
        if self.points is not None:
            data["points"] = {
                "metric": self.points.metric,
                "over": self.points.over,
                "direction": self.points.direction,
                # Field by field: asdict's deep copies cost seconds at 100,000 points.
                "points": [
                    {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
                    for p in self.points.points
                ],
            }
        return data


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def jobs_of(base_dir: str, jobs: Sequence[JobRow]) -> list[JobRow]:
    """The jobs whose folders lie under the search folder ``base_dir``."""
    prefix = base_dir.rstrip(os.sep) + os.sep
    return [j for j in jobs if j.folder.startswith(prefix)]


def _timing(
    summary: SearchSummary, status: str, inside: Sequence[JobRow], total: Any, now: float
) -> tuple[str, float | None, float | None]:
    """(status, run time, ETA) of a search, timed from its first job of this run."""
    started = _number(summary.started)
    # Jobs reused from an earlier run keep that run's start time: leave them out.
    this_run = [
        j
        for j in inside
        if j.start_time is not None and (started is None or j.start_time >= started - 1)
    ]
    first = min((j.start_time for j in this_run if j.start_time is not None), default=None)
    total_time = _number(summary.total_time)
    if status != "running":
        if first is not None and isinstance(total_time, (int, float)) and started is not None:
            return status, max(0.0, started + total_time - first), None
        return status, total_time if isinstance(total_time, (int, float)) else None, None
    if first is None:
        return "queued", None, None
    elapsed = max(0.0, now - first)
    ran = sum(j.status not in _UNFINISHED for j in this_run)
    done = sum(j.status not in (*_UNFINISHED, "lost") for j in inside)
    eta = None
    if ran and isinstance(total, int) and elapsed > 0:
        eta = max(0, total - done) / (ran / elapsed)
    return status, elapsed, eta


def grid_points(
    base_dir: str,
    jobs: Sequence[JobRow],
    *,
    metric: str | None = None,
    direction: Literal["max", "min"] = "max",
) -> PointTable | None:
    """The mean +- std per point of the grid at ``base_dir``, over its seeds, from its job rows.

    None when no job has a numeric result yet. Raises :class:`ReportError` for an
    explicit ``metric`` that is not in the results.
    """
    inside = jobs_of(base_dir, jobs)
    ok = [(j.point or {}, j.result) for j in inside if j.status == "ok"]
    failed = [j.point or {} for j in inside if j.failed]
    if not ok:
        return None
    try:
        return point_stats(ok, metric=metric, direction=direction, failed=failed)
    except ReportError:
        if metric is not None:
            raise
        return None  # results that are not numbers: the job table says what they are


def _search_row(
    path: str,
    summary: dict[str, Any],
    jobs: Sequence[JobRow],
    *,
    metric: str | None = None,
    direction: Literal["max", "min"] = "max",
) -> SearchRow:
    base_dir = os.path.dirname(path)
    # Tolerant: a missing or odd key is its default. The per-job lines are not needed:
    # the job rows come from the folders or the index.
    typed = SearchSummary.from_json(summary, with_jobs=False)
    kind = str(typed.kind or "?")
    status = str(typed.status or "?")
    inside = jobs_of(base_dir, jobs)
    done = sum(j.status not in (*_UNFINISHED, "lost") for j in inside)
    failed = sum(j.failed for j in inside)
    if status == "running" and any(j.status == "lost" for j in inside):
        status = "lost"  # its jobs outlived it: the driver is gone
    total = typed.num_jobs if isinstance(typed.num_jobs, int) else None
    if kind == "binary_search" and status == "running":
        # Its summary counts the jobs submitted when it was last written: at least the
        # jobs on disk, and how many more its next rounds need is not known (no ETA).
        total = max(total if isinstance(total, int) else 0, len(inside))
    status, duration, eta = _timing(typed, status, inside, total, time.time())
    if kind == "binary_search" and status == "running":
        eta = None
    jobs_text = f"{done}/{total if total is not None else len(inside)}" + (
        f" ({failed} failed)" if failed else ""
    )
    points = None
    threshold = None
    if kind == "binary_search":
        from runner.threshold_words import status_detail

        detail, threshold = status_detail(typed)
    else:
        points = grid_points(base_dir, jobs, metric=metric, direction=direction)
        best = points.best if points is not None else None
        if best is not None and points is not None:
            over = f" over {', '.join(points.over)}" if points.over else ""
            detail = (
                f"best {best.label}: {points.metric} {best.text()} (n={best.n}{over}); "
                f"{len(points.points)} point(s)"
            )
        else:
            detail = f"sweep {_short(typed.sweep_props, 60)}"
    if typed.error:
        detail += f"; error: {_short(typed.error, 60)}"
    return SearchRow(
        base_dir, kind, status, jobs_text, duration, detail, summary, eta, points, threshold
    )


def search_rows(
    root: str,
    jobs: Sequence[JobRow] | None = None,
    *,
    summaries: list[str] | None = None,
    metric: str | None = None,
    direction: Literal["max", "min"] = "max",
) -> list[SearchRow]:
    """Every search under ``root`` (a folder holding ``summary.json``), with a grid's
    mean +- std per point (``metric``, best by ``direction``) when its results are numbers.

    Raises:
        ReportError: ``root`` is not a folder, or ``metric`` is not in a grid's results.

    Example:
        >>> [(row.kind, row.status, row.jobs) for row in search_rows("runs")]  # doctest: +SKIP
        [('grid_search', 'running', '3/8')]
    """
    root = check_dir(root)
    if jobs is None:
        summaries = []
        jobs = job_rows(root, summaries=summaries)
    rows = []
    for path in walk_files(root, SUMMARY_FILE) if summaries is None else sorted(summaries):
        summary = read_summary_object(path)
        if summary is not None:
            row = each_row(path, _search_row, summary, jobs, metric=metric, direction=direction)
            if row is not None:
                rows.append(row)
    rows.sort(key=lambda row: _natural(row.base_dir))
    return rows


# -- show -------------------------------------------------------------------------------


def load_results_file(path: str) -> Any:
    """A results ``.pkl`` (unpickled: trusted files only) or a ``summary.json``/``job.json``.

    Raises:
        ReportError: The file is missing or not a results file.

    Example:
        >>> load_results_file("runs/size/summary.json")["achieved"]  # doctest: +SKIP
        {'value': 42, 'result': 0.502}
    """
    if not os.path.isfile(path):
        raise ReportError(f"{path!r} is not a file; pass a *_results_*.pkl or a summary.json")
    if path.endswith(".json"):
        data = read_json_object(path)
        if data is None:
            raise ReportError(f"{path!r} is not a JSON object")
        return data
    import pickle
    import sys

    # The classes a results pickle names (the user's search config, say) import as they
    # would from the folder the sweep was started in: usually this one.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as exc:
        hint = ""
        if isinstance(exc, ImportError):
            hint = (
                "; run this from the folder the sweep was started in or put that module on "
                "PYTHONPATH, or read the summary.json beside it (no code needed)"
            )
        raise ReportError(f"cannot unpickle {path!r}: {type(exc).__name__}: {exc}{hint}") from exc


def label_grid_aggregate(data: Any) -> Any:
    """A grid's aggregate labelled with its points, when it is a list of one value per job.

    The default grid ``agg_results`` returns what each job returned, in job order: a
    bare list of numbers says nothing about which point gave which. Works on a grid's
    ``summary.json`` (``aggregated`` beside ``jobs``) and on its results pickle as
    :func:`to_jsonable` gives it (``results`` beside ``points``). Anything else is
    returned as it is.

    Example:
        >>> label_grid_aggregate({"kind": "grid_search", "aggregated": [0.5, 0.7],
        ...     "jobs": [{"point": {"lr": 0.1}}, {"point": {"lr": 0.2}}]})["aggregated"]
        {'lr=0.1': 0.5, 'lr=0.2': 0.7}
    """
    from runner.sweep_text import point_label

    if not isinstance(data, dict):
        return data
    if isinstance(data.get("aggregated"), list) and isinstance(data.get("jobs"), list):
        key, points = (
            "aggregated",
            [j.get("point") if isinstance(j, dict) else None for j in data["jobs"]],
        )
    elif isinstance(data.get("results"), list) and isinstance(data.get("points"), list):
        key, points = "results", data["points"]
    else:
        return data
    values = data[key]
    if all(isinstance(v, dict) and "point" in v for v in values):
        return data  # job results: each already says its point
    labels = [point_label(p) for p in points]
    if len(values) != len(labels) or not all(labels) or len(set(labels)) != len(labels):
        return data
    return {**data, key: dict(zip(labels, values, strict=True))}


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-able view of a results payload: job results as dicts, configs as dicts.

    Example:
        >>> to_jsonable({"interval": (41, 42), "x": {1, 2}})
        {'interval': [41, 42], 'x': [1, 2]}
    """
    from runner.jobs import config_to_dict
    from runner.scheduler import GPUJobResult

    if _depth > 50:
        return repr(value)
    if isinstance(value, GPUJobResult):
        job = value.job
        return {
            "success": value.success,
            "status": value.status,
            "result": to_jsonable(value.result, _depth + 1),
            "error": value.error,
            "device": value.gpu_id,
            "duration": value.duration,
            "point": to_jsonable(getattr(job, "point", None), _depth + 1),
            "out_file": value.out_file,
        }
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_jsonable(v, _depth + 1) for v in value), key=repr)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        try:
            return to_jsonable(value.tolist(), _depth + 1)
        except Exception:
            pass
    converted = config_to_dict(value)
    return converted if not isinstance(converted, str) else repr(value)


# -- plots ------------------------------------------------------------------------------

_PLOT_NAMES = frozenset(
    {"GridData", "grid_data", "plot_grid", "plot_search", "plot_threshold", "write_plots"}
)


def __getattr__(name: str) -> Any:
    # The plots moved to runner.plots; their names still import from here, lazily, so
    # that importing this module does not import the plotting code (nor it this one twice).
    if name in _PLOT_NAMES:
        import runner.plots

        return getattr(runner.plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
