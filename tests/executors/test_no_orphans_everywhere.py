"""Every executor ends a job's whole tree, daemons that left its session included.

The job of :mod:`orphan_jobs` starts a plain child, a child in a session of its own that
ignores SIGTERM, and a double-forked daemon; none may outlive the job's end or cancel.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from orphan_jobs import LeaveBehindJob
from sched_helpers import pid_alive, wait_until

from runner.executors.base import Executor
from runner.job_folder import read_job_json
from runner.scheduler import GPUScheduler

MakeExecutor = Callable[..., Executor]


def _left_nothing(job_dir: str) -> None:
    with open(os.path.join(job_dir, "pids.json")) as f:
        pids = list(json.load(f).values())
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="no process left")


def test_a_job_that_returns_leaves_nothing_running(
    make_executor: MakeExecutor, tmp_path: Any
) -> None:
    job = LeaveBehindJob(str(tmp_path / "returns"))

    async def main() -> Any:
        async with GPUScheduler(max_gpus=1, executor=make_executor()) as s:
            return await s.run_job(job)

    result = asyncio.run(main())
    assert result.success and result.result == 7, result.error
    _left_nothing(job.base_dir)


def test_a_cancelled_job_leaves_nothing_running(make_executor: MakeExecutor, tmp_path: Any) -> None:
    job = LeaveBehindJob(str(tmp_path / "cancelled"), mode="hang")

    async def main() -> None:
        async with GPUScheduler(max_gpus=1, executor=make_executor()) as s:
            task = asyncio.ensure_future(s.run_job(job))
            while not os.path.exists(os.path.join(job.base_dir, "pids.json")):
                await asyncio.sleep(0.05)  # waiting on the job's own file
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    _left_nothing(job.base_dir)
    assert (read_job_json(job.base_dir) or {}).get("status") == "cancelled"
