"""The driver W6 interrupts: 16 jobs that each sleep 60 s with a grandchild, on 16 slots.

usage: python -m benchmarks.w6_driver MARKER_DIR JOBS_DIR [START_METHOD]
"""

from __future__ import annotations

import asyncio
import os
import sys

from benchmarks.jobs import sleep_with_grandchild
from runner._sync import run_sync
from runner.executors.local import LocalExecutor
from runner.jobs import Job
from runner.scheduler import GPUJobResult, GPUScheduler


def main(argv: list[str]) -> None:
    marker_dir, jobs_dir = argv[1], argv[2]
    method = argv[3] if len(argv) > 3 else "default"
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(8))

    async def run() -> list[GPUJobResult]:
        executor = (
            LocalExecutor(grace_period=5.0)
            if method == "default"
            else LocalExecutor(
                grace_period=5.0, start_method="spawn" if method == "spawn" else "forkserver"
            )
        )
        async with GPUScheduler(simultaneous_jobs_per_gpu=2, executor=executor) as scheduler:
            jobs = [
                Job(run_fn=sleep_with_grandchild, config=marker_dir, base_dir=f"{jobs_dir}/j{i}")
                for i in range(16)
            ]
            return list(await asyncio.gather(*(scheduler.run_job(j) for j in jobs)))

    run_sync(run())


if __name__ == "__main__":
    main(sys.argv)
