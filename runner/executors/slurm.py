"""The Slurm executor: each job attempt is a Slurm job submitted through submitit.

The job folder stays Runner's (experiment_output.log, job.pkl, result.pkl, job.json);
submitit's own files (sbatch script, pickles, the Slurm job's stdout/stderr) live in
``<job dir>/.submitit/``. The Slurm job runs ``python -m runner._worker <job dir>``
as a child process (:mod:`runner.executors._remote`), so logs, failures, crashes and
the job's own ``timeout`` behave exactly as with the local executor. **A shared
filesystem is assumed**: the job folders and the Python environment must be visible
under the same paths on the submitting host and on the compute nodes.

Slots. The scheduler's slots bound the Slurm jobs *in flight* (pending or running);
Slurm decides when each one runs and which GPU it gets (``CUDA_VISIBLE_DEVICES`` comes
from Slurm, not from this machine). ``max_gpus x simultaneous_jobs_per_gpu`` jobs are in
flight, the same concurrency the numbers give locally; with ``max_gpus=None``,
``max_jobs_in_flight`` (default 16). Each job asks Slurm for ``gpus_per_job`` whole
GPUs; ``max_gpus=0`` or ``gpus_per_job=0`` submits jobs without GPUs (and hides GPUs).

Completion is detected without ``job.result()`` blocking: the driver polls for
submitit's result file and, batched for all jobs, ``squeue`` for the job states (a
job killed before it wrote a result would otherwise be waited for forever when Slurm
has no accounting).

Time limit and requeue. The Slurm time limit is ``time_limit_min`` (default: the
job's own timeout plus the grace period, plus the 90 s by which submitit's warning
signal precedes the limit and the 60 s by which Slurm may send it early, plus a
minute, rounded up to minutes; 60 without a timeout). A shorter limit lets that
warning end a short job as "timeout" before its own timeout. The submitted callable is checkpointable in submitit's sense: on
preemption (submitit's USR2 signal) the Slurm job is requeued and the attempt
restarts from scratch, so a job that resumes from its own folder continues; reaching
the Slurm time limit requeues up to ``max_num_timeout`` times (default 0: a job that
ran out of time once would most likely do so again), after which the result is
status "timeout".

Cancelling (Ctrl-C, scheduler shutdown) runs ``scancel`` (submitit's ``job.cancel()``):
Slurm sends SIGTERM to the job's processes, then SIGKILL after its ``KillWait``.

``cluster="local"`` runs the same path through submitit's local mode
(``submitit.LocalExecutor``: a controller process per job on this machine, no Slurm),
with this machine's devices as slots, like the local executor.

Example:
    >>> ex = SlurmExecutor(partition="gpu", time_limit_min=120, sbatch_options={"qos": "high"})  # doctest: +SKIP
    >>> run_grid_searches(configs, executor=ex)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import pickle
import shutil
from typing import Any

from runner.devices import Device
from runner.errors import ExecutorConfigError
from runner.executors._outcome import DEFAULT_GRACE_PERIOD
from runner.executors._remote import RemoteAttempt, import_extra, run_worker
from runner.executors.base import Executor, SlotPlan, SlotRequest
from runner.job_result import GPUJobResult

__all__ = ["SlurmExecutor"]

logger = logging.getLogger("runner")

#: Slurm jobs in flight when neither ``max_gpus`` nor ``max_jobs_in_flight`` is given.
DEFAULT_MAX_JOBS_IN_FLIGHT = 16
#: squeue states of a job that may still write its result.
_ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "PREEMPTED",  # followed by a requeue when the partition says so
    }
)
#: Seconds between checks of a job's result file (a stat; squeue runs every poll_interval).
_RESULT_POLL_S = 0.1
#: Seconds a result may lag behind the end of its job (network filesystems).
_RESULT_SETTLE_S = 3.0
#: Seconds to wait for Slurm to end a cancelled job, beyond its KillWait/grace period.
_CANCEL_WAIT_S = 15.0
_CLUSTERS = ("slurm", "local")


def import_submitit() -> Any:
    """``import submitit``, or a :class:`MissingDependencyError` naming the extra to install."""
    return import_extra("submitit", executor="slurm", what="submitit", extra="slurm")


class _SlurmCall:
    """What submitit runs on the node; checkpointable, so submitit requeues it on preemption."""

    def __call__(self, job_dir: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        # The Slurm job's process runs this job only: it may adopt what the job detached.
        return run_worker(job_dir, adopt_orphans=True, **kwargs)

    def checkpoint(self, job_dir: str, kwargs: dict[str, Any]) -> Any:
        # Called by submitit's signal handler: restart the same attempt after the requeue.
        import submitit

        return submitit.helpers.DelayedSubmission(self, job_dir, kwargs)


def _count(name: str, value: object, *, minimum: int, allow_none: bool, example: str) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExecutorConfigError(
            f"{name}={value!r} is not an integer >= {minimum}"
            + (" or None" if allow_none else "")
            + f"; pass e.g. {example}."
        )


#: Seconds before the Slurm time limit at which submitit asks Slurm for its USR2 warning.
SIGNAL_DELAY_S = 90
#: How much earlier Slurm may deliver that warning (its event resolution, per sbatch(1)).
SLURM_SIGNAL_EARLY_S = 60


class SlurmExecutor(Executor):
    """Runs each job attempt as a Slurm job (through submitit), or in submitit's local mode.

    Args:
        partition: The Slurm partition (None: the cluster's default).
        time_limit_min: The Slurm time limit in minutes (None: from the job's timeout, see
            the module docstring).
        gpus_per_job: Whole GPUs each Slurm job asks for (``--gpus-per-node``).
        cpus_per_job: CPUs each Slurm job asks for (``--cpus-per-task``).
        mem_gb: Memory per Slurm job in GB (None: the partition's default).
        sbatch_options: Extra sbatch options, e.g. ``{"qos": "high", "account": "ml"}``
            (``--qos=high --account=ml``).
        cluster: "slurm", "local" (submitit's local mode, no Slurm) or None (Slurm when
            ``sbatch`` is on the PATH, else local).
        poll_interval: Seconds between checks of the jobs' states.
        max_jobs_in_flight: Slurm jobs submitted at once when the run's ``max_gpus`` is None.
        max_num_timeout: Requeues after reaching the Slurm time limit.
        grace_period: Seconds between SIGTERM and SIGKILL when the job's own timeout expires.
        tail_lines: Lines of the log quoted in the error of a crash or a bad exit.

    Raises:
        MissingDependencyError: submitit is not installed.
        ExecutorConfigError: An option is invalid.

    Example:
        >>> SlurmExecutor(cluster="lcoal")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ExecutorConfigError: cluster='lcoal' is not one of 'slurm', 'local' or None ...
    """

    def __init__(
        self,
        partition: str | None = None,
        *,
        time_limit_min: int | None = None,
        gpus_per_job: int = 1,
        cpus_per_job: int = 1,
        mem_gb: float | None = None,
        sbatch_options: dict[str, Any] | None = None,
        cluster: str | None = None,
        poll_interval: float = 1.0,
        max_jobs_in_flight: int | None = None,
        max_num_timeout: int = 0,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        tail_lines: int = 20,
    ) -> None:
        if partition is not None and (not isinstance(partition, str) or not partition):
            raise ExecutorConfigError(
                f"partition={partition!r} is not a partition name; pass e.g. 'gpu' (see `sinfo`) "
                "or None for the cluster's default."
            )
        _count("time_limit_min", time_limit_min, minimum=1, allow_none=True, example="60")
        _count("gpus_per_job", gpus_per_job, minimum=0, allow_none=False, example="1")
        _count("cpus_per_job", cpus_per_job, minimum=1, allow_none=False, example="4")
        _count("max_jobs_in_flight", max_jobs_in_flight, minimum=1, allow_none=True, example="32")
        _count("max_num_timeout", max_num_timeout, minimum=0, allow_none=False, example="3")
        _count("tail_lines", tail_lines, minimum=0, allow_none=False, example="20")
        if mem_gb is not None and (
            isinstance(mem_gb, bool) or not isinstance(mem_gb, (int, float)) or mem_gb <= 0
        ):
            raise ExecutorConfigError(
                f"mem_gb={mem_gb!r} is not a positive number of GB; pass e.g. 32, or None."
            )
        for name, value in (("poll_interval", poll_interval), ("grace_period", grace_period)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ExecutorConfigError(
                    f"{name}={value!r} is not a number of seconds >= 0; pass e.g. 1.0."
                )
        if sbatch_options is not None and (
            not isinstance(sbatch_options, dict)
            or not all(isinstance(k, str) and k and not k.startswith("-") for k in sbatch_options)
        ):
            raise ExecutorConfigError(
                f"sbatch_options={sbatch_options!r} is not a dict of sbatch option names "
                "(without the leading --) to values; pass e.g. {'qos': 'high', 'constraint': 'a100'}."
            )
        if cluster is not None and cluster not in _CLUSTERS:
            raise ExecutorConfigError(
                f"cluster={cluster!r} is not one of 'slurm', 'local' or None; pass 'slurm' to "
                "submit to Slurm, 'local' for submitit's local mode, None to pick by `sbatch`."
            )
        self._submitit = import_submitit()
        if cluster is None:
            cluster = "slurm" if shutil.which("sbatch") else "local"
            if cluster == "local":
                logger.warning(
                    "SlurmExecutor: no `sbatch` on the PATH, using submitit's local mode "
                    "(jobs run on this machine); pass cluster='slurm' to insist on Slurm."
                )
        self.cluster = cluster
        self.partition = partition
        self.time_limit_min = time_limit_min
        self.gpus_per_job = gpus_per_job
        self.cpus_per_job = cpus_per_job
        self.mem_gb = mem_gb
        self.sbatch_options = dict(sbatch_options or {})
        self.poll_interval = float(poll_interval)
        self.max_jobs_in_flight = max_jobs_in_flight
        self.max_num_timeout = max_num_timeout
        self.grace_period = float(grace_period)
        self.tail_lines = tail_lines
        # squeue answers for every job in flight, one call per poll_interval.
        self._watched: set[str] = set()
        self._states: dict[str, str] = {}
        self._polled_at = -math.inf
        self._poll_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    # -- capacity ----------------------------------------------------------------

    def plan_slots(self, request: SlotRequest) -> SlotPlan:
        """Slurm: one pseudo-device "slurm" whose slots are the jobs in flight; local mode: this machine's."""
        if self.cluster == "local":
            return super().plan_slots(request)  # this machine's devices, as locally
        max_gpus, k = request.max_gpus, request.simultaneous_jobs_per_gpu
        if max_gpus == 0:
            slots = request.cpu_slots or k
            return SlotPlan((), slots, "slurm", "max_gpus=0: Slurm jobs without GPUs")
        if self.max_jobs_in_flight is not None:
            n, why = self.max_jobs_in_flight, "max_jobs_in_flight"
        elif max_gpus is not None:
            n, why = max_gpus * k, f"max_gpus={max_gpus} x simultaneous_jobs_per_gpu={k}"
        else:
            n, why = DEFAULT_MAX_JOBS_IN_FLIGHT, "the default max_jobs_in_flight"
        return SlotPlan(
            (Device("slurm"),),
            n,
            "slurm",
            f"up to {n} Slurm jobs in flight ({why}), {self.gpus_per_job} GPU(s) each, "
            f"partition {self.partition or '(default)'}",
        )

    # -- submission --------------------------------------------------------------

    def _time_limit(self, timeout: float | None) -> int:
        if self.time_limit_min is not None:
            return self.time_limit_min
        if timeout is None:
            return 60
        # Slurm warns submitit (USR2) SIGNAL_DELAY_S before the limit, and may deliver it up
        # to SLURM_SIGNAL_EARLY_S earlier still; submitit then ends the attempt as timed
        # out. Both must fall after the job's own timeout and grace, with a minute to start.
        needed = timeout + self.grace_period + SIGNAL_DELAY_S + SLURM_SIGNAL_EARLY_S + 60
        return math.ceil(needed / 60)

    def _submitit_executor(self, job_dir: str, timeout: float | None, gpus: int) -> Any:
        folder = os.path.join(job_dir, ".submitit")
        ex = self._submitit.AutoExecutor(
            folder=folder, cluster=self.cluster, slurm_max_num_timeout=self.max_num_timeout
        )
        params: dict[str, Any] = {
            "name": f"runner-{os.path.basename(job_dir)}"[:100],
            "timeout_min": self._time_limit(timeout),
            "slurm_signal_delay_s": SIGNAL_DELAY_S,
            "cpus_per_task": self.cpus_per_job,
            # Local mode: the slot's device is set by the worker, so submitit must not pick one.
            "gpus_per_node": gpus if self.cluster == "slurm" else 0,
        }
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.cluster == "slurm":
            if self.partition is not None:
                params["slurm_partition"] = self.partition
            if self.sbatch_options:
                params["slurm_additional_parameters"] = dict(self.sbatch_options)
        try:
            ex.update_parameters(**params)
        except (ValueError, TypeError) as exc:
            raise ExecutorConfigError(
                f"submitit rejected the Slurm options {params!r}: {exc}. Check the SlurmExecutor "
                "options (sbatch_options keys are sbatch long options without the --)."
            ) from exc
        return ex

    async def execute(self, job: Any, device: Device, *, attempt: int = 1) -> GPUJobResult:
        """Run one attempt of ``job`` as a Slurm job; see :class:`~runner.executors.base.Executor`."""
        run = RemoteAttempt(
            job, attempt=attempt, tail_lines=self.tail_lines, grace_period=self.grace_period
        )
        failed = run.prepare()
        if failed is not None:
            return failed
        gpus = 0 if device.is_cpu else self.gpus_per_job
        if self.cluster == "local":
            cuda: str | None = device.visible_devices  # the slot's device, as locally
        else:
            cuda = "" if gpus == 0 else None  # None: what Slurm set
        kwargs = run.worker_kwargs(cuda_visible_devices=cuda)
        try:
            ex = self._submitit_executor(run.job_dir, run.timeout, gpus)
        except ExecutorConfigError as exc:
            return run.fail("error", str(exc))
        # The submission runs in a thread (sbatch blocks); shielded, so a cancel arriving
        # meanwhile still learns the job id and cancels the job instead of orphaning it.
        submit = asyncio.ensure_future(
            asyncio.to_thread(ex.submit, _SlurmCall(), run.job_dir, kwargs)
        )
        try:
            sjob = await asyncio.shield(submit)
        except asyncio.CancelledError:
            try:
                sjob = await submit
            except Exception:
                run.mark_cancelled()
                raise asyncio.CancelledError() from None
            await self._cancel(sjob, run)
            raise
        except Exception as exc:  # sbatch refused it: bad partition, limits, Slurm down
            return run.fail(
                "error",
                f"Submitting the job to {self.cluster} failed: {type(exc).__name__}: {exc}".rstrip()
                + "\nCheck the SlurmExecutor options (partition, sbatch_options) against `sinfo`.",
            )
        logger.debug("Submitted %s as %s job %s", run.job_dir, self.cluster, sjob.job_id)
        self._watched.add(str(sjob.job_id))
        try:
            return await self._wait(sjob, run)
        except asyncio.CancelledError:
            await self._cancel(sjob, run)
            raise
        finally:
            self._watched.discard(str(sjob.job_id))
            self._states.pop(str(sjob.job_id), None)

    # -- waiting -----------------------------------------------------------------

    async def _wait(self, sjob: Any, run: RemoteAttempt) -> GPUJobResult:
        result_path = sjob.paths.result_pickle
        while not result_path.exists():
            state = await self._state(sjob)
            if state is not None:  # ended: give a late result file a moment to appear
                for _ in range(int(_RESULT_SETTLE_S / 0.1)):
                    if result_path.exists():
                        break
                    await asyncio.sleep(0.1)
                else:
                    return self._ended_without_result(sjob, run, state)
                break
            await asyncio.sleep(min(self.poll_interval, _RESULT_POLL_S))
        try:
            tag, outcome = await self._read_result(result_path)
            if tag != "success":
                raise RuntimeError(str(outcome))
        except Exception as exc:  # the Slurm job failed around the worker (timeout, requeue)
            text = str(exc)
            if "timed-out" in text or "timed out" in text:
                return run.fail(
                    "timeout",
                    f"The Slurm job {sjob.job_id} reached its time limit "
                    f"({self._time_limit(run.timeout)} min) and was not requeued "
                    f"(max_num_timeout={self.max_num_timeout}); raise time_limit_min. "
                    f"submitit said: {text.strip().splitlines()[-1] if text.strip() else ''}\n"
                    f"Last lines of {run.out_file}:\n{run.tail()}",
                )
            return run.fail(
                "crashed",
                f"The Slurm job {sjob.job_id} running the job failed ({type(exc).__name__}): "
                f"{text}\nLast lines of {run.out_file}:\n{run.tail()}",
            )
        return run.finish_outcome(outcome)

    @staticmethod
    async def _read_result(path: Any) -> tuple[str, Any]:
        # submitit's ("success", value) | ("error", traceback) pickle, read directly: its
        # job.result() would first ask sacct, which fails without Slurm accounting.
        for tries_left in (2, 1, 0):
            try:
                with open(path, "rb") as f:
                    tag, value = pickle.load(f)
                return str(tag), value
            except EOFError:  # still being written (network filesystems)
                if not tries_left:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    def _ended_without_result(self, sjob: Any, run: RemoteAttempt, state: str) -> GPUJobResult:
        try:
            with open(sjob.paths.stderr, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4096))
                err = f.read().decode("utf-8", errors="replace").strip()
        except OSError:
            err = "(no submitit stderr)"
        status = "timeout" if state.startswith("TIMEOUT") or state == "DEADLINE" else "crashed"
        return run.fail(
            status,
            f"The {self.cluster} job {sjob.job_id} ended ({state}) without a result: killed by "
            f"Slurm or by hand (scancel, time limit, out of memory, node failure). "
            f"Its stderr ({sjob.paths.stderr}) ends with:\n{err[-2000:]}\n"
            f"Last lines of {run.out_file}:\n{run.tail()}",
        )

    async def _state(self, sjob: Any) -> str | None:
        """None while the job may still write its result, else its final state."""
        if self.cluster == "local":
            state = str(sjob.state)
            return None if state == "RUNNING" else state
        job_id = str(sjob.job_id)
        loop = asyncio.get_running_loop()
        if self._poll_lock is None or self._poll_lock[0] is not loop:  # one lock per event loop
            self._poll_lock = (loop, asyncio.Lock())
            self._polled_at = -math.inf
        async with self._poll_lock[1]:
            if loop.time() - self._polled_at >= self.poll_interval or job_id not in self._states:
                await self._poll_squeue()
                self._polled_at = loop.time()
        state = self._states.get(job_id, "gone from squeue")
        return None if state in _ACTIVE_STATES else state

    async def _poll_squeue(self) -> None:
        ids = sorted(self._watched)
        if not ids:
            return
        proc = await asyncio.create_subprocess_exec(
            "squeue",
            "-h",
            "-t",
            "all",
            "-j",
            ",".join(ids),
            "-o",
            "%i %T",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0 and b"Invalid job id" not in err:
            # slurmctld busy or restarting: keep the previous states, try again next poll.
            logger.warning("squeue failed (%s); retrying", err.decode(errors="replace").strip())
            return
        states: dict[str, str] = {}
        for line in out.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2:
                states[parts[0]] = parts[1].rstrip("+")
        self._states = {i: states.get(i, "gone from squeue") for i in ids}

    async def _cancel(self, sjob: Any, run: RemoteAttempt) -> None:
        try:
            await asyncio.to_thread(sjob.cancel, check=False)  # scancel / SIGINT in local mode
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.grace_period + _CANCEL_WAIT_S
            while loop.time() < deadline and await self._state(sjob) is None:
                await asyncio.sleep(min(self.poll_interval, 0.2))
        finally:
            # Also on a second Ctrl-C: no process left on this host (local mode, one-node CI).
            run.kill_if_local()
            run.mark_cancelled()
