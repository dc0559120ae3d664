"""The fork server: one long-lived, single-threaded process that forks a fresh child per job.

Started once per :class:`~runner.executors.local.LocalExecutor` as
``python -m runner._forkserver <fd>`` (a fresh interpreter, never a fork of the
driver, which may hold threads or CUDA state). It imports the worker side of
Runner and cloudpickle once, and nothing of the user's: no torch, no job
module, so CUDA is never initialised here and every child starts clean. A fork
then costs a few milliseconds instead of the tens of milliseconds of CPU that a
new interpreter and its imports cost.

Protocol, over a ``SOCK_SEQPACKET`` unix socket (one message per datagram, JSON):

* driver -> server: ``{"id", "job_dir", "cwd", "env"}`` with the job's log file
  descriptor attached (``SCM_RIGHTS``).
* driver -> server: ``{"id", "pool": n}``: keep ``n`` children pre-forked (the
  scheduler's slots; see below). Not answered.
* driver -> server: ``{"id", "ping": true}``, answered ``{"id", "pong": true}``
  once the server's imports are done and its pool is full (:meth:`LocalExecutor.start`).
* server -> driver: ``{"id", "pid"}`` once the child runs in its own session
  (so the driver can kill its process group at once), or ``{"id", "error"}``;
  later ``{"pid", "rc"}`` when the server has reaped it (``rc`` as in
  :mod:`subprocess`: ``-N`` for signal N).

Each child: ``setsid()`` (its own session and process group), stdout and stderr
on the log's descriptor, ``chdir`` to the driver's working directory,
``os.environ`` replaced by exactly the job's environment, then
:func:`runner._worker.main`, and a normal interpreter exit (atexit handlers,
non-daemon threads, flushes), as ``python -m runner._worker`` would.

Pre-forked children: as many as the scheduler has slots (the "pool" message), or
the most jobs seen running at once. The server forks them ahead of need when no
request is waiting: at start-up, and after a burst (a round of a search, a wave of
jobs) once no request has come for ``REFILL_DELAY`` seconds. Each calls ``setsid()``,
rehearses a job's start-up on a dummy job (:func:`_rehearse`), then waits on its own
socket; a request is handed to one of them and answered at once. So the fork, and
the page faults every fresh fork pays, happen while the previous round's jobs run,
not in the burst in which every core is busy starting jobs. A pre-forked child is
still a fresh process that runs one job only, with nothing of any job in it; it
holds about 2.5 MiB of private memory while it waits, and exits when the server's end
of its socket closes (the server exited or died).

When the driver goes away (EOF on the socket), the server terminates the process
groups of the children still running (no orphans), then exits.
"""

from __future__ import annotations

import atexit
import gc
import io
import json
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Container
from dataclasses import dataclass
from typing import Any, NoReturn

# The worker side, imported once here so that no child pays for it.
import cloudpickle  # noqa: F401  (pre-imported for the children)

from runner import (
    _worker,
    job_folder,  # noqa: F401  (pre-imported for the children)
)

# Every search job unpickles its search config (its run function is a bound method of
# it) and, mostly, an experiment config built on BaseExperimentConfig: Runner's own
# config library, pure Python, nothing that touches a device.
from runner.configs import (
    base_experiment_config,  # noqa: F401  (pre-imported for the children)
    search_configs,  # noqa: F401  (pre-imported for the children)
)

#: Most bytes one request may take: the job's environment is the bulk of it.
MAX_MESSAGE = 1 << 20
#: Seconds the server gives orphaned jobs between SIGTERM and SIGKILL when the driver is gone.
ORPHAN_GRACE = 1.0
#: Seconds without a request after which the server forks children ahead of need: long
#: enough that a burst of requests is over, short next to a job.
REFILL_DELAY = 0.02
#: Most children kept pre-forked (each holds a little private memory while it waits).
MAX_POOL = 64


