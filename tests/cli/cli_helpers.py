"""Helpers of the ``runner`` command tests, importable by name (unlike conftest modules,
of which every test folder has one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


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
