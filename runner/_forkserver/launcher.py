"""The fork-server launcher: which server forks a job, when a job is spawned, and warm starts.

:class:`ForkServerLauncher` starts a fork server lazily, once per event loop
(``asyncio.run`` twice gets two servers, the first hung up), and forks each job's
worker from it. A job spawns instead (through the fallback launcher) when its
environment changes a variable read only when a process starts (``PYTHON*``, ``LD_*``,
the locale's), when its request does not fit in the server's socket, when the server
could not fork it, and for good once the server has died (with a warning).

Warm starts. The first jobs report what they imported (``runner._worker``'s
``IMPORTS_ENV``); from the first that returns, the launcher picks the installed
third-party modules (:func:`~runner._forkserver.preload.choose_preloads`), plus those
the user named, and starts a second server that imports them before it forks anything
(with the jobs' thread limits already in its environment, so that OpenBLAS and OpenMP
size their pools for a job). If that server then says forking it is safe
(:func:`~runner._forkserver.preload.fork_safety_problem`), later jobs are forked from
it, each finding those modules already imported, and the first server exits once its
jobs have ended. Jobs launched while it is being prepared wait for it, at most as long
as the teaching job took (what a cold start costs at most). If it is not safe, the
launcher logs one warning and every job keeps starting cold. Modules named up front (``preload=[...]``) are imported by the first server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from runner._forkserver.client import (
    CannotFork,
    ForkServerClient,
    ServerGone,
    driver_env,
)
from runner._forkserver.preload import choose_preloads
from runner._forkserver.protocol import Preloaded
from runner._forkserver.reports_dir import ReportsDir
from runner._worker import IMPORTS_ENV
from runner.thread_limits import thread_limits

if TYPE_CHECKING:
    from runner.executors.launchers import Launcher, Worker

__all__ = ["ForkServerLauncher"]

logger = logging.getLogger("runner")

#: Most seconds a job waits for a warm server being prepared before it starts cold.
MAX_WAIT_FOR_WARM = 60.0


class ForkServerLauncher:
    """Forks each worker from a fork server started on first use; spawns when it can't.

    Args:
        fallback: The launcher that spawns a job the server can't fork (a
            :class:`~runner.executors.launchers.ProcessLauncher`).
        preload: True (default): learn from the first job that returns which installed
            third-party modules the jobs import, and preload them (warm starts). A list
            of module names: preload these from the start, and what is learnt as well.
            False: no warm starts (every job imports what it needs itself).
    """

    def __init__(self, *, fallback: Launcher, preload: bool | Sequence[str] = True) -> None:
        self._server: ForkServerClient | None = None
        self._broken = False
        self._spawn = fallback
        self._slots: int | None = None
        self._extra: tuple[str, ...] = () if isinstance(preload, bool) else tuple(preload)
        #: What a new server preloads: the user's modules, then what the jobs taught.
        self._wanted: list[str] = list(self._extra)
        #: True once warm starts are given up (preload=False, or a preload found unsafe).
        self._cold = preload is False
        #: True once the first report of a job's imports was read (or none is wanted).
        self._learnt = preload is False
        self._upgrade: asyncio.Task[None] | None = None
        self._retired: list[ForkServerClient] = []
        self._reports = ReportsDir()
        self._report_ids = itertools.count()
        #: Forked jobs running now, and the most seen at once: a warm server's pool when
        #: no scheduler said how many slots there are.
        self._running = 0
        self._peak = 0
        #: How long the job that taught the modules took, launch to exit: the most a cold
        #: start costs, and so the longest a job waits for the warm server.
        self._cold_start_s = 0.0

    @property
    def warm_modules(self) -> list[str]:
        """The top-level modules that the server now forking jobs has preloaded."""
        server = self._server
        answer = server.preloaded if server is not None else None
        if answer is None or not answer.done() or answer.exception() is not None:
            return []
        result = answer.result()
        return list(result.modules) if isinstance(result, Preloaded) and not result.problem else []

    async def start(self) -> None:
        """Start the fork server now, and wait until it is ready (else the first launch does).

        Ready includes a warm server being prepared: its preload done and its pool forked.
        """
        server = await self._ready_server()
        if server is not None:
            try:
                await server.ping()
            except ServerGone:
                self._broken = True
        if self._upgrade is not None:
            await asyncio.shield(self._upgrade)
            if self._server is not None and self._server is not server:
                with contextlib.suppress(ServerGone):
                    await self._server.ping()

    def warm_up(self, *, slots: int) -> None:
        """Start the fork server in the background (no wait) and ask for ``slots`` children.

        Its imports overlap our set-up; once ready, it forks that many children ahead
        of need unless jobs are already waiting (see :mod:`runner._forkserver.server`).
        ``slots`` also sizes the jobs' thread limits, in the server's environment too.
        """
        self._slots = slots
        server = self._current_server()
        if server is not None:
            server.request_pool(slots)

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> Worker:
        """Fork the worker for ``job_dir`` from the server (spawn it if that can't be done).

        While a warm server is being prepared, the job waits for it, at most as long as
        the job that taught its modules took in all: a cold start would cost about that
        much (those imports), and would take the CPU the warm server's imports need.
        """
        upgrade = self._upgrade
        if upgrade is not None and not upgrade.done():
            # asyncio.wait never cancels the upgrade, whether it times out or we are cancelled.
            await asyncio.wait({upgrade}, timeout=min(self._cold_start_s, MAX_WAIT_FOR_WARM))
        server = await self._ready_server()
        if server is not None and server.accepts(env):
            report = self._report_path()
            launched = server.loop.time()
            try:
                worker = await server.launch(
                    job_dir,
                    env=env if report is None else {**env, IMPORTS_ENV: report},
                    log_fd=log_fd,
                )
            except CannotFork as exc:
                logger.info("Spawning %s instead of forking it: %s", job_dir, exc)
            except ServerGone as exc:
                self._broken = True
                logger.debug("Spawning %s: %s", job_dir, exc)
            else:
                self._running += 1
                self._peak = max(self._peak, self._running)
                worker.exited.add_done_callback(lambda _: self._ended(report, launched))
                return worker
        return await self._spawn.launch(job_dir, env=env, log_fd=log_fd)

    async def aclose(self) -> None:
        """Stop the fork servers, if any runs, and a warm one being prepared."""
        upgrade, self._upgrade = self._upgrade, None
        if upgrade is not None and not upgrade.done():
            upgrade.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upgrade
        servers = [self._server, *self._retired]
        self._server = None
        self._retired = []
        loop = asyncio.get_running_loop()
        for server in servers:
            if server is not None and server.loop is loop:
                await server.aclose()
        self._reports.remove()

    # -- servers -------------------------------------------------------------------------

    def _new_server(self, loop: asyncio.AbstractEventLoop, preload: list[str]) -> ForkServerClient:
        # The jobs' thread limits are in force before anything is imported (OpenBLAS and
        # OpenMP read them when they load); the executor gives each job the same ones.
        return ForkServerClient(loop, driver_env(thread_limits(os.environ, self._slots)), preload)

    def _current_server(self) -> ForkServerClient | None:
        """This loop's server, started if need be; None once it has died (then we spawn)."""
        loop = asyncio.get_running_loop()
        server = self._server
        if server is not None and server.loop is loop and not server.alive:
            self._broken = True  # it died (and said so, once): spawn from now on
        if self._broken:
            return None
        if server is None or server.loop is not loop:
            for old in [server, *self._retired]:
                if old is not None and old.loop is not loop and old.alive:
                    old.close_socket()  # a previous loop's server: hang up, it exits
            self._retired = [old for old in self._retired if old.loop is loop]
            try:
                server = self._server = self._new_server(loop, [] if self._cold else self._wanted)
            except OSError as exc:
                self._broken = True
                logger.warning(
                    "Could not start the fork server (%s); starting each job in a fresh "
                    "interpreter instead.",
                    exc,
                )
                return None
        return server

    async def _ready_server(self) -> ForkServerClient | None:
        """The current server once its preload (if any) is answered; a cold one if it failed."""
        server = self._current_server()
        if server is None or server.preloaded is None:
            return server
        try:
            answer = await asyncio.shield(server.preloaded)
        except ServerGone:
            return self._current_server()  # None: it died, and said so
        if server is not self._server:  # replaced meanwhile
            return self._current_server()
        if isinstance(answer, Preloaded) and answer.problem is not None:
            self._give_up_warm(server.preload, answer.problem)
            self._server = None
            self._retired.append(server)
            server.retire()
            return self._current_server()
        return server

    def _report_path(self) -> str | None:
        """Where the next job reports its imports, while the launcher still learns them."""
        if self._learnt or self._cold:
            return None
        try:
            folder = self._reports.ensure()
        except OSError as exc:  # no room in the temporary directory: nothing learnt
            logger.info("Not learning which modules the jobs import (warm starts): %s", exc)
            self._learnt = True
            return None
        return os.path.join(folder, f"{next(self._report_ids)}.json")

    def _ended(self, report_path: str | None, launched: float) -> None:
        self._running -= 1
        if report_path is not None:
            self._learn(report_path, launched)

    def _learn(self, report_path: str, launched: float) -> None:
        """A job that reported has ended: from the first that returned, start a warm server."""
        try:
            with open(report_path) as f:
                report = json.load(f)
        except (OSError, ValueError):  # it failed (no report): the next one may tell
            return
        finally:
            with contextlib.suppress(OSError):
                os.unlink(report_path)
        if self._learnt or self._cold or self._broken or self._server is None:
            return
        self._learnt = True
        modules = choose_preloads(report, extra=self._extra)
        if not modules or set(modules) <= set(self._server.preload):
            return
        self._wanted = modules
        loop = self._server.loop
        self._cold_start_s = loop.time() - launched  # a cold job's imports cost at most this
        self._upgrade = loop.create_task(self._start_warm(modules))

    async def _start_warm(self, modules: list[str]) -> None:
        """Start a server that preloads ``modules``; once it says it is safe, fork from it."""
        try:
            await self._switch_to_warm(modules)
        except Exception as exc:  # a background task: nobody else would hear of it
            self._give_up_warm(
                modules, f"preparing the server failed ({type(exc).__name__}: {exc})"
            )

    async def _switch_to_warm(self, modules: list[str]) -> None:
        loop = asyncio.get_running_loop()
        try:
            warm = self._new_server(loop, modules)
        except OSError as exc:
            logger.info("Could not start a warm fork server (%s); jobs start cold", exc)
            return
        assert warm.preloaded is not None
        try:
            answer = await warm.preloaded
        except ServerGone as exc:
            self._give_up_warm(modules, f"the server died while importing them ({exc})")
            answer = None
        except asyncio.CancelledError:
            await warm.aclose()
            raise
        if not isinstance(answer, Preloaded) or answer.problem is not None:
            if isinstance(answer, Preloaded) and answer.problem is not None:
                self._give_up_warm(modules, answer.problem)
            await warm.aclose()
            return
        old = self._server
        if self._broken or old is None or old.loop is not loop:
            await warm.aclose()  # the executor moved on meanwhile
            return
        if self._slots or self._peak:
            warm.request_pool(self._slots or self._peak)
        self._server = warm
        self._retired.append(old)
        old.retire()
        logger.info("Warm starts: the fork server has preloaded %s", ", ".join(answer.modules))

    def _give_up_warm(self, modules: list[str], problem: str) -> None:
        """Say once why warm starts are off; every job then imports what it needs itself."""
        if self._cold:
            return
        self._cold = True
        tops = ", ".join(dict.fromkeys(name.partition(".")[0] for name in modules))
        logger.warning(
            "Warm starts are off: preloading %s in the fork server is not safe: %s. Each job "
            "imports them itself instead (a cold start, as correct but slower). Pass "
            "LocalExecutor(preload=False) to skip the attempt.",
            tops,
            problem,
        )


def checked_preload(preload: object) -> bool | tuple[str, ...]:
    """``LocalExecutor(preload=...)`` checked: True, False, or module names.

    Raises:
        ValueError: ``preload`` is none of these; the message names the value at fault.

    Example:
        >>> checked_preload(["torch", "numpy.linalg"])
        ('torch', 'numpy.linalg')
    """
    if isinstance(preload, bool):
        return preload
    if isinstance(preload, (str, bytes)) or not isinstance(preload, Sequence):
        raise ValueError(
            f"preload={preload!r} must be True (learn from the first job), False (no warm "
            "starts) or a list of module names, e.g. preload=['torch', 'numpy']"
        )
    for name in preload:
        if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(
                f"preload={list(preload)!r}: {name!r} is not a module name; "
                "list importable names, e.g. preload=['torch', 'sklearn.neural_network']"
            )
    return tuple(preload)
