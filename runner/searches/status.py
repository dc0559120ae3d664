"""Live counters of one search, which the progress display reads (and never writes)."""

from __future__ import annotations

import dataclasses
from typing import Any

from runner.job_result import GPUJobResult

__all__ = ["SearchStatus"]


@dataclasses.dataclass
class SearchStatus:
    """Live counters of one search, read by the progress display (never written by it).

    Example:
        >>> status = SearchStatus(kind="grid_search", name="g", base_dir="/tmp/g")
        >>> status.submitted = 2
        >>> status.record(GPUJobResult(success=False))
        >>> status.in_flight, status.failed
        (1, 1)
    """

    kind: str
    name: str
    base_dir: str
    #: Jobs the search will run in all: exact for a grid, an estimate for a binary search.
    expected_jobs: int | None = None
    submitted: int = 0
    finished: int = 0
    failed: int = 0
    reused: int = 0
    #: A binary search's current bracket (or credible interval) and round.
    interval: tuple[Any, Any] | None = None
    rounds: int = 0
    started: float | None = None
    ended: float | None = None
    state: str = "pending"
    first_failure: GPUJobResult | None = None

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not finished: running or waiting for a slot."""
        return self.submitted - self.finished

    def record(self, result: GPUJobResult) -> None:
        self.finished += 1
        self.failed += not result.success
        if not result.success and self.first_failure is None:
            self.first_failure = result  # the end-of-sweep message names its error and log
        self.reused += bool(getattr(result, "reused", False))
