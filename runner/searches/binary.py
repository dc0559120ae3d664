"""Binary search as a strategy over the driver: rounds of values chosen by the bisection math.

The math lives in :mod:`runner.searches.bisection` (pure); this module turns its
proposals into jobs, aggregates each value's results into a verdict, and says
what the search saw.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from runner.configs.search_configs import BinarySearchConfig
from runner.errors import AggregationError, InconclusiveSearchError
from runner.front_end import front_end
from runner.job_result import GPUJobResult
from runner.jobs import Job
from runner.searches.bisection import Bisection
from runner.searches.driver import SearchRun, SearchSession
from runner.searches.points import PointBuilder, check_job_dirs_distinct
from runner.searches.space import (
    every_tested_value,
    parallel_points_of,
    repetitions_of,
    space_of,
    test_range_ends_of,
    wider_range,
)
from runner.searches.summary import (
    InconsistentPair,
    JobSummary,
    Margin,
    SearchSummary,
    TestedValue,
    ValueOutcome,
    json_summary,
)
from runner.sweep_text import format_value

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
    tested value succeeded (failed). Attributes: ``interval`` (the final bracket, or
    the credible interval of a probabilistic search), ``rounds``, ``history`` (every
    tested value), ``error`` (why the search stopped early, else ``None``),
    ``results_file``, ``total_time``, ``summary`` (the
    :class:`~runner.searches.summary.SearchSummary` written to ``summary.json``),
    ``outside_range``, ``inconsistencies``, ``margin``, ``jobs``, and for
    ``method="probabilistic"`` ``estimate``, ``posterior`` and ``confidence``.

    Example:
        >>> achieved, failed = BinarySearchResult((42, "ok"), (41, "no"))
        >>> achieved
        (42, 'ok')
    """

    interval: tuple[Number | None, Number | None] | None = None
    rounds: int = 0
    history: list[dict[str, Any]] = []
    error: str | None = None
    results_file: str | None = None
    total_time: float = 0.0
    summary: SearchSummary | None = None
    #: "bisection" or "probabilistic".
    method: str = "bisection"
    #: "below" / "above" when every tested value succeeded (failed): the threshold may
    #: lie beyond that end of the range (see the warning logged).
    outside_range: str | None = None
    #: Every pair of values whose verdicts contradict a monotone rule.
    inconsistencies: list[InconsistentPair] = []
    #: ``config.margin`` at the answer and at its failing neighbour (None: no target).
    margin: Margin | None = None
    #: Jobs run.
    jobs: int = 0
    #: Probabilistic: the answer, P(threshold = value) as (value, p) pairs, the
    #: interval's probability (``interval`` is then the credible interval).
    estimate: Number | None = None
    posterior: list[tuple[Number | None, float]] | None = None
    confidence: float | None = None

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
    """One validated binary search (``method="bisection"``); the base of the other methods."""

    kind = "binary_search"
    shares_slots = True
    method = "bisection"

    def __init__(self, config: BinarySearchConfig) -> None:
        required = ("get_experiment_config_and_base_dir", "run_experiment_config", "agg_results")
        builder = PointBuilder(
            config, base=BinarySearchConfig, required_methods=required, searched=config.prop
        )
        super().__init__(config, builder)
        self.prop: str = config.prop
        self.space = space_of(config, self.name)
        self.points_per_round = parallel_points_of(config, self.name)
        self.repetitions = repetitions_of(config, self.name, len(builder.points))
        self.test_ends = test_range_ends_of(config, self.name)
        self.probe_jobs = self._probe_jobs()
        self.status.interval = (self.space.lo, self.space.hi)
        self.reset()

    def _probe_jobs(self) -> list[Job]:
        # The jobs of the first two values classic bisection would test: the user's
        # folders must differ across seeds and across searched values.
        first = self.space.midpoint(self.space.lo, self.space.hi)
        probes = [first]
        if not self.space.is_resolved(self.space.lo, first):
            probes.append(self.space.midpoint(self.space.lo, first))
        jobs = [job for value in probes for job in self.builder.jobs_for({self.prop: value})]
        check_job_dirs_distinct(jobs, self.name)
        return jobs

    @property
    def known_jobs(self) -> list[Job]:
        return self.probe_jobs

    def reset(self) -> None:
        self.search = Bisection(self.space)
        self.tested: list[TestedValue] = []
        #: Every job result at each tested value, and how many repetitions it used.
        self.results_at: dict[Number, list[GPUJobResult]] = {}
        self.used: dict[Number, int] = {}
        self.pairs: dict[tuple[Number, Number], InconsistentPair] = {}

    # -- running values ---------------------------------------------------------------

    def jobs_at(self, value: Number, count: int) -> list[Job]:
        """The next ``count`` unused repetitions (sweep_props combinations) at ``value``."""
        start = self.used.get(value, 0)
        points = self.builder.points[start : start + count]
        self.used[value] = start + len(points)
        return [self.builder.job_for({**point, self.prop: value}) for point in points]

    def spare(self, value: Number) -> int:
        """Repetitions not yet run at ``value``."""
        return len(self.builder.points) - self.used.get(value, 0)

    async def test_values(
        self,
        session: SearchSession,
        values: Sequence[Number],
        round_no: int,
        *,
        retest: bool = False,
    ) -> list[tuple[bool, Any]] | None:
        """Run the next ``repetitions`` jobs at each value; their verdicts over every job
        run there, or None when one stayed inconclusive (``self.error`` says which)."""
        # Every job of the round is built and its folder claimed before any runs: two
        # values sharing a folder would swap results.
        round_jobs = [self.jobs_at(v, self.repetitions) for v in values]
        session.claim([job for jobs in round_jobs for job in jobs])
        verdicts = await asyncio.gather(
            *(
                self._evaluate(session, v, jobs, round_no, retest)
                for v, jobs in zip(values, round_jobs, strict=True)
            )
        )
        for value, (success, _result) in zip(values, verdicts, strict=True):
            if success is None:
                self.error = (
                    f"{self.prop}={value!r} was inconclusive twice (agg_results returned "
                    "success=None, e.g. every job failed); the search stopped at interval "
                    f"{self.search.interval}. See the job logs under {self.builder.base_dir}."
                )
        if self.error is not None:
            logger.error("%s: %s", self.name, self.error)
            return None
        return [(bool(success), result) for success, result in verdicts]

    async def _evaluate(
        self,
        session: SearchSession,
        value: Number,
        jobs: list[Job],
        round_no: int,
        retest: bool,
    ) -> tuple[bool | None, Any]:
        earlier = self.results_at.get(value, [])
        results = await session.run_jobs(jobs)
        success, result = self.aggregate(value, earlier + results)
        if success is None:
            logger.warning(
                "%s: %s=%r is inconclusive (agg_results returned success=None); running it once more",
                self.name,
                self.prop,
                value,
            )
            # Reusing the jobs that just succeeded: only the failed ones run again.
            results = await session.run_jobs(jobs, reuse=True)
            success, result = self.aggregate(value, earlier + results)
        self.results_at[value] = earlier + results
        self.tested.append(
            TestedValue(
                value=value,
                round=round_no,
                success=success,
                result=json_summary(result),
                jobs=[JobSummary.from_result(r) for r in results],
                retest=retest,
                aggregate=result,
            )
        )
        return success, result

    def call_user(self, method: str, value: Number, argument: Any) -> Any:
        """``config.<method>(argument)`` for the jobs at ``value``; its error, named."""
        try:
            return getattr(self.config, method)(argument)
        except Exception as exc:
            raise AggregationError(
                f"{self.name}: {method} raised {type(exc).__name__}: {exc} for "
                f"{self.prop}={value!r}; the jobs' results are kept in their folders, so "
                f"fix {method} and rerun with resume=True"
            ) from exc

    def aggregate(self, value: Number, results: list[GPUJobResult]) -> tuple[bool | None, Any]:
        """``agg_results(results)`` checked: ``(success, result)``."""
        returned = self.call_user("agg_results", value, results)
        if not (isinstance(returned, tuple) and len(returned) == 2):
            raise AggregationError(
                f"{self.name}: agg_results returned {returned!r} for {self.prop}={value!r}; "
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

    # -- bisection --------------------------------------------------------------------

    async def explore(self, session: SearchSession) -> None:
        search = self.search
        per_value = self.repetitions
        while not search.done:
            m = self.points_per_round or max(1, session.share() // per_value)
            self.status.expected_jobs = (
                self.status.submitted + _rounds_left(search, m) * m * per_value
            )
            # The range ends ride along in the first round: always with test_range_ends=True,
            # with "auto" when the round leaves them room.
            ends: bool | Literal["if_room"] = False
            if search.rounds == 0:
                ends = "if_room" if self.test_ends == "auto" else bool(self.test_ends)
            values = search.propose(m, ends=ends)
            self.status.rounds = search.rounds
            verdicts = await self.test_values(session, values, search.rounds)
            if verdicts is None:
                break
            for value, (success, result) in zip(values, verdicts, strict=True):
                search.record(value, success, result)
            logger.info(
                "%s: round %d tested %s=%s -> %s; interval now %s",
                self.name,
                search.rounds,
                self.prop,
                values,
                ["success" if v[0] else "failure" for v in verdicts],
                search.interval,
            )
            await self._retest_contradictions(session)
            self.status.interval = search.interval
            session.save_progress()
        self.status.expected_jobs = self.status.submitted
        self.report_answer()

    async def _retest_contradictions(self, session: SearchSession) -> None:
        """Record (and warn about) every new non-monotone pair; re-test its values with
        more repetitions while the pool has some, replaying the search on the new verdicts."""
        search = self.search
        while True:
            current = search.inconsistencies
            spare = sorted(
                {v for pair in current for v in (pair.success, pair.failure) if self.spare(v)}
            )
            new = [p for p in current if (p.success, p.failure) not in self.pairs]
            for pair in new:
                self.pairs[(pair.success, pair.failure)] = InconsistentPair(
                    pair.success, pair.failure
                )
            if new:
                logger.warning(
                    "%s: %s, which no monotone rule gives (noisy results, or a rule that is "
                    "not monotone); %s",
                    self.name,
                    _pairs_text(self.prop, new),
                    "re-testing those values with more repetitions"
                    if spare
                    else "the answer follows classic bisection's path. " + self._retest_hint(),
                )
            if not current or not spare:
                break
            verdicts = await self.test_values(session, spare, search.rounds, retest=True)
            if verdicts is None:
                return
            for value, (success, result) in zip(spare, verdicts, strict=True):
                search.revise(value, success, result)
        still = {(p.success, p.failure) for p in search.inconsistencies}
        for key, seen in self.pairs.items():
            seen.resolved = key not in still

    def _retest_hint(self) -> str:
        pool = len(self.builder.points)
        words = front_end()
        if self.repetitions < pool:
            return f"Every repetition in {words.repetition_pool} was used at these values."
        if pool == 1:
            return (
                f"Add repetitions to {words.repetition_pool} and set "
                f"{words.repetitions.format(k='K')} below their number to let the search "
                "re-test contradicting values."
            )
        return (
            f"Set {words.repetitions.format(k='K')} below the {pool} repetitions (e.g. "
            f"{words.repetitions.format(k=max(1, pool // 2))}) to let the search re-test "
            "contradicting values."
        )

    # -- the answer -------------------------------------------------------------------

    def answer(self) -> tuple[tuple[Number, Any] | None, tuple[Number, Any] | None]:
        """``(achieved, failed)`` as the spec returns them."""
        return self.search.achieved, self.search.failed

    @property
    def interval(self) -> tuple[Number | None, Number | None]:
        return self.search.interval

    @property
    def outside_range(self) -> str | None:
        return self.search.outside_range

    def margin(self) -> Margin | None:
        """``config.margin`` at the answer and at its failing neighbour, if it has one."""
        achieved, failed = self.answer()
        values = [None if pair is None else self._margin_of(pair[1]) for pair in (achieved, failed)]
        if all(v is None for v in values):
            return None
        return Margin(*values)

    def _margin_of(self, result: Any) -> float | None:
        try:
            value = self.config.margin(result)
        except Exception as exc:  # a report, never a reason to lose the search's answer
            logger.warning("%s: margin(result) raised %s: %s", self.name, type(exc).__name__, exc)
            return None
        return None if value is None else float(value)

    def report_answer(self) -> None:
        """Say what the answer can't: an untested end beyond it, its margin."""
        achieved, failed = self.answer()
        outside = self.outside_range
        if outside is not None and self.error is None:
            logger.warning("%s: %s", self.name, self._outside_message(outside, achieved, failed))
        margin = self.margin()
        if margin is not None:
            logger.info(
                "%s: margin to the target at the answer %s=%s: %s; at its failing neighbour %s: %s",
                self.name,
                self.prop,
                None if achieved is None else achieved[0],
                _signed(margin.achieved),
                None if failed is None else failed[0],
                _signed(margin.failed),
            )

    def _outside_message(
        self,
        outside: str,
        achieved: tuple[Number, Any] | None,
        failed: tuple[Number, Any] | None,
    ) -> str:
        lo, hi = self.space.lo, self.space.hi
        end = lo if outside == "below" else hi
        # From the side and the direction, not from the answer's ends: a probabilistic
        # search's ends can both be empty (no value's agg_results agreed) while every job
        # succeeded.
        every = every_tested_value(outside, self.space.success_lower)
        tested = end in self.results_at
        wider = wider_range(lo, hi, outside, log=self.space.log, integer=self.space.integer)
        where = f"at or {outside} {end}" if tested else f"{outside} the range"
        end_text = (
            f"the range's end {self.prop}={end} {every} too"
            if tested
            else f"the range's end {self.prop}={end} was not tested"
        )
        words = front_end()
        if wider is None and not self.space.log:
            # A range of values >= 0 is not widened below 0 unasked: most props (sizes,
            # rates, counts) can't be negative. Some can.
            fix = f"if {self.prop} can be negative, widen the range below {format_value(end)}"
        elif wider is None:
            fix = f"a range on this scale can't reach beyond {self.prop}={format_value(end)}"
        else:
            fix = "widen the range, e.g. " + words.search_range.format(
                prop=self.prop, lo=format_value(wider[0]), hi=format_value(wider[1])
            )
        if not tested and self.method == "bisection":  # the other method refuses the option
            fix += f", or set {words.test_range_ends} to test the ends"
        return (
            f"every tested value of {self.prop} {every} ({end_text}), so the threshold may lie "
            f"{where}: the answer is a bound, not a threshold; {fix}"
        )

    # -- what it saw ------------------------------------------------------------------

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every tested value as ``summary.json`` lists it, with ``result`` the object
        ``agg_results`` returned and ``result_json`` its JSON form."""
        return [
            {**t.to_json(), "result": t.aggregate, "result_json": t.result} for t in self.tested
        ]

    @property
    def rounds(self) -> int:
        return self.search.rounds

    def describe(self) -> dict[str, Any]:
        achieved, failed = self.answer()
        return {
            "prop": self.prop,
            "range": (self.space.lo, self.space.hi),
            "precision": self.space.precision,
            "success_direction_lower": self.space.success_lower,
            "scale": self.config.scale,
            "interval": self.interval,
            "rounds": self.rounds,
            "achieved": ValueOutcome.of(achieved),
            "failed": ValueOutcome.of(failed),
            "points": list(self.tested),
            "num_jobs": self.status.submitted,
            "method": self.method,
            "outside_range": self.outside_range,
            "inconsistencies": list(self.pairs.values()),
            "margin": self.margin(),
        }

    def payload(self, timestamp: str, total_time: float) -> dict[str, Any] | None:
        achieved, failed = self.answer()
        return {
            "prop": self.prop,
            "search_range": (self.space.lo, self.space.hi),
            "precision": self.space.precision,
            "achieved_results": achieved,
            "failed_results": failed,
            "total_time": total_time,
            "timestamp": timestamp,
            "interval": self.interval,
            "rounds": self.rounds,
            "history": self.history,
            "error": self.error,
            "method": self.method,
            "outside_range": self.outside_range,
            "inconsistencies": [pair.to_json() for pair in self.pairs.values()],
        }

    def outcome(self, results_file: str, total_time: float) -> BinarySearchResult:
        achieved, failed = self.answer()
        outcome = BinarySearchResult(achieved, failed)
        outcome.interval = self.interval
        outcome.rounds = self.rounds
        outcome.history = self.history
        outcome.error = self.error
        outcome.results_file = results_file
        outcome.total_time = total_time
        outcome.summary = self.last_summary
        outcome.method = self.method
        outcome.outside_range = self.outside_range
        outcome.inconsistencies = list(self.pairs.values())
        outcome.margin = self.margin()
        outcome.jobs = self.status.submitted
        return outcome

    def answer_text(self) -> str:
        achieved, failed = self.answer()
        return (
            f"{self.rounds} round(s): achieved "
            f"{None if achieved is None else achieved[0]}, "
            f"failed {None if failed is None else failed[0]}"
        )


def _pairs_text(prop: str, pairs: Sequence[Any], most: int = 3) -> str:
    """``"width=32 succeeded but width=41 failed; ..."``, the first ``most`` pairs."""
    text = "; ".join(
        f"{prop}={p.success!r} succeeded but {prop}={p.failure!r} failed" for p in pairs[:most]
    )
    if len(pairs) > most:
        text += f" (and {len(pairs) - most} more pair(s))"
    return text


def _signed(value: float | None) -> str:
    return "unknown" if value is None else f"{value:+.4g}"
