"""CPU threads per job: each job's share of the machine's cores, unless the user said otherwise.

OpenBLAS, MKL and OpenMP (which torch's intra-op pool uses) each start a thread per
core in every process that loads them, so k jobs at once run k pools of that many
threads on the same cores and slow one another down several-fold. Like joblib's and
Ray's workers, each job is given its share instead, through the variables these
libraries read when they load: the cores this process may use divided by the jobs that
run at once, at least 1. When the user has set any of these variables, none is
touched: the user's configuration is taken as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["THREAD_ENV", "available_cores", "thread_limits", "threads_per_job"]

#: The variables that cap a job's native thread pools: OpenMP's (and so torch's
#: intra-op threads, and scikit-learn's OpenMP loops), MKL's, OpenBLAS's, Apple
#: Accelerate's and numexpr's.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, so a cgroup's or taskset's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def threads_per_job(concurrent_jobs: int | None, cores: int | None = None) -> int:
    """Each job's share of ``cores`` when ``concurrent_jobs`` run at once, at least 1.

    ``concurrent_jobs`` None (not known: no scheduler said) counts as one job.

    Example:
        >>> threads_per_job(8, cores=32), threads_per_job(3, cores=2), threads_per_job(None, cores=4)
        (4, 1, 4)
    """
    if cores is None:
        cores = available_cores()
    return max(1, cores // max(1, concurrent_jobs or 1))


def thread_limits(env: Mapping[str, str], concurrent_jobs: int | None) -> dict[str, str]:
    """The variables to add to a job's environment ``env``: none when the user set any.

    Example:
        >>> thread_limits({}, 2)["OMP_NUM_THREADS"] == str(threads_per_job(2))
        True
        >>> thread_limits({"OMP_NUM_THREADS": "8"}, 2)
        {}
    """
    if any(name in env for name in THREAD_ENV):
        return {}
    value = str(threads_per_job(concurrent_jobs))
    return dict.fromkeys(THREAD_ENV, value)
