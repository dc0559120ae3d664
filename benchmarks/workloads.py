"""The binary-search workloads (W3): an experiment config, its job, and the search config.

Importable by name, so each job's child process can load them, as it would a
user's module. The plain jobs of W1, W2, W4 and W6 are in :mod:`benchmarks.jobs`.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from configs import pydraclass
from runner.configs.base_experiment_config import BaseExperimentConfig
from runner.configs.search_configs import BinarySearchConfig


@pydraclass
class ThresholdConfig(BaseExperimentConfig):
    """One job of a threshold search: succeeds iff ``value >= threshold``."""

    value: int = 0
    seed: int = 0
    threshold: int = 0
    duration: float = 0.3


def threshold_job(config: ThresholdConfig) -> dict[str, Any]:
    time.sleep(config.duration)
    return {"value": config.value, "seed": config.seed, "passed": config.value >= config.threshold}


@pydraclass
class ThresholdSearch(BinarySearchConfig):
    """A binary search for the hidden threshold of :func:`threshold_job`."""

    def get_experiment_config_and_base_dir(  # type: ignore[override]
        self, value: int, seed: int
    ) -> tuple[Any, str]:
        config = copy.deepcopy(self.base_experiment_config)
        config.value = value
        config.seed = seed
        config.base_dir = f"{self.base_dir}/value_{value}_seed_{seed}"
        config.finalize()
        return config, config.base_dir

    def run_experiment_config(self, config: ThresholdConfig) -> dict[str, Any]:
        return threshold_job(config)

    def agg_results(self, results: list[Any]) -> tuple[bool, Any]:
        ok = [r.result for r in results if r.success]
        if len(ok) != len(results):  # a failed job would make the answer meaningless
            return False, None
        return all(r["passed"] for r in ok), ok[0]
