"""Plots of sweeps, read from their ``summary.json`` (and job.json files while a grid runs).

Matplotlib (the ``plot`` extra) is imported inside the functions, and figures are
drawn on an Agg canvas without pyplot's global state:

* a threshold (binary) search as a researcher reads it: the metric per job and
  per tested value against the value, the target, the success fraction and count
  per value, the posterior or the bracket per round, the answer and its interval,
  contradictions marked (:func:`plot_threshold`, drawn by :mod:`runner.threshold_plot`);
* a grid search's job results, a numeric ``metric`` (the result itself, a key of a
  dict result, or an expression over ``result``) averaged per point of the plotted
  props over every other swept prop (seeds, typically): lines with each job's
  value as a dot for one prop, a heatmap for two. By default the plotted props
  are the swept props with more than one value, ``seed`` left out (averaged
  over) when another one remains.

Example:
    >>> # write_plots("runs/sweep", out="plots")  # -> ['plots/sweep_grid_search.png']
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runner.errors import MissingDependencyError, ReportError
from runner.grid_points import is_number, metric_getter
from runner.search_results import SUMMARY_FILE
from runner.searches.summary import SearchSummary
from runner.sweep_files import check_dir, job_records, read_json_object, walk_files

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "GridData",
    "grid_data",
    "plot_grid",
    "plot_search",
    "plot_threshold",
    "write_plots",
]


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


def plot_threshold(
    summary: SearchSummary | dict[str, Any],
    *,
    metric: str | None = None,
    success: str | None = None,
    base_dir: str | None = None,
) -> Figure:
    """A threshold (binary) search as a researcher reads it (see :mod:`runner.threshold_plot`).

    ``metric`` is what to plot of each job's result (as for grids; default: the
    result, or its first numeric key, or the left side of ``success``). ``success``
    is the search's success rule (``'result["acc"] >= 0.9'``): when it is one
    comparison, its target is drawn and the jobs passing it are counted. While the
    search runs, jobs under ``base_dir`` that ended but are not judged yet are drawn too.

    Raises:
        ReportError: Nothing tested yet, or ``metric`` is not in the results.

    Example:
        >>> fig = plot_threshold({"kind": "binary_search", "prop": "w", "range": [0, 8],
        ...     "interval": [3, 4], "achieved": {"value": 4, "result": 0.6},
        ...     "points": [{"value": 4, "round": 1, "success": True, "result": 0.6},
        ...                {"value": 3, "round": 2, "success": False, "result": 0.4}]})
        >>> [ax.get_label() for ax in fig.axes]
        ['metric', 'fraction', 'rounds']
    """
    from runner.threshold_plot import draw_threshold
    from runner.threshold_view import threshold_view

    summary = SearchSummary.coerce(summary)
    pending: list[tuple[dict[str, Any], Any]] = []
    if base_dir is not None and summary.status == "running":
        pending = _unjudged_jobs(summary, base_dir)
    view = threshold_view(summary, metric=metric, success=success, pending=pending)
    return draw_threshold(_new_figure, view)


def _unjudged_jobs(summary: SearchSummary, base_dir: str) -> list[tuple[dict[str, Any], Any]]:
    """``(point, result)`` of the jobs under ``base_dir`` that ended ok but that the
    summary (written between rounds) does not hold yet."""
    known = {os.path.abspath(j.base_dir) for t in summary.points for j in t.jobs if j.base_dir}
    found: list[tuple[dict[str, Any], Any]] = []
    for folder, record in job_records(base_dir):
        point = record.get("point")
        if not isinstance(point, dict) or record.get("status") != "ok":
            continue
        if os.path.abspath(folder) not in known:
            found.append((point, record.get("result_summary")))
    return found


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
    for _, record in job_records(base_dir):
        if record.get("status") == "ok" and isinstance(record.get("point"), dict):
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
    name, get = metric_getter(metric, results)
    axes = [list(sweep[p]) for p in chosen]
    samples: list[tuple[tuple[Any, ...], float]] = []
    for job in jobs:
        value = get(job["result"])
        key = tuple(job["point"].get(p) for p in chosen)
        if is_number(value) and all(k in axis for k, axis in zip(key, axes, strict=True)):
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
    return all(is_number(v) for v in values)


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
    success: str | None = None,
) -> Figure:
    """The plot of one search's ``summary.json``: the threshold view (binary, see
    :func:`plot_threshold`) or lines/heatmap (grid).

    Example:
        >>> # plot_search(json.load(open("runs/sweep/summary.json"))).savefig("sweep.png")
    """
    kind = summary.get("kind")
    if kind == "binary_search":
        return plot_threshold(summary, metric=metric, success=success, base_dir=base_dir)
    if kind == "grid_search":
        return plot_grid(grid_data(summary, metric=metric, props=props, base_dir=base_dir))
    raise ReportError(f"cannot plot a search of kind {kind!r}")


def write_plots(
    root: str,
    *,
    out: str | None = None,
    metric: str | None = None,
    props: Sequence[str] | None = None,
    success: str | None = None,
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
        summaries = list(walk_files(check_dir(root), SUMMARY_FILE))
    if not summaries:
        raise ReportError(f"no summary.json under {root!r}: is it a sweep's base_dir?")
    written: list[str] = []
    for path in summaries:
        summary = read_json_object(path)
        if summary is None:
            continue
        base_dir = os.path.dirname(path)
        kind = str(summary.get("kind") or "search")
        figure = plot_search(
            summary, metric=metric, props=props, base_dir=base_dir, success=success
        )
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
