"""The executor interface: run ONE attempt of one job on one device slot.

The scheduler owns the queue and retries; an executor plans the slots
(:meth:`Executor.plan_slots`: which devices, how many jobs on each), runs what it is
given and reports how it ended, through the one attempt lifecycle of
:mod:`runner.executors.attempt`. The local executor (a process per job) is the
default; Ray and Slurm executors implement the same interface.

Contract for :meth:`Executor.execute`:

* Failures are data: a job that raises, exits non-zero, is killed by a signal or
  times out (the job's optional ``timeout`` attribute, in seconds) gives a
  :class:`~runner.scheduler.GPUJobResult` with ``success=False`` and a ``status``
  of "error", "crashed" or "timeout"; only bugs of the executor itself raise.
* Cancellation arrives as :class:`asyncio.CancelledError` inside ``execute``: the
  executor kills the job (all its processes), records status "cancelled" in the job
  folder's job.json, then re-raises.
* The job folder (:mod:`runner.job_folder`) is written as documented there.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any

from runner.devices import (
    DEFAULT_BUSY_MEMORY_THRESHOLD_MIB,
    Device,
    DeviceInfo,
    select_devices,
)
from runner.errors import DeviceConfigError
from runner.front_end import front_end

if TYPE_CHECKING:
    from runner.job_result import GPUJobResult

__all__ = ["Executor", "SlotPlan", "SlotRequest", "local_slot_plan", "usable_cores"]

logger = logging.getLogger("runner")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _check_count(name: str, value: object, *, minimum: int, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        problem = "is not an integer"
    elif value < minimum:
        problem = f"is below {minimum}"
    else:
        return
    raise DeviceConfigError(
        f"{name}={value!r} {problem}; pass a whole number >= {minimum}"
        + (" or None" if allow_none else "")
        + "."
    )


@dataclasses.dataclass(frozen=True)
class SlotRequest:
    """What the user asked for: how many devices, jobs per device, CPU slots, busy GPUs left out.

    Raises:
        DeviceConfigError: An option is not a valid count (at construction).
    """

    max_gpus: int | None = None
    simultaneous_jobs_per_gpu: int = 1
    #: Slots when jobs run on CPU; None: one per usable core.
    cpu_slots: int | None = None
    skip_busy_gpus: bool = False
    busy_memory_threshold_mib: float = DEFAULT_BUSY_MEMORY_THRESHOLD_MIB

    def __post_init__(self) -> None:
        _check_count("max_gpus", self.max_gpus, minimum=0, allow_none=True)
        _check_count(
            "simultaneous_jobs_per_gpu", self.simultaneous_jobs_per_gpu, minimum=1, allow_none=False
        )
        _check_count("cpu_slots", self.cpu_slots, minimum=1, allow_none=True)
        threshold = self.busy_memory_threshold_mib
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
            raise DeviceConfigError(
                f"busy_memory_threshold_mib={threshold!r} is not a non-negative "
                "number of MiB; pass e.g. 1024."
            )

    def cpu_plan(self, source: str, reason: str) -> SlotPlan:
        """CPU slots: ``cpu_slots``, else one per usable core."""
        slots = self.cpu_slots if self.cpu_slots is not None else usable_cores()
        return SlotPlan((), slots, source, reason)


@dataclasses.dataclass(frozen=True)
class SlotPlan:
    """The slots an executor offers the scheduler: ``devices`` x ``slots_per_device``.

    An empty ``devices`` means CPU slots: ``slots_per_device`` of them in all.
    ``source`` and ``reason`` say where the numbers came from, as
    :class:`runner.devices.DeviceInfo` does; ``skipped`` lists busy GPUs left out.
    """

    devices: tuple[Device, ...]
    slots_per_device: int
    source: str
    reason: str
    skipped: tuple[tuple[Device, str], ...] = ()

    @property
    def device_info(self) -> DeviceInfo:
        """The devices and why, as :func:`runner.devices.select_devices` reports them."""
        return DeviceInfo(self.devices, self.source, self.reason, self.skipped)


def local_slot_plan(request: SlotRequest) -> SlotPlan:
    """This machine's slots: its GPUs (see :mod:`runner.devices`) x jobs per GPU, else CPU slots.

    Without a GPU it warns once, naming the options as the front end spells them,
    unless ``max_gpus=0`` asked for the CPU.

    Example:
        >>> plan = local_slot_plan(SlotRequest(max_gpus=0, cpu_slots=3))
        >>> plan.devices, plan.slots_per_device
        ((), 3)
    """
    info = select_devices(
        max_gpus=request.max_gpus,
        skip_busy_gpus=request.skip_busy_gpus,
        busy_memory_threshold_mib=request.busy_memory_threshold_mib,
    )
    if info.devices:
        return SlotPlan(
            info.devices, request.simultaneous_jobs_per_gpu, info.source, info.reason, info.skipped
        )
    plan = request.cpu_plan(info.source, info.reason)
    plan = dataclasses.replace(plan, skipped=info.skipped)
    if request.max_gpus == 0:
        logger.info("%s: running on %d CPU slot(s)", front_end().cpu_only, plan.slots_per_device)
        return plan
    words = front_end()
    how_many = "one per core" if request.cpu_slots is None else "as asked"
    logger.warning(
        "No GPU found (%s): running jobs on %d CPU slot(s) (%s) with CUDA_VISIBLE_DEVICES=''. "
        "Pass %s to run more or fewer at once, or %s to say you mean the CPU and silence "
        "this warning; set CUDA_VISIBLE_DEVICES to use GPUs.",
        info.reason,
        plan.slots_per_device,
        how_many,
        words.cpu_slots,
        words.cpu_only,
    )
    return plan


class Executor(abc.ABC):
    """Runs one attempt of one job on one device slot (see the module docstring for the contract)."""

    @abc.abstractmethod
    async def execute(self, job: Any, device: Device, *, attempt: int = 1) -> GPUJobResult:
        """Run ``job`` once on ``device`` and return how it ended.

        Args:
            job: An object with ``run()`` and ``get_out_file()`` (optionally ``timeout``).
            device: The slot's device; ``device.visible_devices`` is what the job's
                ``CUDA_VISIBLE_DEVICES`` must be.
            attempt: 1 for the first try, 2 for the first retry, ...

        Raises:
            asyncio.CancelledError: After killing the job, when the caller was cancelled.
        """

    def plan_slots(self, request: SlotRequest) -> SlotPlan:
        """The slots to schedule on: this machine's GPUs by default.

        Called once by the scheduler at construction. Cluster executors (Ray, Slurm)
        answer from the cluster's resources.

        Raises:
            DeviceConfigError: The request can't be met (e.g. a device list that is not valid).
        """
        return local_slot_plan(request)

    def warm_up(self, *, slots: int) -> None:  # noqa: B027 - optional hook, not abstract
        """Start, in the background and without waiting, what the first jobs will need.

        The scheduler calls it when it is entered (inside the event loop), with how many
        jobs may run at once, so that the start-up of a helper process overlaps the
        driver's own set-up instead of delaying the first job. Must not block and must
        not raise.
        """
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Release the executor's resources (called by ``GPUScheduler.shutdown``)."""
        return None
