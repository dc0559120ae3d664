"""A job runs in one process at a time: its log is locked while anything of it runs.

A cluster job outlives a driver that dies (Slurm and Ray keep running what they
were given), and so may a local one in a mode that could not stop it. A resume
started meanwhile must not run the same job a second time beside it.

The lock is an exclusive ``flock`` on the job's ``experiment_output.log``, taken
on the descriptor the job's stdout and stderr are made from (:func:`open_job_log`).
A ``flock`` belongs to the open file, which the job's process and every process it
starts share through fds 1 and 2: the lock is held exactly as long as anything of
the job still runs, however its supervisor (the driver, a cluster node) ended. No
file is created for it, and on NFS Linux carries it to the server. A new attempt
checks it first (:func:`job_lock_holder`) and fails as data, naming the holder.

Example:
    >>> import os, tempfile
    >>> log = os.path.join(tempfile.mkdtemp(), "experiment_output.log")
    >>> fd = open_job_log(log)
    >>> job_lock_holder(os.path.dirname(log)) is not None
    True
    >>> os.close(fd)
    >>> job_lock_holder(os.path.dirname(log)) is None
    True
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os

from runner.job_folder import read_job_json
from runner.jobs import OUT_FILE_NAME

__all__ = [
    "NO_LOCKS_ERRNOS",
    "JobRunningElsewhere",
    "job_lock_holder",
    "open_job_log",
    "warn_no_locks",
]

logger = logging.getLogger("runner")

#: What ``flock`` says on a filesystem that takes no locks (Lustre without -o flock, NFSv3
#: without lockd, some FUSE filesystems): locking is then skipped, with a warning.
NO_LOCKS_ERRNOS = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})
_BUSY_ERRNOS = frozenset({errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES})

_warned_no_locks: set[str] = set()


class JobRunningElsewhere(BlockingIOError):
    """The job's log is locked: something of an earlier run of this job still runs."""


def warn_no_locks(path: str, exc: OSError, what: str) -> None:
    """One warning per folder that its filesystem takes no locks, and what that costs."""
    folder = os.path.dirname(path)
    if folder not in _warned_no_locks:
        _warned_no_locks.add(folder)
        logger.warning(
            "%s: the filesystem takes no file locks (%s), so %s; use a filesystem with "
            "locking (NFSv4, Lustre with -o flock) to have that checked",
            path,
            exc.strerror or exc,
            what,
        )


def open_job_log(path: str) -> int:
    """The job's log opened for appending, locked for this run of the job.

    Never through a symbolic link: a link planted where the log goes would have the
    job's output written wherever it points; Runner creates the log itself. Give the
    descriptor to the job as its stdout and stderr; the lock lasts while any process
    holds it.

    Raises:
        JobRunningElsewhere: Another run of the job holds the log's lock.
        OSError: The log can't be opened, or is a symbolic link (the message says so).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(
                exc.errno,
                f"{path} is a symbolic link; Runner writes a job's log only to a file it "
                "creates itself: remove the link",
            ) from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in NO_LOCKS_ERRNOS:
            warn_no_locks(path, exc, "a job left running by a dead driver can't be detected")
            return fd
        os.close(fd)
        if exc.errno in _BUSY_ERRNOS:
            raise JobRunningElsewhere(exc.errno, exc.strerror) from None
        raise
    return fd


def job_lock_holder(job_dir: str) -> str | None:
    """Who runs the job in ``job_dir`` now (from its job.json), or None when nothing does.

    Never raises: a folder that can't be looked at has no holder here, and preparing
    it will say what is wrong.
    """
    try:
        fd = os.open(os.path.join(job_dir, OUT_FILE_NAME), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in _BUSY_ERRNOS:
            return None
        record = read_job_json(job_dir) or {}
        pid, host = record.get("pid"), record.get("host")
        return f"pid {pid} on host {host}" if pid else "a process of an earlier run"
    finally:
        os.close(fd)
    return None  # free: nothing runs it (our shared lock ended with the close)
