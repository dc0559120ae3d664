"""What a threshold (binary) search's plot shows, worked out from its ``summary.json``.

Pure: no matplotlib, no I/O beyond what the caller hands in (the summary, and while
the search runs the ``(point, result)`` of jobs it has not judged yet). The drawing is
:mod:`runner.threshold_plot`'s.

* The metric: the job results' own number (the result, or its first numeric key, or
  ``metric`` as for grids, or the left side of a readable success rule such as
  ``result["acc"] >= 0.9``), one value per job; per tested value, the aggregated
  result's metric when ``agg_results`` returns one of the same shape, else the mean of
  its jobs.
* The target: the number in a success rule that is one comparison, else the one the
  search's margins imply (the margin at the answer and at its failing neighbour give
  the same target only when the margin is the aggregate's distance to it).
* Per tested value: the jobs judged a success out of those judged (probabilistic), or
  of the jobs the rule passes, or the verdicts given to the value (bisection).
* The axis: log when the tested values span two decades or more (or the search bisected
  on a log scale); a zoomed window around the answer when it would be squashed.

Example:
    >>> parse_rule('result["acc"] >= 0.9')
    Rule(metric='result["acc"]', op='>=', target=0.9)
    >>> parse_rule("0.5 < result").op, parse_rule("result > 0.1 and result < 2") is None
    ('>', True)
"""

from __future__ import annotations

import ast
import dataclasses
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from runner.errors import ReportError
from runner.grid_points import is_number, metric_getter
from runner.searches.summary import SearchSummary

__all__ = ["Rule", "Target", "ThresholdView", "ValueView", "parse_rule", "threshold_view"]

_OPS = {ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Lt: "<"}
_FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


@dataclasses.dataclass(frozen=True)
class Rule:
    """A success rule that is one comparison: ``metric op target``."""

    metric: str
    op: str
    target: float

    def passes(self, value: float) -> bool:
        return {
            ">=": value >= self.target,
            ">": value > self.target,
            "<=": value <= self.target,
            "<": value < self.target,
        }[self.op]


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value) if is_number(node.value) else None
    return None


def _uses_result(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "result" for n in ast.walk(node))


def parse_rule(text: str | None) -> Rule | None:
    """The comparison in a success expression, or None when it is not one comparison
    of an expression over ``result`` with a number."""
    if not text:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(tree, ast.Compare) or len(tree.ops) != 1:
        return None
    op = _OPS.get(type(tree.ops[0]))
    left, right = tree.left, tree.comparators[0]
    if op is None:
        return None
    target, side = _number(right), left
    if target is None:
        target, side, op = _number(left), right, _FLIP[op]
    source = ast.get_source_segment(text.strip(), side)
    if target is None or source is None or not _uses_result(side):
        return None
    return Rule(source, op, target)


@dataclasses.dataclass(frozen=True)
class Target:
    """The horizontal line of the metric panel."""

    value: float
    op: str
    #: "rule" (a success rule) or "margin" (inferred from the search's margins).
    source: str


@dataclasses.dataclass
class ValueView:
    """One tested value, every entry of it (rounds, re-tests) taken together."""

    value: float
    #: The metric of each of its jobs that returned one.
    jobs: list[float] = dataclasses.field(default_factory=list)
    #: Its aggregated result's metric (or the mean of ``jobs``, see ThresholdView.aggregate).
    aggregate: float | None = None
    #: The latest verdict given to it (True, False, None: inconclusive).
    verdict: bool | None = None
    successes: int | None = None
    judged: int | None = None
    rounds: list[int] = dataclasses.field(default_factory=list)
    retested: bool = False
    #: Jobs that ended but were not judged yet (a running search).
    pending: list[float] = dataclasses.field(default_factory=list)
    failed_jobs: int = 0

    @property
    def fraction(self) -> float | None:
        return None if not self.judged or self.successes is None else self.successes / self.judged


@dataclasses.dataclass
class ThresholdView:
    """Everything the threshold plot draws, in data units."""

    summary: SearchSummary
    prop: str
    values: list[ValueView]
    #: The metric's name; None when no result has a number to plot.
    metric: str | None
    #: "aggregate" (the aggregated results' metric) or "mean of jobs".
    aggregate: str
    target: Target | None
    #: What the success fraction counts: "jobs" (each judged), "rule" (jobs the rule
    #: passes), "verdicts" (the value's verdicts: bisection).
    counted: str
    log: bool
    #: The x window around the answer when the full axis squashes it, else None.
    zoom: tuple[float, float] | None
    #: Bisection: (round, lo, hi) of the bracket after each round.
    brackets: list[tuple[int, float, float]]
    #: Probabilistic: (value, probability) and the probability beyond the range.
    posterior: list[tuple[float, float]]
    beyond: float = 0.0

    @property
    def answer(self) -> float | None:
        s = self.summary
        if s.method == "probabilistic" and is_number(s.estimate):
            return float(s.estimate)
        return float(s.achieved.value) if s.achieved and is_number(s.achieved.value) else None


