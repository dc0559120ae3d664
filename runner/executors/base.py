"""The executor interface: run ONE attempt of one job on one device slot.

The scheduler owns the queue, the slots and retries; an executor only runs what it
is given and reports how it ended. The local executor (a process per job) is the
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.devices import Device
    from runner.scheduler import GPUJobResult

__all__ = ["Executor", "SlotPlan"]


@dataclasses.dataclass(frozen=True)
class SlotPlan:
    """The slots a cluster executor offers the scheduler: ``devices`` x ``slots_per_device``.

    An empty ``devices`` means CPU slots (``slots_per_device`` of them unless the
    scheduler's ``cpu_slots`` says otherwise). ``source`` and ``reason`` say where the
    numbers came from, as :class:`runner.devices.DeviceInfo` does.
    """

    devices: tuple[Device, ...]
    slots_per_device: int
    source: str
    reason: str


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

    def plan_slots(
        self, *, max_gpus: int | None, simultaneous_jobs_per_gpu: int
    ) -> SlotPlan | None:
        """The slots to schedule on, when they come from a cluster rather than this machine.

        Called once by the scheduler at construction. ``None`` (the default) means "this
        machine's GPUs" (:func:`runner.devices.select_devices`); Ray and Slurm answer
        from the cluster's resources.
        """
        return None

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
