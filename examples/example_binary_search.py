"""The spec's binary search: the smallest ``num_parameters`` whose best seed reaches 0.5.

Run it from the repository root (it uses CPU slots when there is no GPU)::

    python -m examples.example_binary_search

The answer is deterministic: 42 succeeds (accuracy 0.504 for seed 44), 41 fails.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

from configs import pydraclass
from examples.dummy_experiment import DummyExperimentConfig, run_experiment
from runner import GPUJobResult
from runner.binary_search import run_binary_searches
from runner.configs.search_configs import BinarySearchConfig


@pydraclass
class ExperimentBinarySearchConfig(BinarySearchConfig):
    def get_experiment_config_and_base_dir(self, num_parameters: int, seed: int):
        config = copy.deepcopy(self.base_experiment_config)
        config.num_parameters = num_parameters
        config.seed = seed
        config.base_dir = f"{self.base_dir}/num_parameters_{num_parameters}_seed_{seed}"
        config.finalize()
        return config, config.base_dir

    def run_experiment_config(self, config):
        return run_experiment(config)

    def agg_results(self, results: list[GPUJobResult]) -> tuple[bool, Any]:
        # Aggregate results across seeds
        results = [r for r in results if r.success]
        if len(results) == 0:
            return False, None
        best_idx = np.argmax([r.result for r in results])
        result = results[best_idx]
        # Return (success, result) - success is True if result >= threshold
        return result.result >= 0.5, result


def make_configs(base_dir: str = "./results/binary_search") -> list[ExperimentBinarySearchConfig]:
    return [
        ExperimentBinarySearchConfig(
            base_dir=base_dir,
            prop="num_parameters",  # Property to search over
            range=(10, 100),  # Search range
            precision=1,  # Precision for stopping
            success_direction_lower=True,  # True if lower values are better
            sweep_props={"seed": [42, 43, 44, 45]},  # aggregated in agg_results
            base_experiment_config=DummyExperimentConfig(name="experiment_1"),
        )
    ]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    [(achieved, failed)] = run_binary_searches(
        make_configs(), max_gpus=4, simultaneous_jobs_per_gpu=2
    )
    print(f"smallest num_parameters reaching 0.5: {achieved[0] if achieved else None}")
    print(f"largest failing num_parameters:      {failed[0] if failed else None}")
