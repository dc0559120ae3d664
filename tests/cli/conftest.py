"""Fixtures for the ``runner`` command tests: a user script, fake GPUs, the console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

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


def runner_exe() -> str:
    """The installed console script of this venv."""
    exe = shutil.which("runner", path=os.path.dirname(sys.executable))
    assert exe is not None, "the runner console script is not installed in this environment"
    return exe


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = "0,1,2,3"
    env["COLUMNS"] = "200"
    env.pop("RUNNER_PROGRESS", None)
    return env


def run_cli(
    args: Sequence[str], *, console_script: bool = False, cwd: str | Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``runner ARGS`` in a subprocess (stdout and stderr captured: not a terminal)."""
    prefix = [runner_exe()] if console_script else [sys.executable, "-m", "runner.cli"]
    return subprocess.run(
        [*prefix, *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=cwd,
        timeout=60,
    )
