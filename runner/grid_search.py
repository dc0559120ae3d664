"""Grid search: every combination of ``sweep_props``, aggregated per search.

Example:
    >>> from runner.grid_search import run_grid_searches
    >>> # results = run_grid_searches([MyGrid(...)], max_gpus=4, simultaneous_jobs_per_gpu=2)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from runner._sync import run_sync
from runner.configs.search_configs import GridSearchConfig
from runner.errors import AggregationError
from runner.executors import Executor
from runner.progress import watch
from runner.scheduler import GPUScheduler
from runner.search_common import (
    PointBuilder,
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

__all__ = ["run_grid_search", "run_grid_searches"]

logger = logging.getLogger("runner")


class _GridRun:
    """One validated grid search: its jobs are known before anything runs."""

    def __init__(self, config: GridSearchConfig) -> None:
        self.config = config
        self.builder = PointBuilder(config, base=GridSearchConfig)
        self.jobs = self.builder.jobs_for()
        check_job_dirs_distinct(self.jobs, self.builder.name)
        self.status = SearchStatus(
            kind="grid_search",
            name=self.builder.name,
            base_dir=self.builder.base_dir,
            expected_jobs=len(self.jobs),
        )

    def _summary(self, status: str, started: float, **extra: Any) -> dict[str, Any]:
        return {
            "kind": "grid_search",
            "search": type(self.config).__name__,
            "base_dir": self.builder.base_dir,
            "status": status,
            "sweep_props": {
                key: [json_summary(v) for v in values] for key, values in self.builder.sweep.items()
            },
            "num_jobs": len(self.jobs),
            "started": started,
            **extra,
        }

    def _payload(
        self, aggregated: Any, results: Any, started: float, timestamp: str
    ) -> dict[str, Any]:
        return {
            "results": aggregated,
            "total_time": time.time() - started,
            "timestamp": timestamp,
            "sweep_props": self.builder.sweep,
            "points": [job.point for job in self.jobs],
            "job_results": results,
        }

    def _aggregate(self, results: list[Any]) -> Any:
        try:
            return self.config.agg_results(results)
        except Exception as exc:
            raise AggregationError(
                f"{self.builder.name}: agg_results raised {type(exc).__name__}: {exc}; every "
                "job's result is saved (job folders and the results pickle), so fix agg_results "
                "and rerun with resume=True to aggregate without running the jobs again"
            ) from exc

    async def run(self, scheduler: GPUScheduler, *, resume: bool) -> Any:
        search_context(scheduler).folders.claim(self.jobs, self.builder.name)
        started = time.time()
        self.status.started, self.status.state = started, "running"
        base_dir = self.builder.base_dir
        if not resume:
            log_reusable(self.builder.name, count_finished(self.jobs))
        write_summary(base_dir, self._summary("running", started))
        logger.info("%s: running %d job(s)", self.builder.name, len(self.jobs))
        results: list[Any] | None = None
        try:
            results = await run_jobs(self.jobs, scheduler, resume=resume, status=self.status)
            aggregated = self._aggregate(results)
            timestamp = new_timestamp()
            path = write_results_pickle(
                base_dir,
                "grid_search",
                timestamp,
                self._payload(aggregated, results, started, timestamp),
            )
            total_time = time.time() - started
            failed = sum(not r.success for r in results)
            write_summary(
                base_dir,
                self._summary(
                    "done",
                    started,
                    timestamp=timestamp,
                    total_time=total_time,
                    results_file=path,
                    num_failed=failed,
                    aggregated=json_summary(aggregated),
                    jobs=[job_summary(r) for r in results],
                ),
            )
        except BaseException as exc:
            cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            self._save_stopped("cancelled" if cancelled else "error", started, results, exc)
            raise
        self.status.state, self.status.ended = "done", time.time()
        logger.info(
            "%s: done in %.1f s, %d job(s), %d failed; results in %s",
            self.builder.name,
            total_time,
            len(results),
            failed,
            path,
        )
        return aggregated

    def _save_stopped(
        self, status: str, started: float, results: list[Any] | None, exc: BaseException
    ) -> None:
        """Keep what a stopped grid saw; the job results too when every job had finished."""
        self.status.state, self.status.ended = status, time.time()
        extra: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            if results is not None:
                timestamp = new_timestamp()
                extra["results_file"] = write_results_pickle(
                    self.builder.base_dir,
                    "grid_search",
                    timestamp,
                    self._payload(None, results, started, timestamp),
                )
                extra["jobs"] = [job_summary(r) for r in results]
            write_summary(self.builder.base_dir, self._summary(status, started, **extra))
        except Exception:  # never hide the error that stopped the search
            logger.exception("%s: could not save the stopped search's state", self.builder.name)


async def run_grid_search(
    config: GridSearchConfig, scheduler: GPUScheduler, *, resume: bool = False
) -> Any:
    """Run one grid search on an existing scheduler; return ``config.agg_results(results)``.

    The async form, for flows that share one scheduler among several searches.

    Example:
        >>> async def main(grid):
        ...     async with GPUScheduler(max_gpus=2) as scheduler:
        ...         return await run_grid_search(grid, scheduler)
    """
    return await _GridRun(config).run(scheduler, resume=resume)


async def _run_all(runs: Sequence[_GridRun], scheduler: GPUScheduler, resume: bool) -> list[Any]:
    outcomes = await asyncio.gather(
        *(run.run(scheduler, resume=resume) for run in runs), return_exceptions=True
    )
    # One search's bug (in agg_results, say) must not discard the others' results:
    # they all finish and save first, then the first error is raised.
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)


def run_grid_searches(
    configs: Sequence[GridSearchConfig] | GridSearchConfig,
    max_gpus: int | None = None,
    simultaneous_jobs_per_gpu: int | None = None,
    *,
    resume: bool = False,
    executor: Executor | str | None = None,
    progress: bool | None = None,
) -> list[Any]:
    """Run grid searches concurrently on one shared scheduler; return their aggregated results.

    Every config is validated before any job starts. Each search writes
    ``{base_dir}/grid_search_results_{timestamp}.pkl`` and ``{base_dir}/summary.json``.

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
        ``[config.agg_results(results) for config in configs]``, in order.

    Example:
        >>> # results = run_grid_searches(configs, max_gpus=4, simultaneous_jobs_per_gpu=2)
    """
    if isinstance(configs, GridSearchConfig):
        configs = [configs]
    runs = [_GridRun(config) for config in configs]
    check_distinct_base_dirs([run.builder for run in runs])
    check_job_dirs_distinct([job for run in runs for job in run.jobs], "run_grid_searches")

    async def main() -> list[Any]:
        async with GPUScheduler(
            max_gpus, simultaneous_jobs_per_gpu, executor=executor
        ) as scheduler:
            return await watch(
                _run_all(runs, scheduler, resume),
                [run.status for run in runs],
                scheduler,
                progress=progress,
            )

    return run_sync(main())
