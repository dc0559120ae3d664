"""``runner bisect``: its options checked against the method (``--confidence``,
``--max-jobs`` and ``--target-rate`` are the probabilistic method's; ``--repetitions``
and ``--test-range-ends`` bisection's), the search run, and what it prints when it
ends: the values it tested, the answer with its interval (for ``--method
probabilistic`` the estimate and its credible interval), the jobs run, and what the
answer can't say: the margin at the answer, a threshold that may lie outside the
range, verdicts that contradict each other.

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
    interval: (below 10, 11] after 2 round(s), 4 job(s)
    outside range: every tested value succeeded, so the threshold may lie at or below w=10 (w=10 was not tested); widen the range, e.g. w=0:100, ...
    contradictions: 1 pair of verdicts no monotone rule gives, unresolved: w=32 succeeded but w=55 failed; ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from runner._cli_common import UsageError, console, print_json, safe_text, table
from runner._cli_results import first_failure_of, print_end
from runner.searches.space import every_tested_value, wider_range
from runner.searches.summary import SearchSummary
from runner.sweep_text import format_value
from runner.threshold_words import noise_text, threshold_warnings

__all__ = ["bisect_end_lines", "print_bisect_end", "run_bisect"]

#: Contradicting pairs named one by one; past that, a count.
_PAIRS_SHOWN = 3
#: Characters of a value's results a table cell shows.
_RESULT_CHARS = 80


def _parse_seeds(text: str | None) -> list[Any]:
    from configs.cli import parse_value

    if not text:
        return []
    seeds = [parse_value(part.strip()) for part in text.split(",") if part.strip()]
    if not seeds:
        raise UsageError(f"--seeds {text!r} lists no seed; e.g. --seeds 42,43")
    return seeds


def run_bisect(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """``runner bisect``, its arguments parsed and its run options (``--gpus``...) checked:
    the search built and checked, run, and its end printed; the exit code."""
    from runner.binary_search import run_binary_searches
    from runner.quick_sweep import (
        DEFAULT_SEED_POOL,
        build_binary_search,
        default_base_dir,
        load_function,
    )

    if args.precision is not None and not args.precision > 0:
        raise UsageError(f"--precision {args.precision} must be > 0")
    parallel: int | str = args.parallel_points
    if parallel != "auto":
        try:
            parallel = int(parallel)
        except ValueError:
            raise UsageError(
                f"--parallel-points {parallel!r} must be 'auto' or a whole number"
            ) from None
    probabilistic = _probabilistic_options(args)
    bisection = _bisection_options(args)
    script = load_function(args.target)
    base_dir = args.base_dir or default_base_dir(script)
    precision = _precision(args.precision, script, args.overrides)
    search = build_binary_search(
        script,
        args.overrides,
        base_dir=base_dir,
        precision=precision,
        success=args.success,
        seeds=_parse_seeds(args.seeds),
        seed_key=args.seed_key,
        agg=args.agg,
        lower=args.direction == "lower",
        scale=args.scale,
        parallel_points=parallel,
        timeout=args.timeout,
        retries=args.retries,
        **probabilistic,
        **bisection,
    )
    _check_repetitions(args.repetitions, search.sweep_props)
    print(f"runner bisect: results in {os.path.abspath(base_dir)}", file=sys.stderr)
    if (
        probabilistic
        and not args.seeds
        and search.sweep_props.get(args.seed_key) == list(DEFAULT_SEED_POOL)
    ):
        print(
            f"runner bisect: no --seeds: {args.seed_key} {DEFAULT_SEED_POOL[0]}.."
            f"{DEFAULT_SEED_POOL[-1]} are the pool of repetitions (a value tested again "
            "takes the next one)",
            file=sys.stderr,
        )
    [outcome] = run_binary_searches([search], **options)
    summary = outcome.summary
    assert summary is not None  # every finished search carries the summary it wrote
    # Results held only in this process's memory are lost when it exits: a failure.
    code = 1 if outcome.error or not outcome.results_file else 0
    if args.json:
        print_json(summary.to_json())
        return code
    print_bisect_end(console(), args.target, outcome, summary, base_dir)
    return code


def _bisection_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--repetitions`` and ``--test-range-ends``: classic bisection's, refused otherwise."""
    given = [
        f"{flag} {value}"
        for flag, value in (
            ("--repetitions", args.repetitions),
            ("--test-range-ends", args.test_range_ends),
        )
        if value is not None
    ]
    if args.method == "probabilistic" and given:
        raise UsageError(
            f"{given[0]} applies to --method bisection only (the probabilistic method runs "
            f"one job at a time and its posterior covers the range's ends); drop "
            f"{given[0].split()[0]}"
        )
    if args.repetitions is not None and args.repetitions < 1:
        raise UsageError(f"--repetitions {args.repetitions} must be >= 1 (seeds per value)")
    options: dict[str, Any] = {}
    if args.repetitions is not None:
        options["repetitions"] = args.repetitions
    if args.test_range_ends is not None:
        options["test_range_ends"] = {"auto": "auto", "yes": True, "no": False}[
            args.test_range_ends
        ]
    return options


