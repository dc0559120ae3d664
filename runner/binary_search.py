"""Binary search for the threshold value of one property, seeds aggregated at each value.

The strategy is :class:`runner.searches.binary.BinarySearch` (its math, pure, in
:mod:`runner.searches.bisection`); the driver shared with the other search kinds
is :mod:`runner.searches.driver`.

Example:
    >>> from runner.binary_search import run_binary_searches
    >>> # [(achieved, failed)] = run_binary_searches([MySearch(...)], max_gpus=4)
"""

from __future__ import annotations

from collections.abc import Sequence

from runner.configs.search_configs import BinarySearchConfig
from runner.errors import SearchConfigError
from runner.executors import Executor
from runner.scheduler import GPUScheduler
from runner.searches.binary import BinarySearch, BinarySearchResult
from runner.searches.context import SearchContext
from runner.searches.driver import SlotOptions, drive
from runner.searches.noisy import ProbabilisticSearch
from runner.searches.space import options_of_the_other_method

__all__ = ["BinarySearchResult", "run_binary_search", "run_binary_searches"]


def binary_search_of(config: BinarySearchConfig) -> BinarySearch:
    """The validated search for ``config``, by its ``method``."""
    method = getattr(config, "method", "bisection")
    name = f"{type(config).__name__}(base_dir={getattr(config, 'base_dir', None)!r})"
    if method not in ("bisection", "probabilistic"):
        raise SearchConfigError(
            f"{name}: method={method!r} must be 'bisection' (classic, exact for deterministic "
            "rules) or 'probabilistic' (for outcomes that vary from seed to seed)"
        )
    options_of_the_other_method(config, name, method)
    if method == "probabilistic":
        return ProbabilisticSearch(config)
    return BinarySearch(config)


async def run_binary_search(
    config: BinarySearchConfig,
    scheduler: GPUScheduler,
    *,
    resume: bool = False,
    context: SearchContext | None = None,
) -> BinarySearchResult:
    """Run one binary search on an existing scheduler; return ``(achieved, failed)``.

    The async form, for flows that share one scheduler among several searches:
    pass them all the same ``context`` (a :class:`~runner.searches.context.SearchContext`)
    so that they share the slots fairly and their folders are checked against each other's.

    Example:
        >>> async def main(search):
        ...     async with GPUScheduler(max_gpus=2) as scheduler:
        ...         achieved, failed = await run_binary_search(search, scheduler)
    """
    outcome: BinarySearchResult = await binary_search_of(config).run(
        scheduler, context=context or SearchContext(), resume=resume
    )
    return outcome


def run_binary_searches(
    configs: Sequence[BinarySearchConfig] | BinarySearchConfig,
    max_gpus: int | None = None,
    simultaneous_jobs_per_gpu: int | None = None,
    *,
    resume: bool = False,
    executor: Executor | str | None = None,
    progress: bool | None = None,
    skip_busy_gpus: bool = False,
    cpu_slots: int | None = None,
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
        skip_busy_gpus: leave out GPUs whose memory is already in use (local executor).
        cpu_slots: jobs at once when running on CPU (default: simultaneous_jobs_per_gpu).

    Returns:
        One ``(achieved_results, failed_results)`` per config, in order: each the
        ``(value, result)`` of the best succeeding and the closest failing value, or ``None``.

    Example:
        >>> # [(achieved, failed)] = run_binary_searches([search], max_gpus=4)
    """
    runs = [
        binary_search_of(c)
        for c in ([configs] if isinstance(configs, BinarySearchConfig) else configs)
    ]
    slots = SlotOptions(max_gpus, simultaneous_jobs_per_gpu, skip_busy_gpus, cpu_slots)
    return drive(runs, slots, resume=resume, executor=executor, progress=progress)
