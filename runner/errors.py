"""The exceptions Runner raises: one small hierarchy, each a one-line contract.

Every error a user can trigger names the value at fault, the problem and the fix.
"""

from __future__ import annotations

__all__ = [
    "RunnerError",
    "SearchConfigError",
    "AggregationError",
    "DeviceConfigError",
    "ExecutorConfigError",
    "ExpressionError",
    "InconclusiveSearchError",
    "JobCancelledError",
    "MissingDependencyError",
    "ReportError",
    "SchedulerClosedError",
    "SearchLockedError",
]


class RunnerError(Exception):
    """Base class of every error Runner raises on purpose."""


class SearchConfigError(RunnerError, ValueError):
    """A search config is invalid; raised before any job starts."""


class AggregationError(RunnerError):
    """A search's agg_results raised, or returned something the search can't use."""


class DeviceConfigError(RunnerError, ValueError):
    """A device or slot option (max_gpus, simultaneous_jobs_per_gpu, ...) is invalid."""


class ExecutorConfigError(RunnerError, ValueError):
    """An executor name or executor option is invalid."""


class InconclusiveSearchError(RunnerError):
    """A binary search could not decide a point (agg_results said None twice)."""


class JobCancelledError(RunnerError):
    """A job was cancelled (Ctrl-C, SIGTERM or shutdown) before it finished."""


class MissingDependencyError(RunnerError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class SchedulerClosedError(RunnerError, RuntimeError):
    """A job was submitted to a GPUScheduler after its shutdown()."""


class ExpressionError(RunnerError, ValueError):
    """A success or metric expression uses something the evaluator does not allow, or failed."""


class ReportError(RunnerError, ValueError):
    """What was asked of a report can't be done: no such folder, prop or metric."""


class SearchLockedError(RunnerError):
    """Another driver is running a search in the same folder; raised before any job starts."""
