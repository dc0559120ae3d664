"""A readable, plain-text ``repr`` for configs: one line when short, indented when nested.

Never coloured: a repr lands in log files, job folders and test output, where escape
codes are noise.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from configs._core import is_config

__all__ = ["config_repr"]

_WIDTH = 88
_INDENT = "    "
_active = threading.local()


def config_repr(config: Any) -> str:
    """The repr of a config, e.g. ``Train(lr=0.1, optimizer=Adam(beta=0.9))``."""
    return _format(config, 0)


def _format(value: Any, level: int) -> str:
    if is_config(value):
        return _format_config(value, level)
    if isinstance(value, (list, tuple, dict)) and _holds_config(value):
        return _format_container(value, level)
    return repr(value)


def _holds_config(container: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> bool:
    items = container.values() if isinstance(container, dict) else container
    return any(
        is_config(v) or isinstance(v, (list, tuple, dict)) and _holds_config(v) for v in items
    )


def _format_config(config: Any, level: int) -> str:
    seen: set[int] = getattr(_active, "seen", None) or set()
    _active.seen = seen
    name = type(config).__name__
    if id(config) in seen:  # a cycle: do not recurse for ever
        return f"{name}(...)"
    seen.add(id(config))
    try:
        parts = [
            f"{f.name}={_format(getattr(config, f.name), level + 1)}"
            for f in dataclasses.fields(config)
            if f.repr
        ]
    finally:
        seen.discard(id(config))
    return _layout(f"{name}(", parts, ")", level)


def _format_container(value: list[Any] | tuple[Any, ...] | dict[Any, Any], level: int) -> str:
    if isinstance(value, dict):
        parts = [f"{k!r}: {_format(v, level + 1)}" for k, v in value.items()]
        return _layout("{", parts, "}", level)
    parts = [_format(v, level + 1) for v in value]
    if isinstance(value, tuple):
        return _layout("(", parts, ",)" if len(parts) == 1 else ")", level)
    return _layout("[", parts, "]", level)


def _layout(opening: str, parts: list[str], closing: str, level: int) -> str:
    one_line = f"{opening}{', '.join(parts)}{closing}"
    if "\n" not in one_line and len(_INDENT * level) + len(one_line) <= _WIDTH:
        return one_line
    inner = _INDENT * (level + 1)
    body = "".join(f"{inner}{part},\n" for part in parts)
    return f"{opening}\n{body}{_INDENT * level}{closing.lstrip(',')}"
