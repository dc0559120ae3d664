"""The driver's side of the fork server: :class:`ForkServerLauncher` and one server's connection.

The launcher starts a server lazily, once per event loop (``asyncio.run`` twice gets
two servers, the first hung up), and forks each job's worker from it. A job spawns
instead (through the fallback launcher) when its environment changes a variable read
only when a process starts (``PYTHON*``, ``LD_*``, the locale's), when its request does
not fit in the server's socket, when the server could not fork it, and for good once
the server has died (with a warning). Jobs running when the server dies are still
watched, through a pidfd, and their results collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

from runner._forkserver import protocol
from runner._forkserver.protocol import (
    HANDLED_PYTHON_ENV,
    MAX_MESSAGE,
    Exited,
    Fork,
    ForkFailed,
    Message,
    Ping,
    Pong,
    Pool,
    Started,
)
from runner._worker import SYS_PATH_ENV

if TYPE_CHECKING:
    from runner.executors.launchers import Launcher, Worker

__all__ = ["ForkServerLauncher", "ForkedWorker", "forkserver_available"]

logger = logging.getLogger("runner")

#: Seconds :meth:`ForkServerClient.aclose` waits for the server to exit before killing it.
SERVER_EXIT_WAIT = 5.0


def forkserver_available() -> bool:
    """Whether this platform can run the fork server (Linux: fork, SEQPACKET, SCM_RIGHTS)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
    )


