"""A driver that the no-orphans tests kill: one hanging job that leaves descendants behind.

usage: python orphan_driver.py OUT_DIR START_METHOD [raise]

With ``raise`` the driver itself raises once the job runs (an exception in the driver).
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orphan_jobs import LeaveBehindJob  # noqa: E402

from runner._sync import run_sync  # noqa: E402
from runner.executors.local import LocalExecutor  # noqa: E402
from runner.scheduler import GPUScheduler  # noqa: E402

out, method = sys.argv[1], sys.argv[2]
fail = len(sys.argv) > 3 and sys.argv[3] == "raise"


async def main() -> None:
    executor = LocalExecutor(grace_period=0.5, start_method=method)  # type: ignore[arg-type]
    async with GPUScheduler(executor=executor) as scheduler:
        job = LeaveBehindJob(os.path.join(out, "job"), mode="hang")
        task = asyncio.ensure_future(scheduler.run_job(job))
        if fail:
            pids = os.path.join(job.base_dir, "pids.json")
            while not os.path.exists(pids):  # the job's own file says it runs
                await asyncio.sleep(0.02)
            raise ValueError("the driver failed while a job ran")
        await task


run_sync(main())
