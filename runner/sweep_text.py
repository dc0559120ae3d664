"""How a sweep is put in words, the same in the live display, the plain lines and the CLI:
durations, sweep points, a failed job's headline, and the end-of-sweep message.

Example:
    >>> format_duration(75), point_label({"lr": 0.001, "seed": 1})
    ('1m15s', 'lr=0.001 seed=1')
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any

__all__ = [
    "Failure",
    "end_message",
    "error_headline",
    "format_duration",
    "format_value",
    "point_label",
]


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``"1m15s"``; ``None`` -> ``"?"``.

    Example:
        >>> format_duration(5.2), format_duration(75), format_duration(3 * 3600 + 60)
        ('5.2s', '1m15s', '3h01m')
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_value(value: Any) -> str:
    """A swept value as tables print it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def point_label(point: Any) -> str:
    """``lr=0.001 seed=1``: a sweep point as the tables print it (and ``runner logs`` takes)."""
    if isinstance(point, dict) and point:
        return " ".join(f"{k}={format_value(v)}" for k, v in point.items())
    return ""


def error_headline(error: str | None) -> str:
    """The line of a job's error text that says what went wrong.

    A traceback's last line (the exception); for a crash, a timeout or an exit
    without result, the sentence before the quoted log lines.

    Example:
        >>> error_headline("Traceback (most recent call last):\\n  ...\\nValueError: lr < 0\\n")
        'ValueError: lr < 0'
        >>> error_headline("The job's process was killed by SIGKILL (9). Last lines of x.log:\\nepoch 3")
        "The job's process was killed by SIGKILL (9)."
    """
    if not error:
        return ""
    head, sep, _ = error.partition(" Last lines of ")
    if sep:
        return head.strip()
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _shell_path(path: str) -> str:
    """``path`` relative to the working folder when it is inside it, quoted for a shell."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        rel = path
    return shlex.quote(path if rel.startswith("..") else rel)


@dataclasses.dataclass(frozen=True)
class Failure:
    """A failed job, as the end message names it: its point, its error text, its log."""

    point: dict[str, Any] | None
    error: str | None
    log: str | None

    @classmethod
    def of(cls, result: Any) -> Failure:
        """From a ``GPUJobResult``."""
        point = getattr(getattr(result, "job", None), "point", None)
        return cls(point if isinstance(point, dict) else None, result.error, result.out_file)


def end_message(label: str, base_dir: str, first_failure: Failure | None = None) -> list[str]:
    """What to say when a search ends: where its results are, how to look at them, and
    its first failed job's error and log. (How many jobs ran and failed, the final
    table or line above it says.)

    Example:
        >>> for line in end_message("grid lr", "/runs/lr",
        ...         Failure({"lr": 0.1}, "ValueError: boom", "/runs/lr/a.log")):
        ...     print(line)
        grid lr: results in /runs/lr
          runner status /runs/lr   (a table per search; a grid's mean +- std per point)
          runner plot /runs/lr     (PNG plots)
          first failure: lr=0.1: ValueError: boom
            log: /runs/lr/a.log
    """
    where = _shell_path(base_dir)
    lines = [
        f"{label}: results in {where}",
        f"  runner status {where}   (a table per search; a grid's mean +- std per point)",
        f"  runner plot {where}     (PNG plots)",
    ]
    if first_failure is not None:
        point = point_label(first_failure.point)
        headline = error_headline(first_failure.error) or "no error text"
        lines.append(f"  first failure: {point + ': ' if point else ''}{headline}")
        if first_failure.log:
            lines.append(f"    log: {_shell_path(first_failure.log)}")
    return lines
