"""How the local executor starts a job's process: the :class:`Launcher` protocol, and spawning.

A launcher turns a prepared job folder into a running worker process
(``python -m runner._worker <job dir>`` or its forked equivalent) and hands back a
:class:`WorkerProcess` to watch. :class:`ProcessLauncher` starts a fresh interpreter per
job; :class:`runner._forkserver.client.ForkServerLauncher` forks it from a fork server
(and spawns through a :class:`ProcessLauncher` what it can't fork).

Waiting costs no thread: the child's exit is watched with a pidfd registered on the
event loop (Linux >= 5.3). Elsewhere a thread waits per *running* job.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Protocol, runtime_checkable

from runner._lifeline import lifeline_mark
from runner._worker import LIFELINE_ENV

__all__ = ["Launcher", "ProcessLauncher", "Worker", "WorkerProcess", "spawn_worker"]


class Worker(Protocol):
    """A started worker process, as a :class:`Launcher` hands it back.

    ``exited`` resolves with its return code (as in :mod:`subprocess`: ``-N`` when
    killed by signal N). ``status_lost`` is True when the exit status could not be
    observed (a forked worker whose fork server died first): the code then means only
    that it ended, and the job's result file is the verdict.
    """

    pid: int
    exited: asyncio.Future[int]
    status_lost: bool

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker's whole process group; a no-op once the group is gone."""
        ...


class WorkerProcess:
    """A started worker: its pid and a future that resolves with its return code once it exits.

    The return code follows :mod:`subprocess`: negative ``-N`` when killed by signal N.
    ``status_lost`` is True when the exit status could not be observed (a forked worker
    whose fork server died first); the return code is then 0 and means only "it ended".
    """

    status_lost: bool = False

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


@runtime_checkable
class Launcher(Protocol):
    """What starts each job's worker process for :class:`~runner.executors.local.LocalExecutor`.

    Every method is called inside the event loop that runs the jobs. ``launch`` must
    start the worker in its own session (process group), with exactly ``env`` as its
    environment and ``log_fd`` as its stdout and stderr.
    """

    async def start(self) -> None:
        """Get ready for the first launch now, and wait until ready (optional work)."""
        ...

    def warm_up(self, *, slots: int) -> None:
        """Start getting ready in the background for ``slots`` jobs at once; never blocks."""
        ...

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> Worker:
        """Start the worker for ``job_dir`` with ``env``, its stdout and stderr on ``log_fd``."""
        ...

    async def aclose(self) -> None:
        """Release what the launcher holds (helper processes); the executor's shutdown calls it."""
        ...


def spawn_worker(job_dir: str, env: dict[str, str], log_fd: int) -> subprocess.Popen[bytes]:
    """``python -m runner._worker <job dir>``, a fresh interpreter in its own session (so
    its own process group), with exactly ``env`` and its stdout and stderr on ``log_fd``.

    Every executor starts a job's worker this way: locally when it is spawned, and on a
    cluster's node (:func:`runner.executors._remote.run_worker`).
    """
    return subprocess.Popen(
        [sys.executable, "-m", "runner._worker", job_dir],
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=log_fd,
        env=env,
        start_new_session=True,
    )


class ProcessLauncher:
    """Starts ``python -m runner._worker <job dir>``: a fresh interpreter per job."""

    async def start(self) -> None:
        """Nothing to get ready: each launch starts its own interpreter."""
        return None

    def warm_up(self, *, slots: int) -> None:
        """Nothing to warm up."""
        return None

    async def launch(self, job_dir: str, *, env: dict[str, str], log_fd: int) -> WorkerProcess:
        """Start the worker for ``job_dir`` with ``env``, its stdout and stderr on ``log_fd``.

        The worker carries the driver's lifeline mark (:mod:`runner._lifeline`): if the
        driver dies, the lifeline's keeper ends the worker and everything it started.
        """
        mark = lifeline_mark()
        if mark is not None:
            env = {**env, LIFELINE_ENV: mark}
        return WorkerProcess(spawn_worker(job_dir, env, log_fd), asyncio.get_running_loop())

    async def aclose(self) -> None:
        """Release what the launcher holds (nothing, for plain spawning)."""
        return None
