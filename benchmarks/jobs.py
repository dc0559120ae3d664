"""The plain jobs of W1, W2, W4 and W6: a module that imports only the standard library.

A job's child process imports the module of its function; these stand for a user's
small experiment module, so the runner's own cost is what the benchmarks see.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def sleep_for(seconds: float) -> float:
    """A job of fixed duration that uses no CPU: the scheduler's overhead is all that shows."""
    if seconds > 0:
        time.sleep(seconds)
    return seconds


def noop(_: Any) -> None:
    """A job that does nothing: its whole cost is the runner's."""
    return None


def sleep_with_grandchild(marker_dir: str) -> None:
    """Start a grandchild that sleeps 60 s, record both pids, then sleep 60 s (W6)."""
    import subprocess  # here: the other jobs' processes should not pay for its import

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    path = os.path.join(marker_dir, f"{os.getpid()}.pids")
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}\n")
    os.replace(path + ".tmp", path)  # the harness counts complete files only
    time.sleep(60)
