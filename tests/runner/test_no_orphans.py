"""Nothing outlives the driver or the job: real drivers killed by signal, real daemons.

Each test runs in both start modes. Processes are awaited through the files the jobs
write; only the disappearance of a killed process is polled for (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from orphan_jobs import ClosedStreamsJob, InterruptedJob, LeaveBehindJob
from sched_helpers import pid_alive, wait_until

from runner._sync import run_sync
from runner.devices import CPU_DEVICE
from runner.executors.local import LocalExecutor
from runner.job_folder import read_job_json
from runner.scheduler import GPUScheduler

METHODS = ["forkserver", "spawn"]
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "orphan_driver.py")
#: Seconds a job process may outlive what ended it ("a few seconds").
FEW_SECONDS = 5.0


def _job_pids(job_dir: Path) -> list[int]:
    return list(json.loads((job_dir / "pids.json").read_text()).values())


def _gone_within(pids: list[int], seconds: float = FEW_SECONDS) -> float:
    """Seconds until every pid is gone; fails past ``seconds`` naming the survivors."""
    t0 = time.monotonic()
    try:
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=seconds, what="no survivor")
    except AssertionError:
        survivors = {p: psutil.Process(p).cmdline() for p in pids if pid_alive(p)}
        raise AssertionError(f"still running after {seconds} s: {survivors}") from None
    return time.monotonic() - t0


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _left_nothing(job_dir: Path) -> None:
    """Every process the job recorded is gone within a few seconds (killed anyway after)."""
    pids = _job_pids(job_dir)
    try:
        _gone_within(pids)
    finally:
        _kill_all(pids)


def _driver_ends(driver: subprocess.Popen[bytes], pids: list[int]) -> str:
    """Wait for the driver to exit and every pid under it to go; its stderr."""
    try:
        _, stderr = driver.communicate(timeout=20)
        _gone_within(pids)
    finally:
        if driver.poll() is None:
            driver.kill()
        _kill_all(pids)
    return stderr.decode()


def _run_driver(tmp_path: Path, method: str, *extra: str) -> tuple[subprocess.Popen[bytes], list[int]]:
    """Start the driver; return it once its job runs, with every pid under it."""
    driver = subprocess.Popen(
        [sys.executable, DRIVER, str(tmp_path), method, *extra],
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, as a shell gives a job
    )
    wait_until(lambda: (tmp_path / "job" / "pids.json").exists(), what="the job to start")
    pids = _job_pids(tmp_path / "job")
    try:  # the fork server and the lifeline keeper too
        pids += [p.pid for p in psutil.Process(driver.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        pass
    return driver, sorted(set(pids))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP, signal.SIGTERM])
def test_a_driver_killed_by_any_signal_leaves_no_job_process(
    tmp_path: Path, method: str, sig: signal.Signals
) -> None:
    driver, pids = _run_driver(tmp_path, method)
    os.kill(driver.pid, sig)
    text = _driver_ends(driver, pids)
    record = read_job_json(str(tmp_path / "job")) or {}
    if sig == signal.SIGKILL:
        assert driver.returncode == -signal.SIGKILL
        return
    # SIGHUP (the SSH session dropped) and SIGTERM are a Ctrl-C: jobs cancelled and recorded.
    assert driver.returncode == 128 + sig, text
    assert f"Received {sig.name}" in text and f"Stopped by {sig.name}" in text
    assert record["status"] == "cancelled"


@pytest.mark.parametrize("method", METHODS)
def test_an_exception_in_the_driver_cancels_its_jobs_and_reads_plainly(
    tmp_path: Path, method: str
) -> None:
    driver, pids = _run_driver(tmp_path, method, "raise")
    text = _driver_ends(driver, pids)
    assert driver.returncode == 1
    assert text.rstrip().endswith("ValueError: the driver failed while a job ran"), text
    assert "no running event loop" not in text and "During handling" not in text, text
    assert (read_job_json(str(tmp_path / "job")) or {})["status"] == "cancelled"


def _execute(job: Any, method: str, *, cancel_when_running: bool = False) -> Any:
    async def main() -> Any:
        executor = LocalExecutor(grace_period=0.5, start_method=method)  # type: ignore[arg-type]
        try:
            task = asyncio.ensure_future(executor.execute(job, CPU_DEVICE))
            if cancel_when_running:
                pids = os.path.join(job.base_dir, "pids.json")
                while not os.path.exists(pids):
                    await asyncio.sleep(0.02)  # waiting on the job's own file
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return None
            return await task
        finally:
            await executor.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["return", "raise"])
def test_what_a_job_detached_ends_with_the_job(tmp_path: Path, method: str, mode: str) -> None:
    job = LeaveBehindJob(str(tmp_path / "job"), mode=mode)
    result = _execute(job, method)
    _left_nothing(tmp_path / "job")
    assert result.success == (mode == "return")


def test_a_job_process_that_dies_abruptly_takes_its_daemons_along_when_forked(
    tmp_path: Path,
) -> None:
    # os._exit skips the job's own clean-up: the fork server, a subreaper, adopts what
    # the job left and ends it. (A spawned job's orphans go to init: see README.)
    job = LeaveBehindJob(str(tmp_path / "job"), mode="exit")
    _execute(job, "forkserver")
    _left_nothing(tmp_path / "job")


@pytest.mark.parametrize("method", METHODS)
def test_a_cancelled_job_leaves_nothing_detached(tmp_path: Path, method: str) -> None:
    job = LeaveBehindJob(str(tmp_path / "job"), mode="hang")
    _execute(job, method, cancel_when_running=True)
    _left_nothing(tmp_path / "job")
    assert (read_job_json(job.base_dir) or {})["status"] == "cancelled"


@pytest.mark.parametrize("method", METHODS)
def test_a_timed_out_job_leaves_nothing_detached(tmp_path: Path, method: str) -> None:
    # The timeout only has to outlast the job's start (it hangs for ever after).
    job = LeaveBehindJob(str(tmp_path / "job"), mode="hang", timeout=4.0)
    result = _execute(job, method)
    _left_nothing(tmp_path / "job")
    assert result.status == "timeout"


@pytest.mark.parametrize("method", METHODS)
def test_a_jobs_own_keyboard_interrupt_is_an_error_not_retried(
    fake_gpus: Any, tmp_path: Path, method: str
) -> None:
    job = InterruptedJob(str(tmp_path / "job"))

    async def main() -> Any:
        executor = LocalExecutor(grace_period=0.5, start_method=method)  # type: ignore[arg-type]
        async with GPUScheduler(executor=executor) as scheduler:
            return await scheduler.run_job(job)

    result = asyncio.run(main())
    assert result.status == "error", result.error
    assert "KeyboardInterrupt" in (result.error or "")
    assert (tmp_path / "job" / "attempts").read_text() == "x"  # no retry
    assert (read_job_json(job.base_dir) or {})["error_summary"] == "KeyboardInterrupt"


@pytest.mark.parametrize("method", METHODS)
def test_a_job_that_closed_its_streams_keeps_its_traceback(tmp_path: Path, method: str) -> None:
    result = _execute(ClosedStreamsJob(str(tmp_path / "job")), method)
    assert result.status == "error"
    assert "ValueError: raised with no standard streams left" in (result.error or "")
    assert "in run" in (result.error or "")  # the traceback, not only its last line
    record = read_job_json(str(tmp_path / "job")) or {}
    assert record["error_summary"] == "ValueError: raised with no standard streams left"


def test_errors_out_of_run_sync_are_not_chained_to_its_loop_probe() -> None:
    async def fails() -> None:
        raise ValueError("the real error")

    with pytest.raises(ValueError) as caught:
        run_sync(fails())
    assert caught.value.__context__ is None and caught.value.__cause__ is None


HANGUP_GRID = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "hangup_grid.py")


@pytest.mark.parametrize("method", METHODS)
def test_a_terminal_that_goes_away_stops_the_sweep_cleanly(tmp_path: Path, method: str) -> None:
    # The driver runs on a pseudo-terminal, live display and all; closing the terminal's
    # master side is what a dropped SSH session does: SIGHUP, then a terminal that fails
    # every write.
    search = tmp_path / "search"
    env = dict(os.environ, RUNNER_START_METHOD=method, TERM="xterm")
    pid, master = pty.fork()
    if pid == 0:  # the child: the driver, session leader on the terminal
        try:
            os.execve(sys.executable, [sys.executable, HANGUP_GRID, str(search)], env)
        finally:
            os._exit(127)
    pids: list[int] = []
    try:
        finished, hanging = search / "seed=1", search / "seed=2"
        output = bytearray()

        def started() -> bool:
            with contextlib.suppress(OSError):  # keep the terminal drained
                while select.select([master], [], [], 0)[0]:
                    output.extend(os.read(master, 65536))
            ok = (read_job_json(str(finished)) or {}).get("status") == "ok"
            return ok and (hanging / "pids.json").exists()

        wait_until(started, what="seed 1 to finish and seed 2 to start")
        pids = _job_pids(hanging)
        os.close(master)
        _, status = os.waitpid(pid, 0)
        _gone_within(pids)
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        _kill_all(pids)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGHUP, output.decode(errors="replace")
    assert (read_job_json(str(finished)) or {})["status"] == "ok"  # its result kept
    assert (read_job_json(str(hanging)) or {})["status"] == "cancelled"
    summary = json.loads((search / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert not summary["error"].endswith(": "), summary["error"]  # says why, not a bare class