def _metric_of(get: Any, result: Any) -> float | None:
    try:
        value = get(result)
    except Exception:  # a metric expression that does not apply to this result's shape
        return None
    return float(value) if is_number(value) else None


def _choose_metric(
    metric: str | None, jobs: Sequence[Any], aggregates: Sequence[Any]
) -> tuple[str | None, Any]:
    if metric is not None:
        return metric_getter(metric, list(jobs) or list(aggregates))
    for results in (jobs, aggregates):
        numeric = [r for r in results if r is not None]
        if numeric:
            try:
                return metric_getter(None, numeric)
            except ReportError:
                continue
    return None, None


def _margin_target(summary: SearchSummary, views: dict[float, ValueView]) -> Target | None:
    """The target the margins imply, when the two margins agree on one."""
    margin = summary.margin
    if margin is None or margin.achieved is None or margin.failed is None:
        return None
    if summary.achieved is None or summary.failed is None:
        return None
    a = views.get(float(summary.achieved.value)) if is_number(summary.achieved.value) else None
    f = views.get(float(summary.failed.value)) if is_number(summary.failed.value) else None
    if a is None or f is None or a.aggregate is None or f.aggregate is None:
        return None
    tolerance = 1e-6 * max(1.0, abs(a.aggregate), abs(f.aggregate))
    # margin = metric - target when a success is a high metric, target - metric when low.
    high = (a.aggregate - margin.achieved, f.aggregate - margin.failed)
    low = (a.aggregate + margin.achieved, f.aggregate + margin.failed)
    if abs(high[0] - high[1]) <= tolerance and a.aggregate >= f.aggregate:
        return Target(high[0], ">=", "margin")
    if abs(low[0] - low[1]) <= tolerance and a.aggregate <= f.aggregate:
        return Target(low[0], "<=", "margin")
    return None


def _brackets(summary: SearchSummary, views: Sequence[ValueView]) -> list[tuple[int, float, float]]:
    """Bisection's bracket after each round: between the nearest failure and success."""
    ends = [float(v) for v in summary.range or () if is_number(v)]
    if summary.method == "probabilistic" or len(ends) != 2:
        return []
    lo_end, hi_end = ends
    seen: dict[float, bool] = {}
    out = []
    for r in sorted({r for v in views for r in v.rounds}):
        for tested in summary.points:
            if tested.round == r and is_number(tested.value) and tested.success is not None:
                seen[float(tested.value)] = tested.success
        ok = [v for v, s in seen.items() if s]
        bad = [v for v, s in seen.items() if not s]
        if summary.success_direction_lower is not False:  # successes above the threshold
            hi = min(ok, default=hi_end)
            lo = max((v for v in bad if v < hi), default=lo_end)
        else:
            lo = max(ok, default=lo_end)
            hi = min((v for v in bad if v > lo), default=hi_end)
        out.append((r, lo, hi))
    return out


def _window(
    view_values: Sequence[float], interval: Sequence[float], log: bool, full: tuple[float, float]
) -> tuple[float, float] | None:
    """A window around the interval and the two tested values nearest it on each side,
    when the full axis squashes them: the interval takes under 1/40 of it, or tested
    values in the window lie closer than 1/60 of it."""
    if log and min(interval) <= 0:
        return None
    to = math.log10 if log else (lambda x: x)
    back = (lambda x: 10**x) if log else (lambda x: x)
    lo, hi = sorted(to(v) for v in interval)
    span = to(full[1]) - to(full[0])
    if span <= 0:
        return None
    width = hi - lo if hi > lo else span / 400
    margin, reach = min(4 * width, span / 20), min(12 * width, span / 4)
    points = sorted(to(v) for v in view_values)
    below = [v for v in points if lo - reach <= v < lo][-2:]
    above = [v for v in points if hi < v <= hi + reach][:2]
    a = min([lo - margin, *below])
    b = max([hi + margin, *above])
    pad = 0.06 * (b - a)
    a, b = a - pad, b + pad
    inside = [v for v in points if a <= v <= b]
    gaps = [y - x for x, y in zip(inside, inside[1:], strict=False)]
    crowded = bool(gaps) and min(gaps) * 60 < span
    if (b - a) * 2 > span or not (width * 40 < span or crowded):
        return None
    return back(a), back(b)


