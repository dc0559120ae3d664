# A user script with no `if __name__ == "__main__":` guard: the run function and the
# config class live in __main__, so the job reaches the worker only by value (cloudpickle).
import asyncio
import dataclasses
import json
import os
import sys

from runner.jobs import Job
from runner.scheduler import GPUScheduler

os.environ["CUDA_VISIBLE_DEVICES"] = "0,1"


@dataclasses.dataclass
class Config:
    x: int


def square(config: Config) -> dict:
    return {"value": config.x * config.x, "device": os.environ["CUDA_VISIBLE_DEVICES"]}


async def main() -> list:
    async with GPUScheduler() as scheduler:
        jobs = [
            Job(run_fn=square, config=Config(x), base_dir=f"{sys.argv[1]}/x{x}") for x in (2, 3)
        ]
        return await asyncio.gather(*(scheduler.run_job(j) for j in jobs))


results = asyncio.run(main())
print(
    json.dumps(
        {
            "results": [r.result["value"] if r.success else r.error for r in results],
            "success": [r.success for r in results],
            "devices": [r.result["device"] if r.success else None for r in results],
        }
    )
)
