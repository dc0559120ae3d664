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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.searches.summary import SearchSummary

__all__ = [
    "Failure",
    "end_message",
    "error_headline",
    "format_duration",
    "format_value",
    "point_label",
    "threshold_answer",
    "threshold_warnings",
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


def _pair(values: Any) -> str:
    return "(" + ", ".join(format_value(v) for v in values) + ")" if values else "none"


def threshold_answer(summary: SearchSummary) -> str:
    """A threshold search's answer in one line: its interval, and for the probabilistic
    method the estimate and the credible interval's probability.

    Example:
        >>> from runner.searches.summary import SearchSummary, ValueOutcome
        >>> s = SearchSummary(kind="binary_search", search="B", base_dir="/r", status="done",
        ...     interval=(41, 42), achieved=ValueOutcome(42), failed=ValueOutcome(41))
        >>> threshold_answer(s)
        'achieved 42, failed 41, interval (41, 42)'
        >>> s.method, s.estimate, s.confidence = "probabilistic", 40, 0.95
        >>> threshold_answer(s)
        'estimate 40, 95% interval (41, 42); achieved 42, failed 41'
    """
    achieved = "none" if summary.achieved is None else format_value(summary.achieved.value)
    failed = "none" if summary.failed is None else format_value(summary.failed.value)
    ends = f"achieved {achieved}, failed {failed}"
    if summary.method == "probabilistic" and summary.estimate is not None:
        level = f"{summary.confidence:.0%} " if summary.confidence is not None else ""
        return (
            f"estimate {format_value(summary.estimate)}, {level}interval "
            f"{_pair(summary.interval)}; {ends}"
        )
    if summary.achieved is None and summary.failed is None:
        return f"interval {_pair(summary.interval)}"
    return f"{ends}, interval {_pair(summary.interval)}"


def threshold_warnings(summary: SearchSummary, *, short: bool = False) -> list[str]:
    """What a threshold search's answer can't say: the threshold may lie beyond the
    range, contradicting verdicts, and the margin at the answer.

    ``short`` gives the counts a status row has room for.

    Example:
        >>> from runner.searches.summary import InconsistentPair, SearchSummary
        >>> s = SearchSummary(kind="binary_search", search="B", base_dir="/r", status="done",
        ...     prop="w", range=(10, 100), outside_range="below",
        ...     inconsistencies=[InconsistentPair(32, 55, resolved=True)])
        >>> threshold_warnings(s, short=True)
        ['threshold may lie below 10', '1 inconsistent pair (resolved)']
        >>> threshold_warnings(s)[1]
        'inconsistent: w=32 succeeded but w=55 failed (resolved by re-testing)'
    """
    prop = summary.prop or "value"
    lines = []
    # While the search runs, "every value tested so far succeeded" is no news: said at its end.
    if summary.outside_range in ("below", "above") and summary.status != "running":
        ends = list(summary.range or ())
        end = ends[0 if summary.outside_range == "below" else -1] if ends else None
        where = f"{summary.outside_range} {format_value(end)}" if end is not None else ""
        every = "succeeded" if summary.outside_range == "below" else "failed"
        if short:
            lines.append(f"threshold may lie {where or summary.outside_range}")
        else:
            lines.append(
                f"outside range: every tested value {every}; the threshold may lie {where} "
                "(widen the range)"
            )
    pairs = summary.inconsistencies
    if pairs:
        open_ = sum(not p.resolved for p in pairs)
        if short:
            state = f"{open_} unresolved" if open_ else "resolved"
            lines.append(f"{len(pairs)} inconsistent pair{'s' if len(pairs) > 1 else ''} ({state})")
        else:
            for p in pairs:
                state = "resolved by re-testing" if p.resolved else "unresolved"
                lines.append(
                    f"inconsistent: {prop}={format_value(p.success)} succeeded but "
                    f"{prop}={format_value(p.failure)} failed ({state})"
                )
    margin = summary.margin
    if margin is not None and (margin.achieved is not None or margin.failed is not None):
        at = f" at {prop}={format_value(summary.achieved.value)}" if summary.achieved else ""
        near = f" at {prop}={format_value(summary.failed.value)}" if summary.failed else ""
        lines.append(
            f"margin to the target: {_signed(margin.achieved)}{at}, {_signed(margin.failed)}{near}"
            if not short
            else f"margin {_signed(margin.achieved)} / {_signed(margin.failed)}"
        )
    return lines


def _signed(value: float | None) -> str:
    return "?" if value is None else f"{value:+.3g}"
