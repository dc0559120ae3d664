"""The local executor: each job attempt in a fresh ``python -m runner._worker`` process.

The child runs in its own session (so its own process group: a terminal's Ctrl-C
does not reach it, and cancel can kill the whole group, grandchildren included),
with ``CUDA_VISIBLE_DEVICES`` set in its environment only, the parent's
``sys.path`` and working directory, and stdout/stderr pointed at the job's log at
the file-descriptor level (so C-level output lands there too).

Waiting costs no thread: the child's exit is watched with a pidfd registered on
the event loop (Linux >= 5.3). Elsewhere a thread waits per *running* job.

Two ways to start the child (``start_method``):

* ``"forkserver"`` (the default on Linux): a fork server (:mod:`runner._forkserver`),
  itself a fresh interpreter started once per executor that has imported the
  worker side of Runner (never torch, never the user's modules), forks a clean
  child per job. A fork costs a few milliseconds of CPU; a new interpreter tens.
  If the server dies, the executor logs a warning and spawns from then on; jobs
  running at that moment are still watched and their results collected.
* ``"spawn"``: ``python -m runner._worker <job dir>``, a fresh interpreter per job
  (:class:`ProcessLauncher`).
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
import time
from typing import Any, Literal

from runner._worker import (
    ATTEMPT_ENV,
    EXIT_JOB_FAILED,
    EXIT_OK,
    HANDLED_PYTHON_ENV,
    MAX_FORK_REQUEST,
    SYS_PATH_ENV,
)
from runner.devices import Device
from runner.executors._outcome import DEFAULT_GRACE_PERIOD, fsync_if_present
from runner.executors.attempt import Attempt
from runner.executors.base import Executor
from runner.job_folder import JOB_JSON, RESULT_PKL, read_result
from runner.job_result import GPUJobResult

__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "START_METHODS",
    "ForkServerLauncher",
    "LocalExecutor",
    "ProcessLauncher",
    "WorkerProcess",
]

logger = logging.getLogger("runner")

#: How a job's process starts: forked by the fork server, or a fresh interpreter.
START_METHODS = ("forkserver", "spawn")
StartMethod = Literal["forkserver", "spawn"]
#: Environment variable naming the default start method ("forkserver" or "spawn").
START_METHOD_ENV = "RUNNER_START_METHOD"

_HOST = socket.gethostname()


class WorkerProcess:
    """A started worker: its pid and a future that resolves with its return code once it exits.

    The return code follows :mod:`subprocess`: negative ``-N`` when killed by signal N.
    """

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.pid = popen.pid
        self._popen = popen
        self._loop = loop
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):  # not Linux >= 5.3: a thread waits instead
            fut = loop.run_in_executor(None, popen.wait)
            fut.add_done_callback(self._on_thread_wait)
        else:
            loop.add_reader(self._pidfd, self._on_pidfd_readable)

    def _on_pidfd_readable(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        rc = self._popen.wait()  # the child has exited: this only reaps it
        if not self.exited.done():
            self.exited.set_result(rc)

    def _on_thread_wait(self, fut: asyncio.Future[int]) -> None:
        if not self.exited.done():
            if fut.cancelled() or fut.exception() is not None:
                self.exited.set_result(self._popen.wait())
            else:
                self.exited.set_result(fut.result())

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker's whole process group; a no-op once the group is gone."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class ProcessLauncher:
    """Starts ``python -m runner._worker <job dir>``; the seam a fork server can replace."""

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> WorkerProcess:
        """Start the worker for ``job_dir`` with ``env``, its stdout and stderr on ``log_fd``."""
        popen = subprocess.Popen(
            [sys.executable, "-m", "runner._worker", job_dir],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            env=env,
            start_new_session=True,
        )
        return WorkerProcess(popen, asyncio.get_running_loop())

    async def aclose(self) -> None:
        """Release what the launcher holds (nothing, for plain spawning)."""
        return None


class _ForkedWorker(WorkerProcess):
    """A worker forked by the fork server: the server reaps it and reports its return code.

    ``status_lost`` is True when the server died first: the child, orphaned, was then
    watched through a pidfd until it exited, and its exit status could not be known.
    """

    def __init__(self, pid: int, loop: asyncio.AbstractEventLoop) -> None:  # noqa: D107
        # No Popen: the server, not this process, is the child's parent.
        self.pid = pid
        self._loop = loop
        self.exited = loop.create_future()
        self._pidfd = None
        self.status_lost = False

    def _set_exit(self, rc: int) -> None:
        if not self.exited.done():
            self.exited.set_result(rc)

    def _orphaned(self) -> None:
        """The server died: wait for the child itself (pidfd works on a non-child), status unknown."""
        self.status_lost = True
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # already gone (or no pidfd): report it ended
            self._set_exit(0)
            return
        self._loop.add_reader(self._pidfd, self._on_orphan_exit)

    def _on_orphan_exit(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._set_exit(0)


class _ServerGone(Exception):
    """The fork server died: this launch and every later one spawn instead."""


class _CannotFork(Exception):
    """The fork server can't start this one job (too large a request, a failed fork): spawn it."""