def _check_repetitions(repetitions: int | None, sweep: dict[str, list[Any]]) -> None:
    pool = math.prod(len(values) for values in sweep.values())
    if repetitions is not None and repetitions > pool:
        raise UsageError(
            f"--repetitions {repetitions} is more than the {pool} seed(s) (and swept "
            "combinations) to run at a value; give more --seeds, e.g. --seeds "
            f"{','.join(str(i) for i in range(repetitions + 2))}, or a smaller --repetitions"
        )


def _probabilistic_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--method probabilistic``'s options, checked; refused with the bisection method."""
    given = {
        flag: value
        for flag, value in (
            ("--confidence", args.confidence),
            ("--max-jobs", args.max_jobs),
            ("--target-rate", args.target_rate),
        )
        if value is not None
    }
    if args.method != "probabilistic":
        if given:
            flag = next(iter(given))
            raise UsageError(
                f"{flag} {given[flag]} applies to --method probabilistic only (the default, "
                f"bisection, judges each value by --agg over its seeds); add --method "
                f"probabilistic, or drop {flag}"
            )
        return {}
    for flag in ("--confidence", "--target-rate"):
        value = given.get(flag)
        if value is not None and not 0 < value < 1:
            example = "0.95" if flag == "--confidence" else "0.5"
            raise UsageError(
                f"{flag} {value} must lie strictly between 0 and 1, e.g. {flag} {example}"
            )
    if args.max_jobs is not None and args.max_jobs < 1:
        raise UsageError(f"--max-jobs {args.max_jobs} must be >= 1 (jobs the search may run)")
    # Options left out keep BinarySearchConfig's defaults.
    options = {flag[2:].replace("-", "_"): value for flag, value in given.items()}
    return {"method": "probabilistic", **options}


def _precision(given: float | None, script: Any, tokens: Sequence[str]) -> int | float:
    """``--precision``, or 1 when it is left out and the searched prop is an integer."""
    from runner.quick_sweep import parse_sweep_args

    if given is not None:
        return int(given) if float(given).is_integer() else given
    searched = parse_sweep_args(script.config_class, tokens, allow_range=True).searched
    if searched is None:
        return 1  # build_binary_search says what is missing
    key, lo, hi = searched
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)):
        return 1
    raise UsageError(
        f"{key}={lo}:{hi} is not a range of integers, so there is no natural precision; "
        "pass --precision, e.g. --precision 0.01"
    )


def print_bisect_end(
    out: Any, target: str, outcome: Any, summary: SearchSummary, base_dir: str
) -> None:
    """The table of tested values, the answer and what it can't say, where the results are
    (``out``: a rich console)."""
    prop = summary.prop or "value"
    out.print(_tested_table(target, prop, outcome.history, summary.method))
    for line in bisect_end_lines(summary, error=outcome.error):
        out.print(safe_text(line), markup=False, soft_wrap=True)
    saved = outcome.results_file or (
        "not saved (see the error above): free space, then rerun with --resume (finished "
        "jobs are reused)"
    )
    out.print(f"results: {saved}", markup=False, soft_wrap=True)
    print_end(out, f"runner bisect {prop}", base_dir, first_failure_of(summary))


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
        tallies.append((format_value(value), len(entries), jobs, f"{successes}/{judged}", text))
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
        noise = noise_text(summary)
        if noise:
            lines.append(noise)
    else:
        lines.append(f"interval: {_half_open(summary)} after {rounds}, {jobs}")
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
    errored = sum(len(p.jobs) for p in at) - judged
    if errored > 0:
        text += f" ({errored} more errored, not counted)"
    if isinstance(entry.result, (dict, int, float)) and not isinstance(entry.result, bool):
        text += f", mean result {json.dumps(entry.result, default=repr)}"
    return text


