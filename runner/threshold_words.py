"""A threshold (binary) search in words: its answer, and what the answer can't say
(the threshold may lie beyond the range, contradicting verdicts, the margin at the
answer), the same in ``runner status``, ``runner show`` and the plot's header.

Reads a :class:`~runner.searches.summary.SearchSummary` (summary.json), or a results
pickle's payload as :func:`runner.report.to_jsonable` gives it.
"""

from __future__ import annotations

from typing import Any

from runner.searches.posterior import fits_a_step
from runner.searches.summary import ANSWER_DETAILS, SearchSummary
from runner.sweep_text import format_value

__all__ = [
    "label_threshold",
    "noise_text",
    "status_detail",
    "threshold_answer",
    "threshold_warnings",
]


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
    stopped = summary.stopped if summary.status == "done" else None
    if summary.method == "probabilistic" and stopped is not None and stopped in _STOPPED:
        lines.append(_STOPPED[stopped][1 if short else 0])
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


def _distribution(pairs: Any) -> list[tuple[float, float]]:
    """``[[scale, p], ...]`` from a summary, as floats; what is malformed is left out."""
    return sorted(
        (float(scale), float(p))
        for scale, p in (pair for pair in pairs or [] if isinstance(pair, list) and len(pair) == 2)
        if isinstance(scale, (int, float)) and isinstance(p, (int, float)) and p >= 0
    )


def _quantile(pairs: list[tuple[float, float]], q: float) -> float:
    total = sum(p for _, p in pairs)
    cumulative = 0.0
    for scale, p in pairs:
        cumulative += p / total
        if cumulative >= q - 1e-12:
            return scale
    return pairs[-1][0]


def noise_text(summary: SearchSummary) -> str | None:
    """How noisy the probabilistic search found the outcomes, in the prop's own units:
    over what distance around the threshold the success rate climbs (one noise scale
    either side: from about 27% to 73% at ``target_rate=0.5``). None without a posterior
    (and for a summary written before the scale was kept in the prop's units).

    Example:
        >>> from runner.searches.summary import SearchSummary
        >>> s = SearchSummary(kind="binary_search", search="B", base_dir="/r", status="done",
        ...     prop="w", range=(1, 128), precision=1, method="probabilistic",
        ...     noise=[[1.0, 0.1], [2.0, 0.3], [3.0, 0.4], [5.0, 0.2]],
        ...     noise_scale=[[2.0, 0.1], [4.0, 0.3], [6.0, 0.4], [10.0, 0.2]])
        >>> noise_text(s)
        'noise: the success rate climbs over about +-6 w around the threshold (90% credible 2 to 10)'
        >>> s.noise = [[0.05, 0.97], [1.0, 0.03]]
        >>> noise_text(s)
        'noise: none seen (the outcomes fit a deterministic rule)'
    """
    steps = _distribution(summary.noise)
    factor = _distribution(summary.noise_factor)
    scale = factor or _distribution(summary.noise_scale)
    if summary.method != "probabilistic" or not steps or not scale:
        return None
    if sum(p for _, p in steps) <= 0 or sum(p for _, p in scale) <= 0:
        return None
    # The search's own test (NoisyThreshold._looks_deterministic): outcomes a step
    # function gives, and a scale most likely under a quarter of a candidate step.
    tally: dict[Any, list[int]] = {}
    for point in summary.points:
        counts = tally.setdefault(point.value, [0, 0])
        counts[0] += point.successes or 0
        counts[1] += point.judged or 0
    step = fits_a_step(
        [(value, wins, judged) for value, (wins, judged) in tally.items() if value is not None],
        success_lower=summary.success_direction_lower is not False,
    )
    if step and _quantile(steps, 0.5) < 0.25:
        return "noise: none seen (the outcomes fit a deterministic rule)"
    median, low, high = (_quantile(scale, q) for q in (0.5, 0.05, 0.95))
    if factor:
        return (
            f"noise: the success rate climbs over about a factor {median:.3g} either side of "
            f"the threshold (90% credible {low:.3g} to {high:.3g})"
        )
    return (
        f"noise: the success rate climbs over about +-{median:.3g} {summary.prop or 'value'} "
        f"around the threshold (90% credible {low:.3g} to {high:.3g})"
    )


#: Why a probabilistic search stopped short of its precision: (line, short form). Read
#: back from summary.json, which does not say whether the Python API or ``runner bisect``
#: ran the search: the fix names both spellings.
_STOPPED = {
    "repetitions": (
        "stopped: the repetitions ran out at the values that decide the answer, before the "
        "interval narrowed to the precision (add repetitions, e.g. seeds)",
        "repetitions used up",
    ),
    "unjudged": (
        "stopped: the jobs at the values that decide the answer kept failing (or could not "
        "be judged), before the interval narrowed to the precision (see the job logs)",
        "jobs kept failing",
    ),
    "max_jobs": (
        "stopped: its job budget (max_jobs) was spent before the interval narrowed to the "
        "precision (raise max_jobs, --max-jobs in runner bisect, or accept a coarser "
        "precision)",
        "max_jobs spent",
    ),
}