@dataclass
class ChildSpec:
    """What a forked child needs to become the job's worker."""

    job_dir: str
    cwd: str
    env: dict[str, str]
    log_fd: int


def _text_stream(fd: int, *, unbuffered: bool, encoding: str, errors: str) -> io.TextIOWrapper:
    # Built afresh in the child, as the interpreter would from the job's environment:
    # PYTHONUNBUFFERED makes the log show progress as it happens.
    raw = io.FileIO(fd, "w", closefd=False)
    buffered: Any = raw if unbuffered else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered,
        encoding=encoding,
        errors=errors,
        line_buffering=not unbuffered and fd == 2,
        write_through=unbuffered,
    )


def _flush_open_files() -> None:
    # The interpreter's own finalisation would flush files the job left open (when it frees
    # them); a forked child skips that, so flush them here. Frozen objects (the server's)
    # are not listed, so this only walks what the job created.
    for obj in gc.get_objects():
        if isinstance(obj, (io.BufferedWriter, io.BufferedRandom, io.TextIOWrapper)):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:  # a broken pipe or a full disk must not change the exit
                pass


def exit_child(code: int) -> NoReturn:
    """Leave the forked child as an interpreter exit would, minus its costly teardown.

    A normal exit frees every object, and in a forked child that writes to (and so
    copies) every page shared with the server: about 12 ms of CPU per job. What a job
    can observe of an exit is kept, in the interpreter's order: non-daemon threads are
    joined, atexit handlers run (``weakref.finalize``, logging's flush), open files and
    the standard streams are flushed. Like ``multiprocessing``'s forked children it then
    leaves with ``os._exit``; Python never promised ``__del__`` for objects alive at exit.
    """
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
        _flush_open_files()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    finally:
        os._exit(code)


def run_child(spec: ChildSpec) -> NoReturn:
    """In the forked child: become ``python -m runner._worker <job dir>``, then exit."""
    os.dup2(spec.log_fd, 1)
    os.dup2(spec.log_fd, 2)
    os.close(spec.log_fd)
    os.chdir(spec.cwd)
    os.environ.clear()
    os.environ.update(spec.env)
    unbuffered = bool(spec.env.get("PYTHONUNBUFFERED"))
    encoding, _, errors = spec.env.get("PYTHONIOENCODING", "").partition(":")
    out_encoding = encoding or sys.stdout.encoding or "utf-8"
    sys.stdout = _text_stream(
        1, unbuffered=unbuffered, encoding=out_encoding, errors=errors or "strict"
    )
    sys.stderr = _text_stream(
        2, unbuffered=unbuffered, encoding=out_encoding, errors=errors or "backslashreplace"
    )
    # The originals too (faulthandler, code that restores them): same descriptors, new buffering.
    sys.__stdout__ = sys.stdout  # type: ignore[misc]
    sys.__stderr__ = sys.stderr  # type: ignore[misc]
    argv = [os.path.abspath(_worker.__file__), spec.job_dir]
    sys.argv = argv
    try:
        code = _worker.main(argv)
    except SystemExit as exc:  # the job called sys.exit(n): exit with n, as the interpreter does
        code = _system_exit_code(exc)
    exit_child(code)


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    try:
        sys.stderr.write(f"{exc.code}\n")
    except Exception:
        pass
    return 1


@dataclass
class _Idle:
    """A pre-forked child, in its own session, waiting on ``sock`` for its one job."""

    pid: int
    sock: socket.socket


