"""Reading sweeps back from disk: status rows, readable results, and plots.

Everything here reads ``job.json`` and ``summary.json`` only, never ``result.pkl``
or a results pickle, except :func:`load_results_file` on a ``.pkl`` the user
names (which unpickles, and so runs code: trusted files only).

Plots (matplotlib, the ``plot`` extra; imported inside the functions, drawn on
an Agg canvas without pyplot's global state):

* a binary search's trace: the value tested (y) per round (x), successes as green
  circles, failures as red crosses, the final interval as a shaded band;
* a grid search's job results, a numeric ``metric`` (the result itself, a key of a
  dict result, or an expression over ``result``) averaged per point of the plotted
  props over every other swept prop (seeds, typically): lines with each job's
  value as a dot for one prop, a heatmap for two. By default the plotted props
  are the swept props with more than one value, ``seed`` left out (averaged
  over) when another one remains.

Example:
    >>> rows = job_rows("/nonexistent")
    >>> rows
    []
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import socket
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from runner.errors import MissingDependencyError, ReportError
from runner.job_folder import JOB_JSON
from runner.search_results import SUMMARY_FILE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "GridData",
    "JobRow",
    "ReportError",
    "SearchRow",
    "grid_data",
    "job_rows",
    "load_results_file",
    "plot_binary_trace",
    "plot_grid",
    "plot_search",
    "search_rows",
    "to_jsonable",
    "write_plots",
]

_SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "node_modules"})
_HOST = socket.gethostname()


# -- walking ----------------------------------------------------------------------------


def _walk(root: str, name: str) -> Iterator[str]:
    """Paths of every file called ``name`` under ``root``, in a stable order."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        if name in files:
            yield os.path.join(folder, name)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):  # being replaced right now, or not ours
        return None
    return data if isinstance(data, dict) else None


def _check_dir(root: str) -> str:
    if not os.path.isdir(root):
        raise ReportError(f"{root!r} is not a folder; pass the base_dir of a sweep")
    return os.path.abspath(root)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie counts: not yet reaped).

    Example:
        >>> pid_alive(os.getpid())
        True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


# -- status -----------------------------------------------------------------------------


