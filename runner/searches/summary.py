"""``summary.json``: one typed object that the searches write and the report and CLI read.

A search rewrites its summary as it goes (status ``running``, then ``done``,
``error`` or ``cancelled``), so that it describes a search still running or one
that crashed, without unpickling anything. :class:`SearchSummary` is the only
writer (``to_json``) and the only reader (``from_json``, tolerant of summaries
written by older versions: missing keys take their defaults).

A job's ``device`` is written as ``job.json`` writes it (the ``CUDA_VISIBLE_DEVICES``
entry, a string, ``None`` on CPU); ``gpu_id`` is the spec's ``GPUJobResult.gpu_id``.

Example:
    >>> s = SearchSummary(kind="grid_search", search="G", base_dir="/r", status="done",
    ...                   num_jobs=2)
    >>> again = SearchSummary.from_json(s.to_json())
    >>> again == s, again.to_json()["schema_version"]
    (True, 1)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

from runner.job_folder import error_summary, result_summary
from runner.jobs import config_to_dict

__all__ = [
    "ANSWER_DETAILS",
    "SCHEMA_VERSION",
    "SUMMARY_FILE",
    "InconsistentPair",
    "JobSummary",
    "Margin",
    "SearchSummary",
    "TestedValue",
    "ValueOutcome",
    "json_summary",
    "read_summary",
]

SUMMARY_FILE = "summary.json"
#: Bumped when a field changes meaning; readers accept every version up to this one.
SCHEMA_VERSION = 1


def json_summary(value: Any) -> Any:
    """A JSON-able view of a result; a ``GPUJobResult`` is summarised by its ``result``.

    Never needs unpickling to read and never fails (see ``job_folder.result_summary``).

    Example:
        >>> json_summary({"acc": 0.9})
        {'acc': 0.9}
    """
    from runner.job_result import GPUJobResult

    if isinstance(value, GPUJobResult):
        value = value.result
    elif isinstance(value, (list, tuple)) and any(isinstance(v, GPUJobResult) for v in value):
        # The default grid agg_results returns the point's results: list what they returned.
        return [json_summary(v) for v in value]
    return result_summary(value)


def _device_of(gpu_id: Any) -> str | None:
    """job.json's ``device`` for a ``gpu_id``: the CUDA_VISIBLE_DEVICES entry, as a string."""
    return None if gpu_id is None or gpu_id == "" else str(gpu_id)


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    return value if isinstance(value, kind) else default


