"""A driver process for the kill-and-resume test: one classic binary search."""

from __future__ import annotations

import sys

from search_fixtures import ToyBisect, ToyConfig

from runner.binary_search import run_binary_searches

if __name__ == "__main__":
    base_dir, ledger, gate, block_width, resume = sys.argv[1:6]
    search = ToyBisect(
        base_dir=base_dir,
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0, 1]},
        parallel_points=1,
        base_experiment_config=ToyConfig(
            ledger=ledger, mode="block", gate=gate, block_width=int(block_width)
        ),
    )
    [(achieved, failed)] = run_binary_searches([search], max_gpus=2, resume=resume == "resume")
    print(f"ANSWER {achieved[0]} {failed[0]}", flush=True)
