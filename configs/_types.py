"""Checking a value against an annotation, and coercing loaded or typed-in values to it.

Only what is cheap and certain is checked: builtin scalars, ``X | None``, ``Literal``,
``list``/``dict``/``tuple``/``set`` (with their element types), enums and nested
pydraclasses. Anything else (``Callable``, arbitrary classes, unresolved forward
references) passes unchecked: a false alarm would be worse than no check.
"""

from __future__ import annotations

import enum
import numbers
import pathlib
import reprlib
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

from configs._core import REQUIRED, is_config_class, lookup_class
from configs._hints import UNCHECKED

__all__ = [
    "TYPE_KEY",
    "CoercionError",
    "coerce",
    "describe",
    "is_union",
    "matches",
    "short_repr",
    "strip_annotation",
]

#: The key under which a saved nested config names its class, when the annotation does not.
TYPE_KEY = "_type"

_NoneType = type(None)
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def short_repr(value: Any) -> str:
    """A ``repr`` cut to a readable length, for error messages."""
    return _short.repr(value)


def is_union(tp: Any) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def strip_annotation(tp: Any) -> Any:
    """Annotated[X, ...] -> X and NewType -> its supertype: their checks are X's."""
    while True:
        if get_origin(tp) is typing.Annotated:
            tp = get_args(tp)[0]
        elif hasattr(tp, "__supertype__"):
            tp = tp.__supertype__
        else:
            return tp