@dataclasses.dataclass
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

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _short(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= width else text[: width - 3] + "..."


def _job_row(path: str, record: dict[str, Any], now: float) -> JobRow:
    status = str(record.get("status") or "unknown")
    pid, host = record.get("pid"), record.get("host")
    start = record.get("start_time")
    duration = record.get("duration")
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
        detail = _short(record.get("result_summary"))
    else:
        detail = _short(record.get("error_summary") or "")
    return JobRow(
        folder=os.path.dirname(path),
        status=status,
        device="cpu" if record.get("device") in (None, "") else str(record.get("device")),
        duration=duration if isinstance(duration, (int, float)) else None,
        detail=detail,
        point=record.get("point") if isinstance(record.get("point"), dict) else None,
        host=host,
        pid=pid if isinstance(pid, int) else None,
        start_time=start if isinstance(start, (int, float)) else None,
    )


def job_rows(root: str) -> list[JobRow]:
    """Every job folder under ``root`` (a folder holding ``job.json``), read without unpickling.

    A job.json that says "running" whose process no longer exists on this host is
    reported as "lost".

    Example:
        >>> [(row.status, row.device) for row in job_rows("runs/sweep")]  # doctest: +SKIP
        [('ok', '0'), ('lost', '1')]
    """
    if not os.path.isdir(root):
        return []
    now = time.time()
    rows = []
    for path in _walk(root, JOB_JSON):
        record = _read_json(path)
        if record is not None:
            rows.append(_job_row(path, record, now))
    return rows


@dataclasses.dataclass
class SearchRow:
    """One search (a folder holding ``summary.json``), as ``runner status`` shows it."""

    base_dir: str
    kind: str
    status: str
    jobs: str
    duration: float | None
    detail: str
    summary: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["summary"]
        return data


def _search_row(path: str, summary: dict[str, Any], jobs: Sequence[JobRow]) -> SearchRow:
    base_dir = os.path.dirname(path)
    kind = str(summary.get("kind") or "?")
    status = str(summary.get("status") or "?")
    inside = [j for j in jobs if j.folder.startswith(base_dir + os.sep)]
    done = sum(j.status not in ("running", "lost") for j in inside)
    failed = sum(j.status not in ("ok", "running") for j in inside)
    if status == "running" and any(j.status == "lost" for j in inside):
        status = "lost"  # its jobs outlived it: the driver is gone
    duration = summary.get("total_time")
    started = summary.get("started")
    if duration is None and status == "running" and isinstance(started, (int, float)):
        duration = time.time() - started
    total = summary.get("num_jobs")
    jobs_text = f"{done}/{total if total is not None else len(inside)}" + (
        f" ({failed} failed)" if failed else ""
    )
    if kind == "binary_search":
        achieved, failed_at = summary.get("achieved"), summary.get("failed")
        prop = summary.get("prop")
        detail = (
            f"{prop}: achieved {achieved['value'] if achieved else None}, "
            f"failed {failed_at['value'] if failed_at else None}, "
            f"interval {summary.get('interval')}, {summary.get('rounds')} round(s)"
        )
    else:
        detail = f"sweep {_short(summary.get('sweep_props'), 60)}"
    if summary.get("error"):
        detail += f"; error: {_short(summary['error'], 60)}"
    return SearchRow(base_dir, kind, status, jobs_text, duration, detail, summary)


def search_rows(root: str, jobs: Sequence[JobRow] | None = None) -> list[SearchRow]:
    """Every search under ``root`` (a folder holding ``summary.json``).

    Raises:
        ReportError: ``root`` is not a folder.

    Example:
        >>> [(row.kind, row.status, row.jobs) for row in search_rows("runs")]  # doctest: +SKIP
        [('grid_search', 'running', '3/8')]
    """
    root = _check_dir(root)
    jobs = job_rows(root) if jobs is None else jobs
    rows = []
    for path in _walk(root, SUMMARY_FILE):
        summary = _read_json(path)
        if summary is not None:
            rows.append(_search_row(path, summary, jobs))
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
        data = _read_json(path)
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


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError(
            "runner plot needs matplotlib: pip install 'runner[plot]' "
            '(or pip install -e ".[plot]" in a checkout)'
        ) from exc
    return matplotlib


def _new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)  # attaches itself; no pyplot, no global figure registry
    return figure


def plot_binary_trace(summary: dict[str, Any]) -> Figure:
    """The trace of a binary search from its ``summary.json``: tested values per round.

    Successes are the green ``"success"`` scatter, failures the red ``"failure"``
    one, inconclusive values the grey ``"inconclusive"`` one; the final interval is
    a shaded band.

    Example:
        >>> fig = plot_binary_trace({"prop": "w", "range": [0, 8], "interval": [3, 4],
        ...     "points": [{"value": 4, "round": 1, "success": True},
        ...                {"value": 2, "round": 2, "success": False}]})
        >>> [c.get_label() for c in fig.axes[0].collections]
        ['success', 'failure']
    """
    points = [p for p in summary.get("points") or [] if isinstance(p, dict)]
    prop = summary.get("prop", "value")
    figure = _new_figure()
    ax = figure.add_subplot()
    points = [p for p in points if _is_number(p.get("value")) and isinstance(p.get("round"), int)]
    for label, success, marker, color in (
        ("success", True, "o", "tab:green"),
        ("failure", False, "x", "tab:red"),
        ("inconclusive", None, "s", "tab:gray"),
    ):
        chosen = [p for p in points if p.get("success") is success]
        if chosen:
            rounds_of: list[float] = [float(p["round"]) for p in chosen]
            values: list[float] = [float(p["value"]) for p in chosen]
            ax.scatter(rounds_of, values, label=label, s=50, zorder=3, marker=marker, color=color)
    interval = summary.get("interval")
    if isinstance(interval, list) and len(interval) == 2:
        lo, hi = interval
        ax.axhspan(lo, hi, color="tab:blue", alpha=0.15, label=f"final interval ({lo}, {hi})")
    search_range = summary.get("range")
    if isinstance(search_range, list) and len(search_range) == 2:
        for bound in search_range:
            ax.axhline(bound, color="black", linestyle=":", linewidth=0.8)
    if summary.get("scale") == "log":
        ax.set_yscale("log")
    achieved = summary.get("achieved")
    title = f"binary search over {prop}"
    if achieved:
        title += f": achieved {prop}={achieved.get('value')}"
    ax.set_title(title)
    ax.set_xlabel("round")
    ax.set_ylabel(str(prop))
    rounds: list[int] = sorted({int(p["round"]) for p in points})
    if rounds:
        ax.set_xticks(rounds)
    ax.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure


