"""Cancellation: Ctrl-C / SIGTERM of a driver, task cancel, shutdown, and run_sync itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from sched_helpers import pid_alive, wait_until
from sched_jobs import HangJob

from runner._sync import run_sync
from runner.executors.local import LocalExecutor
from runner.job_folder import read_job_json
from runner.scheduler import GPUJobResult, GPUScheduler

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "driver.py")


def _pids(job_dir: str) -> list[int]:
    with open(os.path.join(job_dir, "pids.json")) as f:
        p = json.load(f)
    return [p["worker"], p["grandchild"]]


@pytest.mark.parametrize(
    ("how", "sig", "codes", "message"),
    [
        ("driver", signal.SIGINT, (-signal.SIGINT, 130), "SIGINT"),
        ("process_group", signal.SIGINT, (-signal.SIGINT, 130), "SIGINT"),
        ("driver", signal.SIGTERM, (143,), "SIGTERM"),
    ],
)
def test_signal_to_the_driver_leaves_no_process_and_marks_jobs_cancelled(
    tmp_path: Any, how: str, sig: int, codes: tuple[int, ...], message: str
) -> None:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="0,1")
    driver = subprocess.Popen(
        [sys.executable, DRIVER, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, as a shell job would be
    )
    try:
        running = [str(tmp_path / "obeys"), str(tmp_path / "ignores")]
        for d in running:
            wait_until(
                lambda d=d: os.path.exists(os.path.join(d, "pids.json")), what=f"{d}/pids.json"
            )
        pids = [pid for d in running for pid in _pids(d)]
        assert all(pid_alive(p) for p in pids)
        t0 = time.monotonic()
        if how == "process_group":
            os.killpg(driver.pid, sig)  # what a terminal's Ctrl-C does
        else:
            driver.send_signal(sig)
        _, stderr = driver.communicate(timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        if driver.poll() is None:
            driver.kill()
    text = stderr.decode()
    assert driver.returncode in codes, text
    assert elapsed < 6, f"driver took {elapsed:.1f} s to exit"
    assert f"Received {message}" in text and f"Stopped by {message}" in text
    assert not [p for p in pids if pid_alive(p)], "processes left behind"
    obeys, ignores = (read_job_json(d) or {} for d in running)
    assert obeys["status"] == ignores["status"] == "cancelled"
    assert obeys["signal_name"] == "SIGTERM"  # stopped by the polite signal
    assert (
        ignores["signal_name"] == "SIGKILL" and ignores["duration"] >= 1.0
    )  # after the grace period
    assert read_job_json(str(tmp_path / "queued")) is None  # never started
    assert not os.path.exists(tmp_path / "queued" / "pids.json")


def test_a_second_ctrl_c_skips_the_grace_period(tmp_path: Any) -> None:
    driver = subprocess.Popen(
        [sys.executable, DRIVER, str(tmp_path), "60"],
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="0,1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    obeys, ignores = str(tmp_path / "obeys"), str(tmp_path / "ignores")
    try:
        for d in (obeys, ignores):
            wait_until(
                lambda d=d: os.path.exists(os.path.join(d, "pids.json")), what=f"{d}/pids.json"
            )
        pids = _pids(obeys) + _pids(ignores)
        driver.send_signal(signal.SIGINT)
        # The polite job is gone once its job.json says so; the other one waits out 60 s of grace...
        wait_until(
            lambda: (read_job_json(obeys) or {}).get("status") == "cancelled", what="first cancel"
        )
        t0 = time.monotonic()
        driver.send_signal(signal.SIGINT)  # ...unless the user insists
        _, stderr = driver.communicate(timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        if driver.poll() is None:
            driver.kill()
    assert elapsed < 5, f"second Ctrl-C took {elapsed:.1f} s"
    assert "killing all jobs now" in stderr.decode()
    assert not [p for p in pids if pid_alive(p)]
    assert (read_job_json(ignores) or {}).get("signal_name") == "SIGKILL"


def test_cancelling_the_caller_kills_the_running_job(fake_gpus: Any, tmp_path: Any) -> None:
    job = HangJob(str(tmp_path / "h"))

    async def main() -> None:
        s = GPUScheduler(executor=LocalExecutor(grace_period=1.0))
        task = asyncio.create_task(s.run_job(job))
        while not os.path.exists(os.path.join(job.base_dir, "pids.json")):
            await asyncio.sleep(0.02)  # waiting on the child's file
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert s.free_slots == s.num_slots

    asyncio.run(main())
    assert not [p for p in _pids(job.base_dir) if pid_alive(p)]
    record = read_job_json(job.base_dir)
    assert (
        record is not None
        and record["status"] == "cancelled"
        and record["signal_name"] == "SIGTERM"
    )


def test_shutdown_returns_cancelled_results(fake_gpus: Any, tmp_path: Any) -> None:
    fake_gpus("0")
    jobs = [HangJob(str(tmp_path / "running"), ignore_term=True), HangJob(str(tmp_path / "queued"))]

    async def main() -> list[GPUJobResult]:
        s = GPUScheduler(executor=LocalExecutor(grace_period=0.3))
        tasks = [asyncio.create_task(s.run_job(j)) for j in jobs]
        while not os.path.exists(os.path.join(jobs[0].base_dir, "pids.json")):
            await asyncio.sleep(0.02)
        await s.shutdown()
        return await asyncio.gather(*tasks)

    running, queued = asyncio.run(main())
    assert (running.status, queued.status) == ("cancelled", "cancelled")
    assert not [p for p in _pids(jobs[0].base_dir) if pid_alive(p)]
    assert read_job_json(jobs[0].base_dir)["signal_name"] == "SIGKILL"  # type: ignore[index]


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


def test_run_sync_in_a_plain_script_uses_this_thread() -> None:
    assert run_sync(_where()) == threading.current_thread().name


def test_run_sync_inside_a_running_loop_uses_a_fresh_thread() -> None:
    async def notebook_cell() -> str:
        return run_sync(_where())  # as a Jupyter cell would call a sync API

    assert asyncio.run(notebook_cell()) == "runner-run-sync"


def test_run_sync_propagates_errors_and_restores_signal_handlers() -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))

    async def boom() -> None:
        raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        run_sync(boom())
    with pytest.raises(ValueError, match="inner"):
        asyncio.run(_in_loop(boom))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


async def _in_loop(fn: Any) -> Any:
    return run_sync(fn())
