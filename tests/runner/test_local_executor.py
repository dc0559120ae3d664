"""The local executor: real child processes, fake GPUs, every failure mode."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from sched_helpers import pid_alive
from sched_jobs import CrashOnceJob, FailJob, HangJob, OutputJob, RecordJob

from runner.devices import CPU_DEVICE, Device
from runner.executors.local import LocalExecutor
from runner.job_folder import read_job_json
from runner.scheduler import GPUJobResult, GPUScheduler

HERE = os.path.dirname(os.path.abspath(__file__))


def _execute(job: Any, device: Device = CPU_DEVICE, grace: float = 1.0) -> GPUJobResult:
    return asyncio.run(LocalExecutor(grace_period=grace).execute(job, device))


def _headers(log: str) -> list[str]:
    with open(log) as f:
        return [line for line in f if line.startswith("===== runner: attempt")]


def test_fake_gpus_each_job_one_device_k_per_device_and_no_idle_slot(
    fake_gpus: Any, tmp_path: Any
) -> None:
    k = 2
    long_job = RecordJob(str(tmp_path / "long"), duration=2.5)
    shorts = [RecordJob(str(tmp_path / f"s{i}"), duration=0.05 * (i % 3)) for i in range(13)]

    async def main() -> list[GPUJobResult]:
        async with GPUScheduler(simultaneous_jobs_per_gpu=k) as s:
            return await asyncio.gather(*(s.run_job(j) for j in [long_job, *shorts]))

    results = asyncio.run(main())
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    seen = [r.result for r in results]
    for r, rec in zip(results, seen, strict=True):
        assert rec["device"] in {"0", "1", "2", "3"}  # exactly one device, from the list
        assert r.gpu_id == int(rec["device"])
        assert r.start_time is not None and r.end_time is not None and r.duration is not None
    # Never more than k jobs at once on a device (the jobs' own start/end times).
    for dev in "0123":
        events = sorted(
            [(rec["start"], 1) for rec in seen if rec["device"] == dev]
            + [(rec["end"], -1) for rec in seen if rec["device"] == dev]
        )
        level = peak = 0
        for _, delta in events:
            level += delta
            peak = max(peak, level)
        assert peak <= k
    # No slot idles while jobs wait: every short job started (and ended) while the long one ran.
    long_rec = seen[0]
    assert all(rec["end"] < long_rec["end"] for rec in seen[1:])
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"  # the parent's env is untouched


def test_uuid_and_mig_ids_reach_the_child_verbatim(fake_gpus: Any, tmp_path: Any) -> None:
    ids = ["GPU-8d2a6c4e-1f7b-4c1a-9e3f-0a1b2c3d4e5f", "MIG-GPU-8d2a6c4e/1/0"]
    fake_gpus(",".join(ids))

    async def main() -> list[GPUJobResult]:
        async with GPUScheduler() as s:
            return await asyncio.gather(
                *(s.run_job(RecordJob(str(tmp_path / f"j{i}"))) for i in range(2))
            )

    results = asyncio.run(main())
    assert sorted(r.result["device"] for r in results) == sorted(ids)
    assert sorted(r.gpu_id for r in results) == sorted(ids)


def test_cpu_slots_hide_every_gpu(fake_gpus: Any, tmp_path: Any) -> None:
    fake_gpus("")

    async def main() -> GPUJobResult:
        async with GPUScheduler(cpu_slots=1) as s:
            return await s.run_job(RecordJob(str(tmp_path / "cpu")))

    r = asyncio.run(main())
    assert r.success and r.result["device"] == "" and r.gpu_id is None


def test_success_writes_log_header_result_and_job_json(tmp_path: Any) -> None:
    job = RecordJob(str(tmp_path / "ok" / "nested"), config={"lr": 0.1})
    r = _execute(job, Device("3"))
    assert (r.success, r.status, r.exit_code, r.signal, r.attempts) == (True, "ok", 0, None, 1)
    headers = _headers(job.get_out_file())
    assert len(headers) == 1
    assert (
        "device 3" in headers[0] and f"pid {r.result['pid']}" in headers[0] and "host" in headers[0]
    )
    record = read_job_json(job.base_dir)
    assert record is not None
    assert record["status"] == "ok" and record["device"] == "3" and record["gpu_id"] == 3
    assert record["config"] == {"lr": 0.1} and record["result_summary"]["device"] == "3"
    assert set(os.listdir(job.base_dir)) == {
        "experiment_output.log",
        "job.pkl",
        "result.pkl",
        "job.json",
    }


@pytest.mark.parametrize(
    ("mode", "status", "needles"),
    [
        (
            "raise",
            "error",
            [
                "Traceback (most recent call last)",
                "_deep_raise",
                "ValueError: deliberate failure 42",
            ],
        ),
        ("exit3", "error", ["exited with code 3", "about to fail with exit3"]),
        ("exit0", "error", ["exited with code 0 without returning a result"]),
        ("abort", "crashed", ["SIGABRT", "about to fail with abort"]),
        ("segfault", "crashed", ["SIGSEGV", "segmentation fault"]),
        ("sigkill", "crashed", ["SIGKILL", "out-of-memory"]),
        ("lock", "error", ["cannot be pickled", "lock"]),
        ("generator", "error", ["cannot be pickled", "generator"]),
    ],
)
def test_failures_are_data(tmp_path: Any, mode: str, status: str, needles: list[str]) -> None:
    job = FailJob(str(tmp_path / mode), mode)
    r = _execute(job)
    assert not r.success and r.status == status and r.result is None
    for needle in needles:
        assert needle in (r.error or ""), r.error
    record = read_job_json(job.base_dir)
    assert record is not None and record["status"] == status and record["error_summary"]
    if status == "crashed":
        assert r.signal is not None and record["signal_name"] == signal.Signals(r.signal).name
    else:
        assert r.exit_code not in (None, 0) or mode == "exit0"


def test_other_jobs_go_on_after_failures(fake_gpus: Any, tmp_path: Any) -> None:
    fake_gpus("0,1")
    jobs: list[Any] = [
        FailJob(str(tmp_path / "seg"), "segfault"),
        FailJob(str(tmp_path / "raise"), "raise"),
    ]
    jobs += [RecordJob(str(tmp_path / f"ok{i}")) for i in range(3)]

    async def main() -> list[GPUJobResult]:
        async with GPUScheduler() as s:
            return await asyncio.gather(*(s.run_job(j) for j in jobs))

    results = asyncio.run(main())
    assert [r.status for r in results] == ["crashed", "error", "ok", "ok", "ok"]


def test_c_level_output_lands_in_the_log(tmp_path: Any) -> None:
    job = OutputJob(str(tmp_path / "out"))
    r = _execute(job)
    assert r.success, r.error
    with open(job.get_out_file()) as f:
        text = f.read()
    assert text.startswith("===== runner: attempt 1")
    for needle in [
        "python-level stdout",
        "python-level stderr",
        "fd-level stdout",
        "fd-level stderr",
        "shell-level hi",
        "c-level puts",
    ]:
        assert needle in text


def test_timeout_terminates_the_group_grandchild_included(tmp_path: Any) -> None:
    job = HangJob(str(tmp_path / "t"), timeout=1.0)
    r = _execute(job, grace=5.0)
    assert (r.success, r.status) == (False, "timeout")
    assert "timed out after 1.0 s" in (r.error or "") and "hanging" in (r.error or "")
    assert r.signal == signal.SIGTERM  # it obeyed SIGTERM: no need to wait out the grace period
    assert r.duration is not None and r.duration < 4.0
    pids = json.load(open(os.path.join(job.base_dir, "pids.json")))
    assert not pid_alive(pids["worker"]) and not pid_alive(pids["grandchild"])
    assert read_job_json(job.base_dir)["status"] == "timeout"  # type: ignore[index]


def test_timeout_kills_a_job_that_ignores_sigterm_after_the_grace_period(tmp_path: Any) -> None:
    job = HangJob(str(tmp_path / "t"), timeout=0.5, ignore_term=True)
    t0 = time.monotonic()
    r = _execute(job, grace=0.5)
    assert r.status == "timeout" and r.signal == signal.SIGKILL
    assert 0.9 < time.monotonic() - t0 < 5
    pids = json.load(open(os.path.join(job.base_dir, "pids.json")))
    assert not pid_alive(pids["worker"]) and not pid_alive(pids["grandchild"])


def test_retries_rerun_a_crashed_job_with_one_header_per_attempt(
    fake_gpus: Any, tmp_path: Any
) -> None:
    async def main() -> list[GPUJobResult]:
        async with GPUScheduler() as s:
            return await asyncio.gather(
                s.run_job(CrashOnceJob(str(tmp_path / "once"), retries=1)),
                s.run_job(FailJob(str(tmp_path / "always"), "abort", retries=1)),
                s.run_job(FailJob(str(tmp_path / "raises"), "raise", retries=2)),
            )

    once, always, raises = asyncio.run(main())
    assert (once.success, once.result, once.attempts) == (True, "recovered", 2)
    assert len(_headers(once.out_file)) == 2 and "attempt 2" in _headers(once.out_file)[1]
    assert read_job_json(os.path.dirname(once.out_file))["attempt"] == 2  # type: ignore[index]
    assert (always.status, always.attempts) == ("crashed", 2)
    assert (raises.status, raises.attempts) == ("error", 1)  # the job's own exception: no retry


def test_a_function_defined_in_main_of_a_script_runs(tmp_path: Any) -> None:
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "scripts", "main_script.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"results": [4, 9], "success": [True, True], "devices": ["0", "1"]}


def test_an_unwritable_job_folder_is_an_error_result(tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    r = _execute(RecordJob(str(blocker / "job")))
    assert (r.success, r.status) == (False, "error")
    assert "Could not prepare the job folder" in (r.error or "")


def test_an_unpicklable_job_is_an_error_result(tmp_path: Any) -> None:
    import threading

    job = RecordJob(str(tmp_path / "j"), config={"lock": threading.Lock()})
    r = _execute(job)
    assert (r.success, r.status) == (False, "error") and "could not be pickled" in (r.error or "")
    assert (read_job_json(job.base_dir) or {}).get("status") == "error"


def test_nvml_numbered_devices_use_pci_bus_order(tmp_path, monkeypatch):
    """Without CUDA_VISIBLE_DEVICES the indices are NVML's (PCI order); CUDA must agree."""
    import asyncio

    from runner.devices import Device
    from runner.executors.local import LocalExecutor

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    executor = LocalExecutor()
    assert executor._child_env(Device(cuda_id="1"), 1)["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")  # the user's choice wins
    assert executor._child_env(Device(cuda_id="1"), 1)["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # the user's own numbering: untouched
    monkeypatch.delenv("CUDA_DEVICE_ORDER")
    assert "CUDA_DEVICE_ORDER" not in executor._child_env(Device(cuda_id="1"), 1)
    asyncio.run(executor.aclose())