class Server:
    """The server's loop: requests in, children forked, exits reaped and reported."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: set[int] = set()
        #: Pre-forked children, oldest first, and how many to keep: the most jobs seen
        #: running at once (a search round, a wave of jobs: the slots in use).
        self.idle: deque[_Idle] = deque()
        self.pool_target = 0
        #: True once no request came for REFILL_DELAY: refill until the next request.
        self._quiet = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        # SIGCHLD only needs to wake select(); the reaping happens in the loop.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.sock.send(json.dumps(message).encode())
        except OSError:  # the driver is gone; EOF on the next read ends the loop
            pass

    def _reap(self) -> None:
        while self.children or self.idle:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                self._drop_idle()
                return
            if pid == 0:
                return
            if pid in self.children:
                self.children.discard(pid)
                self._send({"pid": pid, "rc": os.waitstatus_to_exitcode(status)})
            else:  # a pre-forked child that died before it got a job (killed from outside)
                self._drop_idle({pid})

    def _drop_idle(self, pids: Container[int] | None = None) -> None:
        """Forget the pre-forked children ``pids`` (all when None) and close their sockets."""
        for idle in [i for i in self.idle if pids is None or i.pid in pids]:
            self.idle.remove(idle)
            idle.sock.close()

    def _hand_to_idle(self, request: dict[str, Any], data: bytes, log_fd: int) -> bool:
        """Give the request to a pre-forked child; False when none could take it."""
        while self.idle:
            idle = self.idle.popleft()
            try:
                socket.send_fds(idle.sock, [data], [log_fd])
            except OSError:  # it died meanwhile; the reaper collects it
                idle.sock.close()
                continue
            idle.sock.close()
            os.close(log_fd)
            self.children.add(idle.pid)
            self._send({"id": request["id"], "pid": idle.pid})
            return True
        return False

    def _prefork(self) -> ChildSpec | None:
        """Fork one child that waits for a job; in that child, return its job's spec."""
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # out of processes: requests still fork (and report) on demand
            for end in (parent_end, child_end):
                end.close()
            os.close(ready_r)
            os.close(ready_w)
            self.pool_target = len(self.idle)
            return None
        if pid == 0:
            os.setsid()
            os.close(ready_w)
            os.close(ready_r)
            parent_end.close()
            self._forget_in_child()
            return _wait_for_job(child_end)
        child_end.close()
        os.close(ready_w)
        # As for a fork on demand: the pid is handed out only once the child leads its group.
        while os.read(ready_r, 1):
            pass
        os.close(ready_r)
        self.idle.append(_Idle(pid, parent_end))
        return None

    def _fork(self, request: dict[str, Any], log_fd: int) -> ChildSpec | None:
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(ready_r)
            os.close(ready_w)
            os.close(log_fd)
            self._send({"id": request["id"], "error": f"fork failed: {exc}"})
            return None
        if pid == 0:
            os.setsid()
            os.close(ready_w)  # EOF tells the server the child leads its own group now
            os.close(ready_r)
            self._forget_in_child()
            return ChildSpec(request["job_dir"], request["cwd"], request["env"], log_fd)
        os.close(ready_w)
        os.close(log_fd)
        # Wait for the setsid(): a cancel right after the reply must reach the child's group.
        while os.read(ready_r, 1):
            pass
        os.close(ready_r)
        self.children.add(pid)
        self._send({"id": request["id"], "pid": pid})
        return None

    def _forget_in_child(self) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.sock.close()
        # The server's ends of the waiting children's sockets: only the server may hold
        # them, so that its exit (or death) is the EOF that ends those children.
        for idle in self.idle:
            idle.sock.close()
        self.idle.clear()

    def _terminate_orphans(self) -> None:
        # Pre-forked children ran nothing: kill them and reap them now, without a grace.
        waiting = [idle.pid for idle in self.idle]
        self._drop_idle()
        for pid in waiting:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if not self.children:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in list(self.children):
                try:
                    os.killpg(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + ORPHAN_GRACE
            while self.children and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.01)
        self._reap()

    def serve(self) -> ChildSpec | None:
        """Serve until the driver hangs up (returns None) or, in a forked child, its spec."""
        while True:
            timeout = None
            if len(self.idle) < self.pool_target:
                timeout = 0.0 if self._quiet else REFILL_DELAY
            readable, _, _ = select.select([self.sock.fileno(), self.wake_r], [], [], timeout)
            if not readable:  # no request for a while: the burst is over, fork ahead of need
                self._quiet = True
                spec = self._prefork()
                if spec is not None:
                    return spec
                continue
            if self.wake_r in readable:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            self._reap()
            if self.sock.fileno() not in readable:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 1)
            except (ConnectionError, OSError):
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                self._terminate_orphans()
                return None
            request = json.loads(data)
            if "pool" in request:  # the scheduler's slots: fork that many ahead of need
                for fd in fds:
                    os.close(fd)
                self.pool_target = max(self.pool_target, min(MAX_POOL, int(request["pool"])))
                self._quiet = True  # no burst to wait out: start now, requests first
                continue
            if request.get("ping"):  # the driver waits for the server to be ready
                for fd in fds:
                    os.close(fd)
                # Ready includes the pool asked for (a failed fork lowers the target).
                while len(self.idle) < self.pool_target:
                    spec = self._prefork()
                    if spec is not None:
                        return spec
                self._send({"id": request["id"], "pong": True})
                continue
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                self._send({"id": request.get("id"), "error": "no log descriptor received"})
                continue
            self._quiet = False
            if not self._hand_to_idle(request, data, fds[0]):
                spec = self._fork(request, fds[0])
                if spec is not None:
                    return spec
            self.pool_target = min(MAX_POOL, max(self.pool_target, len(self.children)))


