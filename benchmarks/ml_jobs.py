"""The real workload (W10): scikit-learn's MLPClassifier on the digits data set.

Written as a researcher would: the heavy imports at the top of the module, an
experiment config, a training function, a grid search config. Importable by name, so
each job's process loads it as it would a user's module.
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from configs import pydraclass
from runner.configs.base_experiment_config import BaseExperimentConfig
from runner.configs.search_configs import GridSearchConfig


@pydraclass
class MLPConfig(BaseExperimentConfig):
    """One training run: a one-hidden-layer MLP on the digits data."""

    hidden_units: int = 32
    alpha: float = 1e-3
    seed: int = 0
    max_iter: int = 200


def train_mlp(config: MLPConfig) -> dict[str, Any]:
    """Train, and return the test accuracy and when this function started (its first line)."""
    started = time.time()
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25, random_state=0)
    model = MLPClassifier(
        hidden_layer_sizes=(config.hidden_units,),
        alpha=config.alpha,
        random_state=config.seed,
        max_iter=config.max_iter,
    )
    with warnings.catch_warnings():  # a fixed budget of epochs, as in a sweep
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return {
        "hidden_units": config.hidden_units,
        "alpha": config.alpha,
        "seed": config.seed,
        "accuracy": float(model.score(x_test, y_test)),
        "started": started,
    }


@pydraclass
class MLPGrid(GridSearchConfig):
    """hidden_units x alpha x seed, every job's result kept."""

    def get_experiment_config_and_base_dir(  # type: ignore[override]
        self, hidden_units: int, alpha: float, seed: int
    ) -> tuple[Any, str]:
        config = copy.deepcopy(self.base_experiment_config)
        config.hidden_units = hidden_units
        config.alpha = alpha
        config.seed = seed
        config.base_dir = f"{self.base_dir}/h{hidden_units}_a{alpha}_s{seed}"
        config.finalize()
        return config, config.base_dir

    def run_experiment_config(self, config: MLPConfig) -> dict[str, Any]:
        return train_mlp(config)

    def agg_results(self, results: list[Any]) -> list[dict[str, Any]]:
        return [r.result for r in results if r.success]
