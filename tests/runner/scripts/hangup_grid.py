"""A grid search run on a terminal that goes away: seed 1 finishes, seed 2 hangs with daemons.

usage: python hangup_grid.py SEARCH_DIR   (start method from RUNNER_START_METHOD)

Seed 2 starts the descendants of :func:`orphan_jobs.start_descendants`, records them in
its folder's pids.json, and waits to be killed. Progress is left on its default: a live
display, since the test runs this on a pseudo-terminal.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orphan_jobs import start_descendants, write_pids  # noqa: E402

from configs import pydraclass  # noqa: E402
from runner.configs.search_configs import GridSearchConfig  # noqa: E402
from runner.grid_search import run_grid_searches  # noqa: E402


def finish_or_hang(config: dict[str, Any]) -> int:
    if config["seed"] == 2:
        write_pids(config["dir"], start_descendants())
        while True:
            signal.pause()
    return config["seed"]


@pydraclass
class HangupGrid(GridSearchConfig):
    def get_experiment_config_and_base_dir(self, seed: int):
        folder = f"{self.base_dir}/seed={seed}"
        return {"seed": seed, "dir": folder}, folder

    def run_experiment_config(self, config: dict[str, Any]) -> int:
        return finish_or_hang(config)

    def agg_results(self, results: list[Any]) -> list[Any]:
        return [r.result for r in results]


if __name__ == "__main__":
    search = HangupGrid(base_dir=sys.argv[1], sweep_props={"seed": [1, 2]}, base_experiment_config={})
    run_grid_searches([search], max_gpus=0, cpu_slots=2)