class ForkedWorker:
    """A worker forked by the fork server: the server reaps it and reports its return code.

    ``status_lost`` is True when the server died first: the child, orphaned, was then
    watched through a pidfd until it exited, and its exit status could not be known.
    """

    def __init__(self, pid: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pid = pid
        self._loop = loop
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None
        self.status_lost = False

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker's whole process group; a no-op once the group is gone."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def set_exit(self, rc: int) -> None:
        if not self.exited.done():
            self.exited.set_result(rc)

    def orphaned(self) -> None:
        """The server died: wait for the child itself (pidfd works on a non-child), status unknown."""
        self.status_lost = True
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # already gone (or no pidfd): report it ended
            self.set_exit(0)
            return
        self._loop.add_reader(self._pidfd, self._on_orphan_exit)

    def _on_orphan_exit(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self.set_exit(0)


class ServerGone(Exception):
    """The fork server died: this launch and every later one spawn instead."""


class CannotFork(Exception):
    """The fork server can't start this one job (too large a request, a failed fork): spawn it."""


#: Variables read once, when a process starts: by the interpreter (PYTHON*), the dynamic
#: loader (LD_*: also where a later ``dlopen`` of CUDA looks), glibc's malloc, and the
#: locale (the interpreter sets LC_CTYPE, and its encodings, at start-up). A forked child
#: keeps the server's, so a job whose values differ is spawned instead. TZ is not here:
#: the child re-reads it.
_STARTUP_ENV_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_")
_STARTUP_ENV_NAMES = ("LANG", "GLIBC_TUNABLES")


def startup_env(env: dict[str, str]) -> dict[str, str]:
    """The variables of ``env`` that a process reads only when it starts."""
    return {
        k: v
        for k, v in env.items()
        if (k.startswith(_STARTUP_ENV_PREFIXES) or k in _STARTUP_ENV_NAMES)
        and k not in HANDLED_PYTHON_ENV
    }


def server_env(env: dict[str, str]) -> dict[str, str]:
    """The server's environment, from the driver's."""
    # Nothing in the server may touch a GPU; its children get their own env anyway. The
    # variables each child applies itself are left out, so that the server's streams have
    # the interpreter's own defaults for its locale to fall back on.
    result = {k: v for k, v in env.items() if k not in HANDLED_PYTHON_ENV}
    result["CUDA_VISIBLE_DEVICES"] = ""
    return result


class ForkServerClient:
    """The driver's side of one fork server process, bound to one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        env[SYS_PATH_ENV] = json.dumps(sys.path)  # the server imports Runner from where we did
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "runner._forkserver", str(child_sock.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=server_env(env),
                pass_fds=[child_sock.fileno()],
                start_new_session=True,  # a terminal's Ctrl-C is the driver's to handle
            )
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        self.sock = parent_sock
        self.sock.setblocking(False)
        #: Start-up variables the server began with: a job whose env differs is spawned.
        self.startup_env = startup_env(env)
        self._ids = itertools.count(1)
        #: Requests awaiting their answer, by id: a launch's resolves with its worker.
        self._pending: dict[int, asyncio.Future[object]] = {}
        self._workers: dict[int, ForkedWorker] = {}
        self.alive = True
        loop.add_reader(self.sock.fileno(), self._on_readable)
        logger.debug("Started the fork server, pid %d", self.popen.pid)

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> ForkedWorker:
        """Have the server fork the worker for ``job_dir``; returns once it leads its session.

        Raises:
            CannotFork: This job can't be forked (spawn it); the server is fine.
            ServerGone: The server died (spawn this job and every later one).
        """
        if not self.alive:
            raise ServerGone("the fork server is not running")
        request_id = next(self._ids)
        message = protocol.encode(Fork(id=request_id, job_dir=job_dir, cwd=os.getcwd(), env=env))
        if len(message) > MAX_MESSAGE:  # the server would read it cut short
            raise CannotFork(f"the request takes {len(message)} bytes, over {MAX_MESSAGE}")
        worker = await self._request(request_id, message, [log_fd])
        assert isinstance(worker, ForkedWorker)
        return worker

    def request_pool(self, size: int) -> None:
        """Ask the server to keep ``size`` children pre-forked; best effort, never waits."""
        if not self.alive:
            return
        try:
            self.sock.send(protocol.encode(Pool(id=next(self._ids), size=size)))
        except OSError:  # a full buffer or a dead server: the pool is only an optimisation
            pass

    async def ping(self) -> None:
        """Wait until the server has done its imports (and pre-forked its pool) and answers."""
        if not self.alive:
            raise ServerGone("the fork server is not running")
        request_id = next(self._ids)
        await self._request(request_id, protocol.encode(Ping(id=request_id)), [])

    async def _request(self, request_id: int, message: bytes, fds: list[int]) -> object:
        """Send one request and wait for its answer (see :meth:`_handle`)."""
        future: asyncio.Future[object] = self.loop.create_future()
        self._pending[request_id] = future
        try:
            await self._send(request_id, message, fds)
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def _send(self, request_id: int, message: bytes, fds: list[int]) -> None:
        """Send one request, waiting for room in the socket while the server is busy forking."""
        while True:
            try:
                if fds:
                    socket.send_fds(self.sock, [message], fds)
                else:
                    self.sock.send(message)
                return
            except BlockingIOError:
                writable = self.loop.create_future()
                self.loop.add_writer(self.sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    self.loop.remove_writer(self.sock.fileno())
            except OSError as exc:
                self._pending.pop(request_id, None)  # its caller hears of it here, not twice
                if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS, errno.ENOMEM):
                    # This request only (a job environment larger than a socket buffer):
                    # the server and the jobs it runs are fine.
                    raise CannotFork(f"the request does not fit in the socket: {exc}") from exc
                self._died(f"sending a request failed: {exc}")
                raise ServerGone(str(exc)) from exc

    def _on_readable(self) -> None:
        while self.alive:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError as exc:
                self._died(f"reading from it failed: {exc}")
                return
            if not data:
                self._died("it closed its socket")
                return
            try:
                message = protocol.decode(data)
            except protocol.ProtocolError as exc:  # not our server any more: stop using it
                self._died(str(exc))
                return
            self._handle(message)

    def _handle(self, message: Message) -> None:
        """Route one message from the server to whatever awaits it."""
        if isinstance(message, Exited):
            worker = self._workers.pop(message.pid, None)
            if worker is not None:
                worker.set_exit(message.rc)
            return
        future = self._pending.get(getattr(message, "id", -1))
        waiting = future is not None and not future.done()
        if isinstance(message, Started):
            # Registered here, not in launch(): the exit report may follow in this same read.
            worker = ForkedWorker(message.pid, self.loop)
            self._workers[worker.pid] = worker
            if not waiting:  # the launch was cancelled meanwhile: the job must not run unwatched
                worker.signal_group(signal.SIGKILL)
            answer: object = worker
        elif isinstance(message, ForkFailed):  # this fork failed (out of processes, say)
            answer = CannotFork(message.error)
        elif isinstance(message, Pong):
            answer = None
        else:
            logger.debug("The fork server sent %r, which nothing awaits", message)
            return
        if future is not None and waiting:
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _died(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        rc = self.popen.poll()
        logger.warning(
            "The fork server (pid %d) is gone (%s; exit status %s): starting each job in a "
            "fresh interpreter from now on. Jobs already running are still watched.",
            self.popen.pid,
            why,
            rc,
        )
        self.close_socket()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ServerGone(why))
        for worker in self._workers.values():
            worker.orphaned()
        self._workers.clear()

    def close_socket(self) -> None:
        """Hang up: the server then ends its children's groups and exits."""
        self.alive = False
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    async def aclose(self) -> None:
        """Hang up (the server then exits) and reap it."""
        if self.alive:
            self.close_socket()
        waited = self.loop.run_in_executor(None, self.popen.wait)
        done, _ = await asyncio.wait({waited}, timeout=SERVER_EXIT_WAIT)
        if not done:
            self.popen.kill()
            await waited


class ForkServerLauncher:
    """Forks each worker from a fork server started on first use; spawns when it can't.

    Args:
        fallback: The launcher that spawns a job the server can't fork (a
            :class:`~runner.executors.launchers.ProcessLauncher`).
    """

    def __init__(self, *, fallback: Launcher) -> None:
        self._server: ForkServerClient | None = None
        self._broken = False
        self._spawn = fallback

    async def start(self) -> None:
        """Start the fork server now, and wait until it is ready (else the first launch does)."""
        server = self._current_server()
        if server is not None:
            try:
                await server.ping()
            except ServerGone:
                self._broken = True

    def warm_up(self, *, slots: int) -> None:
        """Start the fork server in the background (no wait) and ask for ``slots`` children.

        Its imports overlap our set-up; once ready, it forks that many children ahead
        of need unless jobs are already waiting (see :mod:`runner._forkserver.server`).
        """
        server = self._current_server()
        if server is not None:
            server.request_pool(slots)

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> Worker:
        """Fork the worker for ``job_dir`` from the server (spawn it if the server is gone)."""
        server = self._current_server()
        if server is not None and startup_env(env) == server.startup_env:
            try:
                return await server.launch(job_dir, env=env, log_fd=log_fd)
            except CannotFork as exc:
                logger.info("Spawning %s instead of forking it: %s", job_dir, exc)
            except ServerGone as exc:
                self._broken = True
                logger.debug("Spawning %s: %s", job_dir, exc)
        return await self._spawn.launch(job_dir, env=env, log_fd=log_fd)

    def _current_server(self) -> ForkServerClient | None:
        """This loop's server, started if need be; None once it has died (then we spawn)."""
        loop = asyncio.get_running_loop()
        server = self._server
        if server is not None and server.loop is loop and not server.alive:
            self._broken = True  # it died (and said so, once): spawn from now on
        if self._broken:
            return None
        if server is None or server.loop is not loop:
            if server is not None and server.alive:
                server.close_socket()  # a previous loop's server: hang up, it exits
            try:
                server = self._server = ForkServerClient(loop)
            except OSError as exc:
                self._broken = True
                logger.warning(
                    "Could not start the fork server (%s); starting each job in a fresh "
                    "interpreter instead.",
                    exc,
                )
                return None
        return server

    async def aclose(self) -> None:
        """Stop the fork server, if one runs."""
        server, self._server = self._server, None
        if server is not None and server.loop is asyncio.get_running_loop():
            await server.aclose()