class _ForkServer:
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
                env=_server_env(env),
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
        self.startup_env = _startup_env(env)
        self._ids = itertools.count(1)
        self._launching: dict[int, asyncio.Future[Any]] = {}
        self._workers: dict[int, _ForkedWorker] = {}
        self.alive = True
        loop.add_reader(self.sock.fileno(), self._on_readable)
        logger.debug("Started the fork server, pid %d", self.popen.pid)

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> _ForkedWorker:
        if not self.alive:
            raise _ServerGone("the fork server is not running")
        request_id = next(self._ids)
        message = json.dumps(
            {"id": request_id, "job_dir": job_dir, "cwd": os.getcwd(), "env": env}
        ).encode()
        if len(message) > MAX_FORK_REQUEST:  # the server would read it cut short
            raise _CannotFork(f"the request takes {len(message)} bytes, over {MAX_FORK_REQUEST}")
        future: asyncio.Future[_ForkedWorker] = self.loop.create_future()
        self._launching[request_id] = future
        try:
            await self._send(request_id, message, [log_fd])
            return await future
        finally:
            self._launching.pop(request_id, None)

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
                self._launching.pop(request_id, None)  # its caller hears of it here, not twice
                if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS, errno.ENOMEM):
                    # This request only (a job environment larger than a socket buffer):
                    # the server and the jobs it runs are fine.
                    raise _CannotFork(f"the request does not fit in the socket: {exc}") from exc
                self._died(f"sending a request failed: {exc}")
                raise _ServerGone(str(exc)) from exc

    def request_pool(self, size: int) -> None:
        """Ask the server to keep ``size`` children pre-forked; best effort, never waits."""
        if not self.alive:
            return
        try:
            self.sock.send(json.dumps({"id": next(self._ids), "pool": size}).encode())
        except OSError:  # a full buffer or a dead server: the pool is only an optimisation
            pass

    async def ping(self) -> None:
        """Wait until the server has done its imports (and pre-forked its pool) and answers."""
        if not self.alive:
            raise _ServerGone("the fork server is not running")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = self.loop.create_future()
        self._launching[request_id] = future
        try:
            await self._send(request_id, json.dumps({"id": request_id, "ping": True}).encode(), [])
            await future
        finally:
            self._launching.pop(request_id, None)

    def _on_readable(self) -> None:
        while self.alive:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                self._died(f"reading from it failed: {exc}")
                return
            if not data:
                self._died("it closed its socket")
                return
            self._handle(json.loads(data))

    def _handle(self, message: dict[str, Any]) -> None:
        if "rc" in message:
            worker = self._workers.pop(message["pid"], None)
            if worker is not None:
                worker._set_exit(int(message["rc"]))
            return
        future = self._launching.get(message["id"])
        if "pong" in message:
            if future is not None and not future.done():
                future.set_result(None)
            return
        if "error" in message:  # this fork failed (out of processes, say); the server lives
            if future is not None and not future.done():
                future.set_exception(_CannotFork(message["error"]))
            return
        # Registered here, not in launch(): the exit report may follow in this same read.
        worker = _ForkedWorker(int(message["pid"]), self.loop)
        self._workers[worker.pid] = worker
        if future is not None and not future.done():
            future.set_result(worker)
        else:  # the launch was cancelled meanwhile: the job must not run unwatched
            worker.signal_group(signal.SIGKILL)

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
        self._close_socket()
        for future in self._launching.values():
            if not future.done():
                future.set_exception(_ServerGone(why))
        for worker in self._workers.values():
            worker._orphaned()
        self._workers.clear()

    def _close_socket(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    async def aclose(self) -> None:
        """Hang up (the server then exits) and reap it."""
        if self.alive:
            self.alive = False
            self._close_socket()
        server = WorkerProcess(self.popen, self.loop)
        done, _ = await asyncio.wait({server.exited}, timeout=5.0)
        if not done:
            self.popen.kill()
            await asyncio.wait({server.exited})


#: Variables read once, when a process starts: by the interpreter (PYTHON*), the dynamic
#: loader (LD_*: also where a later ``dlopen`` of CUDA looks), glibc's malloc, and the
#: locale (the interpreter sets LC_CTYPE, and its encodings, at start-up). A forked child
#: keeps the server's, so a job whose values differ is spawned instead. TZ is not here:
#: the child re-reads it.
_STARTUP_ENV_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_")
_STARTUP_ENV_NAMES = ("LANG", "GLIBC_TUNABLES")


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in env.items()
        if (k.startswith(_STARTUP_ENV_PREFIXES) or k in _STARTUP_ENV_NAMES)
        and k not in HANDLED_PYTHON_ENV
    }


