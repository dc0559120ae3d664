"""Runner: sweep ML experiments over GPUs.

Grid search and binary search over experiment configs, several seeds aggregated
per point, k jobs per GPU, each job in its own process with its own
``CUDA_VISIBLE_DEVICES``, results that survive crashes and resume.

Example:
    >>> from runner import GPUScheduler, GPUJobResult, run_grid_searches
    >>> # results = run_grid_searches(configs, max_gpus=4, simultaneous_jobs_per_gpu=2)

The public names are re-exported here explicitly, and imported on first use:
every job's child process imports ``runner``, and must not pay for the search
layer it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "GPUScheduler": "runner.scheduler",
    "GPUJobResult": "runner.scheduler",
    "Job": "runner.jobs",
    "run_grid_searches": "runner.grid_search",
    "run_grid_search": "runner.grid_search",
    "run_binary_searches": "runner.binary_search",
    "run_binary_search": "runner.binary_search",
    "BinarySearchResult": "runner.binary_search",
    "GridSearchConfig": "runner.configs.search_configs",
    "BinarySearchConfig": "runner.configs.search_configs",
    "BaseExperimentConfig": "runner.configs.base_experiment_config",
    "RunnerError": "runner.errors",
    "SearchConfigError": "runner.errors",
    "AggregationError": "runner.errors",
    "DeviceConfigError": "runner.errors",
    "ExecutorConfigError": "runner.errors",
    "ExpressionError": "runner.errors",
    "ReportError": "runner.errors",
    "InconclusiveSearchError": "runner.errors",
    "JobCancelledError": "runner.errors",
    "MissingDependencyError": "runner.errors",
    "SchedulerClosedError": "runner.errors",
    "SearchLockedError": "runner.errors",
    "Device": "runner.devices",
    "DeviceInfo": "runner.devices",
    "detect_devices": "runner.devices",
    "select_devices": "runner.devices",
    "Executor": "runner.executors.base",
    "LocalExecutor": "runner.executors.local",
    "load_finished_result": "runner.resume",
    "JobRecord": "runner.job_record",
    "JobState": "runner.job_record",
    "read_job_json": "runner.job_folder",
}

__all__ = [
    "__version__",
    "GPUScheduler",
    "GPUJobResult",
    "Job",
    "run_grid_searches",
    "run_grid_search",
    "run_binary_searches",
    "run_binary_search",
    "BinarySearchResult",
    "GridSearchConfig",
    "BinarySearchConfig",
    "BaseExperimentConfig",
    "RunnerError",
    "SearchConfigError",
    "AggregationError",
    "DeviceConfigError",
    "ExecutorConfigError",
    "ExpressionError",
    "ReportError",
    "InconclusiveSearchError",
    "JobCancelledError",
    "MissingDependencyError",
    "SchedulerClosedError",
    "SearchLockedError",
    "Device",
    "DeviceInfo",
    "detect_devices",
    "select_devices",
    "Executor",
    "LocalExecutor",
    "load_finished_result",
    "read_job_json",
    "JobRecord",
    "JobState",
]

if TYPE_CHECKING:
    from runner.binary_search import BinarySearchResult, run_binary_search, run_binary_searches
    from runner.configs.base_experiment_config import BaseExperimentConfig
    from runner.configs.search_configs import BinarySearchConfig, GridSearchConfig
    from runner.devices import Device, DeviceInfo, detect_devices, select_devices
    from runner.errors import (
        AggregationError,
        DeviceConfigError,
        ExecutorConfigError,
        ExpressionError,
        InconclusiveSearchError,
        JobCancelledError,
        MissingDependencyError,
        ReportError,
        RunnerError,
        SchedulerClosedError,
        SearchConfigError,
        SearchLockedError,
    )
    from runner.executors.base import Executor
    from runner.executors.local import LocalExecutor
    from runner.grid_search import run_grid_search, run_grid_searches
    from runner.job_folder import read_job_json
    from runner.job_record import JobRecord, JobState
    from runner.jobs import Job
    from runner.resume import load_finished_result
    from runner.scheduler import GPUJobResult, GPUScheduler


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
