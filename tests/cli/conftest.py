"""Fixtures for the ``runner`` command tests: a user script, fake GPUs, the console script."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cli_helpers import cli_env, run_cli, runner_exe  # noqa: F401 - re-exported for fixtures

# The script is written to a temporary folder, so neither the tests nor the job
# processes can import it by name: it reaches the jobs by value (cloudpickle).
TRAIN_SCRIPT = textwrap.dedent(
    """
    from __future__ import annotations

    import os
    import time

    from configs import pydraclass
    from helper_mod import scale  # a neighbour module: the jobs import it by name


    @pydraclass
    class TrainConfig:
        width: int = 10
        seed: int = 0
        lr: float = 0.1
        gate: str = ""
        base_dir: str | None = None


    def train(config: TrainConfig) -> dict:
        print(f"training width={config.width} seed={config.seed}", flush=True)
        if config.gate:
            while not os.path.exists(config.gate):  # the test releases it
                time.sleep(0.02)
        return {
            "acc": scale(config.width) + 0.001 * (config.seed % 5),
            "lr": config.lr,
            "device": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }


    def no_config(x):
        return x
    """
)
HELPER = "def scale(width):\n    return width / (width + 42)\n"


@pytest.fixture(scope="session")
def script_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user_script")
    (folder / "train_script.py").write_text(TRAIN_SCRIPT)
    (folder / "helper_mod.py").write_text(HELPER)
    return folder


@pytest.fixture(scope="session")
def train_target(script_dir: Path) -> str:
    return f"{script_dir / 'train_script.py'}:train"


@pytest.fixture(autouse=True)
def four_fake_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv("COLUMNS", "200")  # rich tables unwrapped in captured output
