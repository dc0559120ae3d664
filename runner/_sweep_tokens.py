"""What the ``runner`` command reads from ``key=value`` tokens besides plain values.

* Ranges for ``runner grid``: ``hidden_units=1:128`` (both ends included, as a person
  reads it), ``1:128:2`` with a step, and Python's ``range(1,129)`` (end excluded, as in
  Python). They become the list a grid sweeps.
* Job points for ``runner logs`` and ``runner status``: ``lr=0.001 seed=1`` with spaces
  (as the tables print it), ``lr=0.001,seed=1`` (a folder's name), keys in any order,
  numbers compared as numbers (``1e-3`` is ``0.001``).

Example:
    >>> expand_ranges(["units=1:4", "seed=range(0,2)", "lr=[0.1,0.2]"])
    ['units=[1, 2, 3, 4]', 'seed=[0, 1]', 'lr=[0.1,0.2]']
    >>> parse_point("seed=1 lr=1e-3")
    {'seed': 1, 'lr': 0.001}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from runner.errors import SearchConfigError

__all__ = ["expand_ranges", "parse_point", "point_matches", "range_values", "sort_key"]

#: Refuse a range that would make more grid points than a person means to type.
MAX_RANGE_VALUES = 1_000_000

_INT = r"[+-]?\d+"
_COLON_RANGE = re.compile(rf"^\s*({_INT})\s*:\s*({_INT})\s*(?::\s*({_INT})\s*)?$")
_PY_RANGE = re.compile(r"^\s*range\s*\((.*)\)\s*$")
_NUMBER_ISH = re.compile(r"^\s*[+-]?[\d.]+(?:e[+-]?\d+)?\s*:")


def range_values(text: str) -> list[int] | None:
    """The values of a range token's value, or None when ``text`` is not a range.

    ``a:b`` and ``a:b:step`` include ``b`` when the steps reach it; ``range(...)``
    is Python's (``b`` excluded).

    Raises:
        SearchConfigError: A range that is malformed, empty, or not of whole numbers.

    Example:
        >>> range_values("1:5:2"), range_values("range(3)"), range_values("0.1")
        ([1, 3, 5], [0, 1, 2], None)
    """
    match = _PY_RANGE.match(text)
    if match:
        try:
            bounds = [int(part.strip()) for part in match.group(1).split(",")]
        except ValueError:
            raise SearchConfigError(
                f"{text.strip()!r}: range() takes whole numbers, e.g. range(1,129)"
            ) from None
        if not 1 <= len(bounds) <= 3 or (len(bounds) == 3 and bounds[2] == 0):
            raise SearchConfigError(
                f"{text.strip()!r}: write range(stop), range(start,stop) or "
                "range(start,stop,step) with a non-zero step"
            )
        numbers = range(*bounds)
        what = text.strip()
    else:
        match = _COLON_RANGE.match(text)
        if not match:
            if _NUMBER_ISH.match(text) and ":" in text:
                raise SearchConfigError(
                    f"{text.strip()!r}: a grid range is whole numbers lo:hi or lo:hi:step "
                    "(both ends included); list other values as [0.1,0.2,0.5]"
                )
            return None
        lo, hi = int(match.group(1)), int(match.group(2))
        step = int(match.group(3)) if match.group(3) else (1 if hi >= lo else -1)
        if step == 0:
            raise SearchConfigError(f"{text.strip()!r}: the step must not be 0")
        numbers = range(lo, hi + (1 if step > 0 else -1), step)
        what = text.strip()
    if not numbers:
        raise SearchConfigError(f"{what!r} is an empty range: nothing to run")
    if len(numbers) > MAX_RANGE_VALUES:
        raise SearchConfigError(
            f"{what!r} has {len(numbers)} values, over {MAX_RANGE_VALUES}: a grid that size "
            "is not meant; check the ends and the step"
        )
    return list(numbers)


def expand_ranges(
    tokens: Iterable[str], takes_numbers: Callable[[str], bool] = lambda key: True
) -> list[str]:
    """``key=<range>`` tokens rewritten as ``key=[v1, v2, ...]``; others unchanged.

    ``takes_numbers(key)`` says whether the field can hold a number: a text field's
    ``12:30`` is a value, not a range.

    Raises:
        SearchConfigError: A malformed range (see :func:`range_values`).
    """
    out = []
    for token in tokens:
        key, sep, text = token.partition("=")
        values = range_values(text) if sep and takes_numbers(key.strip()) else None
        out.append(token if values is None else f"{key}=[{', '.join(map(str, values))}]")
    return out


def _value(text: str) -> Any:
    from configs.cli import parse_value

    text = text.strip()
    try:
        return parse_value(text)
    except Exception:  # a bare word: compared as text
        return text


def parse_point(text: str | Sequence[str]) -> dict[str, Any]:
    """``"lr=0.001 seed=1"``, ``"lr=0.001,seed=1"`` or ``["lr=0.001", "seed=1"]`` as a dict.

    A value may not hold spaces or commas (folder names don't either).

    Raises:
        SearchConfigError: A part is not ``key=value``.
    """
    parts = [text] if isinstance(text, str) else list(text)
    point: dict[str, Any] = {}
    for part in parts:
        for item in re.split(r"[\s,]+", part.strip().strip("/")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SearchConfigError(
                    f"{item!r} is not key=value; name a job by its swept values, e.g. "
                    "'lr=0.001 seed=1'"
                )
            point[key] = _value(value)
    return point


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else str(a) == str(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return bool(a == b)


def point_matches(query: Mapping[str, Any], point: Mapping[str, Any]) -> bool:
    """Whether ``point`` has every key of ``query`` with the same value (in any order).

    Example:
        >>> point_matches({"seed": 1, "lr": 0.001}, {"lr": 1e-3, "seed": 1, "units": 4})
        True
    """
    return all(key in point and _same(value, point[key]) for key, value in query.items())


def sort_key(value: Any) -> tuple[int, Any]:
    """Sorts numbers as numbers, before text: 4, 6, 16, 32, 64 (not 16, 32, 4, 6, 64).

    Example:
        >>> sorted(["16", 4, "x", 6.5, None], key=sort_key)
        [4, 6.5, '16', 'x', None]
    """
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, (int, float)):
        return (0, value)
    if value is None:
        return (3, "")
    return (2, str(value))
