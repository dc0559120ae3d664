"""Ctrl-C reaches a sweep run from inside a running event loop (asyncio.run hosts its own
SIGINT handler, which would only cancel a task blocked until the sweep ends)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _job_status(path: str) -> str | None:
    try:
        with open(path) as f:
            return json.load(f).get("status")
    except (OSError, ValueError):
        return None


def test_ctrl_c_cancels_a_sweep_started_inside_asyncio_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    driver = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "scripts", "asyncio_run_driver.py"), str(tmp_path)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    files = [str(tmp_path / f"job{i}" / "job.json") for i in range(2)]
    deadline = time.monotonic() + 60
    while not all(_job_status(f) == "running" for f in files):  # both jobs started
        assert time.monotonic() < deadline, "the jobs never started"
        assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    driver.communicate(timeout=30)  # without the fix it would wait out the 60 s jobs
    assert driver.returncode != 0
    assert [_job_status(f) for f in files] == ["cancelled", "cancelled"]
