"""Executor options, missing extras and slot plans: no cluster needed."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from runner.errors import ExecutorConfigError, MissingDependencyError
from runner.executors import SlotRequest, resolve_executor


@pytest.mark.parametrize(
    ("module", "executor", "extra"), [("ray", "ray", ".[ray]"), ("submitit", "slurm", ".[slurm]")]
)
def test_a_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str, executor: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError) as info:
        resolve_executor(executor)
    assert isinstance(info.value, ImportError)
    assert f'pip install -e "{extra}"' in str(info.value)


def _ray(**kw: Any) -> Any:
    pytest.importorskip("ray")
    from runner.executors.ray import RayExecutor

    return RayExecutor(**kw)


def _slurm(**kw: Any) -> Any:
    pytest.importorskip("submitit")
    from runner.executors.slurm import SlurmExecutor

    return SlurmExecutor(**kw)


@pytest.mark.parametrize(
    ("make", "options", "needle"),
    [
        (_ray, {"address": 3}, "address=3"),
        (_ray, {"num_cpus_per_job": -1}, "num_cpus_per_job=-1"),
        (_ray, {"init_kwargs": ["num_gpus"]}, "init_kwargs="),
        (_slurm, {"cluster": "lcoal"}, "cluster='lcoal'"),
        (_slurm, {"gpus_per_job": -1}, "gpus_per_job=-1"),
        (_slurm, {"time_limit_min": 0}, "time_limit_min=0"),
        (_slurm, {"mem_gb": 0}, "mem_gb=0"),
        (_slurm, {"sbatch_options": "--qos=high"}, "sbatch_options='--qos=high'"),
        (_slurm, {"sbatch_options": {"--qos": "high"}}, "without the leading --"),
        (_slurm, {"partition": ""}, "partition=''"),
        (_slurm, {"poll_interval": -1}, "poll_interval=-1"),
    ],
)
def test_bad_options_name_the_value_and_the_fix(
    make: Any, options: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ExecutorConfigError) as info:
        make(**options)
    message = str(info.value)
    assert needle in message and ("pass" in message or "e.g." in message), message


def test_slurm_slots_are_jobs_in_flight() -> None:
    ex = _slurm(cluster="slurm")
    plan = ex.plan_slots(SlotRequest(max_gpus=3, simultaneous_jobs_per_gpu=2))
    assert [str(d) for d in plan.devices] == ["slurm"] and plan.slots_per_device == 6
    assert ex.plan_slots(SlotRequest(simultaneous_jobs_per_gpu=2)).slots_per_device == 16
    cpu = ex.plan_slots(SlotRequest(max_gpus=0, simultaneous_jobs_per_gpu=2))
    assert cpu.devices == () and cpu.slots_per_device == 2
    capped = _slurm(cluster="slurm", max_jobs_in_flight=5)
    assert capped.plan_slots(SlotRequest(max_gpus=8)).slots_per_device == 5
    # submitit's local mode uses this machine's devices, as the local executor does
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
        local = _slurm(cluster="local").plan_slots(
            SlotRequest(max_gpus=2, simultaneous_jobs_per_gpu=3)
        )
    assert [str(d) for d in local.devices] == ["4", "5"] and local.slots_per_device == 3


def test_slurm_time_limit_follows_the_job_timeout() -> None:
    ex = _slurm(cluster="slurm", grace_period=5.0)
    assert ex._time_limit(None) == 60
    # ceil((30 + 5 + 90 + 60 + 60) / 60): submitit's warning (90 s before the limit, up to
    # 60 s early) must come after the job's own timeout and grace period.
    assert ex._time_limit(30.0) == 5
    assert ex._time_limit(1.0) * 60 - 90 - 60 > 1.0 + ex.grace_period
    assert _slurm(cluster="slurm", time_limit_min=7)._time_limit(600.0) == 7


def test_slurm_options_reach_submitit(tmp_path: Any) -> None:
    ex = _slurm(
        cluster="slurm",
        partition="gpu",
        gpus_per_job=2,
        cpus_per_job=4,
        mem_gb=16,
        sbatch_options={"qos": "high"},
    )
    params = ex._submitit_executor(str(tmp_path), 30.0, 2).parameters
    assert params["partition"] == "gpu" and params["gpus_per_node"] == 2
    assert params["cpus_per_task"] == 4 and params["mem"] == "16GB"
    assert params["additional_parameters"] == {"qos": "high"}
