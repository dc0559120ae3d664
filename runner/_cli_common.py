"""What the ``runner`` command's modules share: the usage error and the table printing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["UsageError", "console", "duration", "print_json", "rel", "safe_text", "table"]


class UsageError(Exception):
    """A bad argument found after parsing: exit 2 with the message, no traceback."""


def console(file: IO[str] | None = None) -> Any:
    """A rich console on ``file`` (stdout); 160 columns when it is a pipe or a log file."""
    from rich.console import Console

    stream = file if file is not None else sys.stdout
    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = 160  # a log file or a pipe: wide rows beat wrapped ones
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, emoji=False)


def safe_text(text: str) -> str:
    r"""``text`` with control and format characters escaped (``\x1b``, ``\u202e``).

    Folder names, ``job.json`` and ``summary.json`` are anyone's text: printed raw, an
    escape sequence in them could retitle the window, clear the screen or hide a line.

    Example:
        >>> print(safe_text("seed=1\x1b]0;owned\x07 ok"))
        seed=1\x1b]0;owned\x07 ok
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: Sequence[str] = (),
) -> Any:
    """A rich table of plain text cells (``right``: the columns aligned right)."""
    from rich.table import Table
    from rich.text import Text

    shown = Table(title=Text(safe_text(title)) if title else None, title_justify="left")
    for column in columns:
        shown.add_column(column, overflow="fold", justify="right" if column in right else "left")
    for row in rows:
        # Text, not markup: a folder called [red] must print as written; and escaped: a
        # folder or a job.json may hold terminal escape sequences.
        shown.add_row(*(Text(safe_text("" if cell is None else str(cell))) for cell in row))
    return shown


def duration(seconds: float | None) -> str:
    from runner.sweep_text import format_duration

    return "" if seconds is None else format_duration(seconds)


def rel(path: str, root: str) -> str:
    """``path`` relative to ``root`` when it lies inside it."""
    try:
        relative = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def print_json(data: Any) -> None:
    """``data`` as JSON on stdout: indented on a terminal, compact for a program (a pipe or
    a file), where indenting a 100,000-job status would take seconds of pure Python."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, default=repr) + "\n")