def _server_env(env: dict[str, str]) -> dict[str, str]:
    # Nothing in the server may touch a GPU; its children get their own env anyway. The
    # variables each child applies itself are left out, so that the server's streams have
    # the interpreter's own defaults for its locale to fall back on.
    server_env = {k: v for k, v in env.items() if k not in HANDLED_PYTHON_ENV}
    server_env["CUDA_VISIBLE_DEVICES"] = ""
    return server_env


def forkserver_available() -> bool:
    """Whether this platform can run the fork server (Linux: fork, SEQPACKET, SCM_RIGHTS)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
    )


class ForkServerLauncher(ProcessLauncher):
    """Forks each worker from a fork server started on first use; spawns when it can't.

    The server is started lazily, once per event loop (``asyncio.run`` twice gets two
    servers, the first hung up). A job spawns instead of forking when its environment
    changes a variable read only when a process starts (``PYTHON*``, ``LD_*``, the
    locale's), when its request does not fit in the server's socket, when the server
    could not fork it, and for good once the server has died (with a warning).
    """

    def __init__(self) -> None:
        self._server: _ForkServer | None = None
        self._broken = False
        self._spawn = ProcessLauncher()

    async def start(self) -> None:
        """Start the fork server now, and wait until it is ready (else the first launch does)."""
        server = self._current_server()
        if server is not None:
            try:
                await server.ping()
            except _ServerGone:
                self._broken = True

    def warm_up(self, *, slots: int) -> None:
        """Start the fork server in the background (no wait) and ask for ``slots`` children.

        Its imports overlap our set-up; once ready, it forks that many children ahead
        of need unless jobs are already waiting (see :mod:`runner._forkserver`).
        """
        server = self._current_server()
        if server is not None:
            server.request_pool(slots)

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> WorkerProcess:
        """Fork the worker for ``job_dir`` from the server (spawn it if the server is gone)."""
        server = self._current_server()
        if server is not None and _startup_env(env) == server.startup_env:
            try:
                return await server.launch(job_dir, env=env, log_fd=log_fd)
            except _CannotFork as exc:
                logger.info("Spawning %s instead of forking it: %s", job_dir, exc)
            except _ServerGone as exc:
                self._broken = True
                logger.debug("Spawning %s: %s", job_dir, exc)
        return await self._spawn.launch(job_dir, env=env, log_fd=log_fd)

    def _current_server(self) -> _ForkServer | None:
        """This loop's server, started if need be; None once it has died (then we spawn)."""
        loop = asyncio.get_running_loop()
        server = self._server
        if server is not None and server.loop is loop and not server.alive:
            self._broken = True  # it died (and said so, once): spawn from now on
        if not self._broken:
            if server is None or server.loop is not loop:
                if server is not None and server.alive:
                    server._close_socket()  # a previous loop's server: hang up, it exits
                    server.alive = False
                try:
                    server = self._server = _ForkServer(loop)
                except OSError as exc:
                    self._broken = True
                    logger.warning(
                        "Could not start the fork server (%s); starting each job in a fresh "
                        "interpreter instead.",
                        exc,
                    )
                    server = None
            return server
        return None

    async def aclose(self) -> None:
        """Stop the fork server, if one runs."""
        server, self._server = self._server, None
        if server is not None and server.loop is asyncio.get_running_loop():
            await server.aclose()


def _fsync_paths(job_dir: str) -> None:
    """Flush a finished job's result.pkl and job.json to disk (the worker does not fsync)."""
    for name in (RESULT_PKL, JOB_JSON):
        fsync_if_present(os.path.join(job_dir, name))


class LocalExecutor(Executor):
    """Runs each job attempt in a fresh child process on this machine.

    Args:
        grace_period: Seconds between SIGTERM and SIGKILL of a cancelled or timed-out job.
        launcher: What starts the worker process; overrides ``start_method``.
        tail_lines: Lines of the log quoted in the error of a crash or a bad exit.
        start_method: ``"forkserver"`` (default where available: Linux) forks each job
            from a fork server that has pre-imported Runner's worker side;
            ``"spawn"`` starts a fresh interpreter per job. Both give each job a new
            process in its own session, exactly the environment built for it, and
            the driver's ``sys.path`` and working directory; a job whose environment
            changes what a process reads only at start-up (``PYTHON*``, ``LD_*``,
            the locale) is spawned. One difference remains: forked jobs share the
            server's string-hash seed (the order of a set of strings), as they would
            with ``PYTHONHASHSEED`` set; use ``"spawn"`` where each job must draw
            its own. Default: the ``RUNNER_START_METHOD`` environment variable, else
            ``"forkserver"``.

    Example:
        >>> import asyncio
        >>> from runner.devices import CPU_DEVICE
        >>> from runner.jobs import Job
        >>> job = Job(run_fn=sum, config=[1, 2], base_dir="/tmp/runner-doc-local")
        >>> asyncio.run(LocalExecutor(grace_period=1.0).execute(job, CPU_DEVICE)).result
        3
    """

    def __init__(
        self,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        *,
        launcher: ProcessLauncher | None = None,
        tail_lines: int = 20,
        start_method: StartMethod | None = None,
    ) -> None:
        if (
            isinstance(grace_period, bool)
            or not isinstance(grace_period, (int, float))
            or grace_period < 0
        ):
            raise ValueError(
                f"grace_period={grace_period!r} must be a number of seconds >= 0, e.g. 5.0"
            )
        if start_method is not None and start_method not in START_METHODS:
            raise ValueError(
                f"start_method={start_method!r} is not one of {', '.join(map(repr, START_METHODS))}"
            )
        self.grace_period = float(grace_period)
        if start_method is None:
            # RUNNER_START_METHOD picks the default without touching code (e.g. to run a
            # test suite both ways); an explicit argument wins.
            chosen = os.environ.get(START_METHOD_ENV, "")
            if chosen and chosen not in START_METHODS:
                raise ValueError(
                    f"{START_METHOD_ENV}={chosen!r} is not one of "
                    f"{', '.join(map(repr, START_METHODS))}"
                )
            start_method = chosen or ("forkserver" if forkserver_available() else "spawn")  # type: ignore[assignment]
        method: StartMethod = "spawn" if start_method == "spawn" else "forkserver"
        if method == "forkserver" and not forkserver_available():
            logger.warning("start_method='forkserver' needs Linux; spawning each job instead")
            method = "spawn"
        self.start_method: StartMethod = method
        start_method = method
        if launcher is None:
            launcher = ForkServerLauncher() if start_method == "forkserver" else ProcessLauncher()
        self.launcher = launcher
        self.tail_lines = tail_lines
        self._flushes: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        """Start the fork server now and wait until it is ready; optional.

        Without it the first job starts the server (about 0.05 s of a fresh interpreter's
        imports, once). Call it to pay that before timing or before a burst of jobs;
        inside a scheduler, the server has then also pre-forked a child per slot.
        """
        start = getattr(self.launcher, "start", None)
        if start is not None:
            await start()

    def warm_up(self, *, slots: int) -> None:
        """Start the fork server in the background, without waiting for it (see ``start``)."""
        warm_up = getattr(self.launcher, "warm_up", None)
        if warm_up is not None:
            warm_up(slots=slots)

    async def aclose(self) -> None:
        """Stop the fork server, if one was started, and finish the pending flushes to disk.

        The scheduler's shutdown calls this.
        """
        loop = asyncio.get_running_loop()
        pending = [f for f in self._flushes if f.get_loop() is loop]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        aclose = getattr(self.launcher, "aclose", None)
        if aclose is not None:
            await aclose()

    def _flush_behind(self, job_dir: str) -> None:
        """Flush a finished job's result.pkl and job.json to disk in a thread.

        An fsync on the event loop's thread stalls every slot for milliseconds (several
        at once on a busy disk); written behind, it only costs the disk its time.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - execute always runs in a loop
            return
        future = loop.run_in_executor(None, _fsync_paths, job_dir)
        self._flushes.add(future)
        future.add_done_callback(self._flushes.discard)

    async def _terminate(self, proc: WorkerProcess) -> int:
        """SIGTERM the group, wait up to the grace period for the worker, SIGKILL the group."""
        proc.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait({proc.exited}, timeout=self.grace_period)
        finally:
            # Always, even if the worker exited: its children may ignore SIGTERM or outlive it.
            proc.signal_group(signal.SIGKILL)
        await asyncio.wait({proc.exited})
        return proc.exited.result()

    def _child_env(self, device: Device, attempt: int) -> dict[str, str]:
        env = dict(os.environ)  # a copy: the parent's environment is never mutated
        if "CUDA_VISIBLE_DEVICES" not in env and not device.is_cpu:
            # The devices were numbered by NVML, in PCI bus order; CUDA's default order is
            # fastest first, so on a mixed machine index i could be another card than the
            # one the busy check measured. A user's own CUDA_DEVICE_ORDER wins.
            env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        env["CUDA_VISIBLE_DEVICES"] = device.visible_devices
        env[SYS_PATH_ENV] = json.dumps(sys.path)
        env[ATTEMPT_ENV] = str(attempt)
        env.setdefault("PYTHONUNBUFFERED", "1")  # the log shows progress as it happens
        return env

    async def execute(self, job: Any, device: Device, *, attempt: int = 1) -> GPUJobResult:
        """Run one attempt of ``job`` on ``device`` in a child process; see :class:`Executor`."""
        run = Attempt(
            job,
            attempt=attempt,
            tail_lines=self.tail_lines,
            grace_period=self.grace_period,
            flush_behind=self._flush_behind,
        )
        # No fsync: job.pkl only has to outlive this attempt, and a resume never reads
        # it; an fsync here would stall the event loop (every slot) for milliseconds.
        failed = run.prepare(fsync=False)
        if failed is not None:
            return failed
        try:
            log_fd = os.open(run.out_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            return run.fail("error", f"Could not open the job's log: {type(exc).__name__}: {exc}")
        try:
            start_time = time.time()
            proc = await self.launcher.launch(
                run.job_dir, env=self._child_env(device, attempt), log_fd=log_fd
            )
        except OSError as exc:
            return run.fail("error", f"Could not start the job's process: {type(exc).__name__}: {exc}")
        finally:
            os.close(log_fd)
        problem = run.started(pid=proc.pid, device=device.cuda_id, start_time=start_time)
        if problem is not None:
            await self._terminate(proc)
            return run.fail("error", problem)

        timed_out = False
        try:
            # asyncio.wait never cancels proc.exited, so the kill path can still await it.
            done, _ = await asyncio.wait({proc.exited}, timeout=run.timeout)
            if not done:
                timed_out = True
                logger.info("Job %s timed out after %s s; terminating it", run.out_file, run.timeout)
                await self._terminate(proc)
        except asyncio.CancelledError:
            try:
                await self._terminate(proc)
            finally:
                proc.signal_group(signal.SIGKILL)  # if a second cancel cut the grace period short
                if not proc.exited.done():
                    with contextlib.suppress(asyncio.CancelledError):  # we re-raise below anyway
                        await asyncio.wait({proc.exited}, timeout=2.0)  # SIGKILL is prompt
                run.cancel(proc.exited.result() if proc.exited.done() else None)
            raise
        rc = proc.exited.result()
        proc.signal_group(signal.SIGKILL)  # no orphans: whatever the finished job left running
        if not getattr(proc, "status_lost", False):
            return run.finish(rc, timed_out=timed_out)
        # The fork server died while this job ran: its exit status is lost with it, so
        # the result file is the only verdict (the worker writes it before exiting).
        try:
            lost = read_result(run.job_dir)
        except Exception:
            lost = None
        if lost is None:
            return run.fail(
                "crashed",
                "The fork server died while this job ran, so the job's exit status is "
                f"unknown, and it left no result. Last lines of {run.out_file}:\n{run.tail()}",
            )
        rc = EXIT_OK if lost[0] == "ok" else EXIT_JOB_FAILED
        return run.finish(rc, timed_out=timed_out, exit_observed=False)
