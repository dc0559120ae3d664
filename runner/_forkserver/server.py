"""The fork server: one long-lived, single-threaded process that forks a fresh child per job.

Started once per :class:`~runner.executors.local.LocalExecutor` as
``python -m runner._forkserver <fd>`` (a fresh interpreter, never a fork of the
driver, which may hold threads or CUDA state). It imports the worker side of
Runner and cloudpickle once (:mod:`~runner._forkserver.preload`), and nothing of the
user's unless asked to (:class:`~runner._forkserver.protocol.Preload`), so CUDA is never
initialised here and every child starts clean. A fork then costs a few milliseconds
instead of the tens of milliseconds of CPU that a new interpreter and its imports cost.
The messages are those of :mod:`runner._forkserver.protocol`; each child becomes the
job's worker as :mod:`runner._forkserver.child` describes.

Pre-forked children: as many as the scheduler has slots (the :class:`Pool` message), or
the most jobs seen running at once. The server forks them ahead of need when no
request is waiting: at start-up, and after a burst (a round of a search, a wave of
jobs) once no request has come for ``REFILL_DELAY`` seconds. Each calls ``setsid()``,
rehearses a job's start-up on a dummy job (:func:`~runner._forkserver.child.rehearse`),
then waits on its own socket; a request is handed to one of them and answered at once.
So the fork, and the page faults every fresh fork pays, happen while the previous
round's jobs run, not in the burst in which every core is busy starting jobs. A
pre-forked child is still a fresh process that runs one job only, with nothing of any
job in it; it holds about 2.5 MiB of private memory while it waits, and exits when the
server's end of its socket closes (the server exited or died).

When the driver goes away (EOF on the socket), the server terminates the process
groups of the children still running (no orphans), then exits.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Container
from dataclasses import dataclass

from runner import _process_tree
from runner._forkserver import protocol
from runner._forkserver.child import ChildSpec, StartupState, rehearse, run_child, startup_state
from runner._forkserver.preload import preload_modules, preload_runner
from runner._forkserver.protocol import (
    MAX_MESSAGE,
    Exited,
    Fork,
    ForkFailed,
    Message,
    Ping,
    Pong,
    Pool,
    Preload,
    Preloaded,
    Started,
)

#: Seconds the server gives orphaned jobs between SIGTERM and SIGKILL when the driver is gone.
ORPHAN_GRACE = 1.0
#: Seconds without a request after which the server forks children ahead of need: long
#: enough that a burst of requests is over, short next to a job.
REFILL_DELAY = 0.02
#: Most children kept pre-forked (each holds a little private memory while it waits).
MAX_POOL = 64


@dataclass
class _Idle:
    """A pre-forked child, in its own session, waiting on ``sock`` for its one job."""

    pid: int
    sock: socket.socket


class Server:
    """The server's loop: requests in, children forked, exits reaped and reported."""

    def __init__(self, sock: socket.socket, startup: StartupState) -> None:
        self.sock = sock
        #: What each child inherits from the server's start (passed to run_child).
        self.startup = startup
        self.children: set[int] = set()
        #: Pre-forked children, oldest first, and how many to keep: the most jobs seen
        #: running at once (a search round, a wave of jobs: the slots in use).
        self.idle: deque[_Idle] = deque()
        self.pool_target = 0
        #: True once no request came for REFILL_DELAY: refill until the next request.
        self._quiet = False
        #: Why this server may fork nothing more (a preload left it unsafe), or None.
        self.unfit: str | None = None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        # SIGCHLD only needs to wake select(); the reaping happens in the loop.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        #: SIGTERM (also what the kernel sends when the driver's thread that started the
        #: server dies, see main) is a hang-up: end the jobs, then exit.
        self.hung_up = False
        signal.signal(signal.SIGTERM, self._on_hang_up)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

    def _on_hang_up(self, *_: object) -> None:
        self.hung_up = True

    def _send(self, message: Message) -> None:
        try:
            self.sock.send(protocol.encode(message))
        except OSError:  # the driver is gone; EOF on the next read ends the loop
            pass

    def _reap(self) -> None:
        while True:  # also orphans the server adopted (see _end_escapees)
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
                self._send(Exited(pid=pid, rc=os.waitstatus_to_exitcode(status)))
                self._end_escapees()
            else:  # a pre-forked child that died before it got a job (killed from outside)
                self._drop_idle({pid})

    def _end_escapees(self) -> None:
        """Kill what a job that just ended left running: orphans re-parented to the server.

        A job process is a child subreaper that ends its descendants before it exits; one
        that died abruptly (a signal, ``os._exit``) hands them to the nearest subreaper
        above it, this server, where they are found and killed (the kernel re-parents
        them before it reports the job's exit).
        """
        known = self.children | {idle.pid for idle in self.idle}
        adopted = _process_tree.children(os.getpid(), unless=known)
        if not adopted:
            return
        killed = list(adopted)
        for pid in adopted:
            killed.extend(_process_tree.kill_descendants(pid))
        _process_tree.signal_tree(adopted, signal.SIGKILL)
        _process_tree.wait_gone(killed, ORPHAN_GRACE)

    def _drop_idle(self, pids: Container[int] | None = None) -> None:
        """Forget the pre-forked children ``pids`` (all when None) and close their sockets."""
        for idle in [i for i in self.idle if pids is None or i.pid in pids]:
            self.idle.remove(idle)
            idle.sock.close()

    def _hand_to_idle(self, request: Fork, data: bytes, log_fd: int) -> bool:
        """Give the request to a pre-forked child; False when none could take it."""
        while self.idle:
            idle = self.idle.popleft()
            try:
                socket.send_fds(idle.sock, [data], [log_fd])
            except (BrokenPipeError, ConnectionError):  # it died meanwhile; the reaper collects it
                idle.sock.close()
                continue
            except OSError:  # the request can't travel this way (its size): fork on demand
                self.idle.appendleft(idle)
                return False
            idle.sock.close()
            os.close(log_fd)
            self.children.add(idle.pid)
            self._send(Started(id=request.id, pid=idle.pid))
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
            return _wait_for_job(child_end, self.startup)
        child_end.close()
        os.close(ready_w)
        # As for a fork on demand: the pid is handed out only once the child leads its group.
        while os.read(ready_r, 1):
            pass
        os.close(ready_r)
        self.idle.append(_Idle(pid, parent_end))
        return None

    def _fork(self, request: Fork, log_fd: int) -> ChildSpec | None:
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(ready_r)
            os.close(ready_w)
            os.close(log_fd)
            self._send(ForkFailed(id=request.id, error=f"fork failed: {exc}"))
            return None
        if pid == 0:
            os.setsid()
            os.close(ready_w)  # EOF tells the server the child leads its own group now
            os.close(ready_r)
            self._forget_in_child()
            return ChildSpec(request.job_dir, request.cwd, request.env, log_fd)
        os.close(ready_w)
        os.close(log_fd)
        # Wait for the setsid(): a cancel right after the reply must reach the child's group.
        while os.read(ready_r, 1):
            pass
        os.close(ready_r)
        self.children.add(pid)
        self._send(Started(id=request.id, pid=pid))
        return None

    def _forget_in_child(self) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.sock.close()
        # The server's ends of the waiting children's sockets: only the server may hold
        # them, so that its exit (or death) is the EOF that ends those children.
        for idle in self.idle:
            idle.sock.close()
        self.idle.clear()

    def _kill_idle(self) -> None:
        """Kill the pre-forked children and reap them now: they ran nothing."""
        waiting = [idle.pid for idle in self.idle]
        self._drop_idle()
        for pid in waiting:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    def _preload(self, request: Preload) -> None:
        """Import what the driver asks for every later child, and say whether forking is safe."""
        # Children forked before lack the modules (the driver sends Preload first, so
        # there are none unless it changed its mind).
        self._kill_idle()
        modules, problem = preload_modules(request.modules)
        if problem is not None:
            self.unfit = problem
            self.pool_target = 0
        else:
            gc.freeze()  # the preloaded objects too: shared copy-on-write with every child
        self._send(Preloaded(id=request.id, modules=modules, problem=problem))

    def _terminate_orphans(self) -> None:
        # Pre-forked children ran nothing: kill them and reap them now, without a grace.
        self._kill_idle()
        # Every job process is a subreaper, alive yet: its whole tree is found from it,
        # daemons that left its session included. Taken before any signal: a job that
        # dies of SIGTERM hands what it started to the server, by then unnamed.
        tree = _process_tree.descendants(os.getpid())
        if not tree:
            return
        # Each job leads its own process group. SIGKILL goes to every group that got
        # SIGTERM, even once its leader has exited: what it started may ignore SIGTERM.
        # (A group's id is not reused while any member lives.)
        groups = list(self.children)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if sig == signal.SIGKILL:  # all that is left under the server, orphans included
                _process_tree.kill_descendants(os.getpid(), also=tree)
            _process_tree.signal_tree(tree, sig, groups=groups)
            deadline = time.monotonic() + ORPHAN_GRACE
            while self.children and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.01)
        self._reap()

    def serve(self) -> ChildSpec | None:
        """Serve until the driver hangs up (returns None) or, in a forked child, its spec."""
        while True:
            if self.hung_up:  # SIGTERM: the driver (or its thread) is gone
                self._terminate_orphans()
                return None
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
            request = protocol.decode(data)
            if not isinstance(request, Fork):
                for fd in fds:
                    os.close(fd)
            if isinstance(request, Preload):
                self._preload(request)
                continue
            if isinstance(request, Pool):  # the scheduler's slots: fork that many ahead of need
                if self.unfit is None:
                    self.pool_target = max(self.pool_target, min(MAX_POOL, request.size))
                    self._quiet = True  # no burst to wait out: start now, requests first
                continue
            if isinstance(request, Ping):  # the driver waits for the server to be ready
                # Ready includes the pool asked for (a failed fork lowers the target).
                while len(self.idle) < self.pool_target:
                    spec = self._prefork()
                    if spec is not None:
                        return spec
                self._send(Pong(id=request.id))
                continue
            if not isinstance(request, Fork):
                raise protocol.ProtocolError(f"the server never takes {request!r}")
            if len(fds) != 1 or self.unfit is not None:
                for fd in fds:
                    os.close(fd)
                why = "no log descriptor received" if self.unfit is None else self.unfit
                self._send(ForkFailed(id=request.id, error=why))
                continue
            self._quiet = False
            if not self._hand_to_idle(request, data, fds[0]):
                spec = self._fork(request, fds[0])
                if spec is not None:
                    return spec
            self.pool_target = min(MAX_POOL, max(self.pool_target, len(self.children)))


