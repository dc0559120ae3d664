"""How far a result is from a comparison's target: the margin of ``result["acc"] >= 0.9``.

A success rule written as one comparison of a metric with a target (``metric >= t``,
``metric > t``, ``metric <= t``, ``metric < t``, either side the constant) has a
margin: the signed distance of the metric from the target, positive on the success
side. ``runner bisect`` reports it at the answer and at its failing neighbour.

Example:
    >>> round(comparison_margin('result["acc"] >= 0.9', {"acc": 0.902}), 6)
    0.002
    >>> comparison_margin("bool(result)", True) is None
    True
"""

from __future__ import annotations

import ast
import math
import numbers
from collections.abc import Sequence
from typing import Any

from runner._expr import ExpressionError, compile_expression

__all__ = ["comparison_margin", "seeds_margin"]

_SIGN = {ast.GtE: 1.0, ast.Gt: 1.0, ast.LtE: -1.0, ast.Lt: -1.0}


def _parts(text: str) -> tuple[str, str, float] | None:
    """``(metric side, target side, sign)`` of a single comparison, else None."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None
    node = tree.body
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return None
    sign = _SIGN.get(type(node.ops[0]))
    if sign is None:
        return None
    left = ast.get_source_segment(text.strip(), node.left)
    right = ast.get_source_segment(text.strip(), node.comparators[0])
    if left is None or right is None:
        return None
    return left, right, sign


def comparison_margin(text: str, result: Any) -> float | None:
    """``left - right`` for ``left >= right`` (``right - left`` for ``<=``) on ``result``,
    or None when the rule is no such comparison or either side is not a number."""
    parts = _parts(text)
    if parts is None:
        return None
    left, right, sign = parts
    try:
        a = compile_expression(left).evaluate({"result": result})
        b = compile_expression(right).evaluate({"result": result})
    except ExpressionError:
        return None
    real = (numbers.Real,)
    if (
        isinstance(a, bool)
        or isinstance(b, bool)
        or not (isinstance(a, real) and isinstance(b, real))
    ):
        return None
    margin = sign * (float(a) - float(b))
    return margin if math.isfinite(margin) else None


def seeds_margin(text: str, result: Any, agg: str) -> float | None:
    """The margin of an aggregated ``runner bisect`` result: of the mean for ``agg="mean"``;
    for ``"all"`` (every seed must pass) the smallest seed's, for ``"any"`` the largest."""
    if agg == "mean" or not isinstance(result, Sequence) or isinstance(result, (str, bytes)):
        return comparison_margin(text, result)
    margins = [comparison_margin(text, value) for value in result]
    known = [m for m in margins if m is not None]
    if not known or len(known) != len(margins):
        return None
    return min(known) if agg == "all" else max(known)
