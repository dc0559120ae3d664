"""How one job attempt ended: :class:`GPUJobResult`, the value every executor returns.

Its own module, free of asyncio and of the scheduler, so that the job side (the
worker, the fork server, :mod:`runner.job_folder`) can use it without importing
the driver. ``runner.scheduler.GPUJobResult`` is the same class (the spec's path).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

__all__ = ["GPUJobResult", "JobStatus"]

#: How a job attempt ended; "running" only ever appears on disk, in job.json.
JobStatus = Literal["ok", "error", "crashed", "timeout", "cancelled"]


@dataclasses.dataclass
class GPUJobResult:
    """How one job ended: the spec's fields first, then the details.

    ``status`` is "ok", "error" (the job raised or exited non-zero), "crashed" (killed
    by a signal: segfault, abort, OOM kill), "timeout" or "cancelled".

    Example:
        >>> r = GPUJobResult(success=True, result=0.93, gpu_id=0)
        >>> r.status, r.attempts
        ('ok', 1)
    """

    success: bool
    #: The child's full traceback, or what happened (signal, exit code, timeout) with the log's tail.
    error: str | None = None
    #: The device the job ran on: int for an index, the verbatim id for UUID/MIG, None on CPU.
    gpu_id: int | str | None = None
    out_file: str = ""
    job: Any = None
    #: What ``job.run()`` returned (None unless ``success``).
    result: Any = None
    status: str = ""
    duration: float | None = None
    #: Epoch seconds.
    start_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    #: The signal number that killed the job, if one did.
    signal: int | None = None
    attempts: int = 1
    #: True when the result was read back from a previous run's job folder (resume).
    reused: bool = False
    host: str | None = None
    pid: int | None = None

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "ok" if self.success else "error"