def threshold_view(
    summary: SearchSummary,
    *,
    metric: str | None = None,
    success: str | None = None,
    pending: Iterable[tuple[dict[str, Any], Any]] = (),
) -> ThresholdView:
    """The view of a binary search's summary (see the module docstring).

    ``success`` is the search's success rule, when known; ``pending`` the
    ``(point, result)`` of jobs that ended but are not in the summary yet.

    Raises:
        ReportError: ``metric`` is not in the results, or nothing was tested yet.
    """
    prop = summary.prop or "value"
    rule = parse_rule(success)
    entries = [t for t in summary.points if is_number(t.value)]
    pending = [(p, r) for p, r in pending if is_number(p.get(prop))]
    if not entries and not pending:
        raise ReportError(f"{summary.search}: no value of {prop} has been tested yet")
    job_results = [j.result for t in entries for j in t.jobs if j.success]
    job_results += [r for _, r in pending]
    name, get = _choose_metric(
        metric or (rule.metric if rule else None), job_results, [t.result for t in entries]
    )
    views: dict[float, ValueView] = {}
    latest: dict[float, Any] = {}
    for t in entries:
        view = views.setdefault(float(t.value), ValueView(float(t.value)))
        view.verdict = t.success  # the latest entry's: a re-test's verdict replaces the first
        if t.round is not None:
            view.rounds.append(t.round)
        view.retested |= t.retest
        latest[view.value] = t.result
        if t.judged is not None:
            view.judged = (view.judged or 0) + t.judged
            view.successes = (view.successes or 0) + (t.successes or 0)
        for job in t.jobs:
            value = _metric_of(get, job.result) if get and job.success else None
            if value is not None:
                view.jobs.append(value)
            view.failed_jobs += not job.success
    for point, result in pending:
        view = views.setdefault(float(point[prop]), ValueView(float(point[prop])))
        value = _metric_of(get, result) if get else None
        if value is not None:
            view.pending.append(value)
    ordered = sorted(views.values(), key=lambda v: v.value)
    direct = {v.value: _metric_of(get, latest.get(v.value)) if get else None for v in ordered}
    tested = [v for v in ordered if v.value in latest]
    use_direct = bool(tested) and all(direct[v.value] is not None for v in tested)
    for view in ordered:
        if use_direct:
            view.aggregate = direct.get(view.value)
        elif view.jobs:
            view.aggregate = statistics.fmean(view.jobs)
    counted = "jobs" if any(v.judged is not None for v in ordered) else "verdicts"
    if counted == "verdicts" and rule is not None and any(v.jobs for v in ordered):
        counted = "rule"
    for view in ordered:
        if counted == "rule" and rule is not None:
            view.successes, view.judged = sum(map(rule.passes, view.jobs)), len(view.jobs)
        elif counted == "verdicts":
            verdicts = [t.success for t in entries if float(t.value) == view.value]
            view.judged = sum(v is not None for v in verdicts)
            view.successes = sum(v is True for v in verdicts)
    target = None
    if rule is not None and name is not None:
        target = Target(rule.target, rule.op, "rule")
    elif use_direct:
        target = _margin_target(summary, views)
    values = [v.value for v in ordered]
    ends = [float(v) for v in summary.range or () if is_number(v)]
    positive = [v for v in values + ends if v > 0]
    log = summary.scale == "log" or (
        len(positive) == len(values + ends) and bool(values) and max(values) >= 100 * min(values)
    )
    full = (min(values + ends), max(values + ends))
    interval = [float(v) for v in summary.interval or () if is_number(v)]
    zoom = _window(values, interval, log, full) if len(interval) == 2 else None
    posterior: list[tuple[float, float]] = []
    beyond = 0.0
    for pair in summary.posterior or []:
        if isinstance(pair, list) and len(pair) == 2 and is_number(pair[1]):
            if is_number(pair[0]):
                posterior.append((float(pair[0]), float(pair[1])))
            else:
                beyond += float(pair[1])
    return ThresholdView(
        summary=summary,
        prop=prop,
        values=ordered,
        metric=name,
        aggregate="aggregate" if use_direct else "mean of jobs",
        target=target,
        counted=counted,
        log=log,
        zoom=zoom,
        brackets=_brackets(summary, ordered),
        posterior=posterior,
        beyond=beyond,
    )