@dataclasses.dataclass
class GridData:
    """A grid's numeric job results, averaged per point of the plotted ``props``."""

    props: list[str]
    #: The values of each plotted prop, in sweep order.
    axes: list[list[Any]]
    #: The mean metric at each combination (NaN where no job succeeded); 1 or 2 dimensions.
    means: list[Any]
    #: Every successful job: (values of the plotted props, metric value).
    samples: list[tuple[tuple[Any, ...], float]]
    metric: str
    #: The swept props not plotted: each point's value is the mean over them.
    averaged_over: list[str] = dataclasses.field(default_factory=list)


def _metric_getter(metric: str | None, results: Sequence[Any]) -> tuple[str, Any]:
    from runner._expr import ExpressionError, compile_expression

    if metric is None:
        if results and all(_is_number(r) for r in results):
            return "result", lambda r: r
        keys = [
            k
            for k in (results[0] if results and isinstance(results[0], dict) else {})
            if all(isinstance(r, dict) and _is_number(r.get(k)) for r in results)
        ]
        if not keys:
            raise ReportError(
                f"the job results (e.g. {results[0] if results else None!r:.80}) are not "
                "numbers; pass --metric KEY or --metric 'EXPRESSION over result'"
            )
        metric = keys[0]
    if metric.isidentifier() and metric != "result":
        key = metric
        if results and all(isinstance(r, dict) for r in results):
            known = sorted({k for r in results for k in r})
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (keys: {', '.join(known)})"
                raise ReportError(f"--metric {key!r} is not a key of the job results{hint}")
        return metric, lambda r: r.get(key) if isinstance(r, dict) else None
    try:
        expr = compile_expression(metric)
    except ExpressionError as exc:
        raise ReportError(f"--metric: {exc}") from None

    def value(r: Any) -> Any:
        try:
            return expr.evaluate({"result": r})
        except ExpressionError:
            return None

    return metric, value


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _grid_jobs(summary: dict[str, Any], base_dir: str | None) -> list[dict[str, Any]]:
    """``(point, result)`` of the grid's successful jobs: from summary.json once done,
    from the job.json files under ``base_dir`` while it runs."""
    jobs = summary.get("jobs")
    if isinstance(jobs, list):
        return [
            {"point": j.get("point") or {}, "result": j.get("result")}
            for j in jobs
            if isinstance(j, dict) and j.get("success")
        ]
    if base_dir is None:
        return []
    found = []
    for path in _walk(base_dir, JOB_JSON):
        record = _read_json(path)
        if record and record.get("status") == "ok" and isinstance(record.get("point"), dict):
            found.append({"point": record["point"], "result": record.get("result_summary")})
    return found


