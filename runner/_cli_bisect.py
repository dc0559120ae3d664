"""What ``runner bisect`` prints when its search ends: the values it tested, the answer
with its interval (for ``--method probabilistic`` the estimate and its credible
interval), the jobs run, and what the answer can't say: the margin at the answer, a
threshold that may lie outside the range, verdicts that contradict each other.

Example:
    >>> from runner.searches.summary import InconsistentPair, SearchSummary, ValueOutcome
    >>> s = SearchSummary(kind="binary_search", search="B", base_dir="/r", status="done",
    ...     prop="w", range=(10, 100), precision=1, interval=(10, 11), rounds=2,
    ...     num_jobs=4, achieved=ValueOutcome(11, 0.5), outside_range="below",
    ...     inconsistencies=[InconsistentPair(32, 55)])
    >>> for line in bisect_end_lines(s):  # doctest: +ELLIPSIS
    ...     print(line)
    achieved: w=11  result 0.5
    failed: none
    interval: [10, 11] after 2 round(s), 4 job(s)
    outside range: every tested value succeeded, so the threshold may lie at or below w=10 (w=10 was not tested); widen the range, e.g. w=0:100, ...
    contradictions: 1 pair of verdicts no monotone rule gives, unresolved: w=32 succeeded but w=55 failed; ...
"""

from __future__ import annotations

import json
import math
from typing import Any

from runner._cli_common import safe_text, table
from runner._cli_results import first_failure_of, print_end
from runner.searches.summary import SearchSummary
from runner.sweep_text import format_value
from runner.threshold_words import threshold_warnings

__all__ = ["bisect_end_lines", "print_bisect_end"]

#: Contradicting pairs named one by one; past that, a count.
_PAIRS_SHOWN = 3
#: Characters of a value's results a table cell shows.
_RESULT_CHARS = 80


def print_bisect_end(
    console: Any, target: str, outcome: Any, summary: SearchSummary, base_dir: str
) -> None:
    """The table of tested values, the answer and what it can't say, where the results are."""
    prop = summary.prop or "value"
    console.print(_tested_table(target, prop, outcome.history, summary.method))
    for line in bisect_end_lines(summary, error=outcome.error):
        console.print(safe_text(line), markup=False, soft_wrap=True)
    console.print(f"results: {outcome.results_file}", markup=False, soft_wrap=True)
    print_end(console, f"runner bisect {prop}", base_dir, first_failure_of(summary))


def _tested_table(target: str, prop: str, history: list[dict[str, Any]], method: Any) -> Any:
    if method != "probabilistic":
        rows = [
            (
                p["value"],
                p["round"],
                {True: "success", False: "failure", None: "inconclusive"}[p["success"]],
                json.dumps(p["result"], default=repr),
            )
            for p in sorted(history, key=lambda p: p["value"])
        ]
        return table(f"{target}: {prop} tested", [prop, "round", "verdict", "result"], rows)
    # One row per value: a value tested in several rounds is one tally of jobs.
    by_value: dict[Any, list[dict[str, Any]]] = {}
    for p in history:
        by_value.setdefault(p["value"], []).append(p)
    tallies: list[tuple[Any, ...]] = []
    for value in sorted(by_value):
        entries = by_value[value]
        jobs = sum(len(p.get("jobs") or []) for p in entries)
        judged = sum(p.get("judged") or 0 for p in entries)
        successes = sum(p.get("successes") or 0 for p in entries)
        results = [r for p in entries for r in _as_list(p.get("result_json", p["result"]))]
        text = json.dumps(results, default=repr)
        if len(text) > _RESULT_CHARS:
            text = text[: _RESULT_CHARS - 3] + "..."
        tallies.append((value, len(entries), jobs, f"{successes}/{judged}", text))
    return table(
        f"{target}: {prop} tested (each job judged on its own)",
        [prop, "rounds", "jobs", "succeeded", "results"],
        tallies,
        right=("rounds", "jobs", "succeeded"),
    )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def bisect_end_lines(summary: SearchSummary, *, error: str | None = None) -> list[str]:
    """The answer, its interval (and estimate), the jobs run, the margin at the answer, a
    threshold that may lie outside the range, and the contradicting verdicts, a line each."""
    lines = []
    for label, entry in (("achieved", summary.achieved), ("failed", summary.failed)):
        lines.append(f"{label}: {_end_text(summary, entry)}")
    jobs = f"{summary.num_jobs} job(s)"
    rounds = f"{summary.rounds} round(s)"
    if summary.method == "probabilistic":
        lines.append(_estimate_line(summary, f"after {jobs} in {rounds}", error))
    else:
        interval = list(summary.interval) if summary.interval else None
        lines.append(f"interval: {interval} after {rounds}, {jobs}")
    lines += [line for line in threshold_warnings(summary) if line.startswith("margin")]
    if summary.outside_range in ("below", "above") and error is None:
        lines.append(_outside_line(summary, summary.outside_range))
    if summary.inconsistencies:
        lines.append(_contradictions_line(summary))
    if error:
        lines.append(f"error: {error}")
    return lines