def describe(tp: Any) -> str:
    """A short, readable name for an annotation.

    Example:
        >>> describe(int | None), describe(dict[str, list[int]]), describe(Literal["adam", "sgd"])
        ('int | None', 'dict[str, list[int]]', "Literal['adam', 'sgd']")
    """
    tp = strip_annotation(tp)
    if tp is UNCHECKED or tp is Any:
        return "Any"
    if tp is _NoneType or tp is None:
        return "None"
    if isinstance(tp, str):
        return tp
    if isinstance(tp, typing.ForwardRef):
        return tp.__forward_arg__
    if is_union(tp):
        return " | ".join(describe(arg) for arg in get_args(tp))
    origin = get_origin(tp)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in get_args(tp))}]"
    if origin is not None:
        args = get_args(tp)
        name = getattr(origin, "__name__", str(origin))
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{describe(args[0])}, ...]"
        if not args:
            return name
        return f"{name}[{', '.join(describe(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _is_int(value: Any) -> bool:
    # bool is an int to Python, never to a config: `epochs=True` is a mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp``; annotations that cannot be checked say yes.

    Example:
        >>> matches(3, float), matches(True, int), matches([1, "a"], list[int])
        (True, False, False)
    """
    if value is REQUIRED:
        return True
    tp = strip_annotation(tp)
    if tp is UNCHECKED or tp is Any or tp is object:
        return True
    if tp is None or tp is _NoneType:
        return value is None
    if is_union(tp):
        return any(matches(value, arg) for arg in get_args(tp))
    origin = get_origin(tp)
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in get_args(tp))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _is_int(value)
    if tp is float:
        return _is_real(value)
    if tp is complex:
        return isinstance(value, numbers.Complex) and not isinstance(value, bool)
    if tp in (str, bytes):
        return isinstance(value, tp)
    if isinstance(tp, type) and (is_config_class(tp) or issubclass(tp, enum.Enum)):
        return isinstance(value, tp)
    if tp in (list, dict, tuple, set, frozenset):
        return isinstance(value, tp)
    if origin in (list, set, frozenset):
        if not isinstance(value, origin):
            return False
        (item_tp,) = get_args(tp) or (Any,)
        return all(matches(item, item_tp) for item in value)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(matches(item, args[0]) for item in value)
        if args == ((),):  # tuple[()]: the empty tuple
            return value == ()
        return len(value) == len(args) and all(map(matches, value, args))
    if origin is dict:
        if not isinstance(value, dict):
            return False
        key_tp, value_tp = get_args(tp) or (Any, Any)
        return all(matches(k, key_tp) and matches(v, value_tp) for k, v in value.items())
    # Callable, TypeVar, custom and abstract classes, ForwardRef: not certain, not checked.
    return True


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~"}


class CoercionError(ValueError):
    """A value that cannot be turned into the annotated type (internal; re-raised with context)."""


def coerce(value: Any, tp: Any, *, raw: str | None = None) -> Any:
    """Turn a loaded or typed-in value into the annotated type, or raise :class:`CoercionError`.

    ``raw`` is the text the value was parsed from on the command line, used for
    ``str`` fields so that ``name=007`` or ``tag=1e3`` stay exactly as typed.

    Example:
        >>> coerce([10, 100], tuple[int, int]), coerce("true", bool), coerce(1e3, int)
        ((10, 100), True, 1000)
    """
    tp = strip_annotation(tp)
    if value is REQUIRED:
        return value
    if tp is UNCHECKED or tp is Any or tp is object:
        # A saved config under an `Any` field names its class; everything else stays as it is.
        if isinstance(value, dict) and TYPE_KEY in value:
            return _to_config(value, None)
        if isinstance(value, list):
            return [coerce(item, Any) for item in value]
        if isinstance(value, dict):
            return {k: coerce(v, Any) for k, v in value.items()}
        return value
    if is_union(tp):
        return _coerce_union(value, tp, raw)
    if tp is None or tp is _NoneType:
        if value is None or (isinstance(value, str) and value.lower() in _NONE):
            return None
        raise CoercionError
    origin = get_origin(tp)
    if origin is Literal:
        for arg in get_args(tp):
            if type(value) is type(arg) and value == arg:
                return arg
        for arg in get_args(tp):  # `opt=adam` typed bare, or an enum literal given by name
            text = raw if raw is not None else value
            if isinstance(text, str) and text == str(arg):
                return arg
        raise CoercionError
    if tp is bool:
        return _to_bool(value)
    if tp is int:
        return _to_int(value)
    if tp is float:
        if _is_real(value):
            return float(value) if isinstance(value, int) else value
        if isinstance(value, str):
            # PyYAML reads `lr: 1e-3` as a string (YAML 1.1 wants a dot); "inf" and "nan" too.
            try:
                return float(value)
            except ValueError:
                raise CoercionError from None
        raise CoercionError
    if tp is str:
        if isinstance(value, str):
            return value
        if raw is not None:
            return raw
        raise CoercionError
    if isinstance(tp, type) and is_config_class(tp):
        return _to_config(value, tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _to_enum(value, tp)
    if _is_path_class(tp) and isinstance(value, str):
        return tp(value)
    container = tp if tp in (list, tuple, dict, set, frozenset) else origin
    if container in (list, set, frozenset):
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise CoercionError
        (item_tp,) = get_args(tp) or (Any,)
        return container(coerce(item, item_tp) for item in value)
    if container is tuple:
        if not isinstance(value, (list, tuple)):
            raise CoercionError
        args = get_args(tp)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(item, args[0]) for item in value)
        if args == ((),):
            args = ()
        if len(value) != len(args):
            raise CoercionError
        return tuple(coerce(item, item_tp) for item, item_tp in zip(value, args, strict=True))
    if container is dict:
        if not isinstance(value, dict):
            raise CoercionError
        key_tp, value_tp = get_args(tp) or (Any, Any)
        return {coerce(k, key_tp): coerce(v, value_tp) for k, v in value.items()}
    if isinstance(value, dict) and TYPE_KEY in value:
        return _to_config(value, None)
    return value


def _coerce_union(value: Any, tp: Any, raw: str | None) -> Any:
    args = get_args(tp)
    paths = [a for a in args if _is_path_class(a)]
    if paths and isinstance(value, str) and str not in args:
        if value.lower() in _NONE and _NoneType in args:
            return None
        # A path saved as text (YAML, JSON, the command line) is a path again.
        return paths[0](value)
    if any(matches(value, arg) for arg in args) and not (
        isinstance(value, dict) and any(is_config_class(a) for a in args)
    ):
        # Already fits one member: keep it (coercion is for loaded or typed-in text).
        return value
    if isinstance(value, str) and value.lower() in _NONE and _NoneType in args and str not in args:
        return None
    for arg in args:
        try:
            return coerce(value, arg, raw=raw)
        except CoercionError:
            continue
    raise CoercionError


def _is_path_class(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pathlib.PurePath)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    if _is_int(value) and value in (0, 1):
        return bool(value)
    raise CoercionError


def _to_int(value: Any) -> int:
    if _is_int(value):
        return int(value)
    # 1e6 on a command line is a float; an integral float is what the user meant.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise CoercionError


def _to_enum(value: Any, tp: type[enum.Enum]) -> enum.Enum:
    if isinstance(value, tp):
        return value
    if isinstance(value, str) and value in tp.__members__:
        return tp[value]
    try:
        return tp(value)
    except ValueError:
        raise CoercionError from None


def _to_config(value: Any, tp: type | None) -> Any:
    if tp is not None and isinstance(value, tp):
        return value
    if not isinstance(value, dict):
        raise CoercionError
    data = dict(value)
    target: Any = tp
    tag = data.pop(TYPE_KEY, None)
    if tag is not None:
        named = lookup_class(str(tag))
        if named is None:
            raise CoercionError(
                f"the saved config names class {tag!r}, which is not defined in this process "
                "(import the module that defines it first)"
            )
        if tp is not None and not issubclass(named, tp):
            raise CoercionError(f"class {tag!r} is not a subclass of {tp.__name__}")
        target = named
    if target is None:
        raise CoercionError
    from_dict: Callable[[dict[str, Any]], Any] = target.from_dict
    return from_dict(data)
