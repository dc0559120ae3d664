"""A driver for the Ctrl-C tests: three hanging jobs (with grandchildren) on two slots.

usage: python driver.py OUT_DIR [GRACE_SECONDS]   (CUDA_VISIBLE_DEVICES comes from the environment)
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sched_jobs import HangJob  # noqa: E402

from runner._sync import run_sync  # noqa: E402
from runner.executors.local import LocalExecutor  # noqa: E402
from runner.scheduler import GPUScheduler  # noqa: E402

out = sys.argv[1]
grace = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0


async def main() -> list:
    async with GPUScheduler(executor=LocalExecutor(grace_period=grace)) as scheduler:
        jobs = [
            HangJob(os.path.join(out, "obeys")),
            HangJob(os.path.join(out, "ignores"), ignore_term=True),
            HangJob(os.path.join(out, "queued")),
        ]
        return await asyncio.gather(*(scheduler.run_job(j) for j in jobs))


run_sync(main())
print("finished without being interrupted")
