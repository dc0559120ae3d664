"""Binary search for the threshold value of one property, seeds aggregated at each value.

The math lives in :mod:`runner.bisection` (pure); this module turns its
proposals into jobs, runs them on the shared scheduler, and saves what it saw.

Example:
    >>> from runner.binary_search import run_binary_searches
    >>> # [(achieved, failed)] = run_binary_searches([MySearch(...)], max_gpus=4)
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import time
import typing
from collections.abc import Sequence
from typing import Any, NamedTuple

from runner._sync import run_sync
from runner.bisection import Bisection, BisectionSpace
from runner.configs.search_configs import BinarySearchConfig
from runner.errors import AggregationError, InconclusiveSearchError, SearchConfigError
from runner.executors import Executor
from runner.jobs import Job
from runner.progress import watch
from runner.scheduler import GPUJobResult, GPUScheduler
from runner.search_common import (
    FolderRegistry,
    PointBuilder,
    SearchContext,
    SearchStatus,
    check_distinct_base_dirs,
    check_job_dirs_distinct,
    count_finished,
    log_reusable,
    run_jobs,
    search_context,
)
from runner.search_results import (
    job_summary,
    json_summary,
    new_timestamp,
    write_results_pickle,
    write_summary,
)

__all__ = ["BinarySearchResult", "run_binary_search", "run_binary_searches"]

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
    early, else ``None``), ``results_file``, ``total_time``.

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

    def raise_if_stopped(self) -> BinarySearchResult:
        """Raise :class:`InconclusiveSearchError` if the search stopped early; else return self.

        For users who prefer an exception to checking ``.error``.
        """
        if self.error:
            raise InconclusiveSearchError(self.error)
        return self


def _points_per_round(scheduler: GPUScheduler, jobs_per_point: int) -> int:
    """Values a round tests: this search's share of the slots, over the jobs of one value.

    The slots are split among the binary searches running on the scheduler now, so
    concurrent searches share them fairly; one finishing frees its share for the rest.
    """
    active = max(1, search_context(scheduler).active_searches)
    return max(1, (scheduler.num_slots // active) // max(1, jobs_per_point))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _field_is_int(experiment_config: Any, prop: str) -> bool:
    try:
        hints = typing.get_type_hints(type(experiment_config))
    except Exception:  # unresolvable annotations: fall back to the range's types
        return False
    return hints.get(prop) is int


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


class _BinaryRun:
    """One validated binary search."""

    def __init__(self, config: BinarySearchConfig) -> None:
        self.config = config
        required = ("get_experiment_config_and_base_dir", "run_experiment_config", "agg_results")
        self.builder = PointBuilder(
            config, base=BinarySearchConfig, required_methods=required, searched=config.prop
        )
        self.name = self.builder.name
        self.space = self._space()
        self.points_per_round = self._parallel_points()
        self._check_folders()
        self._history: list[dict[str, Any]] = []
        self._told_about_reuse = False
        self.status = SearchStatus(
            kind="binary_search",
            name=self.name,
            base_dir=self.builder.base_dir,
            interval=(self.space.lo, self.space.hi),
        )

    def _fail(self, message: str) -> SearchConfigError:
        return SearchConfigError(f"{self.name}: {message}")

    def _space(self) -> BisectionSpace:
        config = self.config
        if not isinstance(config.prop, str) or not config.prop:
            raise self._fail(f"prop={config.prop!r} must name the property to search over")
        bounds = config.range
        if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
            raise self._fail(f"range={bounds!r} must be a pair (lo, hi), e.g. range=(10, 100)")
        lo, hi = bounds
        if not (_is_number(lo) and _is_number(hi)) or not all(map(math.isfinite, (lo, hi))):
            raise self._fail(f"range={bounds!r} must hold two finite numbers")
        if not lo < hi:
            raise self._fail(
                f"range={bounds!r} is empty: lo must be below hi, e.g. range=({hi}, {lo})"
                if lo > hi
                else f"range={bounds!r} is empty: lo must be below hi"
            )
        precision = config.precision
        if not _is_number(precision) or not precision > 0 or not math.isfinite(precision):
            raise self._fail(f"precision={precision!r} must be a positive number")
        if config.scale not in ("linear", "log"):
            raise self._fail(f"scale={config.scale!r} must be 'linear' or 'log'")
        if config.scale == "log" and lo <= 0:
            raise self._fail(f"scale='log' needs a positive range, got range={bounds!r}")
        integer = (_is_int(lo) and _is_int(hi) and _is_int(precision)) or _field_is_int(
            config.base_experiment_config, config.prop
        )
        if integer:
            lo, hi = math.floor(lo), math.ceil(hi)
            if not lo < hi:
                raise self._fail(f"range={bounds!r} holds no integers for int prop {config.prop!r}")
        return BisectionSpace(
            lo=int(lo) if integer else float(lo),
            hi=int(hi) if integer else float(hi),
            precision=(
                int(precision) if integer and float(precision).is_integer() else float(precision)
            ),
            integer=integer,
            log=config.scale == "log",
            success_lower=bool(config.success_direction_lower),
        )

    def _parallel_points(self) -> int | None:
        value = self.config.parallel_points
        if value == "auto":
            return None
        if not _is_int(value) or value < 1:
            raise self._fail(
                f"parallel_points={value!r} must be 'auto' or a whole number >= 1 "
                "(1 is classic bisection)"
            )
        return int(value)

    def _check_folders(self) -> None:
        # Build the jobs of the first two values classic bisection would test: the
        # user's folders must differ across seeds and across searched values.
        first = self.space.midpoint(self.space.lo, self.space.hi)
        probes = [first]
        if not self.space.is_resolved(self.space.lo, first):
            probes.append(self.space.midpoint(self.space.lo, first))
        self.probe_jobs = [
            job for value in probes for job in self.builder.jobs_for({self.config.prop: value})
        ]
        check_job_dirs_distinct(self.probe_jobs, self.name)

    # -- running ----------------------------------------------------------------------

    def _summary(
        self, search: Bisection, status: str, started: float, **extra: Any
    ) -> dict[str, Any]:
        achieved, failed = search.achieved, search.failed
        return {
            "kind": "binary_search",
            "search": type(self.config).__name__,
            "base_dir": self.builder.base_dir,
            "status": status,
            "prop": self.config.prop,
            "range": [self.space.lo, self.space.hi],
            "precision": self.space.precision,
            "success_direction_lower": self.space.success_lower,
            "scale": self.config.scale,
            "interval": list(search.interval),
            "rounds": search.rounds,
            "achieved": None
            if achieved is None
            else {"value": achieved[0], "result": json_summary(achieved[1])},
            "failed": None
            if failed is None
            else {"value": failed[0], "result": json_summary(failed[1])},
            "points": self._history,
            "started": started,
            **extra,
        }

    def _payload(
        self, search: Bisection, total_time: float, timestamp: str, error: str | None
    ) -> dict[str, Any]:
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
            "history": self._history,
            "error": error,
        }

    def _save_partial(
        self, search: Bisection, started: float, status: str, exc: BaseException
    ) -> None:
        """Keep what a stopped search saw: summary.json always, the pickle on errors."""
        base_dir = self.builder.base_dir
        extra: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            if status == "error":
                timestamp = new_timestamp()
                extra["results_file"] = write_results_pickle(
                    base_dir,
                    "binary_search",
                    timestamp,
                    self._payload(search, time.time() - started, timestamp, extra["error"]),
                )
            write_summary(base_dir, self._summary(search, status, started, **extra))
        except Exception:  # never hide the error that stopped the search
            logger.exception("%s: could not save the stopped search's state", self.name)

    async def _evaluate(
        self,
        value: Number,
        jobs: list[Job],
        round_no: int,
        scheduler: GPUScheduler,
        resume: bool,
    ) -> tuple[bool | None, Any, list[GPUJobResult]]:
        if not resume and not self._told_about_reuse:
            finished = count_finished(jobs)
            if finished:
                self._told_about_reuse = True
                log_reusable(self.name, finished)
        results = await run_jobs(jobs, scheduler, resume=resume, status=self.status)
        success, result = self._aggregate(value, results)
        if success is None:
            logger.warning(
                "%s: %s=%r is inconclusive (agg_results returned success=None); running it once more",
                self.name,
                self.config.prop,
                value,
            )
            # resume=True here reuses the jobs that just succeeded: only failed ones rerun.
            results = await run_jobs(jobs, scheduler, resume=True, status=self.status)
            success, result = self._aggregate(value, results)
        self._history.append(
            {
                "value": value,
                "round": round_no,
                "success": success,
                "result": json_summary(result),
                "jobs": [job_summary(r) for r in results],
            }
        )
        return success, result, results

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

    async def run(self, scheduler: GPUScheduler, *, resume: bool) -> BinarySearchResult:
        context = search_context(scheduler)
        context.active_searches += 1
        try:
            # Let searches started together register before any sizes its first round.
            await asyncio.sleep(0)
            return await self._run(scheduler, context, resume=resume)
        finally:
            context.active_searches -= 1

    async def _run(
        self, scheduler: GPUScheduler, context: SearchContext, *, resume: bool
    ) -> BinarySearchResult:
        self._history = []
        self._told_about_reuse = False
        search = Bisection(self.space)
        started = time.time()
        base_dir = self.builder.base_dir
        error: str | None = None
        jobs_per_point = len(self.builder.points)
        self.status.started, self.status.state = started, "running"
        write_summary(base_dir, self._summary(search, "running", started))
        try:
            while not search.done:
                m = self.points_per_round or _points_per_round(scheduler, jobs_per_point)
                self.status.expected_jobs = (
                    self.status.submitted + _rounds_left(search, m) * m * jobs_per_point
                )
                values = search.propose(m)
                self.status.rounds = search.rounds
                # Every job of the round is built and its folder claimed before any runs:
                # two values sharing a folder would swap results.
                round_jobs = [self.builder.jobs_for({self.config.prop: v}) for v in values]
                context.folders.claim([job for jobs in round_jobs for job in jobs], self.name)
                outcomes = await asyncio.gather(
                    *(
                        self._evaluate(v, jobs, search.rounds, scheduler, resume)
                        for v, jobs in zip(values, round_jobs, strict=True)
                    )
                )
                for value, (success, _result, _) in zip(values, outcomes, strict=True):
                    if success is None:
                        error = (
                            f"{self.config.prop}={value!r} was inconclusive twice (agg_results "
                            "returned success=None, e.g. every job failed); the search stopped "
                            f"at interval {search.interval}. See the job logs under {base_dir}."
                        )
                if error is not None:
                    logger.error("%s: %s", self.name, error)
                    break
                for value, (success, result, _) in zip(values, outcomes, strict=True):
                    search.record(value, bool(success), result)
                self.status.interval = search.interval
                logger.info(
                    "%s: round %d tested %s=%s -> %s; interval now %s",
                    self.name,
                    search.rounds,
                    self.config.prop,
                    values,
                    ["success" if o[0] else "failure" for o in outcomes],
                    search.interval,
                )
                write_summary(base_dir, self._summary(search, "running", started))
            self.status.state, self.status.ended = ("error" if error else "done"), time.time()
            self.status.expected_jobs = self.status.submitted
            total_time = time.time() - started
            timestamp = new_timestamp()
            path = write_results_pickle(
                base_dir,
                "binary_search",
                timestamp,
                self._payload(search, total_time, timestamp, error),
            )
            write_summary(
                base_dir,
                self._summary(
                    search,
                    "error" if error else "done",
                    started,
                    timestamp=timestamp,
                    total_time=total_time,
                    results_file=path,
                    error=error,
                ),
            )
        except BaseException as exc:
            cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            status = "cancelled" if cancelled else "error"
            self.status.state, self.status.ended = status, time.time()
            self._save_partial(search, started, status, exc)
            raise
        outcome = BinarySearchResult(search.achieved, search.failed)
        outcome.interval = search.interval
        outcome.rounds = search.rounds
        outcome.history = self._history
        outcome.error = error
        outcome.results_file = path
        outcome.total_time = total_time
        logger.info(
            "%s: done in %.1f s, %d round(s): achieved %s, failed %s; results in %s",
            self.name,
            total_time,
            search.rounds,
            None if search.achieved is None else search.achieved[0],
            None if search.failed is None else search.failed[0],
            path,
        )
        return outcome


async def run_binary_search(
    config: BinarySearchConfig, scheduler: GPUScheduler, *, resume: bool = False
) -> BinarySearchResult:
    """Run one binary search on an existing scheduler; return ``(achieved, failed)``.

    The async form, for flows that share one scheduler among several searches.

    Example:
        >>> async def main(search):
        ...     async with GPUScheduler(max_gpus=2) as scheduler:
        ...         achieved, failed = await run_binary_search(search, scheduler)
    """
    return await _BinaryRun(config).run(scheduler, resume=resume)


def run_binary_searches(
    configs: Sequence[BinarySearchConfig] | BinarySearchConfig,
    max_gpus: int | None = None,
    simultaneous_jobs_per_gpu: int | None = None,
    *,
    resume: bool = False,
    executor: Executor | str | None = None,
    progress: bool | None = None,
) -> list[BinarySearchResult]:
    """Run binary searches concurrently on one shared scheduler.

    Every config is validated before any job starts. Each search writes
    ``{base_dir}/binary_search_results_{timestamp}.pkl`` and ``{base_dir}/summary.json``.
    With ``parallel_points="auto"`` (the default) the searches share the slots and
    each round tests as many values as its share fills; the answers are those of
    classic bisection.

    Args:
        configs: the searches (a single config is accepted too).
        max_gpus: devices to use at most (default: all visible; 0: CPU slots).
        simultaneous_jobs_per_gpu: jobs sharing one device (default 1).
        resume: reuse every job whose folder holds a successful result for the same config.
        executor: how jobs run: an Executor, or "local" (the default: a process per job),
            "ray" or "slurm".
        progress: show live progress (None, the default, and True: a live table on a
            terminal, plain lines on stderr otherwise; False: nothing). See
            :mod:`runner.progress`.

    Returns:
        One ``(achieved_results, failed_results)`` per config, in order: each the
        ``(value, result)`` of the best succeeding and the closest failing value, or ``None``.

    Example:
        >>> # [(achieved, failed)] = run_binary_searches([search], max_gpus=4)
    """
    if isinstance(configs, BinarySearchConfig):
        configs = [configs]
    runs = [_BinaryRun(config) for config in configs]
    check_distinct_base_dirs([run.builder for run in runs])
    probes = FolderRegistry()  # folders shared across the searches fail before any job runs
    for run in runs:
        probes.claim(run.probe_jobs, run.name)

    async def main() -> list[BinarySearchResult]:
        async with GPUScheduler(
            max_gpus, simultaneous_jobs_per_gpu, executor=executor
        ) as scheduler:
            outcomes = await watch(
                asyncio.gather(
                    *(run.run(scheduler, resume=resume) for run in runs),
                    return_exceptions=True,
                ),
                [run.status for run in runs],
                scheduler,
                progress=progress,
            )
        # One search's bug must not discard the others' results: all finish and save first.
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)  # type: ignore[arg-type]

    return run_sync(main())
