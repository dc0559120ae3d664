"""A stand-in for a training run: quick, deterministic, and CPU-only.

Its "accuracy" grows with ``num_parameters`` and varies a little with ``seed``;
the best seed first reaches 0.5 at ``num_parameters = 42``, which the binary
search example finds.

Run one experiment from the shell (``key=value`` overrides, ``--help`` lists them)::

    python -m examples.dummy_experiment num_parameters=50 seed=43
"""

from __future__ import annotations

import os
import time

from configs import main, pydraclass
from runner.configs.base_experiment_config import BaseExperimentConfig


@pydraclass
class DummyExperimentConfig(BaseExperimentConfig):
    name: str = "dummy_experiment"  # a label for the run
    num_parameters: int = 10  # model size
    seed: int = 42  # random seed
    train_seconds: float = 0.05  # how long the fake training takes


def perform_training(config: DummyExperimentConfig) -> float:
    """Pretend to train; return a validation accuracy in [0, 1)."""
    time.sleep(config.train_seconds)
    accuracy = config.num_parameters / (config.num_parameters + 42) + 0.001 * (config.seed % 5)
    print(
        f"[{config.name}] num_parameters={config.num_parameters} seed={config.seed} "
        f"device={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r} accuracy={accuracy:.4f}"
    )
    return accuracy


def run_experiment(config: DummyExperimentConfig) -> float:
    # Your experiment logic here
    result = perform_training(config)
    return result


@main(DummyExperimentConfig)
def main(config: DummyExperimentConfig) -> float:  # noqa: F811 - the spec names it main
    return run_experiment(config)


if __name__ == "__main__":
    main()
