"""The ``--help`` text of a config: usage, then every field with type, default and description."""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from typing import Any

from configs._core import REQUIRED, is_config
from configs._docs import field_docs
from configs._hints import field_hints
from configs._types import describe, short_repr

__all__ = ["USAGE", "help_text", "prog_name"]

USAGE = "usage: {prog} [--help] [--show] [--eval] [--config FILE] [key=value ...]"


def prog_name() -> str:
    """The script's name as the shell ran it, for usage lines and error messages."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"


def help_text(cls: type, *, prog: str | None = None) -> str:
    """The ``--help`` text: usage, then every field (nested ones dotted) with type, default, description."""
    prog = prog or prog_name()
    lines = [USAGE.format(prog=prog), ""]
    doc = inspect.getdoc(cls)
    if doc and not doc.startswith(f"{cls.__name__}("):  # not dataclass's generated signature
        lines += [doc.splitlines()[0], ""]
    lines.append(f"fields of {cls.__name__} (set with key=value, nested.key=value):")
    try:
        example = cls()
    except Exception:  # wrong defaults: show the fields anyway, without values
        example = None
    rows = _help_rows(cls, example, "", set())
    width = min(max((len(left) for left, _ in rows), default=0), 48)
    for left, description in rows:
        if not description:
            lines.append(f"  {left}")
        elif len(left) <= width:
            lines.append(f"  {left.ljust(width)}  {description}")
        else:
            lines.append(f"  {left}\n  {' ' * width}  {description}")
    lines += [
        "",
        "options:",
        "  --config FILE   load a YAML/JSON config first; key=value overrides apply on top",
        "  --show          print the final config as YAML instead of running",
        "  --eval          values are Python expressions: math.sqrt(2), np.pi, lr*2 with lr",
        "                  a field (trusted input only; arithmetic such as 2**8 needs no flag)",
        "  --help, -h      show this message and exit",
    ]
    return "\n".join(lines)


def _help_rows(cls: type, config: Any, prefix: str, seen: set[int]) -> list[tuple[str, str]]:
    hints = field_hints(cls)
    docs = field_docs(cls)
    rows: list[tuple[str, str]] = []
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        type_name = describe(hints.get(f.name, Any))
        description = docs.get(f.name, "")
        if config is None:
            rows.append((f"{name}: {type_name}", description))
            continue
        value = getattr(config, f.name)
        if is_config(value) and id(value) not in seen:
            rows.append((f"{name}: {type(value).__name__}", description))
            rows += _help_rows(type(value), value, f"{name}.", seen | {id(value)})
            continue
        default = "REQUIRED" if value is REQUIRED else short_repr(value)
        rows.append((f"{name}: {type_name} = {default}", description))
    return rows