def _end_text(summary: SearchSummary, entry: Any) -> str:
    """``w=42  result {...}``; for the probabilistic method the jobs that succeeded there,
    and the result only when it is one (the mean), not every job's."""
    if entry is None:
        return "none"
    prop = summary.prop or "value"
    text = f"{prop}={format_value(entry.value)}"
    if summary.method != "probabilistic":
        return f"{text}  result {json.dumps(entry.result, default=repr)}"
    at = [p for p in summary.points if p.value == entry.value]
    judged = sum(p.judged or 0 for p in at)
    text += f"  {sum(p.successes or 0 for p in at)}/{judged} job(s) succeeded"
    if isinstance(entry.result, (dict, int, float)) and not isinstance(entry.result, bool):
        text += f", mean result {json.dumps(entry.result, default=repr)}"
    return text


def _estimate_line(summary: SearchSummary, spent: str, error: str | None) -> str:
    prop = summary.prop or "value"
    level = f"{summary.confidence:.0%}" if summary.confidence is not None else "credible"
    lo_end, hi_end = summary.range or (None, None)
    lo, hi = summary.interval or (None, None)
    shown = (
        f"[{'below ' + format_value(lo_end) if lo is None else format_value(lo)}, "
        f"{'above ' + format_value(hi_end) if hi is None else format_value(hi)}]"
    )
    if summary.estimate is None:
        side = summary.outside_range or "outside"
        end = lo_end if side == "below" else hi_end
        estimate = f"none inside the range (the threshold lies {side} {prop}={format_value(end)})"
    else:
        estimate = f"{prop}={format_value(summary.estimate)}"
    line = f"estimate: {estimate}, {level} interval {shown} {spent}"
    precision = summary.precision
    narrow = (
        lo is not None
        and hi is not None
        and isinstance(precision, (int, float))
        and abs(hi - lo) <= precision * (1 + 1e-9)
    )
    if not narrow and summary.outside_range is None and error is None:
        line += (
            f"; wider than --precision {format_value(precision)}: the jobs ran out before it "
            "narrowed (raise --max-jobs, or accept a coarser --precision)"
        )
    return line


def _outside_line(summary: SearchSummary, side: str) -> str:
    prop = summary.prop or "value"
    every = "succeeded" if summary.achieved is not None else "failed"
    lo, hi = summary.range or (None, None)
    end = lo if side == "below" else hi
    tested = any(p.value == end for p in summary.points)
    state = (
        f"{prop}={format_value(end)} {every} too"
        if tested
        else (f"{prop}={format_value(end)} was not tested")
    )
    ends = "" if tested or summary.method == "probabilistic" else ", or --test-range-ends yes"
    return (
        f"outside range: every tested value {every}, so the threshold may lie at or {side} "
        f"{prop}={format_value(end)} ({state}); widen the range{_wider(summary, side)}{ends}"
    )


def _wider(summary: SearchSummary, side: str) -> str:
    """``, e.g. w=0:100``: the range doubled beyond the end at fault (its sign kept)."""
    prop = summary.prop or "value"
    if summary.range is None:
        return ""
    lo, hi = summary.range
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (lo, hi)):
        return ""
    log = summary.scale == "log" and lo > 0
    if side == "below":
        new_lo = lo / (hi / lo) if log else lo - (hi - lo)
        if lo > 0 and new_lo < 0:  # a positive range stays positive: down to 0
            new_lo = 0
        lo = math.floor(new_lo) if isinstance(lo, int) and isinstance(hi, int) else new_lo
    else:
        new_hi = hi * (hi / lo) if log else hi + (hi - lo)
        hi = math.ceil(new_hi) if isinstance(lo, int) and isinstance(hi, int) else new_hi
    return f", e.g. {prop}={format_value(lo)}:{format_value(hi)}"


def _contradictions_line(summary: SearchSummary) -> str:
    prop = summary.prop or "value"
    pairs = summary.inconsistencies
    resolved = sum(p.resolved for p in pairs)
    count = f"{len(pairs)} pair{'s' if len(pairs) > 1 else ''} of verdicts no monotone rule gives"
    if resolved == len(pairs):
        state = "all resolved by re-testing" if len(pairs) > 1 else "resolved by re-testing"
    elif resolved:
        state = f"{resolved} resolved by re-testing, {len(pairs) - resolved} unresolved"
    else:
        state = "unresolved"
    named = "; ".join(
        f"{prop}={format_value(p.success)} succeeded but {prop}={format_value(p.failure)} failed"
        + ("" if p.resolved or resolved == 0 else " (unresolved)")
        for p in pairs[:_PAIRS_SHOWN]
    )
    more = f" (and {len(pairs) - _PAIRS_SHOWN} more)" if len(pairs) > _PAIRS_SHOWN else ""
    hint = ""
    if resolved < len(pairs) and summary.method != "probabilistic":
        hint = (
            "; the answer follows bisection's path (--repetitions below the number of "
            "--seeds re-tests such values; --method probabilistic weighs every job)"
        )
    return f"contradictions: {count}, {state}: {named}{more}{hint}"
