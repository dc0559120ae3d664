"""Applying ``key=value`` overrides to a config, at any depth, with typed values.

The engine under the command line: ``apply_overrides`` finds the field a dotted key
names (nested configs, list items, dict entries), reads the value text (see
``_values``: literals and arithmetic, Python only with ``allow_eval``), coerces it to
the annotation and assigns it, so every override gets the config's own type check.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from configs._core import is_config, is_config_class
from configs._hints import field_hints
from configs._serialize import item_type
from configs._types import CoercionError, coerce, describe, is_union, short_repr, strip_annotation
from configs._values import eval_namespace, parse_value, read_value
from configs.errors import InvalidConfigurationError, OverrideSyntaxError, unknown_name_message

__all__ = ["apply_overrides"]

C = TypeVar("C")


def apply_overrides(
    config: C, overrides: Sequence[str], *, allow_eval: bool = False, finalize: bool = False
) -> C:
    """Apply ``key=value`` overrides to ``config`` in order, and return it.

    Args:
        config: A pydraclass instance; it is changed in place.
        overrides: Tokens such as ``"lr=1e-3"``, ``"optimizer.name=sgd"``, ``"layers.0=32"``.
        allow_eval: Values are Python expressions (``"lr=math.sqrt(2)"``, ``"y=x*2"``
            with ``x`` a field), as pydrafig reads them; trusted input only. Without
            it, values are literals or arithmetic on them (``"batch=2**8"``).
        finalize: Call ``config.finalize()`` after the overrides (pydrafig does by default).

    Returns:
        The same ``config``.

    Raises:
        InvalidConfigurationError: an unknown key (with "did you mean") or a bad value.
        OverrideSyntaxError: a token that is not ``key=value`` (also a ``SyntaxError``).

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class Train:
        ...     lr: float = 0.1
        ...     layers: list[int] = [64, 64]
        >>> apply_overrides(Train(), ["lr=1e-3", "layers.1=128"])
        Train(lr=0.001, layers=[64, 128])
    """
    if not is_config(config):
        raise TypeError(f"apply_overrides() takes a pydraclass instance, got {config!r}")
    if isinstance(overrides, str):
        raise TypeError(
            f"apply_overrides() takes a list of overrides, got the string {overrides!r}"
        )
    for token in overrides:
        key, sep, text = token.partition("=")
        if token.startswith("-"):
            raise OverrideSyntaxError(
                f"expected key=value, got the option {token!r}: options such as --show and "
                "--eval belong to the entry point (app([...]) or the command line); here "
                "pass allow_eval=True for --eval"
            )
        if not sep or not key.strip():
            raise OverrideSyntaxError(f"expected key=value, got {token!r}")
        if key != key.rstrip():  # "x = 10", pydrafig's statement style: the spaces are layout
            text = text.lstrip()
        parts = key.strip().split(".")
        reader = _Reader(allow_eval, config)
        _assign(config, Any, parts, text, reader, [])
    if finalize:
        typing.cast(Any, config).finalize()
    return config


class _Reader:
    """Reads the value text of one override: literal, arithmetic, or (``--eval``) Python."""

    def __init__(self, allow_eval: bool, root: Any) -> None:
        self.allow_eval = allow_eval
        # --eval expressions see the fields as they are now, after the overrides before.
        self.names = eval_namespace(root) if allow_eval else None

    def read(self, text: str, here: str) -> tuple[Any, str]:
        try:
            return read_value(text, arithmetic=True, allow_eval=self.allow_eval, names=self.names)
        except InvalidConfigurationError as exc:
            raise InvalidConfigurationError(f"{here}: {exc}") from exc


def _assign(
    target: Any, tp: Any, parts: list[str], text: str, reader: _Reader, done: list[str]
) -> Any:
    """Set the value at ``parts`` under ``target``; return ``target`` or its changed copy.

    Lists, tuples and dicts are copied, never changed in place, so that the config that
    holds them sees an assignment: its type check and its "changed since finalize" run.
    """
    head, rest = parts[0], parts[1:]
    here = ".".join([*done, head])
    if is_config(target):
        cls = type(target)
        if head not in cls.__pydra_fields__:
            raise InvalidConfigurationError(_unknown_key(target, head, done))
        hint = field_hints(cls).get(head, Any)
        if rest:
            child = getattr(target, head)
            if child is None:
                child = _empty_config_for(hint, here)
            value = _assign(child, hint, rest, text, reader, [*done, head])
        else:
            value = _convert(text, hint, reader, here)
        setattr(target, head, value)
        return target
    if isinstance(target, (list, tuple)):
        index = _index(head, len(target), here, type(target).__name__)
        element_tp = item_type(tp, index)
        value = (
            _assign(target[index], element_tp, rest, text, reader, [*done, head])
            if rest
            else _convert(text, element_tp, reader, here)
        )
        items = list(target)
        items[index] = value
        return items if isinstance(target, list) else tuple(items)
    if isinstance(target, dict):
        key: Any = head
        if head not in target:
            parsed = parse_value(head)
            if parsed in target:
                key = parsed
        updated = dict(target)
        if rest:
            if key not in updated:
                owner = f"the dict at {'.'.join(done)}"
                raise InvalidConfigurationError(
                    unknown_name_message(owner, head, map(str, target), kind="key")
                )
            updated[key] = _assign(
                target[key], item_type(tp, 0), rest, text, reader, here.split(".")
            )
        else:
            updated[key] = _convert(text, item_type(tp, 0), reader, here)
        return updated
    raise InvalidConfigurationError(
        f"cannot set {here}: {'.'.join(done)} is {short_repr(target)} "
        f"({type(target).__name__}), which has no parts to set"
    )


def _unknown_key(config: Any, head: str, done: list[str]) -> str:
    cls = type(config)
    owner = cls.__name__ if not done else f"{cls.__name__} (at {'.'.join(done)})"
    message = unknown_name_message(owner, head, cls.__pydra_fields__)
    if "did you mean" not in message:
        # `lr=...` for a field that lives one level down: point at its full name.
        deeper = [path for path in _dotted_names(config, "", set()) if path.endswith(f".{head}")]
        if deeper:
            prefix = f"{'.'.join(done)}." if done else ""
            options = " or ".join(repr(prefix + path) for path in deeper[:3])
            message = f"{owner} has no field {head!r}; did you mean {options}?"
    return message


def _dotted_names(config: Any, prefix: str, seen: set[int]) -> list[str]:
    names: list[str] = []
    seen.add(id(config))
    for f in dataclasses.fields(config):
        names.append(prefix + f.name)
        value = getattr(config, f.name)
        if is_config(value) and id(value) not in seen:
            names += _dotted_names(value, f"{prefix}{f.name}.", seen)
    return names


def _index(text: str, length: int, here: str, kind: str) -> int:
    try:
        index = int(text)
    except ValueError:
        raise InvalidConfigurationError(
            f"cannot set {here}: {text!r} is not an index into a {kind} of length {length}"
        ) from None
    if not -length <= index < length:
        raise InvalidConfigurationError(
            f"cannot set {here}: index {index} is out of range for a {kind} of length {length}"
        )
    return index % length


def _empty_config_for(hint: Any, here: str) -> Any:
    """For ``sub.x=1`` when ``sub`` is None: a fresh config, if the annotation names one class."""
    hint = strip_annotation(hint)
    members = typing.get_args(hint) if is_union(hint) else (hint,)
    classes = [m for m in members if is_config_class(m)]
    if len(classes) != 1:
        raise InvalidConfigurationError(f"cannot set {here}: the field above it is None")
    return classes[0]()


def _convert(text: str, hint: Any, reader: _Reader, here: str) -> Any:
    value, kept_because = reader.read(text, here)
    try:
        return coerce(value, hint, raw=text)
    except CoercionError as exc:
        reasons = [reason for reason in (str(exc), kept_because) if reason]
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        raise InvalidConfigurationError(
            f"{here}: cannot use {text!r} as {describe(hint)}{detail}"
        ) from None
