"""GPUScheduler: validation, device choice, slot accounting and fairness.

An in-process executor stands in for processes here, so each scheduling decision
can be driven step by step with events (no sleeps); the process side is covered
in test_local_executor.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from sched_jobs import RecordJob

from runner.devices import CPU_DEVICE, Device
from runner.errors import DeviceConfigError, SchedulerClosedError
from runner.executors.base import Executor
from runner.executors.local import LocalExecutor
from runner.front_end import CLI, using_front_end
from runner.scheduler import GPUJobResult, GPUScheduler


@dataclass
class FakeJob:
    name: str
    retries: int = 0
    release: asyncio.Event | None = None
    statuses: list[str] = field(default_factory=list)  # per attempt, for retry tests

    def run(self) -> Any:
        return self.name

    def get_out_file(self) -> str:
        return f"/nonexistent/{self.name}/experiment_output.log"


class InProcessExecutor(Executor):
    """Runs a FakeJob by waiting for its ``release`` event; records what ran where."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []  # (job name, device)
        self.cancelled: list[str] = []
        self.running: dict[str, int] = {}
        self.max_running: dict[str, int] = {}
        self.started_event = asyncio.Event()

    async def execute(self, job: Any, device: Device, *, attempt: int = 1) -> GPUJobResult:
        dev = str(device)
        self.started.append((job.name, dev))
        self.running[dev] = self.running.get(dev, 0) + 1
        self.max_running[dev] = max(self.max_running.get(dev, 0), self.running[dev])
        self.started_event.set()
        try:
            if job.release is not None:
                await job.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.name)
            raise
        finally:
            self.running[dev] -= 1
        status = job.statuses[attempt - 1] if job.statuses else "ok"
        return GPUJobResult(
            success=status == "ok",
            status=status,
            gpu_id=device.gpu_id,
            out_file=job.get_out_file(),
            job=job,
            result=job.name if status == "ok" else None,
        )


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"simultaneous_jobs_per_gpu": 0}, "simultaneous_jobs_per_gpu=0"),
        ({"simultaneous_jobs_per_gpu": -2}, "simultaneous_jobs_per_gpu=-2"),
        ({"simultaneous_jobs_per_gpu": 1.5}, "simultaneous_jobs_per_gpu=1.5"),
        ({"simultaneous_jobs_per_gpu": True}, "simultaneous_jobs_per_gpu=True"),
        ({"max_gpus": -1}, "max_gpus=-1"),
        ({"max_gpus": 1.5}, "max_gpus=1.5"),
        ({"max_gpus": True}, "max_gpus=True"),
        ({"max_gpus": "2"}, "max_gpus='2'"),
        ({"cpu_slots": 0}, "cpu_slots=0"),
        ({"busy_memory_threshold_mib": -5}, "busy_memory_threshold_mib=-5"),
    ],
)
def test_bad_options_raise_device_config_error_naming_value_and_fix(
    kwargs: dict[str, Any], needle: str
) -> None:
    with pytest.raises(DeviceConfigError) as info:
        GPUScheduler(**kwargs, executor=InProcessExecutor())
    assert needle in str(info.value)
    assert "pass" in str(info.value)  # the fix


def test_slots_from_fake_gpus(fake_gpus: Any) -> None:
    s = GPUScheduler(max_gpus=None, simultaneous_jobs_per_gpu=2, executor=InProcessExecutor())
    assert [str(d) for d in s.devices] == ["0", "1", "2", "3"]
    assert (s.num_slots, s.free_slots, s.num_waiting) == (8, 8, 0)
    s = GPUScheduler(max_gpus=3, simultaneous_jobs_per_gpu=None, executor=InProcessExecutor())
    assert (len(s.devices), s.num_slots) == (3, 3)


