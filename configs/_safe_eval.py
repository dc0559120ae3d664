"""Arithmetic on the command line (``lr=1e-3*4``): numbers and operators, nothing else.

Walks the ``ast`` of the expression and computes it itself; names, calls, attributes
and subscripts are refused, so nothing the user's shell passes can run code, and
exponents are bounded so that a short expression cannot hang the process.
Overrides use it by default; ``--eval`` (trusted input) goes further, see ``_values``.

The operator tables and the exponent limit are shared with Runner's ``--success``
expressions (``runner._expr``), so both evaluators do the same arithmetic.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

__all__ = ["ARITHMETIC_OPERATORS", "SIGN_OPERATORS", "eval_arithmetic", "pow_too_big"]

#: The binary operators an arithmetic expression may use: ``+ - * / // % **``.
ARITHMETIC_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
#: The unary operators an arithmetic expression may use: ``-x`` and ``+x``.
SIGN_OPERATORS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_MAX_EXPONENT = 10_000  # 2**10000 is fine; 9**9**9 would hang the process


def eval_arithmetic(text: str) -> Any:
    """The value of an arithmetic expression: ``+ - * / // % **``, unary signs, parentheses.

    Lists and tuples of such expressions are allowed too (``[2**6, 2**7]``).

    Raises:
        ValueError: anything else in the expression (a name, a call, an attribute...).

    Example:
        >>> eval_arithmetic("2**8"), eval_arithmetic("-(1 + 2) * 3 / 4"), eval_arithmetic("[2**6, 3e-4 * 2]")
        (256, -2.25, [64, 0.0006])
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {text!r}") from exc
    return _evaluate(tree.body, text)


def pow_too_big(base: Any, exponent: Any) -> bool:
    """Whether ``base ** exponent`` would take too long or too much memory to compute.

    Example:
        >>> pow_too_big(2, 100), pow_too_big(9, 9**9)
        (False, True)
    """
    if abs(exponent) > _MAX_EXPONENT:
        return True
    # An integer result of more than about a million bits is a typo, not a setting.
    return isinstance(base, int) and abs(base).bit_length() * abs(exponent) > 1_000_000


def _evaluate(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, complex):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC_OPERATORS:
        left, right = _evaluate(node.left, text), _evaluate(node.right, text)
        if isinstance(node.op, ast.Pow) and pow_too_big(left, right):
            raise ValueError(f"{left!r} ** {right!r} is too large in {text!r}")
        try:
            return ARITHMETIC_OPERATORS[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise ValueError(f"division by zero in {text!r}") from exc
    if isinstance(node, ast.UnaryOp) and type(node.op) in SIGN_OPERATORS:
        return SIGN_OPERATORS[type(node.op)](_evaluate(node.operand, text))
    if isinstance(node, ast.List):
        return [_evaluate(item, text) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(item, text) for item in node.elts)
    raise ValueError(
        f"{type(node).__name__} is not allowed in {text!r}: arithmetic takes numbers, "
        "+ - * / // % **, and parentheses only"
    )
