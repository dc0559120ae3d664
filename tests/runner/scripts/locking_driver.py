"""A driver holding a search folder's lock: one grid job that waits until told to finish.

usage: python locking_driver.py SEARCH_DIR

The job touches SEARCH_DIR/started, then waits (bounded) for SEARCH_DIR/release.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from configs import pydraclass
from runner.configs.search_configs import GridSearchConfig
from runner.grid_search import run_grid_searches


def wait_for_release(config: dict[str, Any]) -> int:
    folder = config["search_dir"]
    open(os.path.join(folder, "started"), "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(folder, "release")) and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for the test's file, bounded
    return config["seed"]


@pydraclass
class LockGrid(GridSearchConfig):
    def get_experiment_config_and_base_dir(self, seed: int):
        return {"seed": seed, "search_dir": self.base_dir}, f"{self.base_dir}/seed={seed}"

    def run_experiment_config(self, config: dict[str, Any]) -> int:
        return wait_for_release(config)

    def agg_results(self, results: list[Any]) -> list[Any]:
        return [r.result for r in results]


def make_search(search_dir: str) -> LockGrid:
    return LockGrid(base_dir=search_dir, sweep_props={"seed": [1]}, base_experiment_config={})


if __name__ == "__main__":
    print(run_grid_searches([make_search(sys.argv[1])], max_gpus=0, cpu_slots=1, progress=False))