@dataclasses.dataclass
class JobSummary:
    """One job's line in ``summary.json``."""

    point: dict[str, Any] = dataclasses.field(default_factory=dict)
    base_dir: str | None = None
    status: str = "?"
    success: bool = False
    result: Any = None
    error: str | None = None
    duration: float | None = None
    #: As job.json writes it: the CUDA_VISIBLE_DEVICES entry (a string), None on CPU.
    device: str | None = None
    gpu_id: int | str | None = None
    reused: bool = False

    @classmethod
    def from_result(cls, result: Any) -> JobSummary:
        """The line of one ``GPUJobResult``."""
        return cls(
            point=config_to_dict(getattr(result.job, "point", {})),
            base_dir=os.path.dirname(result.out_file) if result.out_file else None,
            status=getattr(result, "status", "ok" if result.success else "error"),
            success=bool(result.success),
            result=json_summary(result.result) if result.success else None,
            error=error_summary(result.error),
            duration=getattr(result, "duration", None),
            device=_device_of(result.gpu_id),
            gpu_id=result.gpu_id,
            reused=bool(getattr(result, "reused", False)),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSummary:
        device = data.get("device")
        return cls(
            point=_get(data, "point", dict, {}),
            base_dir=_get(data, "base_dir", str, None),
            status=str(data.get("status") or ("ok" if data.get("success") else "?")),
            success=bool(data.get("success")),
            result=data.get("result"),
            error=_get(data, "error", str, None),
            duration=_get(data, "duration", (int, float), None),
            device=_device_of(device),
            gpu_id=data.get("gpu_id", device),
            reused=bool(data.get("reused")),
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ValueOutcome:
    """A binary search's answer at one end: the value and its aggregated result."""

    value: Any
    result: Any = None

    @classmethod
    def of(cls, pair: tuple[Any, Any] | None) -> ValueOutcome | None:
        """From the spec's ``(value, result)`` pair (``None`` stays ``None``)."""
        return None if pair is None else cls(pair[0], json_summary(pair[1]))

    @classmethod
    def from_json(cls, data: Any) -> ValueOutcome | None:
        if not isinstance(data, Mapping) or "value" not in data:
            return None
        return cls(data["value"], data.get("result"))


@dataclasses.dataclass
class TestedValue:
    """One value a binary search tested: its verdict and its jobs."""

    value: Any
    round: int | None = None
    #: The aggregated verdict: True, False, or None (inconclusive, or mixed jobs).
    success: bool | None = None
    result: Any = None
    jobs: list[JobSummary] = dataclasses.field(default_factory=list)
    #: Jobs judged a success, and jobs judged at all (probabilistic; None for bisection).
    successes: int | None = None
    judged: int | None = None
    #: Tested again with more repetitions (its verdict contradicted another's).
    retest: bool = False
    #: What ``agg_results`` returned, as it returned it (``result`` is its JSON form):
    #: kept in the results pickle's history, not in summary.json.
    aggregate: Any = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestedValue:
        success = data.get("success")
        return cls(
            value=data.get("value"),
            round=_get(data, "round", int, None),
            success=success if isinstance(success, bool) else None,
            result=data.get("result"),
            jobs=[
                JobSummary.from_json(j) for j in data.get("jobs") or [] if isinstance(j, Mapping)
            ],
            successes=_get(data, "successes", int, None),
            judged=_get(data, "judged", int, None),
            retest=bool(data.get("retest")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "round": self.round,
            "success": self.success,
            "result": self.result,
            "jobs": [j.to_json() for j in self.jobs],
            "successes": self.successes,
            "judged": self.judged,
            "retest": self.retest,
        }


@dataclasses.dataclass
class InconsistentPair:
    """Two tested values whose verdicts no monotone rule gives (a success on the failing
    side of a failure); ``resolved`` once re-testing made them agree."""

    success: Any
    failure: Any
    resolved: bool = False

    @classmethod
    def from_json(cls, data: Any) -> InconsistentPair | None:
        if not isinstance(data, Mapping) or "success" not in data or "failure" not in data:
            return None
        return cls(data["success"], data["failure"], bool(data.get("resolved")))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Margin:
    """How far the aggregates at the answer and at its failing neighbour are from the
    target (``BinarySearchConfig.margin``; positive on the success side)."""

    achieved: float | None = None
    failed: float | None = None

    @classmethod
    def from_json(cls, data: Any) -> Margin | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            _get(data, "achieved", (int, float), None), _get(data, "failed", (int, float), None)
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_COMMON = (
    "schema_version",
    "kind",
    "search",
    "base_dir",
    "status",
    "started",
    "timestamp",
    "total_time",
    "results_file",
    "error",
)
_GRID = ("sweep_props", "num_jobs", "num_failed", "aggregated", "jobs")
_BINARY_ANSWER = (
    "prop",
    "range",
    "precision",
    "success_direction_lower",
    "scale",
    "interval",
    "rounds",
    "achieved",
    "failed",
    "points",
    "num_jobs",
    "method",
)
#: What a threshold search adds to its answer: what the answer can't say (an end beyond
#: the range, contradicting verdicts, the margin) and the probabilistic method's posterior.
ANSWER_DETAILS = (
    "outside_range",
    "inconsistencies",
    "margin",
    "estimate",
    "confidence",
    "posterior",
    "noise",
    "noise_scale",
    "noise_factor",
    "stopped",
)
_BINARY = _BINARY_ANSWER + ANSWER_DETAILS


@dataclasses.dataclass
class SearchSummary:
    """What ``summary.json`` holds; the fields of the other search kind are left out.

    ``status`` is ``running``, ``done``, ``error`` or ``cancelled``.
    """

    kind: str
    search: str
    base_dir: str
    status: str
    started: float | None = None
    timestamp: str | None = None
    total_time: float | None = None
    results_file: str | None = None
    error: str | None = None
    schema_version: int = SCHEMA_VERSION
    # -- grid search
    sweep_props: dict[str, list[Any]] | None = None
    num_jobs: int | None = None
    num_failed: int | None = None
    aggregated: Any = None
    #: Every job's line once the grid has finished (None while it runs).
    jobs: list[JobSummary] | None = None
    # -- binary search
    prop: str | None = None
    range: tuple[Any, Any] | None = None
    precision: Any = None
    success_direction_lower: bool | None = None
    scale: str | None = None
    #: The final bracket (lo, hi): the threshold lies between them.
    interval: tuple[Any, Any] | None = None
    rounds: int | None = None
    achieved: ValueOutcome | None = None
    failed: ValueOutcome | None = None
    points: list[TestedValue] = dataclasses.field(default_factory=list)
    #: "bisection" or "probabilistic".
    method: str | None = None
    #: "below" / "above": every tested value succeeded (failed), so the threshold may
    #: lie beyond that end of the range.
    outside_range: str | None = None
    inconsistencies: list[InconsistentPair] = dataclasses.field(default_factory=list)
    margin: Margin | None = None
    #: Probabilistic: the answer, the interval's probability, P(threshold = value) as
    #: [value, p] pairs (value None: beyond the range), P(noise scale) as [scale, p] in
    #: steps of the candidate grid (``noise``) and in the prop's units near the
    #: threshold (``noise_scale``, a distance; ``noise_factor`` on a log scale's geometric
    #: grid; see :meth:`runner.searches.posterior.NoisyThreshold.noise_scale_marginal`).
    estimate: Any = None
    confidence: float | None = None
    posterior: list[list[Any]] | None = None
    noise: list[list[Any]] | None = None
    noise_scale: list[list[Any]] | None = None
    noise_factor: list[list[Any]] | None = None
    #: Why the probabilistic search stopped: "resolved", "repetitions" (none left at the
    #: values that decide the answer) or "max_jobs"; None while it runs.
    stopped: str | None = None

    def _fields(self) -> tuple[str, ...]:
        if self.kind == "binary_search":
            return _COMMON + _BINARY
        if self.kind == "grid_search":
            return _COMMON + _GRID
        return _COMMON

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``summary.json``."""
        out: dict[str, Any] = {}
        for name in self._fields():
            value = getattr(self, name)
            if isinstance(value, (JobSummary, TestedValue, Margin)):
                value = value.to_json()
            elif isinstance(value, ValueOutcome):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, list):
                value = [v.to_json() if hasattr(v, "to_json") else v for v in value]
            out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, with_jobs: bool = True) -> SearchSummary:
        """Read a summary back; keys it lacks take their defaults, unknown keys are ignored.

        ``with_jobs=False`` leaves a grid's per-job lines out (``jobs`` None): a status
        table of a 100,000-job grid reads its jobs from the search's index instead.
        """

        def pair(key: str) -> tuple[Any, Any] | None:
            value = data.get(key)
            return tuple(value) if isinstance(value, (list, tuple)) and len(value) == 2 else None

        jobs = data.get("jobs") if with_jobs else None
        sweep = data.get("sweep_props")
        return cls(
            kind=str(data.get("kind") or "?"),
            search=str(data.get("search") or "?"),
            base_dir=str(data.get("base_dir") or ""),
            status=str(data.get("status") or "?"),
            started=_get(data, "started", (int, float), None),
            timestamp=_get(data, "timestamp", str, None),
            total_time=_get(data, "total_time", (int, float), None),
            results_file=_get(data, "results_file", str, None),
            error=_get(data, "error", str, None),
            schema_version=_get(data, "schema_version", int, 0),
            sweep_props=(
                {str(k): v for k, v in sweep.items()} if isinstance(sweep, Mapping) else None
            ),
            num_jobs=_get(data, "num_jobs", int, None),
            num_failed=_get(data, "num_failed", int, None),
            aggregated=data.get("aggregated"),
            jobs=(
                [JobSummary.from_json(j) for j in jobs if isinstance(j, Mapping)]
                if isinstance(jobs, list)
                else None
            ),
            prop=_get(data, "prop", str, None),
            range=pair("range"),
            precision=data.get("precision"),
            success_direction_lower=_get(data, "success_direction_lower", bool, None),
            scale=_get(data, "scale", str, None),
            interval=pair("interval"),
            rounds=_get(data, "rounds", int, None),
            achieved=ValueOutcome.from_json(data.get("achieved")),
            failed=ValueOutcome.from_json(data.get("failed")),
            points=[
                TestedValue.from_json(p) for p in data.get("points") or [] if isinstance(p, Mapping)
            ],
            method=_get(data, "method", str, None),
            outside_range=_get(data, "outside_range", str, None),
            inconsistencies=[
                pair
                for pair in map(InconsistentPair.from_json, data.get("inconsistencies") or [])
                if pair is not None
            ],
            margin=Margin.from_json(data.get("margin")),
            estimate=data.get("estimate"),
            confidence=_get(data, "confidence", (int, float), None),
            posterior=_get(data, "posterior", list, None),
            noise=_get(data, "noise", list, None),
            noise_scale=_get(data, "noise_scale", list, None),
            noise_factor=_get(data, "noise_factor", list, None),
            stopped=_get(data, "stopped", str, None),
        )

    @classmethod
    def coerce(cls, summary: SearchSummary | Mapping[str, Any]) -> SearchSummary:
        """``summary`` itself, or read from the JSON object it is."""
        return summary if isinstance(summary, SearchSummary) else cls.from_json(summary)


def read_summary(path: str) -> SearchSummary | None:
    """The summary in ``path`` (a summary.json, or the folder holding one); None if unreadable.

    Example:
        >>> read_summary("/nonexistent/summary.json") is None
        True
    """
    if os.path.isdir(path):
        path = os.path.join(path, SUMMARY_FILE)
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return SearchSummary.from_json(data) if isinstance(data, Mapping) else None
