"""How the text of an override becomes a value, in three levels of trust.

1. Always: a Python literal (``ast.literal_eval``: ``1e-3``, ``[64, 128]``, ``None``).
2. Overrides by default: arithmetic on number literals (``2**8``, ``1e-3*4``), computed
   by walking the syntax tree (:mod:`configs._safe_eval`); nothing runs.
3. Only with ``--eval`` (trusted input): a Python expression, evaluated with ``eval``
   beside ``math``, ``np``/``numpy`` and ``torch`` (when installed) and the config's
   own fields, as pydrafig does.

Text that is none of these is kept as it is (``name=foo``), and the field's type then
decides whether that text is acceptable.
"""

from __future__ import annotations

import ast
import importlib
import math
from collections.abc import Mapping
from typing import Any

from configs._safe_eval import eval_arithmetic
from configs.errors import InvalidConfigurationError

__all__ = ["eval_namespace", "parse_value", "read_value"]

# Modules an --eval expression may name without importing them; imported only when named,
# so that `--eval lr=2**-8` does not pay for importing torch.
_OPTIONAL_MODULES = {"np": "numpy", "numpy": "numpy", "torch": "torch"}
_NEEDS_EVAL = (ast.Name, ast.Call, ast.Attribute, ast.Subscript)


def parse_value(
    text: str,
    *,
    arithmetic: bool = False,
    allow_eval: bool = False,
    names: Mapping[str, Any] | None = None,
) -> Any:
    """The Python value of command-line text: a literal if it is one, else the text itself.

    Args:
        text: The text after ``key=``.
        arithmetic: Also compute arithmetic on number literals (``2**8``); safe.
        allow_eval: Also evaluate a Python expression (``math.sqrt(2)``) with ``eval``,
            arithmetic included; trusted input only.
        names: The names such an expression sees (default: :func:`eval_namespace`).

    Raises:
        InvalidConfigurationError: with ``allow_eval``, the expression raised an
            exception other than ``NameError`` (a bare word stays text).

    Example:
        >>> parse_value("1e-3"), parse_value("[64,128]"), parse_value("foo"), parse_value("2**8")
        (0.001, [64, 128], 'foo', '2**8')
        >>> parse_value("2**8", arithmetic=True), parse_value("math.floor(2.5)", allow_eval=True)
        (256, 2)
    """
    return read_value(text, arithmetic=arithmetic, allow_eval=allow_eval, names=names)[0]


def read_value(
    text: str,
    *,
    arithmetic: bool = False,
    allow_eval: bool = False,
    names: Mapping[str, Any] | None = None,
) -> tuple[Any, str]:
    """:func:`parse_value`, plus why the text was kept as text ("" when it was not)."""
    try:
        return ast.literal_eval(text), ""
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    why = ""
    if arithmetic or allow_eval:
        try:
            return eval_arithmetic(text), ""
        except ValueError as exc:
            why = str(exc) if _is_arithmetic(text) else ""
    if allow_eval:
        return _eval_python(text, names)
    if not why and _needs_eval(text):
        why = "names, calls and attribute access are evaluated only with --eval, for trusted input"
    return text, why


def _is_arithmetic(text: str) -> bool:
    """Whether ``text`` parses as an expression without names, calls or attributes."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return False
    return not any(isinstance(node, _NEEDS_EVAL) for node in ast.walk(tree))


def _needs_eval(text: str) -> bool:
    """Whether ``text`` is an expression that only ``--eval`` computes (not a bare word)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return False
    if isinstance(tree.body, ast.Name):
        return False  # opt=adam: a word, not an expression
    return any(isinstance(node, _NEEDS_EVAL) for node in ast.walk(tree))


def eval_namespace(config: Any = None) -> dict[str, Any]:
    """The names an ``--eval`` expression sees: ``math``, ``config`` and the config's fields.

    ``np``/``numpy`` and ``torch`` are added by the evaluation itself, when named.
    """
    import dataclasses

    names: dict[str, Any] = {"math": math}
    if config is not None:
        names["config"] = config
        names.update({f.name: getattr(config, f.name) for f in dataclasses.fields(config)})
    return names


def _eval_python(text: str, names: Mapping[str, Any] | None) -> tuple[Any, str]:
    source = text.strip()
    try:
        code = compile(source, "<--eval>", "eval")
    except SyntaxError:
        return text, ""  # not an expression: a bare string such as path=/tmp/x
    scope = dict(eval_namespace() if names is None else names)
    for name in code.co_names:
        module = _OPTIONAL_MODULES.get(name)
        if module is not None and name not in scope:
            try:
                scope[name] = importlib.import_module(module)
            except ImportError:
                pass  # then the name is undefined, as it would be in pydrafig
    try:
        # --eval is the user's explicit opt-in for trusted input: this runs their code.
        return eval(code, scope), ""  # noqa: S307
    except NameError as exc:
        return text, f"--eval: {exc}"  # a bare word (opt=adam) stays text
    except Exception as exc:
        raise InvalidConfigurationError(
            f"--eval of {text!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
