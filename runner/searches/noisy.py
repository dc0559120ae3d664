"""``method="probabilistic"``: the threshold search for outcomes that vary from seed to seed.

Each job is judged on its own (``config.job_success(result)``) and is one draw of
the success rate at its value; the posterior (:mod:`runner.searches.posterior`,
pure) chooses where the next jobs go, one job per idle slot. ``sweep_props`` is
the pool of repetitions: a value tested again takes the next unused combination.
The answer's two ends are the tested values nearest the estimate whose
``agg_results`` over every job run there succeeded (on the estimate's success side)
and failed (on its failing side), so ``(achieved, failed)`` unpacks as the spec's
pair and each end's verdict agrees with its label.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from runner.front_end import front_end
from runner.job_folder import error_summary
from runner.job_result import GPUJobResult
from runner.searches.binary import BinarySearch, BinarySearchResult, Number
from runner.searches.driver import SearchSession
from runner.searches.posterior import UNJUDGED_IN_A_ROW, NoisyThreshold, ThresholdGrid
from runner.searches.space import probabilistic_options_of
from runner.searches.summary import JobSummary, TestedValue, json_summary
from runner.sweep_text import format_value

__all__ = ["ProbabilisticSearch", "default_max_jobs"]

logger = logging.getLogger("runner")

#: Jobs without a single verdict (``job_success`` returned None for each) after which the
#: search stops: a rule that can judge nothing would otherwise spend the whole budget and
#: answer from the prior alone.
NO_VERDICT_JOBS = 8


def default_max_jobs(space: Any, candidates: int | None = None) -> int:
    """Ten jobs per round classic bisection would need on ``space`` (``precision`` a
    distance, as for bisection: on a log scale, at the high end), or on ``candidates``
    values when fewer (the probabilistic grid's resolution)."""
    if space.log:
        rounds = math.log2(math.log(space.hi / space.lo) / math.log1p(space.precision / space.hi))
    else:
        rounds = math.log2((space.hi - space.lo) / space.precision)
    if candidates is not None and candidates > 1:
        rounds = min(rounds, math.log2(candidates - 1))
    return 10 * max(1, math.ceil(rounds))


class ProbabilisticSearch(BinarySearch):
    """A binary search with ``method="probabilistic"``."""

    method = "probabilistic"

    def reset(self) -> None:
        super().reset()
        if not hasattr(self, "max_jobs"):  # the first reset, from __init__: check the options
            self.confidence, self.target_rate, max_jobs = probabilistic_options_of(
                self.config, self.name
            )
            # Built once: the candidates depend on the range only (4,097 take a moment).
            self.grid = ThresholdGrid.of(self.space)
            self.max_jobs = max_jobs or default_max_jobs(self.space, len(self.grid.values))
        self.model = NoisyThreshold(
            self.space,
            confidence=self.confidence,
            target_rate=self.target_rate,
            max_jobs=self.max_jobs,
            pool=len(self.builder.points),
            grid=self.grid,
        )
        self.round_no = 0
        self._blocked_told: set[int] = set()

    # -- exploring --------------------------------------------------------------------

    async def explore(self, session: SearchSession) -> None:
        model = self.model
        if model.coarsest_step > self.space.precision * (1 + 1e-9):
            # The candidates are capped at 4,097 (geometric ones, on a log scale, are then
            # widest at the high end).
            logger.warning(
                "%s: %s is finer than the %d candidate values of %s allow (steps of up to "
                "%.3g%s); the answer is to within a step. Narrow the range for a finer "
                "answer.",
                self.name,
                front_end().setting(front_end().precision, self.space.precision),
                len(model.grid.values),
                self.prop,
                model.coarsest_step,
                ", towards the high end of a log range" if self.space.log else "",
            )
        while not model.done:
            # One job per idle slot (parallel_points, when a number, fixes the jobs a round).
            values = model.propose(self.points_per_round or max(1, session.share()))
            if not values:
                break
            self.round_no += 1
            self.status.rounds = self.round_no
            self.status.expected_jobs = self.max_jobs
            jobs = [job for value in values for job in self.jobs_at(value, 1)]
            session.claim(jobs)
            results = await session.run_jobs(jobs)
            by_value: dict[Number, list[tuple[GPUJobResult, bool | None]]] = {}
            for value, result in zip(values, results, strict=True):
                verdict = self._judge(value, result)
                model.record(value, verdict)
                by_value.setdefault(value, []).append((result, verdict))
                self.results_at.setdefault(value, []).append(result)
            for value, batch in by_value.items():
                self._note(value, batch)
            self._say_newly_blocked()
            if not model.judged and (model.jobs >= NO_VERDICT_JOBS or model.done):
                self.error = (
                    f"no job could be judged: job_success returned None for all {model.jobs} "
                    f"job(s) run (at {self.prop}={sorted(self.results_at)}), e.g. every job "
                    "failed; the search stopped. job_success (by default agg_results([result])"
                    "[0]) must return True or False for a job that finished. See the job logs "
                    f"under {self.builder.base_dir}."
                )
                logger.error("%s: %s", self.name, self.error)
                break
            self.status.interval = self._display_interval()
            logger.info(
                "%s: round %d ran %d job(s) at %s=%s; estimate %s, %d%% interval %s",
                self.name,
                self.round_no,
                len(values),
                self.prop,
                sorted(by_value),
                model.estimate,
                round(100 * self.confidence),
                model.interval,
            )
            session.save_progress()
        self.status.expected_jobs = self.status.submitted
        if not self.error and model.stop_reason == "unjudged":
            logger.warning(
                "%s: the values that decide the answer can't be tested again, their jobs "
                "kept failing (the %d%% interval %s, wider than %s); the estimate %s is less "
                "certain than asked. See the job logs under %s.",
                self.name,
                round(100 * self.confidence),
                model.interval,
                front_end().setting(front_end().precision, self.space.precision),
                model.estimate,
                self.builder.base_dir,
            )
        elif not self.error and model.stop_reason == "repetitions":
            logger.warning(
                "%s: the repetitions in %s are used up at the values that decide the answer "
                "(the %d%% interval %s, wider than %s); the estimate %s is less certain "
                "than asked (add repetitions, e.g. more seeds; for a rule that gives the same "
                "verdict every time, %s needs one job per value)",
                self.name,
                front_end().repetition_pool,
                round(100 * self.confidence),
                model.interval,
                front_end().setting(front_end().precision, self.space.precision),
                model.estimate,
                front_end().bisection,
            )
        elif not self.error and not model.resolved:
            logger.warning(
                "%s: %s spent before the %d%% interval %s narrowed to %s; "
                "the estimate %s is less certain than asked (raise %s, or accept a "
                "coarser %s)",
                self.name,
                front_end().setting(front_end().max_jobs, self.max_jobs),
                round(100 * self.confidence),
                model.interval,
                front_end().setting(front_end().precision, self.space.precision),
                model.estimate,
                front_end().max_jobs,
                front_end().precision,
            )
        self.report_answer()

    def _say_newly_blocked(self) -> None:
        """Warn once per value that is not tested again: its last jobs could not be judged."""
        for index in sorted(self.model.blocked_indices - self._blocked_told):
            self._blocked_told.add(index)
            value = self.model.grid.values[index]
            errors = [
                error_summary(r.error) for r in self.results_at.get(value, []) if not r.success
            ]
            logger.warning(
                "%s: %s=%s: its last %d job(s) could not be judged (%s); it is not tested "
                "again, and the answer comes from the values around it. See the job logs "
                "under %s.",
                self.name,
                self.prop,
                format_value(value),
                UNJUDGED_IN_A_ROW,
                errors[-1] if errors and errors[-1] else "job_success returned None",
                self.builder.base_dir,
            )

    def _judge(self, value: Number, result: GPUJobResult) -> bool | None:
        # job_success calls agg_results by default: an error names job_success and the value.
        verdict = self.call_user("job_success", value, result)
        return None if verdict is None else bool(verdict)

    def _note(self, value: Number, batch: list[tuple[GPUJobResult, bool | None]]) -> None:
        """One line of the history: a value's jobs of this round and how they were judged."""
        judged = [verdict for _, verdict in batch if verdict is not None]
        successes = sum(judged)
        self.tested.append(
            TestedValue(
                value=value,
                round=self.round_no,
                # All alike: that verdict; mixed (or none judged): None.
                success=judged[0] if judged and len(set(judged)) == 1 else None,
                result=json_summary([result for result, _ in batch]),
                jobs=[JobSummary.from_result(result) for result, _ in batch],
                successes=successes,
                judged=len(judged),
            )
        )

    def _display_interval(self) -> tuple[Number, Number]:
        lo, hi = self.model.interval
        return (self.space.lo if lo is None else lo, self.space.hi if hi is None else hi)

    # -- the answer -------------------------------------------------------------------

    @property
    def estimate(self) -> Number | None:
        """The model's estimate; None when no job was judged (the prior is no answer)."""
        return self.model.estimate if self.model.judged else None

    def answer(self) -> tuple[tuple[Number, Any] | None, tuple[Number, Any] | None]:
        """The tested values nearest the estimate whose agg_results over their jobs
        succeeded (on its success side, the estimate itself included) and failed (on its
        failing side), each with that result. Under noise the nearest tested value can
        have gone the other way (0 of 2 jobs passed just above the estimate); labelling it
        "achieved" would contradict its own tally."""
        estimate = self.estimate
        tested = sorted(self.results_at)
        if not tested or not self.model.judged:
            return None, None
        success_lower = self.space.success_lower
        if estimate is None:  # beyond the success end: every tested value is on the failing side
            success_side: list[Number] = []
            failing_side = tested
        else:
            success_side = [v for v in tested if (v >= estimate) == success_lower or v == estimate]
            failing_side = [v for v in tested if v not in success_side]
        # Nearest the estimate first.
        success_side.sort(reverse=not success_lower)
        failing_side.sort(reverse=success_lower)
        return self._first(success_side, True), self._first(failing_side, False)

    def _first(self, values: list[Number], verdict: bool) -> tuple[Number, Any] | None:
        """The first of ``values`` whose agg_results gives ``verdict``, with its result."""
        for value in values:
            success, result = self.aggregate(value, self.results_at[value])
            if success is verdict:
                return value, result
        return None

    @property
    def interval(self) -> tuple[Number | None, Number | None]:
        """The credible interval; ``(None, None)`` when no job was judged (the prior's
        interval says nothing the search saw)."""
        return self.model.interval if self.model.judged else (None, None)

    @property
    def outside_range(self) -> str | None:
        return self.model.outside_range

    @property
    def rounds(self) -> int:
        return self.round_no

    def _noise_in_values(self) -> dict[str, Any]:
        """The noise scale's posterior in the prop's terms: ``noise_scale`` (a distance) or,
        on a geometric grid, ``noise_factor``; none when no job was judged."""
        key = "noise_factor" if self.model.grid.geometric else "noise_scale"
        if not self.model.judged:
            return {key: None}
        return {key: [[round(s, 9), p] for s, p in self.model.noise_scale_marginal()]}

    def _posterior(self) -> list[tuple[Number | None, float]] | None:
        """The threshold's posterior; None when no job was judged (it would be the prior)."""
        return self.model.posterior() if self.model.judged else None

    def _noise(self) -> list[tuple[float, float]] | None:
        return self.model.noise_marginal() if self.model.judged else None

    def describe(self) -> dict[str, Any]:
        fields = super().describe()
        fields.update(
            estimate=self.estimate,
            confidence=self.confidence,
            posterior=[list(pair) for pair in self._posterior() or []] or None,
            noise=[[round(s, 6), p] for s, p in self._noise() or []] or None,
            **self._noise_in_values(),
            stopped=self.model.stop_reason,
        )
        return fields

    def payload(self, timestamp: str, total_time: float) -> dict[str, Any] | None:
        payload = super().payload(timestamp, total_time) or {}
        payload.update(
            estimate=self.estimate,
            confidence=self.confidence,
            posterior=self._posterior(),
            noise=self._noise(),
            **self._noise_in_values(),
        )
        return payload

    def outcome(self, results_file: str, total_time: float) -> BinarySearchResult:
        outcome = super().outcome(results_file, total_time)
        outcome.estimate = self.estimate
        outcome.posterior = self._posterior()
        outcome.confidence = self.confidence
        return outcome

    def answer_text(self) -> str:
        return (
            f"{self.status.submitted} job(s): estimate {self.estimate}, "
            f"{round(100 * self.confidence)}% interval {self.interval}"
        )
