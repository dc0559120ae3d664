"""A job's process tree: find every descendant of a process and end them all.

A job process makes itself a child subreaper (:func:`become_subreaper`), so what it
starts stays its descendant even when it calls ``setsid`` or forks twice (a daemon):
an orphan is re-parented to the nearest subreaper above it, the job, not to init.
So the whole tree is found from the job's pid (:func:`descendants`) as long as the job
lives, and is ended before the job itself (:func:`kill_descendants`,
:func:`signal_tree`). Once the job process is gone its orphans move up, which is why
every kill here takes the tree first.

Linux only (``prctl``, ``/proc``); elsewhere each function is a no-op or finds nothing.

Example:
    >>> import os
    >>> os.getpid() in descendants(os.getppid())
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import time
from collections.abc import Container, Iterable

__all__ = [
    "become_subreaper",
    "children",
    "descendants",
    "kill_descendants",
    "pid_alive",
    "set_parent_death_signal",
    "signal_tree",
    "wait_gone",
]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

#: Rounds of "find, kill" before giving up on a tree that keeps forking.
_KILL_ROUNDS = 20


_libc: ctypes.CDLL | None = None


def _prctl(option: int, value: int) -> bool:
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return int(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Make this process a child subreaper: its orphaned descendants become its children."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(sig: int) -> bool:
    """Have the kernel send ``sig`` to this process when the *thread* that forked it exits.

    Only for a process whose parent forks it from a thread that lives as long as the
    parent needs it (a single-threaded parent, or a loop's own thread).
    """
    return _prctl(_PR_SET_PDEATHSIG, sig)


def _state(pid: int) -> tuple[int, str] | None:
    """(ppid, state letter) of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold anything, ')' included.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), fields[0].decode()
    except (IndexError, ValueError):
        return None


def _children_map() -> dict[int, list[int]]:
    """Every live process's children, by parent pid: one pass over /proc."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return children
    for name in names:
        if not name.isdigit():
            continue
        state = _state(int(name))
        if state is not None and state[1] not in "ZX":
            children.setdefault(state[0], []).append(int(name))
    return children


def _children_of(pid: int, *, alive_only: bool = True) -> list[int] | None:
    """``pid``'s live children from /proc/<pid>/task/*/children; None when the kernel lacks it.

    ``alive_only=False`` leaves zombies in, and saves a read of each child's state.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(p) for p in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}/children"):
                return None  # no CONFIG_PROC_CHILDREN: scan /proc instead
        except OSError:
            continue
    if not alive_only:
        return found
    return [p for p in found if (s := _state(p)) is not None and s[1] not in "ZX"]


def descendants(pid: int) -> list[int]:
    """Every live (not zombie) descendant of ``pid``, parents before their children."""
    found: list[int] = []
    scan: dict[int, list[int]] | None = None
    queue = [pid]
    seen = {pid}
    while queue:
        parent = queue.pop(0)
        kids = None if scan is not None else _children_of(parent)
        if kids is None:
            if scan is None:
                scan = _children_map()
            kids = scan.get(parent, [])
        for kid in kids:
            if kid not in seen:
                seen.add(kid)
                found.append(kid)
                queue.append(kid)
    return found


def signal_tree(pids: Iterable[int], sig: int, *, groups: Iterable[int] = ()) -> None:
    """Send ``sig`` to each process group of ``groups`` and to each process of ``pids``.

    A process in one of ``groups`` gets it once, through its group: one that counts
    signals (a second SIGTERM meaning "now, without saving") must not see two.
    """
    groups = set(groups)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if not groups or os.getpgid(pid) not in groups:
                os.kill(pid, sig)


def kill_descendants(pid: int, *, also: Iterable[int] = ()) -> set[int]:
    """SIGKILL every descendant of ``pid`` (alive, so still their subreaper), and ``also``.

    Repeats until none is left, so that what was forked meanwhile goes too. ``pid``
    itself is left alone: it is the last to go, or its orphans would move away.
    Returns every pid killed.
    """
    killed: set[int] = set()
    pending = list(also)
    for _ in range(_KILL_ROUNDS):
        tree = [p for p in descendants(pid) + pending if p not in killed]
        pending = []
        if not tree:
            break
        signal_tree(tree, signal.SIGKILL)
        killed.update(tree)
    return killed


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait until each of ``pids`` has exited (zombies count as gone); False at ``timeout``.

    Waits on pidfds (the kernel says when each exits), not by polling, where available.
    """
    deadline = time.monotonic() + timeout
    pids = list(pids)
    fds: list[int] = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
            except (AttributeError, OSError):  # no pidfds: check now and then instead
                return _wait_gone_by_polling(pids, deadline)
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select(fds, [], [], left)
            for fd in ready:
                fds.remove(fd)
                os.close(fd)
        return True
    finally:
        for fd in fds:
            os.close(fd)


def _wait_gone_by_polling(pids: list[int], deadline: float) -> bool:
    while any((s := _state(p)) is not None and s[1] not in "ZX" for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def children(pid: int, *, unless: Container[int] = ()) -> list[int]:
    """The live (not zombie) children of ``pid``, but those in ``unless``.

    ``unless`` (children the caller knows) are left out before their state is read: a
    fork server checking for adopted orphans after every job reads one file, not one
    per child it keeps.
    """
    kids = _children_of(pid, alive_only=False)
    if kids is None:
        return [p for p in _children_map().get(pid, []) if p not in unless]
    return [p for p in kids if p not in unless and (s := _state(p)) is not None and s[1] not in "ZX"]


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie counts: not yet reaped).

    Example:
        >>> pid_alive(os.getpid())
        True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True
