"""The GPU scheduler: slots (device x jobs per device), one FIFO queue, any free slot takes the next job.

A job waiting for a slot costs one future in a deque: no thread, no process.
When a slot frees, the oldest waiter gets the least-loaded device (fewest running
jobs, ties to the lowest index), so a long job on one GPU never holds back jobs
that another GPU could run. Running a job is the executor's business
(:mod:`runner.executors`); retries and slot accounting are the scheduler's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from runner.devices import CPU_DEVICE, DEFAULT_BUSY_MEMORY_THRESHOLD_MIB, Device, DeviceInfo
from runner.errors import SchedulerClosedError
from runner.executors import Executor, LocalExecutor, SlotRequest, resolve_executor
from runner.job_record import JobRecord, JobState
from runner.job_result import GPUJobResult, JobStatus

__all__ = ["GPUJobResult", "GPUScheduler", "JobStatus"]

logger = logging.getLogger("runner")


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (Python >= 3.11 can tell)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


class GPUScheduler:
    """Runs jobs on device slots: ``simultaneous_jobs_per_gpu`` slots on each of up to ``max_gpus`` GPUs.

    Devices are chosen at construction (see :mod:`runner.devices`). Without a GPU,
    jobs run on CPU slots (``cpu_slots``, default one per usable core) with
    ``CUDA_VISIBLE_DEVICES=""`` and a warning is logged; ``max_gpus=0`` asks for that.

    Args:
        max_gpus: Use at most this many devices (None: all found; 0: CPU only).
        simultaneous_jobs_per_gpu: Jobs per device at once (None means 1).
        executor: Runs one attempt of a job on a slot: an Executor, or a name ("local",
            "ray", "slurm"); default :class:`runner.executors.local.LocalExecutor`
            (a process per job). Ray and Slurm size the slots from the cluster instead
            of this machine's GPUs (``Executor.plan_slots``; see their modules).
        skip_busy_gpus: Leave out GPUs that other processes already use (NVML memory check).
        busy_memory_threshold_mib: Memory in use above which a GPU counts as busy.
        cpu_slots: Slots when running on CPU (default: one per usable core).

    Raises:
        DeviceConfigError: An option is not a valid count.

    Example:
        >>> import asyncio
        >>> from runner.jobs import Job
        >>> async def main():
        ...     async with GPUScheduler(max_gpus=0, cpu_slots=2) as scheduler:
        ...         return await scheduler.run_job(Job(run_fn=len, config=[1, 2], base_dir="/tmp/runner-doc"))
        >>> asyncio.run(main()).result
        2
    """

    def __init__(
        self,
        max_gpus: int | None = None,
        simultaneous_jobs_per_gpu: int | None = 1,
        *,
        executor: Executor | str | None = None,
        skip_busy_gpus: bool = False,
        busy_memory_threshold_mib: int = DEFAULT_BUSY_MEMORY_THRESHOLD_MIB,
        cpu_slots: int | None = None,
    ) -> None:
        request = SlotRequest(
            max_gpus=max_gpus,
            simultaneous_jobs_per_gpu=(
                1 if simultaneous_jobs_per_gpu is None else simultaneous_jobs_per_gpu
            ),
            cpu_slots=cpu_slots,
            skip_busy_gpus=skip_busy_gpus,
            busy_memory_threshold_mib=busy_memory_threshold_mib,
        )
        self._executor: Executor = resolve_executor(executor) or LocalExecutor()
        # The executor plans the slots: this machine's GPUs, or a cluster's resources.
        plan = self._executor.plan_slots(request)
        self._device_info: DeviceInfo = plan.device_info
        self._devices: list[Device] = list(plan.devices) or [CPU_DEVICE]
        self._slots_per_device = plan.slots_per_device
        if plan.devices:
            logger.info(
                "GPUScheduler: %d device(s) %s x %d slot(s) (%s)",
                len(self._devices),
                [str(d) for d in self._devices],
                self._slots_per_device,
                plan.reason,
            )
        self._running = [0] * len(self._devices)
        self._free = len(self._devices) * self._slots_per_device
        # Waiters are futures resolved with a device index (or None: shut down). A waiter
        # cancelled in the queue stays in the deque and is skipped when reached: O(1) removal.
        self._waiters: collections.deque[asyncio.Future[int | None]] = collections.deque()
        self._num_waiting = 0
        self._executing: set[asyncio.Task[GPUJobResult]] = set()
        # (job, device, start time) of each executing job, for the progress display.
        self._started: dict[asyncio.Task[GPUJobResult], tuple[Any, Device, float]] = {}
        self._shutdown_cancelled: set[asyncio.Task[GPUJobResult]] = set()
        self._cancel_requested: set[asyncio.Task[GPUJobResult]] = set()
        self._closed = False

    # -- introspection ---------------------------------------------------------------

    @property
    def devices(self) -> list[Device]:
        """The devices in use (``[CPU_DEVICE]`` when running on CPU)."""
        return list(self._devices)

    @property
    def device_info(self) -> DeviceInfo:
        """Which devices were found and why."""
        return self._device_info

    @property
    def executor(self) -> Executor:
        """The executor that runs each attempt."""
        return self._executor

    @property
    def slots_per_device(self) -> int:
        """Jobs that may run at once on one device."""
        return self._slots_per_device

    @property
    def num_slots(self) -> int:
        """Total slots: devices x jobs per device."""
        return len(self._devices) * self._slots_per_device

    @property
    def free_slots(self) -> int:
        """Slots not running a job right now (idle capacity)."""
        return self._free

    @property
    def num_running(self) -> int:
        """Jobs holding a slot."""
        return self.num_slots - self._free

    @property
    def num_waiting(self) -> int:
        """Jobs queued for a slot."""
        return self._num_waiting

    @property
    def running_jobs(self) -> list[tuple[Any, Device, float]]:
        """``(job, device, start time)`` of each job holding a slot, oldest first (read-only)."""
        return sorted(self._started.values(), key=lambda entry: entry[2])

    # -- slots -----------------------------------------------------------------------

    def _take_slot(self) -> int:
        # Least-loaded device, lowest index on ties. O(devices), independent of queue length.
        running = self._running
        idx = min(range(len(running)), key=running.__getitem__)
        running[idx] += 1
        self._free -= 1
        return idx

    def _release(self, idx: int) -> None:
        self._running[idx] -= 1
        self._free += 1
        waiters = self._waiters
        while self._free and waiters:
            fut = waiters.popleft()
            if fut.done():  # cancelled while queued
                continue
            self._num_waiting -= 1
            fut.set_result(self._take_slot())

    async def _acquire(self) -> int | None:
        if self._free and not self._num_waiting:  # FIFO: never jump the queue
            return self._take_slot()
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._num_waiting += 1
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.cancelled():
                self._num_waiting -= 1
            elif fut.result() is not None:
                # Granted a slot in the same tick as the cancel: hand it on.
                self._release(fut.result())  # type: ignore[arg-type]
            raise

    # -- running ---------------------------------------------------------------------

    async def run_job(self, job: Any) -> GPUJobResult:
        """Queue ``job``, run it on the next free slot, and return how it ended.

        A job is anything with ``run()`` and ``get_out_file()``; optional attributes
        ``timeout`` (seconds) and ``retries`` (extra attempts after a crash) are honoured.
        Failures are returned, not raised. Cancelling the calling task removes a queued
        job from the queue, or kills a running one.

        Raises:
            SchedulerClosedError: ``shutdown()`` was called before.
            TypeError: ``job`` lacks ``run()`` or ``get_out_file()``.
        """
        if not (
            callable(getattr(job, "run", None)) and callable(getattr(job, "get_out_file", None))
        ):
            raise TypeError(
                f"run_job got {type(job).__name__!s} {job!r:.100}, which has no run() and "
                "get_out_file() methods; pass a runner.jobs.Job or an object with both."
            )
        if self._closed:
            raise SchedulerClosedError(
                "run_job was called after shutdown(); create a new GPUScheduler to run more jobs."
            )
        idx = await self._acquire()
        if idx is None:
            return self._cancelled_result(
                job, None, "cancelled before it started: the scheduler was shut down"
            )
        try:
            device = self._devices[idx]
            inner = asyncio.ensure_future(self._run_attempts(job, device))
            self._executing.add(inner)
            self._started[inner] = (job, device, time.time())
            try:
                # The shield lets us cancel `inner` exactly once, whoever asks first (this
                # caller or shutdown()): a second cancel would cut the executor's grace period.
                return await asyncio.shield(inner)
            except asyncio.CancelledError:
                if not inner.done():  # this caller was cancelled: kill the job, then re-raise
                    self._cancel_once(inner)
                    await asyncio.wait({inner})
                elif inner in self._shutdown_cancelled and not _cancelling():
                    return self._cancelled_result(
                        job, device, "cancelled while running: the scheduler was shut down"
                    )
                raise
            finally:
                self._started.pop(inner, None)
                self._executing.discard(inner)
                self._shutdown_cancelled.discard(inner)
                self._cancel_requested.discard(inner)
        finally:
            self._release(idx)

    def _cancel_once(self, task: asyncio.Task[GPUJobResult]) -> bool:
        if task in self._cancel_requested:
            return False
        self._cancel_requested.add(task)
        task.cancel()
        return True

    async def _run_attempts(self, job: Any, device: Device) -> GPUJobResult:
        retries = getattr(job, "retries", 0) or 0
        attempt = 1
        while True:
            result = await self._executor.execute(job, device, attempt=attempt)
            result.attempts = attempt
            # Only crashes are retried: an exception or exit code is the job's own verdict and
            # would repeat, and a timeout would most likely time out again.
            if result.status != "crashed" or attempt > retries:
                return result
            logger.warning(
                "Job %s crashed on device %s (attempt %d of %d); retrying: %s",
                result.out_file,
                device,
                attempt,
                retries + 1,
                (result.error or "").splitlines()[0] if result.error else "",
            )
            attempt += 1

    def _cancelled_result(self, job: Any, device: Device | None, why: str) -> GPUJobResult:
        """The result of a job cancelled before an executor ran it (nothing on disk)."""
        try:
            out_file = str(job.get_out_file())
        except Exception:
            out_file = ""
        record = JobRecord(out_file=out_file, gpu_id=device.gpu_id if device else None)
        record.move_to(JobState.CANCELLED, error_summary=why)
        return record.to_result(job, error=why)

    async def shutdown(self) -> None:
        """Cancel queued jobs, kill running ones (process group: SIGTERM, grace, SIGKILL), refuse new ones.

        Their ``run_job`` calls return results with ``status="cancelled"``.
        """
        self._closed = True
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                self._num_waiting -= 1
                fut.set_result(None)
        running = list(self._executing)
        for task in running:
            if self._cancel_once(task):
                self._shutdown_cancelled.add(task)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await self._executor.aclose()

    async def __aenter__(self) -> GPUScheduler:
        # E.g. the fork server's imports (and its first children) overlap the searches' set-up.
        self._executor.warm_up(slots=self.num_slots)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        return (
            f"GPUScheduler(devices={[str(d) for d in self._devices]}, "
            f"slots_per_device={self._slots_per_device}, running={self.num_running}, "
            f"waiting={self._num_waiting})"
        )
