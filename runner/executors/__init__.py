"""Executors run one job attempt on one device slot: local processes by default."""

from __future__ import annotations

from runner.executors.base import Executor
from runner.executors.local import LocalExecutor, ProcessLauncher, WorkerProcess

__all__ = ["Executor", "LocalExecutor", "ProcessLauncher", "WorkerProcess"]
