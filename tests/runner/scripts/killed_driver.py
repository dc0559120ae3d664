"""A driver that the test kills with SIGKILL: two hanging jobs, one whose grandchild ignores SIGTERM.

usage: python killed_driver.py OUT_DIR
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sched_jobs import HangJob  # noqa: E402

from runner.devices import CPU_DEVICE  # noqa: E402
from runner.executors.local import LocalExecutor  # noqa: E402

out = sys.argv[1]


async def main() -> None:
    executor = LocalExecutor(grace_period=1.0, start_method="forkserver")
    jobs = [
        HangJob(os.path.join(out, "plain")),
        HangJob(os.path.join(out, "stubborn"), grandchild_ignores_term=True),
    ]
    await asyncio.gather(*(executor.execute(j, CPU_DEVICE) for j in jobs))


asyncio.run(main())
