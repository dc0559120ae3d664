"""A job runs in one process at a time: the worker holds a lock on its job folder.

A cluster job outlives a driver that dies (Slurm and Ray keep running what they
were given), and so may a local one in a mode that could not stop it. A resume
started meanwhile must not run the same job a second time beside it. The worker
holds an exclusive ``flock`` on ``<job folder>/.running`` for as long as it runs
(on NFS, Linux carries it to the server); a new attempt checks it before it
prepares anything, and fails as data, naming the holder, while it is held.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> held = hold_job_lock(folder)
    >>> job_lock_holder(folder) is not None
    True
    >>> os.close(held)
    >>> job_lock_holder(folder) is None
    True
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket

__all__ = ["JOB_LOCK", "NO_LOCKS_ERRNOS", "hold_job_lock", "job_lock_holder", "warn_no_locks"]

logger = logging.getLogger("runner")

#: The lock file in a job folder, held by the job's worker while it runs.
JOB_LOCK = ".running"


#: What ``flock`` says on a filesystem that takes no locks (Lustre without -o flock, NFSv3
#: without lockd, some FUSE filesystems): locking is then skipped, with a warning.
NO_LOCKS_ERRNOS = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})

_warned_no_locks: set[str] = set()


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


def hold_job_lock(job_dir: str) -> int | None:
    """Take the job folder's lock for this process; the returned descriptor holds it.

    The descriptor is not inherited by programs the job runs (close-on-exec), and the
    lock ends with the process, however it ends. None (after one warning) where the
    filesystem takes no locks.

    Raises:
        BlockingIOError: Another process holds it: the job is running there.
        OSError: The lock file can't be created.
    """
    path = os.path.join(job_dir, JOB_LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in NO_LOCKS_ERRNOS:
            warn_no_locks(path, exc, "a job left running by a dead driver can't be detected")
            return None
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise BlockingIOError(exc.errno, exc.strerror) from None
        raise
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{socket.gethostname()} {os.getpid()}\n".encode(), 0)
    return fd


def job_lock_holder(job_dir: str) -> str | None:
    """``"host pid"`` of the process running the job in ``job_dir``, or None when none does.

    Never raises: a folder that can't be looked at (missing, not a folder, no
    permission) has no holder here, and preparing it will say what is wrong.
    """
    path = os.path.join(job_dir, JOB_LOCK)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        try:
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        except OSError:
            return "another process"
    finally:
        os.close(fd)
    return None  # free: nobody runs it (our shared lock ended with the close)