def _half_open(summary: SearchSummary) -> str:
    """The interval as it reads: the threshold lies past the failing-side end, at or before
    the other: ``(33, 45]`` with successes above it, ``[33, 45)`` with successes below. An
    end that is open (None) or at fault (``outside_range``) reads ``below 10`` / ``above
    100``: the threshold may lie beyond the range there."""
    range_lo, range_hi = summary.range or (None, None)
    lo, hi = summary.interval or (None, None)
    lo_text = (
        f"below {format_value(range_lo)}"
        if lo is None or summary.outside_range == "below"
        else format_value(lo)
    )
    hi_text = (
        f"above {format_value(range_hi)}"
        if hi is None or summary.outside_range == "above"
        else format_value(hi)
    )
    if summary.success_direction_lower is not False:
        return f"({lo_text}, {hi_text}]"
    return f"[{lo_text}, {hi_text})"


def _estimate_line(summary: SearchSummary, spent: str, error: str | None) -> str:
    prop = summary.prop or "value"
    level = f"{summary.confidence:.0%}" if summary.confidence is not None else "credible"
    lo_end, hi_end = summary.range or (None, None)
    lo, hi = summary.interval or (None, None)
    if summary.points and not any(p.judged for p in summary.points):
        return f"estimate: none, no job was judged {spent}"
    shown = _half_open(summary)
    if summary.estimate is None:
        # The interval's open side is where the threshold lies beyond the range.
        side = summary.outside_range or ("below" if lo is None else "above")
        end = lo_end if side == "below" else hi_end
        estimate = f"none inside the range (it may lie {side} {prop}={format_value(end)})"
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
        if summary.stopped == "resolved":
            line += (
                f"; as narrow as the candidate values allow, which are spaced wider than "
                f"--precision {format_value(precision)} here (at most 4,097 across the range; "
                "on a log scale, widest at the high end): narrow the range for a finer answer"
            )
        elif summary.stopped == "unjudged":
            line += (
                f"; wider than --precision {format_value(precision)}: the jobs at the values "
                "that decide it kept failing (see the job logs)"
            )
        elif summary.stopped == "repetitions":
            line += (
                f"; wider than --precision {format_value(precision)}: the --seeds ran out at "
                "the values that decide it (add --seeds; a rule that gives the same verdict "
                "every time needs no --method probabilistic)"
            )
        else:
            line += (
                f"; wider than --precision {format_value(precision)}: the jobs ran out before "
                "it narrowed (raise --max-jobs, or accept a coarser --precision)"
            )
    return line


def _outside_line(summary: SearchSummary, side: str) -> str:
    prop = summary.prop or "value"
    every = every_tested_value(side, summary.success_direction_lower is not False)
    lo, hi = summary.range or (None, None)
    end = lo if side == "below" else hi
    tested = any(p.value == end for p in summary.points)
    state = (
        f"{prop}={format_value(end)} {every} too"
        if tested
        else (f"{prop}={format_value(end)} was not tested")
    )
    ends = "" if tested or summary.method == "probabilistic" else ", or --test-range-ends yes"
    wider = _wider(summary, side)
    fix = (
        f"widen the range{wider}{ends}"
        if wider or summary.scale != "log"
        else f"a log range can't reach beyond {prop}={format_value(end)}{ends}"
    )
    return (
        f"outside range: every tested value {every}, so the threshold may lie at or {side} "
        f"{prop}={format_value(end)} ({state}); {fix}"
    )


def _wider(summary: SearchSummary, side: str) -> str:
    """``, e.g. w=0:100``: the range widened beyond the end at fault (see ``wider_range``)."""
    if summary.range is None:
        return ""
    lo, hi = summary.range
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (lo, hi)):
        return ""
    log = summary.scale == "log" and lo > 0
    wider = wider_range(lo, hi, side, log=log, integer=isinstance(lo, int) and isinstance(hi, int))
    if wider is None:
        return ""
    return f", e.g. {summary.prop or 'value'}={format_value(wider[0])}:{format_value(wider[1])}"


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
