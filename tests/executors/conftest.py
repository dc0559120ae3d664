"""Fixtures for the executor conformance suite: one factory per executor kind.

Kinds: "local" (always), "ray" (a local Ray with two fake GPUs, started once for
the module that uses it), "slurm-local" (submitit's local mode) and "slurm" (the
single-node cluster of .ci/slurm/start_slurm.sh). A kind that cannot run is
skipped with the reason, which ``-ra`` prints in the summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runner.executors.base import Executor

HERE = os.path.dirname(os.path.abspath(__file__))
# The job classes of the local executor's tests and the search tests' toy configs;
# every executor's worker gets this sys.path, so the jobs import there too.
for sub in ("runner", "search"):
    path = os.path.join(os.path.dirname(HERE), sub)
    if path not in sys.path:
        sys.path.insert(0, path)

EXECUTOR_KINDS = ["local", "ray", "slurm-local", "slurm"]
#: Written by .ci/slurm/start_slurm.sh (overridable, e.g. to check the skip path).
SLURM_ENV_FILE = os.environ.get("RUNNER_SLURM_ENV_FILE", "/etc/slurm/runner-ci.env")
#: Grace period of the executors under test (SIGTERM -> SIGKILL).
GRACE = 1.0


def slurm_env() -> tuple[dict[str, str] | None, str]:
    """The CI cluster's settings from start_slurm.sh's env file, or None and why not."""
    try:
        with open(SLURM_ENV_FILE) as f:
            env = dict(
                line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#")
            )
    except OSError as exc:
        return None, (
            f"no Slurm cluster: {SLURM_ENV_FILE} is missing ({exc.strerror}); "
            "run `bash .ci/slurm/start_slurm.sh` as root"
        )
    if env.get("RUNNER_SLURM_AVAILABLE") != "1":
        return None, f"no Slurm cluster: {SLURM_ENV_FILE} lacks RUNNER_SLURM_AVAILABLE=1"
    for tool in ("sinfo", "sbatch", "squeue", "scancel"):
        if shutil.which(tool) is None:
            return None, f"no Slurm cluster: `{tool}` is not on the PATH"
    try:
        ping = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"no Slurm cluster: `scontrol ping` failed ({exc})"
    if "UP" not in ping.stdout:
        return (
            None,
            f"no Slurm cluster: `scontrol ping` says {ping.stdout.strip() or ping.stderr.strip()!r}",
        )
    return env, ""


def _import_or_skip(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        pytest.skip(f"{module} is not installed ({exc}); pip install -e '.[{extra}]'")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray with 2 CPUs and 2 fake GPUs, started once for the module, then shut down."""
    _import_or_skip("ray", "ray")
    import ray

    if not ray.is_initialized():
        try:
            ray.init(
                num_cpus=2,
                num_gpus=2,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as exc:  # pragma: no cover - depends on the machine
            pytest.skip(f"a local Ray could not start: {type(exc).__name__}: {exc}")
    yield
    ray.shutdown()


@pytest.fixture(params=EXECUTOR_KINDS)
def executor_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_executor(
    executor_kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Executor]:
    """A factory of the executor under test; the driver sees two fake GPUs "0,1"."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # local and slurm-local slots
    if executor_kind == "local":
        from runner.executors.local import LocalExecutor

        return lambda **kw: LocalExecutor(grace_period=GRACE, **kw)
    if executor_kind == "ray":
        request.getfixturevalue("ray_cluster")
        from runner.executors.ray import RayExecutor

        return lambda **kw: RayExecutor(grace_period=GRACE, **kw)
    _import_or_skip("submitit", "slurm")
    from runner.executors.slurm import SlurmExecutor

    if executor_kind == "slurm-local":
        return lambda **kw: SlurmExecutor(
            cluster="local", poll_interval=0.1, grace_period=GRACE, **kw
        )
    env, why = slurm_env()
    if env is None:
        pytest.skip(why)
    partition = env.get("RUNNER_SLURM_PARTITION", "debug")
    return lambda **kw: SlurmExecutor(
        cluster="slurm", partition=partition, poll_interval=0.2, grace_period=GRACE, **kw
    )


@pytest.fixture
def executor_name(executor_kind: str, make_executor: Any) -> str | Executor:
    """What a user passes as ``executor=``: the bare name where its defaults fit the test machine."""
    if executor_kind in ("local", "ray", "slurm"):
        return executor_kind
    return make_executor()
