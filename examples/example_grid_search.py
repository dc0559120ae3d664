"""The spec's grid search: four model sizes, four seeds each, the best seed kept.

Run it from the repository root (it uses CPU slots when there is no GPU)::

    python -m examples.example_grid_search
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from configs import pydraclass
from examples.dummy_experiment import DummyExperimentConfig, run_experiment
from runner import GPUJobResult
from runner.configs.search_configs import GridSearchConfig
from runner.grid_search import run_grid_searches


@pydraclass
class ExperimentGridSearchConfig(GridSearchConfig):
    def get_experiment_config_and_base_dir(self, num_parameters: int, seed: int):
        config = copy.deepcopy(self.base_experiment_config)
        config.num_parameters = num_parameters
        config.seed = seed
        config.base_dir = f"{self.base_dir}/num_parameters_{num_parameters}_seed_{seed}"
        config.finalize()
        return config, config.base_dir

    def run_experiment_config(self, config):
        return run_experiment(config)

    def agg_results(self, results: list[GPUJobResult]):
        # Aggregate results across all sweep_props points
        results = [r for r in results if r.success]
        if len(results) == 0:
            return None
        # Return best result
        best_idx = np.argmax([r.result for r in results])
        return results[best_idx]


def make_configs(root: str = "./results") -> list[ExperimentGridSearchConfig]:
    return [
        ExperimentGridSearchConfig(
            base_dir=f"{root}/grid_search_{num_parameters}",
            sweep_props={"seed": [42, 43, 44, 45]},
            base_experiment_config=DummyExperimentConfig(
                name="experiment_1", num_parameters=num_parameters
            ),
        )
        for num_parameters in [10, 20, 30, 40]
    ]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    best = run_grid_searches(make_configs(), max_gpus=4, simultaneous_jobs_per_gpu=2)
    for config, result in zip(make_configs(), best, strict=True):
        size = config.base_experiment_config.num_parameters
        print(
            f"num_parameters={size}: best accuracy {result.result:.4f} (seed {result.job.config.seed})"
        )
