"""A grid's results per point: the mean +- standard deviation of a metric over the seeds.

A grid sweeps some props (``lr``, ``hidden_units``) and repeats each point over
seeds. What a researcher asks of it is the result per point, not per job: this
module groups the job results by the values of the props that are not seeds,
takes one numeric metric from each (the result itself, a key of a dict result, or
an expression over ``result``), and marks the best point.

Pure: it takes ``(point, result)`` pairs; reading them from disk is the caller's.

Example:
    >>> jobs = [({"lr": lr, "seed": s}, {"acc": lr * 10 + s / 100}) for lr in (0.1, 0.2)
    ...         for s in (0, 1)]
    >>> table = point_stats(jobs)
    >>> table.metric, table.over, [(p.label, round(p.mean, 3), p.best) for p in table.points]
    ('acc', ['seed'], [('lr=0.1', 1.005, False), ('lr=0.2', 2.005, True)])
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from runner.errors import ReportError

__all__ = ["PointStats", "PointTable", "is_number", "metric_getter", "point_stats", "seed_keys"]


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    kind = type(value)
    if kind is float:  # the common cases first: a status table asks this of every job
        return math.isfinite(value)
    if kind is int:
        return True
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def seed_keys(keys: Sequence[str]) -> list[str]:
    """The props a point is repeated over: ``seed``, ``data_seed``, ``seeds``...

    Example:
        >>> seed_keys(["lr", "seed", "init_seed", "seedling"])
        ['seed', 'init_seed']
    """
    return [
        k for k in keys if k.lower() in ("seed", "seeds") or k.lower().endswith(("_seed", "-seed"))
    ]


def metric_getter(metric: str | None, results: Sequence[Any]) -> tuple[str, Callable[[Any], Any]]:
    """The metric's name and a function reading it from one job result.

    ``None`` picks the result itself when every result is a number, else the first key
    whose value is a number in every dict result. A name is a key of dict results (with
    a did-you-mean); anything else is an expression over ``result`` (see runner._expr).

    Raises:
        ReportError: No numeric metric, an unknown key, or a bad expression.
    """
    from runner._expr import ExpressionError, compile_expression

    if metric is None:
        if results and all(is_number(r) for r in results):
            return "result", lambda r: r
        keys = [
            k
            for k in (results[0] if results and isinstance(results[0], dict) else {})
            if all(isinstance(r, dict) and is_number(r.get(k)) for r in results)
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


@dataclasses.dataclass(slots=True)
class PointStats:
    """One point of a grid: its values, and the metric over its seeds."""

    point: dict[str, Any]
    #: Jobs at this point that returned a numeric metric.
    n: int
    #: Jobs at this point that failed (or returned no numeric metric).
    missing: int
    mean: float | None
    #: The sample standard deviation; None below two values.
    std: float | None
    best: bool = False

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.point.items()) or "(all jobs)"

    def text(self, digits: int = 4) -> str:
        """``0.9312 +- 0.0041`` (``n/a`` when nothing succeeded)."""
        if self.mean is None:
            return "n/a"
        if self.std is None:
            return f"{self.mean:.{digits}g}"
        return f"{self.mean:.{digits}g} +- {self.std:.2g}"


@dataclasses.dataclass
class PointTable:
    """Every point of a grid, in the order of its first job."""

    metric: str
    #: The props averaged over (the seeds).
    over: list[str]
    points: list[PointStats]
    direction: Literal["max", "min"] = "max"

    @property
    def best(self) -> PointStats | None:
        return next((p for p in self.points if p.best), None)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (None below two values), in floats:
    ``statistics.stdev`` works in exact fractions, 25,000 points' worth took a second.

    Example:
        >>> _mean_std([1.0, 2.0, 3.0, 4.0]), _mean_std([5.0]), _mean_std([])
        ((2.5, 1.2909944487358056), (5.0, None), (None, None))
    """
    n = len(values)
    if n < 2:
        return (values[0] if n else None), None
    mean = math.fsum(values) / n
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


#: Marks a group key made of reprs (values from JSON never are this object).
_BY_REPR = object()


def point_stats(
    jobs: Sequence[tuple[dict[str, Any], Any]],
    *,
    metric: str | None = None,
    over: Sequence[str] | None = None,
    direction: Literal["max", "min"] = "max",
    failed: Sequence[dict[str, Any]] = (),
) -> PointTable:
    """Group ``(point, result)`` of the successful jobs by point, over the ``over`` props.

    ``over`` defaults to the seed props (:func:`seed_keys`). ``failed`` lists the points
    of failed jobs, counted as missing at their point. The best point has the highest
    mean (``direction="min"``: the lowest).

    Raises:
        ReportError: No job has a numeric metric (see :func:`metric_getter`).
    """
    keys: list[str] = []
    for point, _ in jobs:
        keys += [k for k in point if k not in keys]
    for point in failed:
        keys += [k for k in point if k not in keys]
    averaged = list(seed_keys(keys) if over is None else over)
    name, get = metric_getter(metric, [result for _, result in jobs])
    groups: dict[tuple[Any, ...], tuple[dict[str, Any], list[float], list[int]]] = {}

    kept_keys = [k for k in keys if k not in averaged]
    averaged_set = frozenset(averaged)

    def group(point: dict[str, Any]) -> tuple[dict[str, Any], list[float], list[int]]:
        # By the values themselves, or their reprs where one is a list (unhashable); the
        # point's dict is made once a group (none to make when no key is averaged over).
        key: tuple[Any, ...] = tuple([point.get(k) for k in kept_keys])
        try:
            found = groups.get(key)
        except TypeError:
            key = (_BY_REPR, *[repr(v) for v in key])
            found = groups.get(key)
        if found is None:
            if averaged_set.isdisjoint(point):
                kept = point
            else:
                kept = {k: v for k, v in point.items() if k not in averaged_set}
            found = groups[key] = (kept, [], [0])
        return found

    for point, result in jobs:
        _, values, missing = group(point)
        value = get(result)
        if is_number(value):
            values.append(float(value))
        else:
            missing[0] += 1
    for point in failed:
        group(point)[2][0] += 1
    if not any(values for _, values, _ in groups.values()):
        raise ReportError(f"no job result has a numeric {name!r}: nothing to summarise")
    points = [
        PointStats(kept, len(values), missing[0], *_mean_std(values))
        for kept, values, missing in groups.values()
    ]
    scored = [p for p in points if p.mean is not None]
    pick = max if direction == "max" else min
    pick(scored, key=lambda p: p.mean or 0.0).best = True
    return PointTable(name, averaged, points, direction)