def _rehearse() -> None:
    """In a pre-forked child, while it waits: walk a job's start-up on a dummy job.

    A forked child pays for every page it first touches: the server's objects it
    writes to (reference counts) are copied, and the interpreter's code is mapped in,
    at a few microseconds each, hundreds of pages per job. Doing the same steps on a
    dummy job now moves that cost out of the burst in which a round's jobs start.
    Nothing here has effects outside this process, and nothing of it reaches the job
    but warmer caches (which a fresh interpreter would fill the same way).
    """
    try:
        from runner.configs.base_experiment_config import BaseExperimentConfig
        from runner.jobs import Job

        job = Job(run_fn=len, config=BaseExperimentConfig(base_dir=""), base_dir="")
        cloudpickle.loads(cloudpickle.dumps(job))
        cloudpickle.dumps(("ok", {"value": 0.5, "seed": 0, "passed": True}))
        request = {"id": 0, "job_dir": "", "cwd": os.getcwd(), "env": dict(os.environ)}
        json.loads(json.dumps(request))
        _worker.header_line("", "1")
        raw = os.environ.get(_worker.SYS_PATH_ENV)
        if raw:  # fill the import system's directory caches for the driver's sys.path
            import importlib.machinery

            importlib.machinery.PathFinder.find_spec("_runner_rehearsal_", json.loads(raw))
    except Exception:  # only ever an optimisation
        pass


def _wait_for_job(sock: socket.socket) -> ChildSpec:
    """In a pre-forked child: block until the server hands over a job (or exit on EOF)."""
    _rehearse()

    try:
        data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 1)
    except OSError:
        data, fds = b"", []
    sock.close()
    if not data or len(fds) != 1:  # the server is gone: nothing was started, nothing to flush
        os._exit(0)
    request = json.loads(data)
    return ChildSpec(request["job_dir"], request["cwd"], request["env"], fds[0])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m runner._forkserver <socket fd>\n")
        return 2
    sock = socket.socket(fileno=int(argv[1]))
    sock.setblocking(True)
    # Objects alive now are shared copy-on-write with every child: keep the collector
    # from touching (and so copying) their pages.
    gc.freeze()
    spec = Server(sock).serve()
    if spec is None:
        return 0
    run_child(spec)


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Only the server gets here (a child exits in run_child), its children reaped and
    # nothing of its own to clean up: skip the interpreter's teardown, which the driver's
    # shutdown would wait for.
    os._exit(code)
