"""The Ray executor: each job attempt is a Ray task holding ``1 / simultaneous_jobs_per_gpu`` GPU.

Capacity comes from the cluster: the scheduler gets ``GPUs x simultaneous_jobs_per_gpu``
slots, the GPUs being the Ray cluster's ``GPU`` resources (capped by ``max_gpus``);
Ray picks the GPU of each task and sets its ``CUDA_VISIBLE_DEVICES``, which is what
the job sees and what ``GPUJobResult.gpu_id`` reports. A cluster without GPUs (or
``max_gpus=0``) gives CPU slots and tasks with ``num_gpus=0``.

The task runs ``python -m runner._worker <job dir>`` as a child process (see
:mod:`runner.executors._remote`), so logs, results, crashes and timeouts behave as
with the local executor. **A shared filesystem is assumed**: the job folders must
be visible under the same absolute path on the driver and on every Ray node, and
the nodes must run the same Python environment (Runner and your code importable).

Cancelling (Ctrl-C, scheduler shutdown) calls ``ray.cancel(ref)``: the task's
KeyboardInterrupt kills the worker's process group (SIGTERM, grace period,
SIGKILL); a task that does not end within the grace period is force-cancelled.

Example:
    >>> ex = RayExecutor(num_cpus_per_job=0.5)  # doctest: +SKIP
    >>> run_grid_searches(configs, executor=ex)  # doctest: +SKIP
    >>> run_grid_searches(configs, executor=RayExecutor(address="auto"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from runner.devices import Device
from runner.errors import ExecutorConfigError
from runner.executors._outcome import DEFAULT_GRACE_PERIOD
from runner.executors._remote import RemoteAttempt, import_extra, run_worker
from runner.executors.base import Executor, SlotPlan, SlotRequest
from runner.job_result import GPUJobResult

__all__ = ["RayExecutor"]

logger = logging.getLogger("runner")

#: Seconds to wait for a force-cancelled task after the grace period.
_FORCE_CANCEL_WAIT_S = 5.0


def import_ray() -> Any:
    """``import ray``, or a :class:`MissingDependencyError` naming the extra to install."""
    return import_extra("ray", executor="ray", what="Ray", extra="ray")


def _ray_task(job_dir: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    # Module level, so Ray pickles it by reference: the node imports Runner, not a copy.
    return run_worker(job_dir, **kwargs)


def _check_number(name: str, value: object, *, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ExecutorConfigError(f"{name}={value!r} is not a number >= 0; pass e.g. {example}.")
    return float(value)


class RayExecutor(Executor):
    """Runs each job attempt as a Ray task with a fraction of a GPU.

    Args:
        address: The Ray cluster to join (``"auto"``, ``"host:6379"``, ``"ray://..."``);
            None joins the Ray already initialised in this process, else starts a local
            one (shut down again by :meth:`aclose`).
        num_cpus_per_job: CPUs each task reserves. 0 by default: the scheduler's slots
            already bound the jobs in flight, and the GPU is the scarce resource; pass 1
            to reserve a core per job.
        grace_period: Seconds between SIGTERM and SIGKILL of a cancelled or timed-out job.
        init_kwargs: Extra keyword arguments for ``ray.init`` (e.g. ``num_gpus=2`` for a
            local Ray, ``runtime_env``).
        tail_lines: Lines of the log quoted in the error of a crash or a bad exit.

    Raises:
        MissingDependencyError: Ray is not installed.
        ExecutorConfigError: An option is invalid.

    Example:
        >>> RayExecutor(address=3)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ExecutorConfigError: address=3 is not a Ray address; pass a string such as 'auto' ...
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus_per_job: float = 0.0,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        init_kwargs: dict[str, Any] | None = None,
        tail_lines: int = 20,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address):
            raise ExecutorConfigError(
                f"address={address!r} is not a Ray address; pass a string such as 'auto', "
                "'10.0.0.1:6379' or 'ray://head:10001', or None for a local Ray."
            )
        self.num_cpus_per_job = _check_number("num_cpus_per_job", num_cpus_per_job, example="0.5")
        self.grace_period = _check_number("grace_period", grace_period, example="5.0")
        if init_kwargs is not None and not isinstance(init_kwargs, dict):
            raise ExecutorConfigError(
                f"init_kwargs={init_kwargs!r} is not a dict; pass keyword arguments for "
                "ray.init, e.g. {'num_gpus': 2}."
            )
        if isinstance(tail_lines, bool) or not isinstance(tail_lines, int) or tail_lines < 0:
            raise ExecutorConfigError(f"tail_lines={tail_lines!r} is not an integer >= 0; e.g. 20.")
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self.tail_lines = tail_lines
        self._ray = import_ray()
        self._started_ray = False
        #: GPUs per task; set by plan_slots (None: decided per device in execute).
        self._num_gpus_per_job: float | None = None
        self._remote: Any = None

    # -- cluster -----------------------------------------------------------------

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False} if self.address is None else {}
        kwargs.update(self.init_kwargs)
        logger.info("Starting Ray: ray.init(address=%r, **%r)", self.address, kwargs)
        ray.init(address=self.address, **kwargs)
        self._started_ray = True

    def plan_slots(self, request: SlotRequest) -> SlotPlan:
        """Slots from the cluster: ``min(cluster GPUs, max_gpus) x simultaneous_jobs_per_gpu``."""
        self._connect()
        cluster_gpus = int(self._ray.cluster_resources().get("GPU", 0))
        max_gpus, k = request.max_gpus, request.simultaneous_jobs_per_gpu
        n = cluster_gpus if max_gpus is None else min(cluster_gpus, max_gpus)
        if n == 0:
            self._num_gpus_per_job = 0.0
            why = "max_gpus=0" if max_gpus == 0 else "the Ray cluster has no GPU resources"
            slots = request.cpu_slots or k
            return SlotPlan((), slots, "ray", f"{why}: Ray tasks with num_gpus=0")
        # Ray accepts GPU fractions to 4 decimals; rounding down keeps k tasks on one GPU.
        self._num_gpus_per_job = math.floor(10000 / k) / 10000
        return SlotPlan(
            tuple(Device(f"ray:{i}") for i in range(n)),
            k,
            "ray",
            f"Ray cluster with {cluster_gpus} GPU(s): {n} x {k} slot(s), "
            f"each job a task with num_gpus={self._num_gpus_per_job}",
        )

    def _task(self) -> Any:
        if self._remote is None:
            # max_calls=0: reuse Ray workers (the job runs in its own child process, so the
            # worker holds no GPU memory); max_retries=0: retries are the scheduler's.
            self._remote = self._ray.remote(max_calls=0, max_retries=0)(_ray_task)
        return self._remote

    # -- running -----------------------------------------------------------------

    async def execute(self, job: Any, device: Device, *, attempt: int = 1) -> GPUJobResult:
        """Run one attempt of ``job`` as a Ray task; see :class:`~runner.executors.base.Executor`."""
        self._connect()
        run = RemoteAttempt(
            job, attempt=attempt, tail_lines=self.tail_lines, grace_period=self.grace_period
        )
        failed = run.prepare()
        if failed is not None:
            return failed
        num_gpus = self._num_gpus_per_job
        if num_gpus is None:  # called without a scheduler's plan_slots
            num_gpus = 0.0 if device.is_cpu else 1.0
        kwargs = run.worker_kwargs(
            # A CPU slot hides every GPU, as the local executor does; else Ray's choice stands.
            cuda_visible_devices="" if num_gpus == 0 else None,
        )
        try:
            ref = (
                self._task()
                .options(num_gpus=num_gpus, num_cpus=self.num_cpus_per_job)
                .remote(run.job_dir, kwargs)
            )
        except Exception as exc:  # Ray refused the task (resources, a lost connection)
            return run.fail(
                "error", f"Submitting the job to Ray failed: {type(exc).__name__}: {exc}"
            )
        fut = asyncio.wrap_future(ref.future())
        # Retrieve the exception whatever happens, so asyncio never logs it as unretrieved.
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            outcome = await asyncio.shield(fut)
        except asyncio.CancelledError:
            await self._cancel(ref, fut, run)
            raise
        except Exception as exc:  # the task itself died: its Ray worker or node was lost
            return run.fail(
                "crashed",
                f"The Ray task running the job failed ({type(exc).__name__}: {exc}). "
                f"Last lines of {run.out_file}:\n{run.tail()}",
            )
        return run.finish_outcome(outcome)

    async def _cancel(self, ref: Any, fut: asyncio.Future[Any], run: RemoteAttempt) -> None:
        ray = self._ray
        try:
            ray.cancel(ref, force=False)  # KeyboardInterrupt in the task: it kills the group
            done, _ = await asyncio.wait({fut}, timeout=self.grace_period + _FORCE_CANCEL_WAIT_S)
            if not done:
                logger.warning("Ray task of %s ignored cancel; force-cancelling", run.out_file)
                ray.cancel(ref, force=True)
                await asyncio.wait({fut}, timeout=_FORCE_CANCEL_WAIT_S)
        finally:
            # Also on a second Ctrl-C (CancelledError above): no process left on this host.
            run.kill_if_local()
            run.mark_cancelled()

    async def aclose(self) -> None:
        """Shut down the local Ray this executor started (a joined cluster is left running)."""
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._started_ray = False
        self._remote = None
        self._num_gpus_per_job = None
