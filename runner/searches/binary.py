"""Binary search as a strategy over the driver: rounds of values chosen by the bisection math.

The math lives in :mod:`runner.searches.bisection` (pure); this module turns its
proposals into jobs, aggregates each value's results into a verdict, and says
what the search saw.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, NamedTuple

from runner.configs.search_configs import BinarySearchConfig
from runner.errors import AggregationError, InconclusiveSearchError
from runner.job_result import GPUJobResult
from runner.jobs import Job
from runner.searches.bisection import Bisection
from runner.searches.driver import SearchRun, SearchSession
from runner.searches.points import PointBuilder, check_job_dirs_distinct
from runner.searches.space import parallel_points_of, space_of
from runner.searches.summary import (
    JobSummary,
    SearchSummary,
    TestedValue,
    ValueOutcome,
    json_summary,
)

__all__ = ["BinarySearch", "BinarySearchResult"]

logger = logging.getLogger("runner")

Number = int | float


class _Outcome(NamedTuple):
    achieved_results: tuple[Number, Any] | None
    failed_results: tuple[Number, Any] | None


class BinarySearchResult(_Outcome):
    """``(achieved_results, failed_results)``, as the spec returns, with the details attached.

    ``achieved_results`` is ``(value, result)`` of the best succeeding value tested,
    ``failed_results`` that of the closest failing one; either is ``None`` when no
    tested value succeeded (failed). Attributes: ``interval`` (the final bracket),
    ``rounds``, ``history`` (every tested value), ``error`` (why the search stopped
    early, else ``None``), ``results_file``, ``total_time``, ``summary`` (the
    :class:`~runner.searches.summary.SearchSummary` written to ``summary.json``).

    Example:
        >>> achieved, failed = BinarySearchResult((42, "ok"), (41, "no"))
        >>> achieved
        (42, 'ok')
    """

    interval: tuple[Number, Number] | None = None
    rounds: int = 0
    history: list[dict[str, Any]] = []
    error: str | None = None
    results_file: str | None = None
    total_time: float = 0.0
    summary: SearchSummary | None = None

    def raise_if_stopped(self) -> BinarySearchResult:
        """Raise :class:`InconclusiveSearchError` if the search stopped early; else return self.

        For users who prefer an exception to checking ``.error``.
        """
        if self.error:
            raise InconclusiveSearchError(self.error)
        return self


def _rounds_left(search: Bisection, m: int) -> int:
    """Rounds still to come, were every round to shrink the interval (m + 1)-fold."""
    lo, hi = search.interval
    space = search.space
    if space.is_resolved(lo, hi):
        return 0
    if space.log:
        width, target = math.log(hi / lo), math.log1p(space.precision / lo)
    else:
        width, target = hi - lo, max(space.precision, 1 if space.integer else 0)
    if target <= 0 or width <= target:
        return 1
    return max(1, math.ceil(math.log(width / target) / math.log(m + 1)))


class BinarySearch(SearchRun):
    """One validated binary search."""

    kind = "binary_search"
    shares_slots = True

    def __init__(self, config: BinarySearchConfig) -> None:
        required = ("get_experiment_config_and_base_dir", "run_experiment_config", "agg_results")
        builder = PointBuilder(
            config, base=BinarySearchConfig, required_methods=required, searched=config.prop
        )
        super().__init__(config, builder)
        self.space = space_of(config, self.name)
        self.points_per_round = parallel_points_of(config, self.name)
        self.probe_jobs = self._probe_jobs()
        self.status.interval = (self.space.lo, self.space.hi)
        self.search = Bisection(self.space)
        self.tested: list[TestedValue] = []

    def _probe_jobs(self) -> list[Job]:
        # The jobs of the first two values classic bisection would test: the user's
        # folders must differ across seeds and across searched values.
        first = self.space.midpoint(self.space.lo, self.space.hi)
        probes = [first]
        if not self.space.is_resolved(self.space.lo, first):
            probes.append(self.space.midpoint(self.space.lo, first))
        jobs = [job for value in probes for job in self.builder.jobs_for({self.config.prop: value})]
        check_job_dirs_distinct(jobs, self.name)
        return jobs

    @property
    def known_jobs(self) -> list[Job]:
        return self.probe_jobs

    def reset(self) -> None:
        self.search = Bisection(self.space)
        self.tested = []

    # -- exploring --------------------------------------------------------------------

    async def explore(self, session: SearchSession) -> None:
        search = self.search
        jobs_per_point = len(self.builder.points)
        while not search.done:
            m = self.points_per_round or max(1, session.share() // max(1, jobs_per_point))
            self.status.expected_jobs = (
                self.status.submitted + _rounds_left(search, m) * m * jobs_per_point
            )
            values = search.propose(m)
            self.status.rounds = search.rounds
            # Every job of the round is built and its folder claimed before any runs:
            # two values sharing a folder would swap results.
            round_jobs = [self.builder.jobs_for({self.config.prop: v}) for v in values]
            session.claim([job for jobs in round_jobs for job in jobs])
            verdicts = await asyncio.gather(
                *(
                    self._evaluate(session, v, jobs, search.rounds)
                    for v, jobs in zip(values, round_jobs, strict=True)
                )
            )
            for value, (success, _result) in zip(values, verdicts, strict=True):
                if success is None:
                    self.error = (
                        f"{self.config.prop}={value!r} was inconclusive twice (agg_results "
                        "returned success=None, e.g. every job failed); the search stopped "
                        f"at interval {search.interval}. See the job logs under "
                        f"{self.builder.base_dir}."
                    )
            if self.error is not None:
                logger.error("%s: %s", self.name, self.error)
                break
            for value, (success, result) in zip(values, verdicts, strict=True):
                search.record(value, bool(success), result)
            self.status.interval = search.interval
            logger.info(
                "%s: round %d tested %s=%s -> %s; interval now %s",
                self.name,
                search.rounds,
                self.config.prop,
                values,
                ["success" if v[0] else "failure" for v in verdicts],
                search.interval,
            )
            session.save_progress()
        self.status.expected_jobs = self.status.submitted

    async def _evaluate(
        self, session: SearchSession, value: Number, jobs: list[Job], round_no: int
    ) -> tuple[bool | None, Any]:
        results = await session.run_jobs(jobs)
        success, result = self._aggregate(value, results)
        if success is None:
            logger.warning(
                "%s: %s=%r is inconclusive (agg_results returned success=None); running it once more",
                self.name,
                self.config.prop,
                value,
            )
            # Reusing the jobs that just succeeded: only the failed ones run again.
            results = await session.run_jobs(jobs, reuse=True)
            success, result = self._aggregate(value, results)
        self.tested.append(
            TestedValue(
                value=value,
                round=round_no,
                success=success,
                result=json_summary(result),
                jobs=[JobSummary.from_result(r) for r in results],
            )
        )
        return success, result

    def _aggregate(self, value: Number, results: list[GPUJobResult]) -> tuple[bool | None, Any]:
        try:
            returned = self.config.agg_results(results)
        except Exception as exc:
            raise AggregationError(
                f"{self.name}: agg_results raised {type(exc).__name__}: {exc} for "
                f"{self.config.prop}={value!r}; the jobs' results are kept in their folders, so "
                "fix agg_results and rerun with resume=True"
            ) from exc
        if not (isinstance(returned, tuple) and len(returned) == 2):
            raise AggregationError(
                f"{self.name}: agg_results returned {returned!r} for {self.config.prop}={value!r}; "
                "a binary search's agg_results must return (success, result)"
            )
        success, result = returned
        if success is not None:
            try:
                success = bool(success)  # numpy booleans, 0/1
            except Exception as exc:
                raise AggregationError(
                    f"{self.name}: agg_results returned success={success!r}, which is not a "
                    "boolean; return True, False, or None when the value can't be judged"
                ) from exc
        return success, result

    # -- what it saw ------------------------------------------------------------------

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every tested value, as ``summary.json`` lists it."""
        return [t.to_json() for t in self.tested]

    def describe(self) -> dict[str, Any]:
        search = self.search
        return {
            "prop": self.config.prop,
            "range": (self.space.lo, self.space.hi),
            "precision": self.space.precision,
            "success_direction_lower": self.space.success_lower,
            "scale": self.config.scale,
            "interval": search.interval,
            "rounds": search.rounds,
            "achieved": ValueOutcome.of(search.achieved),
            "failed": ValueOutcome.of(search.failed),
            "points": list(self.tested),
        }

    def payload(self, timestamp: str, total_time: float) -> dict[str, Any] | None:
        search = self.search
        return {
            "prop": self.config.prop,
            "search_range": (self.space.lo, self.space.hi),
            "precision": self.space.precision,
            "achieved_results": search.achieved,
            "failed_results": search.failed,
            "total_time": total_time,
            "timestamp": timestamp,
            "interval": search.interval,
            "rounds": search.rounds,
            "history": self.history,
            "error": self.error,
        }

    def outcome(self, results_file: str, total_time: float) -> BinarySearchResult:
        search = self.search
        outcome = BinarySearchResult(search.achieved, search.failed)
        outcome.interval = search.interval
        outcome.rounds = search.rounds
        outcome.history = self.history
        outcome.error = self.error
        outcome.results_file = results_file
        outcome.total_time = total_time
        outcome.summary = self.last_summary
        return outcome

    def answer_text(self) -> str:
        achieved, failed = self.search.achieved, self.search.failed
        return (
            f"{self.search.rounds} round(s): achieved "
            f"{None if achieved is None else achieved[0]}, "
            f"failed {None if failed is None else failed[0]}"
        )
