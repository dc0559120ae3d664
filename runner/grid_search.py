"""Grid search: every combination of ``sweep_props``, aggregated per search.

The strategy is :class:`runner.searches.grid.GridSearch`; the driver shared with
the other search kinds is :mod:`runner.searches.driver`.

Example:
    >>> from runner.grid_search import run_grid_searches
    >>> # results = run_grid_searches([MyGrid(...)], max_gpus=4, simultaneous_jobs_per_gpu=2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.configs.search_configs import GridSearchConfig
from runner.executors import Executor
from runner.scheduler import GPUScheduler
from runner.searches.context import SearchContext
from runner.searches.driver import SlotOptions, drive
from runner.searches.grid import GridSearch

__all__ = ["run_grid_search", "run_grid_searches"]


async def run_grid_search(
    config: GridSearchConfig,
    scheduler: GPUScheduler,
    *,
    resume: bool = False,
    context: SearchContext | None = None,
) -> Any:
    """Run one grid search on an existing scheduler; return ``config.agg_results(results)``.

    The async form, for flows that share one scheduler among several searches:
    pass them all the same ``context`` (a :class:`~runner.searches.context.SearchContext`)
    so that their experiment folders are checked against each other's.

    Example:
        >>> async def main(grid):
        ...     async with GPUScheduler(max_gpus=2) as scheduler:
        ...         return await run_grid_search(grid, scheduler)
    """
    return await GridSearch(config).run(
        scheduler, context=context or SearchContext(), resume=resume
    )


def run_grid_searches(
    configs: Sequence[GridSearchConfig] | GridSearchConfig,
    max_gpus: int | None = None,
    simultaneous_jobs_per_gpu: int | None = None,
    *,
    resume: bool = False,
    executor: Executor | str | None = None,
    progress: bool | None = None,
    skip_busy_gpus: bool = False,
    cpu_slots: int | None = None,
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
        skip_busy_gpus: leave out GPUs whose memory is already in use (local executor).
        cpu_slots: jobs at once when running on CPU (default: simultaneous_jobs_per_gpu).

    Returns:
        ``[config.agg_results(results) for config in configs]``, in order.

    Example:
        >>> # results = run_grid_searches(configs, max_gpus=4, simultaneous_jobs_per_gpu=2)
    """
    runs = [
        GridSearch(c) for c in ([configs] if isinstance(configs, GridSearchConfig) else configs)
    ]
    slots = SlotOptions(max_gpus, simultaneous_jobs_per_gpu, skip_busy_gpus, cpu_slots)
    return drive(runs, slots, resume=resume, executor=executor, progress=progress)
