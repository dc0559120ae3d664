"""A safe evaluator for success expressions such as ``result["acc"] >= 0.5``.

``runner bisect --success EXPR`` judges each job's return value with a small
expression over the name ``result``. The text comes from a shell, so it is
parsed with :mod:`ast` and walked here node by node; nothing reaches ``eval``.

Allowed: numbers, strings, ``True``/``False``/``None``, the names given (``result``),
arithmetic ``+ - * / // % **`` and unary signs, comparisons (chained too, plus
``in``/``not in``/``is``/``is not``), ``and``/``or``/``not``, item access
``result["acc"]`` / ``result[0]``, attribute access to non-underscore names
(``result.acc``), ``abs``/``min``/``max``/``len``/``round`` calls, and lists/tuples.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from configs._safe_eval import ARITHMETIC_OPERATORS, SIGN_OPERATORS, pow_too_big
from runner.errors import ExpressionError

__all__ = ["Expression", "ExpressionError", "compile_expression"]


# The arithmetic is ``--eval``'s (configs), so the two evaluators cannot drift apart.
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = ARITHMETIC_OPERATORS
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {**SIGN_OPERATORS, ast.Not: operator.not_}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "len": len,
    "round": round,
}


class Expression:
    """A parsed, checked expression; call :meth:`evaluate` with the names' values.

    Example:
        >>> expr = compile_expression('result["acc"] >= 0.5 and 0 < result["loss"] < 1')
        >>> expr.evaluate({"result": {"acc": 0.7, "loss": 0.2}})
        True
    """

    def __init__(self, text: str, tree: ast.Expression, names: frozenset[str]) -> None:
        self.text = text
        self._tree = tree
        self.names = names

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The expression's value with ``values`` bound to its names.

        Raises:
            ExpressionError: The evaluation failed (a missing key, a type error...).
        """
        try:
            return _Evaluator(self.text, values).visit(self._tree.body)
        except ExpressionError:
            raise
        except Exception as exc:  # KeyError, TypeError, ...: one error type for the caller
            raise ExpressionError(
                f"{self.text!r} failed on {_short(values)}: {type(exc).__name__}: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def compile_expression(text: str, names: tuple[str, ...] = ("result",)) -> Expression:
    """Parse ``text`` and check every node before anything is evaluated.

    Args:
        text: The expression, e.g. ``"result >= 0.5"``.
        names: The names it may use.

    Raises:
        ExpressionError: A syntax error, an unknown name, or a construct not allowed.

    Example:
        >>> compile_expression("1 <= result < 10").evaluate({"result": 3})
        True
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{text!r} is not a valid expression: {exc.msg}") from None
    allowed = frozenset(names)
    for node in ast.walk(tree):
        _check(node, text, allowed)
    return Expression(text, tree, allowed)


def _check(node: ast.AST, text: str, names: frozenset[str]) -> None:
    ok = (
        ast.Expression,
        ast.Constant,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.Subscript,
        ast.Attribute,
        ast.Name,
        ast.Call,
        ast.List,
        ast.Tuple,
        ast.Slice,
        ast.Load,
        ast.And,
        ast.Or,
        *_BINARY,
        *_UNARY,
        *_COMPARE,
    )
    if not isinstance(node, ok):
        raise ExpressionError(
            f"{type(node).__name__} is not allowed in {text!r}; use comparisons, arithmetic, "
            f"and/or/not, item access such as result['acc'], and {', '.join(_FUNCTIONS)}()"
        )
    if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCTIONS:
        import difflib

        close = difflib.get_close_matches(node.id, sorted(names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ExpressionError(
            f"unknown name {node.id!r} in {text!r}: only {', '.join(sorted(names))} "
            f"can be used{hint}"
        )
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ExpressionError(f"attribute {node.attr!r} in {text!r}: private names are not allowed")
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords:
            raise ExpressionError(
                f"only {', '.join(_FUNCTIONS)}(...) may be called in {text!r}, without keywords"
            )
    if isinstance(node, ast.Constant) and not isinstance(
        node.value, (int, float, str, bool, type(None))
    ):
        raise ExpressionError(f"the constant {node.value!r} is not allowed in {text!r}")


class _Evaluator:
    def __init__(self, text: str, values: Mapping[str, Any]) -> None:
        self.text = text
        self.values = values

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.values:
                return self.values[node.id]
            return _FUNCTIONS[node.id]
        if isinstance(node, ast.BinOp):
            left, right = self.visit(node.left), self.visit(node.right)
            if isinstance(node.op, ast.Pow) and _too_big(left, right):
                raise ExpressionError(f"{left!r} ** {right!r} is too large in {self.text!r}")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.visit(node.operand))
        if isinstance(node, ast.BoolOp):
            # Short-circuit like Python: `result is not None and result > 1` must not fail.
            value: Any = None
            for operand in node.values:
                value = self.visit(operand)
                if isinstance(node.op, ast.And) and not value:
                    return value
                if isinstance(node.op, ast.Or) and value:
                    return value
            return value
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.visit(right_node)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Subscript):
            return self.visit(node.value)[self.visit(node.slice)]
        if isinstance(node, ast.Slice):
            parts = (node.lower, node.upper, node.step)
            return slice(*(None if p is None else self.visit(p) for p in parts))
        if isinstance(node, ast.Attribute):
            return getattr(self.visit(node.value), node.attr)
        if isinstance(node, ast.Call):
            return self.visit(node.func)(*(self.visit(a) for a in node.args))
        if isinstance(node, ast.List):
            return [self.visit(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.visit(e) for e in node.elts)
        raise ExpressionError(f"{type(node).__name__} is not allowed in {self.text!r}")


def _too_big(base: Any, exponent: Any) -> bool:
    # Operands here may be anything a job returned: only real numbers can blow up.
    if not isinstance(exponent, (int, float)) or not isinstance(base, (int, float)):
        return False
    return pow_too_big(base, exponent)


def _short(values: Mapping[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in values.items())
    return text if len(text) <= 200 else text[:197] + "..."
