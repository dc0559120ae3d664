"""One driver per search folder: a second driver is refused before any job starts; a lock
left by a killed driver is taken over with a warning."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from runner.errors import SearchLockedError
from runner.grid_search import run_grid_searches
from runner.search_lock import SearchLock, read_holder

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "scripts")
sys.path.insert(0, SCRIPTS)

from locking_driver import make_search  # noqa: E402


def _wait_for(path: str, proc: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)  # awaiting the other driver's file


def _start_driver(search_dir: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SCRIPTS, os.getcwd()]))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(SCRIPTS, "locking_driver.py"), search_dir],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for(os.path.join(search_dir, "started"), proc)
    return proc


def test_a_second_driver_is_refused_naming_the_first(tmp_path: Any) -> None:
    search_dir = str(tmp_path / "search")
    first = _start_driver(search_dir)
    try:
        with pytest.raises(SearchLockedError) as info:
            run_grid_searches([make_search(search_dir)], max_gpus=0, cpu_slots=1, progress=False)
        message = str(info.value)
        assert f"pid {first.pid} on host {socket.gethostname()}" in message
        assert "another base_dir" in message and "runner status" in message
        # Refused before any job: the second driver wrote no job record of its own.
        assert sorted(os.listdir(search_dir)) == [".runner", "seed=1", "started", "summary.json"]
    finally:
        open(os.path.join(search_dir, "release"), "w").close()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    assert "[1]" in out.decode()  # the first driver finished its search undisturbed


def test_a_lock_left_by_a_killed_driver_is_taken_over_with_a_warning(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    search_dir = str(tmp_path / "search")
    first = _start_driver(search_dir)
    first.send_signal(signal.SIGKILL)
    first.wait()
    open(os.path.join(search_dir, "release"), "w").close()
    with caplog.at_level(logging.WARNING, logger="runner"):
        [answer] = run_grid_searches(
            [make_search(search_dir)], max_gpus=0, cpu_slots=1, progress=False
        )
    assert answer == [1]
    took_over = [r.getMessage() for r in caplog.records if "took over the lock" in r.getMessage()]
    assert len(took_over) == 1 and f"pid {first.pid}" in took_over[0]
    assert read_holder(search_dir) is None  # released at the end


def test_the_same_folder_twice_in_one_process_is_refused(tmp_path: Any) -> None:
    with SearchLock(str(tmp_path)), pytest.raises(SearchLockedError, match=f"pid {os.getpid()}"):
        SearchLock(str(tmp_path)).acquire()
    with SearchLock(str(tmp_path)):  # released on exit: free again
        pass


def test_a_clean_end_leaves_nothing_to_take_over(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runner"):
        for _ in range(2):
            with SearchLock(str(tmp_path)):
                assert read_holder(str(tmp_path))["pid"] == os.getpid()  # type: ignore[index]
    assert read_holder(str(tmp_path)) is None and not caplog.records


def test_a_filesystem_without_locks_runs_the_search_with_one_warning(
    tmp_path: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")  # Lustre without -o flock

    monkeypatch.setattr(fcntl, "flock", no_locks)
    search_dir = tmp_path / "s"
    search_dir.mkdir()
    (search_dir / "release").write_text("")  # the job need not wait for the test
    with caplog.at_level(logging.WARNING, logger="runner"):
        [answer] = run_grid_searches(
            [make_search(str(search_dir))], max_gpus=0, cpu_slots=1, progress=False
        )
    assert answer == [1]
    warned = [r.getMessage() for r in caplog.records if "takes no file locks" in r.getMessage()]
    assert any("second driver" in w for w in warned) and any("dead driver" in w for w in warned)


def test_the_async_entry_point_holds_the_lock_too(tmp_path: Any) -> None:
    import asyncio

    from runner.grid_search import run_grid_search
    from runner.scheduler import GPUScheduler

    search_dir = str(tmp_path / "s")
    os.makedirs(search_dir)
    seen: list[str] = []

    async def main() -> Any:
        async with GPUScheduler(max_gpus=0, cpu_slots=1) as scheduler:
            task = asyncio.ensure_future(run_grid_search(make_search(search_dir), scheduler))
            while not os.path.exists(os.path.join(search_dir, "started")):
                await asyncio.sleep(0.02)  # awaiting the job's file
            try:
                SearchLock(search_dir).acquire()
            except SearchLockedError as exc:
                seen.append(str(exc))
            open(os.path.join(search_dir, "release"), "w").close()
            return await task

    assert asyncio.run(main()) == [1]
    assert seen and f"pid {os.getpid()}" in seen[0]
