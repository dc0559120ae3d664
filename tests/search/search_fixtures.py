"""Search configs and experiment functions the search tests run in child processes.

They live in an importable module (not a test file) so that the job's child
process can import them by name, as it would a user's module.
"""

from __future__ import annotations

import copy
import json
import os
import signal
from typing import Any

from configs import pydraclass
from runner.configs.base_experiment_config import BaseExperimentConfig
from runner.configs.search_configs import BinarySearchConfig, GridSearchConfig


@pydraclass
class ToyConfig(BaseExperimentConfig):
    width: int = 1
    seed: int = 0
    lr: float = 0.1
    #: A file every run appends one JSON line to: which point ran, on which device.
    ledger: str = ""
    #: "ok", "raise" (odd seeds raise), "crash" (every job SIGKILLs itself) or "block"
    #: (the job waits for ``gate`` to exist, so a test can stop the driver mid-way).
    mode: str = "ok"
    gate: str = ""
    #: With mode "block", only this width blocks (-1: every width).
    block_width: int = -1
    threshold: float = 42
    #: "width:seed,..." whose verdict is flipped: a noisy job, deterministically.
    flips: str = ""


def toy_run(config: ToyConfig) -> dict[str, Any]:
    record = {
        "width": config.width,
        "seed": config.seed,
        "lr": config.lr,
        "device": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pid": os.getpid(),
    }
    if config.ledger:
        with open(config.ledger, "a") as f:
            f.write(json.dumps(record) + "\n")
    if config.mode == "raise" and config.seed % 2:
        raise RuntimeError(f"seed {config.seed} diverged")
    if config.mode == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    blocks = config.block_width in (-1, config.width)
    if config.mode == "block" and blocks and not os.path.exists(config.gate):
        import time

        # Blocking until the test releases the gate (or kills the driver).
        while not os.path.exists(config.gate):
            time.sleep(0.02)
    passed = config.width >= config.threshold
    if f"{config.width}:{config.seed}" in config.flips.split(","):
        passed = not passed
    return {"score": config.width * 10 + config.seed, "passed": passed}


def read_ledger(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class _CopyMixin:
    """``get_experiment_config_and_base_dir`` as the spec writes it, generalised."""

    base_dir: str
    base_experiment_config: Any

    def _make(self, **props: Any) -> tuple[ToyConfig, str]:
        config = copy.deepcopy(self.base_experiment_config)
        for key, value in props.items():
            setattr(config, key, value)
        name = "_".join(f"{k}_{v}" for k, v in props.items())
        config.base_dir = f"{self.base_dir}/{name}"
        config.finalize()
        return config, config.base_dir


@pydraclass
class ToyGrid(_CopyMixin, GridSearchConfig):
    def get_experiment_config_and_base_dir(self, width: int, seed: int):
        return self._make(width=width, seed=seed)

    def run_experiment_config(self, config):
        return toy_run(config)

    def agg_results(self, results):
        return [(r.success, r.result["score"] if r.success else None) for r in results]


@pydraclass
class ToyBisect(_CopyMixin, BinarySearchConfig):
    def get_experiment_config_and_base_dir(self, width, seed):
        return self._make(width=width, seed=seed)

    def run_experiment_config(self, config):
        return toy_run(config)

    def agg_results(self, results):
        ok = [r for r in results if r.success]
        if not ok:
            return None, None
        return all(r.result["passed"] for r in ok), max(r.result["score"] for r in ok)


@pydraclass
class FloatBisect(_CopyMixin, BinarySearchConfig):
    def get_experiment_config_and_base_dir(self, lr, seed):
        return self._make(lr=lr, seed=seed)

    def run_experiment_config(self, config):
        return config.lr

    def agg_results(self, results):
        return results[0].result <= 3e-3, results[0].result


@pydraclass
class MajorityBisect(ToyBisect):
    """Success when most jobs passed (a tie fails): seeds vote."""

    def agg_results(self, results):
        ok = [r for r in results if r.success]
        if not ok:
            return None, None
        passed = sum(r.result["passed"] for r in ok)
        return 2 * passed > len(ok), passed / len(ok)

    def margin(self, result):
        return None if result is None else result - 0.5