def test_no_gpu_runs_on_cpu_slots_with_one_warning(
    fake_gpus: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_gpus("")
    with caplog.at_level(logging.WARNING, logger="runner"):
        s = GPUScheduler(simultaneous_jobs_per_gpu=3, executor=InProcessExecutor())
    # No GPU: one slot per core the process may use (simultaneous_jobs_per_gpu is per GPU).
    assert s.devices == [CPU_DEVICE] and s.num_slots == len(os.sched_getaffinity(0))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No GPU found" in warnings[0] and "max_gpus=0" in warnings[0]
    assert "one per core" in warnings[0] and "cpu_slots=N" in warnings[0]
    assert GPUScheduler(cpu_slots=5, executor=InProcessExecutor()).num_slots == 5


def test_no_gpu_warning_names_the_cli_flags_inside_a_cli_command(
    fake_gpus: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_gpus("")
    with caplog.at_level(logging.WARNING, logger="runner"), using_front_end(CLI):
        GPUScheduler(executor=InProcessExecutor())
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "--cpu-slots N" in warning and "--gpus 0" in warning and "max_gpus" not in warning


def test_max_gpus_zero_asks_for_cpu_without_warning(
    fake_gpus: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runner"):
        s = GPUScheduler(max_gpus=0, cpu_slots=4, executor=InProcessExecutor())
    assert s.devices == [CPU_DEVICE] and s.num_slots == 4
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_run_job_rejects_non_jobs(fake_gpus: Any) -> None:
    s = GPUScheduler(executor=InProcessExecutor())
    with pytest.raises(TypeError, match="run\\(\\) and get_out_file\\(\\)"):
        asyncio.run(s.run_job(object()))


# -- scheduling -----------------------------------------------------------------------------


def test_least_loaded_device_first_and_freed_slot_taken_by_next_waiter(fake_gpus: Any) -> None:
    fake_gpus("0,1")

    async def main() -> None:
        ex = InProcessExecutor()
        s = GPUScheduler(simultaneous_jobs_per_gpu=2, executor=ex)
        jobs = [FakeJob(f"j{i}", release=asyncio.Event()) for i in range(6)]
        tasks = [asyncio.create_task(s.run_job(j)) for j in jobs]
        await _settle()
        # Spread first: 0, 1, 0, 1; the rest wait.
        assert ex.started == [("j0", "0"), ("j1", "1"), ("j2", "0"), ("j3", "1")]
        assert (s.free_slots, s.num_waiting) == (0, 2)
        jobs[1].release.set()  # a slot on device 1 frees: the oldest waiter takes it
        await _settle()
        assert ex.started[4] == ("j4", "1")
        jobs[2].release.set()
        await _settle()
        assert ex.started[5] == ("j5", "0")
        for j in jobs:
            j.release.set()
        results = await asyncio.gather(*tasks)
        assert [r.result for r in results] == [j.name for j in jobs]
        assert ex.max_running == {"0": 2, "1": 2}
        assert (s.free_slots, s.num_waiting) == (4, 0)

    asyncio.run(main())


def test_a_long_job_never_holds_back_the_other_devices(fake_gpus: Any) -> None:
    async def main() -> None:
        ex = InProcessExecutor()
        s = GPUScheduler(simultaneous_jobs_per_gpu=1, executor=ex)
        long_job = FakeJob("long", release=asyncio.Event())
        long_task = asyncio.create_task(s.run_job(long_job))
        await _settle()
        shorts = [FakeJob(f"s{i}") for i in range(30)]  # finish at once
        results = await asyncio.gather(*(s.run_job(j) for j in shorts))
        assert all(r.success for r in results)
        assert not long_task.done()  # all 30 ran on devices 1-3 while "long" held device 0
        assert {d for n, d in ex.started if n != "long"} == {"1", "2", "3"}
        long_job.release.set()
        assert (await long_task).success

    asyncio.run(main())


def test_fifo_across_concurrent_callers(fake_gpus: Any) -> None:
    fake_gpus("0")

    async def main() -> None:
        ex = InProcessExecutor()
        s = GPUScheduler(executor=ex)
        gate = FakeJob("gate", release=asyncio.Event())
        gate_task = asyncio.create_task(s.run_job(gate))
        await _settle()

        async def caller(prefix: str) -> list[GPUJobResult]:
            out = []
            for i in range(3):
                out.append(await s.run_job(FakeJob(f"{prefix}{i}")))
            return out

        callers = [asyncio.create_task(caller(p)) for p in "abc"]
        await _settle()
        assert s.num_waiting == 3
        gate.release.set()
        await asyncio.gather(gate_task, *callers)
        order = [n for n, _ in ex.started]
        assert order == ["gate", "a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]

    asyncio.run(main())


def test_cancelled_while_queued_never_runs(fake_gpus: Any) -> None:
    fake_gpus("0")

    async def main() -> None:
        ex = InProcessExecutor()
        s = GPUScheduler(executor=ex)
        gate = FakeJob("gate", release=asyncio.Event())
        gate_task = asyncio.create_task(s.run_job(gate))
        await _settle()
        queued = asyncio.create_task(s.run_job(FakeJob("queued")))
        after = asyncio.create_task(s.run_job(FakeJob("after")))
        await _settle()
        assert s.num_waiting == 2
        queued.cancel()
        await _settle()
        assert queued.cancelled() and s.num_waiting == 1
        gate.release.set()
        await asyncio.gather(gate_task, after)
        assert [n for n, _ in ex.started] == ["gate", "after"]
        assert s.free_slots == 1 and s.num_waiting == 0

    asyncio.run(main())


def test_cancelled_while_running_cancels_the_execution(fake_gpus: Any) -> None:
    fake_gpus("0")

    async def main() -> None:
        ex = InProcessExecutor()
        s = GPUScheduler(executor=ex)
        task = asyncio.create_task(s.run_job(FakeJob("r", release=asyncio.Event())))
        await ex.started_event.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ex.cancelled == ["r"] and s.free_slots == 1

    asyncio.run(main())


def test_shutdown_cancels_running_and_queued_and_refuses_new(fake_gpus: Any) -> None:
    fake_gpus("0")

    async def main() -> None:
        ex = InProcessExecutor()
        async with GPUScheduler(executor=ex) as s:
            running = asyncio.create_task(s.run_job(FakeJob("running", release=asyncio.Event())))
            queued = asyncio.create_task(s.run_job(FakeJob("queued")))
            await _settle()
            await s.shutdown()
            r_running, r_queued = await asyncio.gather(running, queued)
        assert (r_running.status, r_queued.status) == ("cancelled", "cancelled")
        assert not r_running.success and "shut down" in (r_running.error or "")
        assert r_running.gpu_id == 0 and r_queued.gpu_id is None
        assert ex.cancelled == ["running"] and [n for n, _ in ex.started] == ["running"]
        with pytest.raises(SchedulerClosedError, match="new GPUScheduler"):
            await s.run_job(FakeJob("late"))

    asyncio.run(main())


def test_retries_apply_to_crashes_only(fake_gpus: Any) -> None:
    fake_gpus("0")

    async def main() -> None:
        ex = InProcessExecutor()
        s = GPUScheduler(executor=ex)
        crash_then_ok = await s.run_job(FakeJob("c", retries=2, statuses=["crashed", "ok"]))
        always_crash = await s.run_job(FakeJob("a", retries=1, statuses=["crashed"] * 3))
        error = await s.run_job(FakeJob("e", retries=3, statuses=["error", "ok"]))
        timeout = await s.run_job(FakeJob("t", retries=3, statuses=["timeout", "ok"]))
        assert (crash_then_ok.success, crash_then_ok.attempts) == (True, 2)
        assert (always_crash.status, always_crash.attempts) == ("crashed", 2)
        assert (error.status, error.attempts) == ("error", 1)
        assert (timeout.status, timeout.attempts) == ("timeout", 1)

    asyncio.run(main())


class NoOpExecutor(Executor):
    async def execute(self, job: Any, device: Device, *, attempt: int = 1) -> GPUJobResult:
        await asyncio.sleep(0)
        return GPUJobResult(success=True, gpu_id=device.gpu_id, job=job, result=job.name)


def test_ten_thousand_queued_jobs_cost_no_threads(fake_gpus: Any) -> None:
    threads_before = threading.active_count()

    async def main() -> tuple[list[GPUJobResult], int, int]:
        s = GPUScheduler(simultaneous_jobs_per_gpu=2, executor=NoOpExecutor())
        tasks = [asyncio.ensure_future(s.run_job(FakeJob(str(i)))) for i in range(10_000)]
        await asyncio.sleep(0)
        peak_waiting = s.num_waiting
        threads_during = threading.active_count()
        return await asyncio.gather(*tasks), peak_waiting, threads_during

    t0 = time.perf_counter()
    results, peak_waiting, threads_during = asyncio.run(main())
    elapsed = time.perf_counter() - t0
    assert len(results) == 10_000 and all(r.success for r in results)
    assert [r.result for r in results[:3]] == ["0", "1", "2"]
    assert peak_waiting > 9_000
    assert threads_during == threads_before
    assert elapsed < 10, f"scheduling 10,000 jobs took {elapsed:.1f} s"


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_parent_environment_is_not_touched(
    fake_gpus: Any, tmp_path: Any, start_method: str
) -> None:
    """Real job processes each see their own device; the driver's environment never changes."""
    before = dict(os.environ)

    async def main() -> list[GPUJobResult]:
        executor = LocalExecutor(grace_period=1.0, start_method=start_method)  # type: ignore[arg-type]
        async with GPUScheduler(max_gpus=2, executor=executor) as scheduler:
            jobs = [RecordJob(str(tmp_path / f"job{i}"), duration=0.2) for i in range(2)]
            return await asyncio.gather(*(scheduler.run_job(job) for job in jobs))

    results = asyncio.run(main())
    assert all(r.success for r in results), [r.error for r in results]
    assert sorted(r.result["device"] for r in results) == ["0", "1"]  # one each, in the child
    assert all(r.result["pid"] != os.getpid() for r in results)  # real processes
    assert dict(os.environ) == before
