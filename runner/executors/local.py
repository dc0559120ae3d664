"""The local executor: each job attempt in a fresh ``python -m runner._worker`` process.

The child runs in its own session (so its own process group: a terminal's Ctrl-C
does not reach it, and cancel can kill the whole group, grandchildren included),
with ``CUDA_VISIBLE_DEVICES`` set in its environment only, the parent's
``sys.path`` and working directory, and stdout/stderr pointed at the job's log at
the file-descriptor level (so C-level output lands there too).

What starts the child is a :class:`~runner.executors.launchers.Launcher`; two come
with Runner (``start_method``):

* ``"forkserver"`` (the default on Linux): a fork server (:mod:`runner._forkserver`,
  :class:`~runner._forkserver.launcher.ForkServerLauncher`),
  itself a fresh interpreter started once per executor that has imported the
  worker side of Runner (never the user's own modules), forks a clean child per
  job. A fork costs a few milliseconds of CPU; a new interpreter tens. Warm starts:
  once the first job has returned, a second server preloads the installed
  third-party modules it imported (numpy, torch, ...), checked safe to fork from,
  and later jobs find them imported (``preload``).
  If the server dies, the executor logs a warning and spawns from then on; jobs
  running at that moment are still watched and their results collected.

Each job's CPU thread pools (OpenMP, MKL, OpenBLAS, and so torch's) get its share of the
cores, unless the user set their variables (:mod:`runner.thread_limits`).
* ``"spawn"``: ``python -m runner._worker <job dir>``, a fresh interpreter per job
  (:class:`ProcessLauncher`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any, Literal

from runner import _process_tree
from runner._forkserver.client import forkserver_available
from runner._forkserver.launcher import ForkServerLauncher, checked_preload
from runner._worker import ATTEMPT_ENV, EXIT_JOB_FAILED, EXIT_OK, SYS_PATH_ENV
from runner.devices import Device
from runner.executors._outcome import DEFAULT_GRACE_PERIOD, fsync_if_present
from runner.executors.attempt import Attempt
from runner.executors.base import Executor
from runner.executors.launchers import Launcher, ProcessLauncher, Worker, WorkerProcess
from runner.job_folder import JOB_JSON, RESULT_PKL, read_result
from runner.job_result import GPUJobResult
from runner.thread_limits import thread_limits

__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "START_METHODS",
    "ForkServerLauncher",
    "Launcher",
    "LocalExecutor",
    "ProcessLauncher",
    "WorkerProcess",
    "forkserver_available",
]

logger = logging.getLogger("runner")

#: How a job's process starts: forked by the fork server, or a fresh interpreter.
START_METHODS = ("forkserver", "spawn")
StartMethod = Literal["forkserver", "spawn"]
#: Environment variable naming the default start method ("forkserver" or "spawn").
START_METHOD_ENV = "RUNNER_START_METHOD"

_HOST = socket.gethostname()
#: Seconds a cancel waits for the job's killed processes to be gone (SIGKILL can't be
#: refused; only a process stuck in the kernel, e.g. on a dead NFS server, takes longer).
_TREE_GONE_S = 5.0


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
        preload: Warm starts, with ``"forkserver"``. True (default): learn from the
            first job that returns which installed third-party modules the jobs import
            (numpy, torch, ...) and preload them in the fork server, so that later jobs
            find them already imported. A list of module names: preload these from
            the start, and what is learnt as well. False: every job imports what it
            needs itself. A preload that would make forking unsafe (CUDA initialised,
            a thread started, a known-unsafe module, a failed import) is given up,
            with one warning, and jobs start cold.

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
        launcher: Launcher | None = None,
        tail_lines: int = 20,
        start_method: StartMethod | None = None,
        preload: bool | Sequence[str] = True,
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
        self.preload = checked_preload(preload)
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
        if not isinstance(self.preload, bool) and (launcher is not None or method == "spawn"):
            logger.warning(
                "preload=%r has no effect: warm starts need the default launcher with "
                "start_method='forkserver' (Linux); each job imports what it needs itself",
                list(self.preload),
            )
        if launcher is None:
            launcher = (
                ForkServerLauncher(fallback=ProcessLauncher(), preload=self.preload)
                if start_method == "forkserver"
                else ProcessLauncher()
            )
        self.launcher: Launcher = launcher
        self.tail_lines = tail_lines
        self._flushes: set[asyncio.Future[None]] = set()
        #: Jobs that run at once (the scheduler's slots; None until it says): each job's
        #: share of the cores for its thread pools.
        self._concurrent_jobs: int | None = None

    async def start(self) -> None:
        """Start the fork server now and wait until it is ready; optional.

        Without it the first job starts the server (about 0.05 s of a fresh interpreter's
        imports, once). Call it to pay that before timing or before a burst of jobs;
        inside a scheduler, the server has then also pre-forked a child per slot.
        """
        await self.launcher.start()

    def warm_up(self, *, slots: int) -> None:
        """Start the fork server in the background, without waiting for it (see ``start``).

        ``slots``, the jobs that run at once, also sizes each job's CPU thread limits.
        """
        self._concurrent_jobs = slots
        self.launcher.warm_up(slots=slots)

    async def aclose(self) -> None:
        """Stop the fork server, if one was started, and finish the pending flushes to disk.

        The scheduler's shutdown calls this.
        """
        loop = asyncio.get_running_loop()
        pending = [f for f in self._flushes if f.get_loop() is loop]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self.launcher.aclose()

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

    async def _terminate(self, proc: Worker) -> int:
        """SIGTERM the job's whole tree, wait up to the grace period for the worker, SIGKILL it.

        The worker is a child subreaper, so while it lives every process the job started
        is its descendant, daemons that left its session included; the tree is taken
        before any signal, since once the worker is dead its orphans move to init.
        """
        tree = [] if proc.exited.done() else _process_tree.descendants(proc.pid)
        _process_tree.signal_tree(tree, signal.SIGTERM, groups=[proc.pid])  # the job's group
        killed = set(tree)
        try:
            await asyncio.wait({proc.exited}, timeout=self.grace_period)
        finally:
            # Always, even if the worker exited: what it started may ignore SIGTERM or
            # outlive it. Its descendants first, the worker (the subreaper) last.
            if proc.exited.done():
                _process_tree.signal_tree(tree, signal.SIGKILL)
            else:
                killed |= _process_tree.kill_descendants(proc.pid, also=tree)
            proc.signal_group(signal.SIGKILL)
        await asyncio.wait({proc.exited})
        # SIGKILL is delivered at once but a process takes a moment to die, more on a busy
        # machine: the job is ended when the last of its processes is, not before.
        if killed:
            await asyncio.to_thread(_process_tree.wait_gone, killed, _TREE_GONE_S)
        return proc.exited.result()

    def _child_env(self, device: Device, attempt: int) -> dict[str, str]:
        env = dict(os.environ)  # a copy: the parent's environment is never mutated
        env.update(thread_limits(env, self._concurrent_jobs))  # none where the user set them
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
        log_fd = run.take_log()  # locked: the job's stdout holds the lock while it runs
        try:
            start_time = time.time()
            proc = await self.launcher.launch(
                run.job_dir, env=self._child_env(device, attempt), log_fd=log_fd
            )
        except asyncio.CancelledError:  # Ctrl-C while the fork server starts, say
            run.cancel()
            raise
        except Exception as exc:  # failures are data: an OSError, or a launcher's own bug
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
        if not proc.status_lost:
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
