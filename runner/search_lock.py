"""One driver per search folder: a lock held for the life of the search.

Two drivers started on the same search folder (a second copy started by mistake,
a resume while the first still runs) would run every job twice, double each GPU's
load and write two result files. :class:`SearchLock` takes an exclusive
``flock`` on ``<base_dir>/.runner/lock`` and writes who holds it (host,
pid, start time, command line) into the same file; a second driver is refused
before any job starts, with a :class:`~runner.errors.SearchLockedError` naming the
holder and what to do.

The kernel drops the lock when its process dies, however it dies (SIGKILL
included), so a lock left by a dead driver never blocks: the next driver takes it
over and warns, naming the driver that left it. On NFS, Linux clients carry
``flock`` to the server as a byte-range lock, so drivers on different machines
exclude each other where the server supports locking (NFSv4, or NFSv3 with lockd);
on a filesystem without lock support the file still names the other driver but
cannot stop it. A lock belongs to its open file, so a second search of the same
folder in the same process is refused too.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with SearchLock(folder):
    ...     SearchLock(folder).acquire()  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    SearchLockedError: ... is already being run by ...
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from typing import Any

from runner.errors import SearchLockedError
from runner.job_lock import NO_LOCKS_ERRNOS, warn_no_locks

__all__ = ["LOCK_FILE", "SearchLock", "read_holder"]

logger = logging.getLogger("runner")

#: The lock file in a search folder (its content says who holds it), beside the other
#: files Runner keeps for the search (runner.job_pickle.SHARED_DIR).
LOCK_FILE = os.path.join(".runner", "lock")


def read_holder(base_dir: str) -> dict[str, Any] | None:
    """Who holds ``base_dir``'s lock (or held it and died): host, pid, started, argv; else None."""
    try:
        with open(os.path.join(base_dir, LOCK_FILE), encoding="utf-8") as f:
            data = json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (it left no details)"
    started = holder.get("started")
    since = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        if isinstance(started, (int, float))
        else "an unknown time"
    )
    command = " ".join(str(a) for a in holder.get("argv") or [])[:200]
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')} since {since}"
        + (f" ({command})" if command else "")
    )


def _alive_here(holder: dict[str, Any]) -> bool:
    """Whether the holder's process still runs on this host (unknown elsewhere: True)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SearchLock:
    """The lock on one search folder; a context manager. See the module docstring."""

    def __init__(self, base_dir: str) -> None:
        self.base_dir = os.path.abspath(base_dir)
        self.path = os.path.join(self.base_dir, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`SearchLockedError` naming its holder.

        Raises:
            SearchLockedError: Another live driver holds it.
            OSError: The folder or the lock file can't be created.
        """
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot create the search's lock {self.path} ({exc.strerror or exc}); make "
                f"{self.base_dir} writable or give the search another base_dir",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in NO_LOCKS_ERRNOS:
                warn_no_locks(self.path, exc, "a second driver on this folder is not refused")
            elif exc.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                os.close(fd)
                raise
            else:
                os.close(fd)
                raise SearchLockedError(
                    f"The search folder {self.base_dir} is already being run by "
                    f"{_describe(read_holder(self.base_dir))}. Two drivers would run every job "
                    "twice. Wait for it to finish (`runner status "
                    f"{self.base_dir}` shows its progress), stop it, or give this search another "
                    "base_dir."
                ) from None
        previous = read_holder(self.base_dir)
        if previous and not _alive_here(previous):
            logger.warning(
                "%s: took over the lock left by a driver that is gone (%s); its unfinished "
                "jobs are rerun (or reused with resume)",
                self.base_dir,
                _describe(previous),
            )
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "argv": list(sys.argv),
        }
        data = json.dumps(holder).encode()
        # Rewritten in place: the lock belongs to this file, so no rename.
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock, and the holder's details: a clean end leaves nothing to take over."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            except OSError:  # a full or read-only disk: the next driver only warns
                pass
            os.close(fd)  # closing the lock's open file releases it

    def __enter__(self) -> SearchLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