def _signed(value: float | None) -> str:
    return "?" if value is None else f"{value:+.3g}"


def status_detail(s: SearchSummary) -> tuple[str, dict[str, Any]]:
    """A threshold search's ``runner status`` text, and its answer for ``--json``."""
    rounds = f", {s.rounds} round(s)" if s.rounds is not None else ""
    detail = "; ".join(
        [f"{s.prop}: {threshold_answer(s)}{rounds}", *threshold_warnings(s, short=True)]
    )
    facts = {
        "prop": s.prop,
        "method": s.method,
        "interval": list(s.interval) if s.interval else None,
        "achieved": s.achieved.value if s.achieved else None,
        "failed": s.failed.value if s.failed else None,
        "estimate": s.estimate,
        "confidence": s.confidence,
        "outside_range": s.outside_range,
        "inconsistencies": len(s.inconsistencies),
        "unresolved": sum(not p.resolved for p in s.inconsistencies),
        "margin": s.margin.to_json() if s.margin else None,
    }
    return detail, facts


def _summary_of_payload(data: dict[str, Any]) -> SearchSummary | None:
    """A binary search's summary.json, or its results pickle (as :func:`to_jsonable`
    gives it), read as a :class:`SearchSummary`; None for anything else."""
    if data.get("kind") == "binary_search":
        return SearchSummary.from_json(data)
    if "achieved_results" not in data or "prop" not in data:
        return None

    def outcome(pair: Any) -> dict[str, Any] | None:
        ok = isinstance(pair, list) and len(pair) == 2
        return {"value": pair[0], "result": pair[1]} if ok else None

    return SearchSummary.from_json(
        {
            **data,
            "kind": "binary_search",
            "range": data.get("search_range"),
            "achieved": outcome(data.get("achieved_results")),
            "failed": outcome(data.get("failed_results")),
            "points": [],
        }
    )


#: Keys a threshold search's readable block says in words (left out of the rest).
_SAID = ANSWER_DETAILS


def label_threshold(data: Any) -> Any:
    """A binary search's summary or results with a readable ``threshold`` block first:
    its answer, whether the threshold may lie beyond the range, the contradicting
    pairs, the margin at the answer, and the posterior's values worth a look (those
    holding 0.1% or more). Anything else is returned as it is.

    Example:
        >>> out = label_threshold({"kind": "binary_search", "prop": "w", "range": [10, 100],
        ...     "interval": [10, 11], "achieved": {"value": 10}, "outside_range": "below", "margin": None,
        ...     "inconsistencies": [{"success": 32, "failure": 55, "resolved": False}]})
        >>> for key, value in out["threshold"].items():
        ...     print(f"{key}: {value}")
        answer: achieved 10, failed none, interval (10, 11)
        outside_range: every tested value succeeded; the threshold may lie below 10 (widen the range)
        inconsistencies: ['w=32 succeeded but w=55 failed (unresolved)']
        margin: not reported (the search config defines no margin)
    """
    if not isinstance(data, dict):
        return data
    summary = _summary_of_payload(data)
    if summary is None:
        return data
    said = threshold_warnings(summary)
    block: dict[str, Any] = {"answer": threshold_answer(summary)}
    outside = [line for line in said if line.startswith("outside range: ")]
    block["outside_range"] = outside[0].removeprefix("outside range: ") if outside else "none"
    pairs = [line.removeprefix("inconsistent: ") for line in said if line.startswith("inconsist")]
    block["inconsistencies"] = pairs or "none"
    margin = [
        line.removeprefix("margin to the target: ") for line in said if line.startswith("margin")
    ]
    if margin:
        block["margin"] = margin[0]
    elif "margin" in data:
        block["margin"] = "not reported (the search config defines no margin)"
    else:  # a results pickle: its summary.json has it
        block["margin"] = "not in this file (summary.json beside it has it)"
    stopped = [line for line in said if line.startswith("stopped: ")]
    if stopped:
        block["stopped"] = stopped[0].removeprefix("stopped: ")
    noise = noise_text(summary)
    if noise:
        block["noise"] = noise.removeprefix("noise: ")
    if summary.posterior:
        prop = summary.prop or "value"
        block["posterior"] = {
            (f"{prop}={format_value(v)}" if v is not None else "beyond the range"): round(p, 4)
            for v, p in (pair for pair in summary.posterior if len(pair) == 2)
            if isinstance(p, (int, float)) and p >= 0.001
        }
    return {"threshold": block, **{k: v for k, v in data.items() if k not in _SAID}}
