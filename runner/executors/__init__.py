"""Executors run one job attempt on one device slot: local processes by default.

``executor=`` of the run functions and of :class:`~runner.scheduler.GPUScheduler`
takes an :class:`Executor` object, or one of the names in :data:`EXECUTOR_NAMES`.
"""

from __future__ import annotations

import difflib
import importlib

from runner.errors import ExecutorConfigError
from runner.executors.base import Executor, SlotPlan, SlotRequest
from runner.executors.launchers import Launcher, ProcessLauncher, WorkerProcess
from runner.executors.local import LocalExecutor

__all__ = [
    "EXECUTOR_NAMES",
    "Executor",
    "Launcher",
    "LocalExecutor",
    "ProcessLauncher",
    "SlotPlan",
    "SlotRequest",
    "WorkerProcess",
    "resolve_executor",
]

#: name -> "module:class"; the optional ones are imported only when asked for.
EXECUTOR_NAMES: dict[str, str] = {
    "local": "runner.executors.local:LocalExecutor",
    "ray": "runner.executors.ray:RayExecutor",
    "slurm": "runner.executors.slurm:SlurmExecutor",
}


def resolve_executor(executor: Executor | str | None) -> Executor | None:
    """An executor object from an object, a name (``"local"``, ``"ray"``, ``"slurm"``) or None.

    Example:
        >>> type(resolve_executor("local")).__name__
        'LocalExecutor'
    """
    if executor is None or isinstance(executor, Executor):
        return executor
    if isinstance(executor, str) and executor in EXECUTOR_NAMES:
        module_name, class_name = EXECUTOR_NAMES[executor].split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        instance: Executor = cls()
        return instance
    close = difflib.get_close_matches(str(executor), list(EXECUTOR_NAMES), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    names = ", ".join(repr(n) for n in EXECUTOR_NAMES)
    raise ExecutorConfigError(
        f"executor={executor!r} is not an executor: pass an Executor object or one of {names}.{hint}"
    )
