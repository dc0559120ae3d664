"""The driver's side of one fork server: start it, ask it to fork jobs, watch them.

:class:`ForkServerClient` is one server process and its socket, bound to one event loop;
:class:`ForkedWorker` one job it forked. Which server a job goes to, and when a job is
spawned instead, is :class:`~runner._forkserver.launcher.ForkServerLauncher`'s to say.
Jobs running when their server dies are still watched, through a pidfd, and their
results collected.
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

from runner._forkserver import protocol
from runner._forkserver.preload import origin_on_path, same_file
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
    Preload,
    Preloaded,
    Started,
)
from runner._worker import SYS_PATH_ENV
from runner.thread_limits import THREAD_ENV

__all__ = ["CannotFork", "ForkServerClient", "ForkedWorker", "ServerGone", "forkserver_available"]

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


def driver_env(extra: dict[str, str]) -> dict[str, str]:
    """The driver's environment for a server: with its ``sys.path`` (the server imports
    Runner from where the driver did) and ``extra`` (the jobs' thread limits).
    """
    env = dict(os.environ)
    env[SYS_PATH_ENV] = json.dumps(sys.path)
    env.update(extra)
    return env


class ForkServerClient:
    """The driver's side of one fork server process, bound to one event loop.

    Args:
        loop: The event loop that watches the server and its jobs.
        env: The driver's environment for the server (:func:`driver_env`).
        preload: Modules the server imports before it forks anything (warm starts);
            :attr:`preloaded` resolves with its answer.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, env: dict[str, str], preload: list[str] | None = None
    ) -> None:
        self.loop = loop
        self.env = env
        self.cwd = os.getcwd()
        self.preload = list(preload or ())
        #: Where the preloaded top-level packages load from (here, as in the server, which
        #: only imports what the driver's path finds the same): a job whose ``sys.path``
        #: or working directory moved is forked here only if they still load from there.
        self.origins = {
            top: origin_on_path(top) for top in dict.fromkeys(m.partition(".")[0] for m in self.preload)
        }
        self._path_verdicts: dict[tuple[str | None, str], bool] = {}
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
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
        #: Hang up once the last job it runs has ended (a newer server took over).
        self.retiring = False
        self._closing: asyncio.Task[None] | None = None
        #: The server's answer to the preload (None without one); ServerGone if it died.
        self.preloaded: asyncio.Future[object] | None = None
        if self.preload:
            request_id = next(self._ids)
            self.preloaded = self._pending[request_id] = loop.create_future()
            # Nobody may be waiting when the server dies: don't warn of an unread error.
            self.preloaded.add_done_callback(lambda f: f.cancelled() or f.exception())
            try:  # the first message, into an empty socket buffer: it never blocks
                self.sock.send(protocol.encode(Preload(id=request_id, modules=self.preload)))
            except OSError as exc:
                self.preloaded.set_exception(ServerGone(f"sending the preload failed: {exc}"))
        loop.add_reader(self.sock.fileno(), self._on_readable)
        logger.debug("Started the fork server, pid %d, preloading %s", self.popen.pid, self.preload)

    def accepts(self, env: dict[str, str]) -> bool:
        """Whether a job with ``env`` (from this driver's working directory) may be forked here.

        Not when it changes a variable read only at a process's start. A server that
        preloaded modules also needs the thread limits they loaded with, and a job whose
        ``sys.path`` would load them from the very same files.
        """
        if startup_env(env) != self.startup_env:
            return False
        if not self.preload:
            return True
        if any(env.get(name) != self.env.get(name) for name in THREAD_ENV):
            return False
        key = (env.get(SYS_PATH_ENV), os.getcwd())
        if key == (self.env.get(SYS_PATH_ENV), self.cwd):
            return True
        verdict = self._path_verdicts.get(key)
        if verdict is None:  # the driver's path is the job's: ask where it finds them now
            verdict = self._path_verdicts[key] = all(
                same_file(origin_on_path(top), origin) for top, origin in self.origins.items()
            )
        return verdict

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
            self._close_if_retired()

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
            self._close_if_retired()
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
        elif isinstance(message, Preloaded):
            self._pending.pop(message.id, None)  # no _request() awaits it to do so
            answer = message
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

    def retire(self) -> None:
        """Stop using this server: it exits once the jobs it runs have ended."""
        self.retiring = True
        self._close_if_retired()

    def _close_if_retired(self) -> None:
        if self.retiring and self.alive and not self._workers and not self._pending:
            self.close_socket()
            self._closing = self.loop.create_task(self.aclose())  # reap it

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
        if self.popen.returncode is not None:
            return
        waited = self.loop.run_in_executor(None, self.popen.wait)
        done, _ = await asyncio.wait({waited}, timeout=SERVER_EXIT_WAIT)
        if not done:
            self.popen.kill()
            await waited
