"""The temporary folder where the first jobs report their imports, owned by its driver.

The driver that makes the folder holds an ``flock`` on a file inside it for as long as
it lives; the kernel drops the lock when the driver dies, however it dies (SIGKILL, the
OOM killer). A child the driver forks closes its copy of the lock (so only the driver
holds it). On a network file system whose locks are local to each machine, a driver on
another machine sharing that ``/tmp`` could remove a live folder: only the learning of
imports for warm starts would be lost. The next driver removes this user's folders whose lock it can take: their
owner is gone. The lock, not a pid in the name, says whether the owner lives, so a
reused pid, another PID namespace sharing ``/tmp`` (containers) or a folder named to
look like ours never gets a live driver's folder removed, nor stops a job from starting.

Example:
    >>> reports = ReportsDir()
    >>> os.path.basename(reports.ensure()).startswith(PREFIX)
    True
    >>> folder = reports.path
    >>> _ = remove_stale_report_dirs()
    >>> os.path.isdir(folder)  # its live owner holds the lock: kept
    True
    >>> reports.remove()
    >>> os.path.exists(folder)
    False
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import weakref

__all__ = ["LOCK_NAME", "PREFIX", "ReportsDir", "remove_stale_report_dirs"]

logger = logging.getLogger("runner")

PREFIX = "runner-imports-"
#: The owner's lock file inside the folder; a folder without it is never removed here.
LOCK_NAME = ".owner.lock"


class ReportsDir:
    """One driver's reports folder: made on first use, locked while it lives."""

    def __init__(self) -> None:
        self.path: str | None = None
        self._lock_fd: int | None = None

    def ensure(self) -> str:
        """The folder, made (and locked) on the first call.

        Raises:
            OSError: The temporary directory is not writable (full, read-only).
        """
        if self.path is None:
            try:
                remove_stale_report_dirs()
            except Exception as exc:  # clearing others' leftovers must never stop a job
                logger.debug("could not clear stale import-report folders: %s", exc)
            path = tempfile.mkdtemp(prefix=PREFIX)
            # Locked under another name, then renamed into place: a driver clearing
            # stale folders never finds this one's lock file unlocked.
            staging = os.path.join(path, LOCK_NAME + ".new")
            fd = -1
            try:
                fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(staging, os.path.join(path, LOCK_NAME))
            except OSError:
                if fd >= 0:
                    os.close(fd)
                shutil.rmtree(path, ignore_errors=True)  # a folder no one could clear later
                raise
            self.path, self._lock_fd = path, fd
            _OWNED.add(self)
        return self.path

    def remove(self) -> None:
        """Remove the folder and let go of its lock."""
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        _OWNED.discard(self)

    def _forget_in_child(self) -> None:
        # A forked child (multiprocessing, a pool) is not the owner: it must neither keep
        # the lock once the driver dies nor remove the driver's folder.
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
        self.path, self._lock_fd = None, None


#: The folders this process owns, forgotten by a forked child.
_OWNED: weakref.WeakSet[ReportsDir] = weakref.WeakSet()


def _forget_all_in_child() -> None:
    for reports in list(_OWNED):
        reports._forget_in_child()
    _OWNED.clear()


os.register_at_fork(after_in_child=_forget_all_in_child)


def remove_stale_report_dirs(tmp: str | None = None) -> int:
    """Remove this user's reports folders whose owner died without removing them; returns
    how many. A folder without a lock file (another user's, an older Runner's, one being
    made) or whose lock is held is left alone."""
    try:
        entries = list(os.scandir(tmp or tempfile.gettempdir()))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not entry.is_dir(follow_symlinks=False) or info.st_uid != os.getuid():
                continue
            fd = os.open(
                os.path.join(entry.path, LOCK_NAME), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # its owner lives
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    return removed
