"""One conformance suite, every executor: local, Ray, submitit's local mode, real Slurm.

Each test runs against each kind (see conftest.py); a kind that cannot start here
is skipped with the reason. The same statuses and error texts are expected from
every executor: that is the contract of runner.executors.base.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from sched_helpers import pid_alive, wait_until
from sched_jobs import FailJob, HangJob, RecordJob
from search_fixtures import ToyConfig, ToyGrid, read_ledger

from runner.executors.base import Executor
from runner.grid_search import run_grid_searches
from runner.job_folder import read_job_json
from runner.scheduler import GPUJobResult, GPUScheduler

MakeExecutor = Callable[..., Executor]


def _run(executor: Executor | str, jobs: list[Any], *, k: int = 2) -> list[GPUJobResult]:
    async def main() -> list[GPUJobResult]:
        async with GPUScheduler(max_gpus=2, simultaneous_jobs_per_gpu=k, executor=executor) as s:
            return list(await asyncio.gather(*(s.run_job(j) for j in jobs)))

    return asyncio.run(main())


def _pids(job_dir: str) -> list[int]:
    with open(os.path.join(job_dir, "pids.json")) as f:
        p = json.load(f)
    return [p["worker"], p["grandchild"]]


def test_each_job_sees_one_device_and_the_folder_records_it(
    make_executor: MakeExecutor, tmp_path: Any
) -> None:
    jobs = [RecordJob(str(tmp_path / f"j{i}"), duration=0.2) for i in range(4)]
    results = _run(make_executor(), jobs)
    assert all(r.success for r in results), [r.error for r in results]
    for job, r in zip(jobs, results, strict=True):
        seen = r.result["device"]
        assert seen in {"0", "1"}  # one fake GPU, from the scheduler (local) or the cluster
        assert r.gpu_id == int(seen)  # what the job saw, whoever chose it
        assert r.status == "ok" and r.duration is not None and r.host
        record = read_job_json(job.base_dir) or {}
        assert record["status"] == "ok" and record["device"] == seen
        assert record["pid"] == r.result["pid"] == r.pid
        with open(job.get_out_file()) as f:
            assert f"CUDA_VISIBLE_DEVICES='{seen}'" in f.read()  # the worker's header
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"  # the driver's env is untouched


def test_every_kind_of_failure_is_data(make_executor: MakeExecutor, tmp_path: Any) -> None:
    modes = ["raise", "exit3", "exit0", "abort", "sigkill", "lock"]
    jobs = [FailJob(str(tmp_path / m), m) for m in modes]
    results = dict(zip(modes, _run(make_executor(), jobs), strict=True))

    def check(mode: str, status: str, *needles: str) -> None:
        r = results[mode]
        assert not r.success and r.status == status, (mode, r.status, r.error)
        for needle in needles:
            assert needle in (r.error or ""), (mode, needle, r.error)
        assert (read_job_json(str(tmp_path / mode)) or {}).get("status") == status

    check("raise", "error", "Traceback", "_deep_raise", "ValueError: deliberate failure 42")
    check("exit3", "error", "exited with code 3", "about to fail with exit3")
    check("exit0", "error", "without returning a result")
    check("abort", "crashed", "SIGABRT", "about to fail with abort")
    check("sigkill", "crashed", "SIGKILL", "out-of-memory")
    check("lock", "error", "cannot be pickled")
    assert results["abort"].signal == 6 and results["exit3"].exit_code == 3


def test_timeout_kills_the_whole_group(make_executor: MakeExecutor, tmp_path: Any) -> None:
    job = HangJob(str(tmp_path / "h"), ignore_term=True, timeout=1.0)
    [r] = _run(make_executor(), [job])
    assert r.status == "timeout" and "timed out after 1.0 s" in (r.error or "")
    assert "hanging" in (r.error or "")  # the log's tail
    pids = _pids(job.base_dir)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="no process left")
    assert (read_job_json(job.base_dir) or {}).get("status") == "timeout"


def test_cancel_leaves_no_process_and_records_cancelled(
    make_executor: MakeExecutor, executor_kind: str, tmp_path: Any
) -> None:
    job = HangJob(str(tmp_path / "cancelme"))

    async def main() -> None:
        async with GPUScheduler(max_gpus=2, executor=make_executor()) as s:
            task = asyncio.ensure_future(s.run_job(job))
            while not os.path.exists(os.path.join(job.base_dir, "pids.json")):
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    pids = _pids(job.base_dir)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="no process left")
    assert (read_job_json(job.base_dir) or {}).get("status") == "cancelled"
    if executor_kind == "slurm":  # scancel'd: nothing of ours left in the queue
        queued = subprocess.run(
            ["squeue", "-h", "-n", "runner-cancelme", "-t", "PD,R,CG"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert queued.stdout.strip() == ""


def test_resume_reuses_finished_jobs(make_executor: MakeExecutor, tmp_path: Any) -> None:
    ledger = str(tmp_path / "ledger.jsonl")
    grid = ToyGrid(
        base_dir=str(tmp_path / "grid"),
        sweep_props={"width": [1, 2], "seed": [0]},
        base_experiment_config=ToyConfig(ledger=ledger),
    )
    first = run_grid_searches([grid], max_gpus=2, executor=make_executor())
    assert first == [[(True, 10), (True, 20)]] and len(read_ledger(ledger)) == 2
    again = run_grid_searches([grid], max_gpus=2, resume=True, executor=make_executor())
    assert again == first and len(read_ledger(ledger)) == 2  # nothing ran again


def test_the_binary_search_example_runs_unchanged(
    executor_name: str | Executor, tmp_path: Any
) -> None:
    from examples.example_binary_search import make_configs
    from runner.binary_search import run_binary_searches

    [(achieved, failed)] = run_binary_searches(
        make_configs(str(tmp_path / "bs")),
        max_gpus=2,
        simultaneous_jobs_per_gpu=2,
        executor=executor_name,
    )
    assert achieved[0] == 42 and failed[0] == 41


def test_the_grid_search_example_runs_unchanged(
    executor_name: str | Executor, tmp_path: Any
) -> None:
    from examples.example_grid_search import make_configs

    best = run_grid_searches(
        make_configs(str(tmp_path)), max_gpus=2, simultaneous_jobs_per_gpu=2, executor=executor_name
    )
    assert [b.job.config.num_parameters for b in best] == [10, 20, 30, 40]
    assert all(b.success and b.job.config.seed == 44 for b in best)  # seed % 5 == 4 is best


def test_ray_slots_come_from_the_cluster(ray_cluster: None, tmp_path: Any) -> None:
    from runner.executors.ray import RayExecutor

    def slots(**kw: Any) -> tuple[list[str], int]:
        s = GPUScheduler(executor=RayExecutor(), **kw)
        return [str(d) for d in s.devices], s.num_slots

    assert slots(simultaneous_jobs_per_gpu=2) == (["ray:0", "ray:1"], 4)  # 2 fake GPUs x 2
    assert slots(max_gpus=1, simultaneous_jobs_per_gpu=3) == (["ray:0"], 3)
    assert slots(max_gpus=0, simultaneous_jobs_per_gpu=2) == (["cpu"], 2)
    # On CPU slots the task asks for no GPU and the job sees none, as locally.
    [r] = asyncio.run(_cpu_run(RayExecutor(), RecordJob(str(tmp_path / "cpu"))))
    assert r.success and r.result["device"] == "" and r.gpu_id is None


async def _cpu_run(executor: Executor, job: Any) -> list[GPUJobResult]:
    async with GPUScheduler(max_gpus=0, executor=executor) as s:
        return [await s.run_job(job)]
