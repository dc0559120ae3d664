"""A binary search config's range, precision and scale, checked, as a :class:`BisectionSpace`."""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from typing import Any

from runner.configs.search_configs import BinarySearchConfig
from runner.errors import SearchConfigError
from runner.searches.bisection import BisectionSpace

__all__ = [
    "every_tested_value",
    "is_int",
    "is_number",
    "parallel_points_of",
    "options_of_the_other_method",
    "probabilistic_options_of",
    "repetitions_of",
    "space_of",
    "test_range_ends_of",
    "wider_range",
]


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _field_is_int(experiment_config: Any, prop: str) -> bool:
    try:
        hints = typing.get_type_hints(type(experiment_config))
    except Exception:  # unresolvable annotations: fall back to the range's types
        return False
    return hints.get(prop) is int


def space_of(config: Any, name: str) -> BisectionSpace:
    """The searched space of a ``BinarySearchConfig``; raise naming the field at fault.

    The search is over integers when the range and precision are ints, or when the
    experiment config declares the prop ``int``.

    Example:
        >>> from types import SimpleNamespace as C
        >>> space_of(C(prop="w", range=(10, 100), precision=1, scale="linear",
        ...            success_direction_lower=True, base_experiment_config=None), "s").integer
        True
    """

    def fail(message: str) -> SearchConfigError:
        return SearchConfigError(f"{name}: {message}")

    if not isinstance(config.prop, str) or not config.prop:
        raise fail(f"prop={config.prop!r} must name the property to search over")
    bounds = config.range
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise fail(f"range={bounds!r} must be a pair (lo, hi), e.g. range=(10, 100)")
    lo, hi = bounds
    if not (is_number(lo) and is_number(hi)) or not all(map(math.isfinite, (lo, hi))):
        raise fail(f"range={bounds!r} must hold two finite numbers")
    if not lo < hi:
        raise fail(
            f"range={bounds!r} is empty: lo must be below hi, e.g. range=({hi}, {lo})"
            if lo > hi
            else f"range={bounds!r} is empty: lo must be below hi"
        )
    precision = config.precision
    if not is_number(precision) or not precision > 0 or not math.isfinite(precision):
        raise fail(f"precision={precision!r} must be a positive number")
    if config.scale not in ("linear", "log"):
        raise fail(f"scale={config.scale!r} must be 'linear' or 'log'")
    if config.scale == "log" and lo <= 0:
        raise fail(f"scale='log' needs a positive range, got range={bounds!r}")
    integer = (is_int(lo) and is_int(hi) and is_int(precision)) or _field_is_int(
        config.base_experiment_config, config.prop
    )
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
        if not lo < hi:
            raise fail(f"range={bounds!r} holds no integers for int prop {config.prop!r}")
        if hi - lo < 2:
            raise fail(
                f"range={bounds!r} has no integer strictly between its ends, so int prop "
                f"{config.prop!r} has nothing to test; widen the range"
            )
    if hi - lo <= precision:
        # The open interval is already as narrow as asked: no value would ever be tested.
        suggestion = max(1, (hi - lo) // 10) if integer else (hi - lo) / 10
        raise fail(
            f"precision={precision!r} is not below the range's width ({hi - lo!r} for "
            f"range={bounds!r}), so the search would test nothing and answer nothing; pass a "
            f"smaller precision (e.g. precision={suggestion!r}) or a wider range"
        )
    return BisectionSpace(
        lo=int(lo) if integer else float(lo),
        hi=int(hi) if integer else float(hi),
        precision=(
            int(precision) if integer and float(precision).is_integer() else float(precision)
        ),
        integer=integer,
        log=config.scale == "log",
        success_lower=bool(config.success_direction_lower),
    )


def parallel_points_of(config: Any, name: str) -> int | None:
    """``parallel_points`` checked: None for "auto", else the whole number given."""
    value = config.parallel_points
    if value == "auto":
        return None
    if not is_int(value) or value < 1:
        raise SearchConfigError(
            f"{name}: parallel_points={value!r} must be 'auto' or a whole number >= 1 "
            "(1 is classic bisection)"
        )
    return int(value)


def repetitions_of(config: Any, name: str, pool: int) -> int:
    """``repetitions`` checked: the sweep_props combinations run per tested value."""
    value = getattr(config, "repetitions", None)
    if value is None:
        return pool
    if not is_int(value) or not 1 <= value <= pool:
        raise SearchConfigError(
            f"{name}: repetitions={value!r} must be None (every sweep_props combination) or a "
            f"whole number from 1 to {pool}, the number of sweep_props combinations"
        )
    return int(value)


def test_range_ends_of(config: Any, name: str) -> bool | str:
    """``test_range_ends`` checked: True, False or "auto"."""
    value = getattr(config, "test_range_ends", "auto")
    if value not in (True, False, "auto") or is_int(value) and not isinstance(value, bool):
        raise SearchConfigError(
            f"{name}: test_range_ends={value!r} must be True, False or 'auto' (test them "
            "when the first round has room at no extra round)"
        )
    return value if isinstance(value, bool) else "auto"


#: Options only one method reads.
_ONLY_FOR = {
    "bisection": ("repetitions", "test_range_ends"),
    "probabilistic": ("confidence", "max_jobs", "target_rate"),
}


def options_of_the_other_method(config: Any, name: str, method: str) -> None:
    """Refuse options set (away from :class:`BinarySearchConfig`'s defaults) for the
    method ``config`` does not run: ``confidence=0.9`` on a bisection would otherwise be
    ignored without a word, and the answer read as if it held at 90%."""
    defaults = {f.name: f.default for f in dataclasses.fields(BinarySearchConfig)}
    for other, fields in _ONLY_FOR.items():
        if other == method:
            continue
        for field in fields:
            unset = defaults[field]
            value = getattr(config, field, unset)
            if value != unset:
                raise SearchConfigError(
                    f"{name}: {field}={value!r} applies to method={other!r} only, and this "
                    f"search runs method={method!r}: set method={other!r}, or leave "
                    f"{field} at its default ({unset!r})"
                )


def probabilistic_options_of(config: Any, name: str) -> tuple[float, float, int | None]:
    """``(confidence, target_rate, max_jobs)`` of a probabilistic search, checked."""
    confidence, target, max_jobs = config.confidence, config.target_rate, config.max_jobs
    for field, value in (("confidence", confidence), ("target_rate", target)):
        if not is_number(value) or not 0 < value < 1:
            raise SearchConfigError(
                f"{name}: {field}={value!r} must lie strictly between 0 and 1, e.g. "
                f"{field}={0.95 if field == 'confidence' else 0.5}"
            )
    if max_jobs is not None and (not is_int(max_jobs) or max_jobs < 1):
        raise SearchConfigError(
            f"{name}: max_jobs={max_jobs!r} must be None (ten per round classic bisection "
            "needs) or a whole number >= 1"
        )
    return float(confidence), float(target), None if max_jobs is None else int(max_jobs)


def every_tested_value(side: str, success_lower: bool) -> str:
    """What every tested value did when the threshold may lie beyond the ``side`` end:
    with successes above the threshold (``success_lower``), all succeeding puts it below.

    Example:
        >>> every_tested_value("below", True), every_tested_value("below", False)
        ('succeeded', 'failed')
    """
    return "succeeded" if (side == "below") == success_lower else "failed"


def wider_range(
    lo: Any, hi: Any, side: str, *, log: bool = False, integer: bool = False
) -> tuple[Any, Any] | None:
    """The range to suggest when the threshold may lie beyond its ``side`` end ("below" or
    "above"): as wide again beyond that end (on a log scale, as many times wider). A range
    of positive values stays positive, down to 0 (on a log scale, above 0: 1 for whole
    numbers). None when there is no wider range of that kind to suggest.

    Example:
        >>> wider_range(10, 100, "below"), wider_range(10, 100, "above")
        ((0, 100), (10, 190))
        >>> wider_range(2, 128, "below", log=True, integer=True)
        (1, 128)
        >>> wider_range(1, 128, "below", log=True, integer=True) is None
        True
    """
    if side == "below":
        new: Any = lo / (hi / lo) if log else lo - (hi - lo)
        if lo >= 0 and new < 0:
            new = 0
        if integer:
            new = math.floor(new)
            if log:
                new = max(1, new)
        if log and new <= 0:  # underflow: no positive low end to suggest
            return None
        return None if new >= lo else (new, hi)
    new = hi * (hi / lo) if log else hi + (hi - lo)
    if integer:
        new = math.ceil(new)
    return None if new <= hi else (lo, new)