def _sweep_props(summary: dict[str, Any], jobs: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The grid's swept values from summary.json, else (a summary from before the search
    wrote them, or none) taken from the job points."""
    sweep = summary.get("sweep_props")
    if isinstance(sweep, dict) and sweep and all(isinstance(v, list) for v in sweep.values()):
        return {str(k): v for k, v in sweep.items()}
    derived: dict[str, list[Any]] = {}
    for job in jobs:
        for key, value in job["point"].items():
            values = derived.setdefault(key, [])
            if value not in values:
                values.append(value)
    return derived


def grid_data(
    summary: dict[str, Any],
    *,
    metric: str | None = None,
    props: Sequence[str] | None = None,
    base_dir: str | None = None,
) -> GridData:
    """The numbers a grid plot shows (see the module docstring for the choices).

    Raises:
        ReportError: An unknown prop or metric, or no numeric result to plot.

    Example:
        >>> summary = {"sweep_props": {"lr": [0.1, 0.2], "seed": [1, 2]}, "jobs": [
        ...     {"point": {"lr": lr, "seed": s}, "result": lr * s, "success": True}
        ...     for lr in (0.1, 0.2) for s in (1, 2)]}
        >>> d = grid_data(summary)
        >>> d.props, [round(m, 3) for m in d.means]
        (['lr'], [0.15, 0.3])
    """
    jobs = _grid_jobs(summary, base_dir)
    sweep = _sweep_props(summary, jobs)
    varying = [k for k, v in sweep.items() if isinstance(v, list) and len(v) > 1]
    if props:
        for prop in props:
            if prop not in sweep:
                close = difflib.get_close_matches(prop, list(sweep), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ReportError(
                    f"{prop!r} is not a swept prop (swept: {', '.join(sweep) or 'none'}){hint}"
                )
        chosen = list(props)
    else:
        chosen = [k for k in varying if k != "seed"] or varying
    chosen = chosen[:2]
    if not chosen:
        raise ReportError("the grid sweeps no prop with more than one value: nothing to plot")
    results = [j["result"] for j in jobs]
    if not results:
        raise ReportError("no job of this grid has succeeded yet: nothing to plot")
    name, get = _metric_getter(metric, results)
    axes = [list(sweep[p]) for p in chosen]
    samples: list[tuple[tuple[Any, ...], float]] = []
    for job in jobs:
        value = get(job["result"])
        key = tuple(job["point"].get(p) for p in chosen)
        if _is_number(value) and all(k in axis for k, axis in zip(key, axes, strict=True)):
            samples.append((key, float(value)))
    if not samples:
        raise ReportError(f"no job result has a numeric {name!r}: nothing to plot")

    def mean_at(key: tuple[Any, ...]) -> float:
        values = [v for k, v in samples if k == key]
        return statistics.fmean(values) if values else math.nan

    if len(chosen) == 1:
        means: list[Any] = [mean_at((x,)) for x in axes[0]]
    else:
        means = [[mean_at((x, y)) for x in axes[0]] for y in axes[1]]
    others = [k for k in sweep if k not in chosen and len(sweep[k]) > 1]
    return GridData(chosen, axes, means, samples, name, others)


def _numeric_axis(values: Sequence[Any]) -> bool:
    return all(_is_number(v) for v in values)


def plot_grid(data: GridData) -> Figure:
    """Lines (one prop) or a heatmap (two props) of :func:`grid_data`'s means.

    One prop: the ``"mean"`` line over the prop's values (positions ``0..n-1`` when
    they are not numbers) and each job as a dot (the ``"jobs"`` scatter). Two props:
    ``axes[0].images[0]`` holds the means, rows the second prop, columns the first.

    Example:
        >>> data = GridData(["lr"], [[0.1, 0.2]], [1.0, 2.0], [((0.1,), 1.0), ((0.2,), 2.0)], "acc")
        >>> [float(y) for y in plot_grid(data).axes[0].get_lines()[0].get_ydata()]
        [1.0, 2.0]
    """
    figure = _new_figure()
    ax = figure.add_subplot()
    if len(data.props) == 1:
        xs = data.axes[0]
        numeric = _numeric_axis(xs)
        positions = list(xs) if numeric else list(range(len(xs)))
        where = {x: pos for x, pos in zip(xs, positions, strict=True)}
        ax.plot(positions, data.means, marker="o", label="mean", color="tab:blue")
        ax.scatter(
            [where[k[0]] for k, _ in data.samples],
            [v for _, v in data.samples],
            label="jobs",
            color="tab:blue",
            alpha=0.35,
            s=18,
        )
        if numeric and min(xs) > 0 and max(xs) / min(xs) >= 100:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(positions, [str(x) for x in xs])
        ax.set_xlabel(data.props[0])
        ax.set_ylabel(data.metric)
        ax.legend(loc="best", fontsize="small")
    else:
        image = ax.imshow(data.means, aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(len(data.axes[0])), [str(x) for x in data.axes[0]])
        ax.set_yticks(range(len(data.axes[1])), [str(y) for y in data.axes[1]])
        ax.set_xlabel(data.props[0])
        ax.set_ylabel(data.props[1])
        figure.colorbar(image, ax=ax, label=data.metric)
        finite = [v for line in data.means for v in line if not math.isnan(v)]
        middle = (min(finite) + max(finite)) / 2 if finite else 0.0
        for row, line in enumerate(data.means):
            for col, value in enumerate(line):
                if not math.isnan(value):
                    color = "white" if value < middle else "black"  # readable on viridis
                    ax.text(col, row, f"{value:.3g}", ha="center", va="center", color=color)
    title = f"grid: {data.metric}"
    if data.averaged_over:
        title += f" (mean over {', '.join(data.averaged_over)})"
    ax.set_title(title)
    figure.tight_layout()
    return figure


def plot_search(
    summary: dict[str, Any],
    *,
    metric: str | None = None,
    props: Sequence[str] | None = None,
    base_dir: str | None = None,
) -> Figure:
    """The plot of one search's ``summary.json``: a trace (binary) or lines/heatmap (grid).

    Example:
        >>> # plot_search(json.load(open("runs/sweep/summary.json"))).savefig("sweep.png")
    """
    kind = summary.get("kind")
    if kind == "binary_search":
        return plot_binary_trace(summary)
    if kind == "grid_search":
        return plot_grid(grid_data(summary, metric=metric, props=props, base_dir=base_dir))
    raise ReportError(f"cannot plot a search of kind {kind!r}")


def write_plots(
    root: str,
    *,
    out: str | None = None,
    metric: str | None = None,
    props: Sequence[str] | None = None,
) -> list[str]:
    """Write a PNG per search found under ``root`` (or for one ``summary.json``); return the paths.

    Each goes to ``<out>/<search folder name>_<kind>.png``, or into the search's own
    folder as ``<kind>.png`` when ``out`` is None.

    Raises:
        ReportError: No search under ``root``, or one can't be plotted.
        MissingDependencyError: matplotlib is not installed.

    Example:
        >>> # write_plots("runs/sweep", out="plots")  # -> ['plots/sweep_grid_search.png']
    """
    _matplotlib()
    if os.path.isfile(root):
        summaries = [os.path.abspath(root)]
    else:
        summaries = list(_walk(_check_dir(root), SUMMARY_FILE))
    if not summaries:
        raise ReportError(f"no summary.json under {root!r}: is it a sweep's base_dir?")
    written: list[str] = []
    for path in summaries:
        summary = _read_json(path)
        if summary is None:
            continue
        base_dir = os.path.dirname(path)
        kind = str(summary.get("kind") or "search")
        figure = plot_search(summary, metric=metric, props=props, base_dir=base_dir)
        if out is None:
            target = os.path.join(base_dir, f"{kind}.png")
        else:
            os.makedirs(out, exist_ok=True)
            target = os.path.join(out, f"{os.path.basename(base_dir)}_{kind}.png")
            n = 1
            while target in written:
                n += 1
                target = os.path.join(out, f"{os.path.basename(base_dir)}_{kind}-{n}.png")
        figure.savefig(target)
        written.append(target)
    return written