def _wait_for_job(sock: socket.socket, startup: StartupState) -> ChildSpec:
    """In a pre-forked child: block until the server hands over a job (or exit on EOF)."""
    rehearse(startup)

    try:
        data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 1)
    except OSError:
        data, fds = b"", []
    sock.close()
    if not data or len(fds) != 1:  # the server is gone: nothing was started, nothing to flush
        os._exit(0)
    request = protocol.decode(data)
    if not isinstance(request, Fork):  # the server only ever forwards a Fork
        raise protocol.ProtocolError(f"a pre-forked child was sent {request!r}")
    return ChildSpec(request.job_dir, request.cwd, request.env, fds[0])


def main(argv: list[str]) -> int:
    """``python -m runner._forkserver <socket fd>``: serve the driver at the other end.

    Returns in the server (0 once the driver hung up); a forked child never returns.
    """
    if len(argv) != 2:
        sys.stderr.write("usage: python -m runner._forkserver <socket fd>\n")
        return 2
    parent = os.getppid()
    sock = socket.socket(fileno=int(argv[1]))
    sock.setblocking(True)
    startup = startup_state(preload_runner())
    # Objects alive now are shared copy-on-write with every child: keep the collector
    # from touching (and so copying) their pages.
    gc.freeze()
    server = Server(sock, startup)
    # A job process that dies abruptly hands what it started to the server (see
    # Server._end_escapees); and the driver's death reaches the server even where a
    # fork of the driver still holds the socket open (SIGTERM: handled as a hang-up).
    _process_tree.become_subreaper()
    _process_tree.set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the driver died before the kernel was asked to tell us
        server.hung_up = True
    spec = server.serve()
    if spec is None:
        return 0
    run_child(spec, startup)
