"""A driver that calls the sync API from inside ``asyncio.run`` (as a notebook-like host does)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from runner._sync import run_sync
from runner.jobs import Job
from runner.scheduler import GPUScheduler


def sleep_long(_: int) -> None:
    time.sleep(60)


async def sweep(root: str) -> list:
    async with GPUScheduler(max_gpus=0, cpu_slots=2) as scheduler:
        jobs = [Job(run_fn=sleep_long, config=i, base_dir=f"{root}/job{i}") for i in range(2)]
        return await asyncio.gather(*(scheduler.run_job(job) for job in jobs))


async def cell(root: str) -> None:
    run_sync(sweep(root))


if __name__ == "__main__":
    # A driver started in the background from a script inherits SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    asyncio.run(cell(sys.argv[1]))
