"""Job classes for the scheduler/executor tests; importable in the worker (it gets our sys.path).

Each job writes what it saw into its folder or returns it, so the tests can check
devices, timing and cleanup without sleeping as synchronisation.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

LOG = "experiment_output.log"


def write_json_atomic(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


@dataclass
class RecordJob:
    """Sleeps ``duration`` and returns the device it saw and its start/end times."""

    base_dir: str
    duration: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> dict[str, Any]:
        start = time.time()
        if self.duration:
            time.sleep(self.duration)  # the job's work, not synchronisation
        return {
            "device": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "start": start,
            "end": time.time(),
            "pid": os.getpid(),
            "ppid": os.getppid(),
        }


@dataclass
class FailJob:
    """Fails in the way ``mode`` names."""

    base_dir: str
    mode: str
    retries: int = 0

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> Any:
        print(f"about to fail with {self.mode}", flush=True)
        if self.mode == "raise":
            return _deep_raise(3)
        if self.mode == "exit3":
            sys.exit(3)
        if self.mode == "abort":
            os.abort()
        if self.mode == "segfault":
            ctypes.string_at(0)
        if self.mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.mode == "lock":
            return threading.Lock()
        if self.mode == "generator":
            return (i for i in range(3))
        if self.mode == "exit0":
            os._exit(0)
        raise AssertionError(f"unknown mode {self.mode}")


def _deep_raise(depth: int) -> Any:
    if depth == 0:
        raise ValueError("deliberate failure 42")
    return _deep_raise(depth - 1)


@dataclass
class CrashOnceJob:
    """Aborts on its first attempt (marker file absent), succeeds on the next."""

    base_dir: str
    retries: int = 1

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> str:
        marker = os.path.join(self.base_dir, "crashed-once")
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.abort()
        return "recovered"


@dataclass
class OutputJob:
    """Writes at the Python, file-descriptor and subprocess levels."""

    base_dir: str

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> str:
        print("python-level stdout")
        print("python-level stderr", file=sys.stderr)
        os.write(1, b"fd-level stdout\n")
        os.write(2, b"fd-level stderr\n")
        os.system("echo shell-level hi")
        libc = ctypes.CDLL(None)
        libc.puts(b"c-level puts")
        libc.fflush(None)
        return "printed"


@dataclass
class HangJob:
    """Starts a grandchild (``sleep 60``), records both pids in ``pids.json``, then hangs.

    With ``ignore_term`` the job (and, inheriting the disposition, its grandchild)
    ignores SIGTERM, so only SIGKILL stops it; with ``grandchild_ignores_term`` only
    the grandchild does (the job dies of SIGTERM, what it started lives on).
    """

    base_dir: str
    ignore_term: bool = False
    grandchild_ignores_term: bool = False
    timeout: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> None:
        if self.ignore_term or self.grandchild_ignores_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild
        child = subprocess.Popen(["sleep", "60"])
        if not self.ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        write_json_atomic(
            os.path.join(self.base_dir, "pids.json"),
            {"worker": os.getpid(), "grandchild": child.pid},
        )
        print("hanging", flush=True)
        while True:
            time.sleep(3600)
