"""Jobs that leave processes behind on purpose, for the no-orphans tests.

Each job starts three descendants and records their pids in ``pids.json`` before it
goes on: a plain child in its process group (``sleep``), a child in a session of its
own that ignores SIGTERM (``start_new_session=True``), and a classic daemon (fork,
``setsid``, fork: its parent exits, so it is nobody's child but the job's subreaper).
The daemon reports its pid through a pipe, so nothing here waits on a timer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

LOG = "experiment_output.log"

#: The daemon: double fork with setsid in between, its pid written to the fd in argv[1].
_DAEMON = """
import os, sys
fd = int(sys.argv[1])
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
os.write(fd, str(os.getpid()).encode())
os.close(fd)
os.execvp("sleep", ["sleep", "60"])
"""


def start_descendants() -> dict[str, int]:
    """Start the three kinds of descendant; return their pids once each runs."""
    plain = subprocess.Popen(["sleep", "60"])
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited across exec
    try:
        detached = subprocess.Popen(["sleep", "60"], start_new_session=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    read_end, write_end = os.pipe()
    launcher = subprocess.Popen(
        [sys.executable, "-c", _DAEMON, str(write_end)], pass_fds=[write_end]
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        daemon = int(f.read())  # EOF once the daemon wrote its pid and closed the pipe
    launcher.wait()  # the daemon's first parent is gone: the daemon is orphaned
    return {"plain": plain.pid, "detached": detached.pid, "daemon": daemon}


def write_pids(base_dir: str, pids: dict[str, int]) -> None:
    path = os.path.join(base_dir, "pids.json")
    with open(f"{path}.tmp", "w") as f:
        json.dump({"worker": os.getpid(), **pids}, f)
    os.replace(f"{path}.tmp", path)


@dataclass
class LeaveBehindJob:
    """Starts the three descendants, then ends as ``mode`` says.

    ``"return"`` returns 7; ``"raise"`` raises; ``"hang"`` blocks until killed;
    ``"exit"`` leaves with ``os._exit(0)`` (no clean-up of its own).
    """

    base_dir: str
    mode: str = "return"
    timeout: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> int:
        write_pids(self.base_dir, start_descendants())
        if self.mode == "return":
            return 7
        if self.mode == "raise":
            raise RuntimeError("the job failed after starting a daemon")
        if self.mode == "exit":
            os._exit(0)
        while True:
            signal.pause()


@dataclass
class InterruptedJob:
    """Raises KeyboardInterrupt itself (no signal involved); one retry allowed."""

    base_dir: str
    retries: int = 1

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> None:
        with open(os.path.join(self.base_dir, "attempts"), "a") as f:
            f.write("x")
        raise KeyboardInterrupt


@dataclass
class ClosedStreamsJob:
    """Closes file descriptors 1 and 2 (and sys.stdout/stderr), then raises."""

    base_dir: str

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> None:
        print("closing my standard streams", flush=True)
        os.close(1)
        os.close(2)
        sys.stdout.close()
        sys.stderr.close()
        raise ValueError("raised with no standard streams left")
