"""The driver's lifeline: a pipe whose EOF tells a keeper process that the driver is gone.

A spawned job process is the driver's child, and nothing of the kernel's ends it when
the driver dies (``PR_SET_PDEATHSIG`` would, but it kills the job at once, before its
detached descendants can be found through it, and it follows the forking *thread*).
So the driver holds the write end of one pipe for its whole life, and never writes to
it; a small keeper process, started once per driver process (``python -m
runner._lifeline``), blocks reading the other end. Whatever ends the driver (SIGKILL, an
OOM kill, a crash), the kernel closes the write end and the keeper wakes: it finds the
job processes this driver spawned, ends each one's tree (descendants first: a job
process is a child subreaper, see :mod:`runner._process_tree`), SIGTERM then SIGKILL
after ``ORPHAN_GRACE`` seconds, and exits. A forked child of the driver (``os.fork``,
multiprocessing) closes both ends at once, so it does not delay the EOF.

The keeper knows the job processes by a mark in the environment they were started with
(``RUNNER_LIFELINE=<keeper's token>``, read from ``/proc/<pid>/environ``, which the
kernel keeps as it was at exec even once the worker removed the variable from
``os.environ``): set before the process exists, so no job escapes by starting in the
instant the driver dies, and it costs the job no descriptor. (A job that rewrites its
process title with ``setproctitle`` overwrites that area, and is not found.) Jobs forked
by the fork server need none of this: the server watches the driver.

Example:
    >>> marked_processes("a mark no process carries")  # what the keeper ends, once woken
    []
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading

from runner import _process_tree
from runner._worker import LIFELINE_ENV

__all__ = ["LIFELINE_ENV", "ORPHAN_GRACE", "end_jobs", "keep", "lifeline_mark", "marked_processes"]

logger = logging.getLogger("runner")

#: Seconds the keeper gives orphaned jobs between SIGTERM and SIGKILL.
ORPHAN_GRACE = 1.0


class _Lifeline:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.pid = os.getpid()  # the driver process that owns it (a fork must not use it)
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.keeper: subprocess.Popen[bytes] | None = None
        #: What this driver's jobs carry in their environment for the keeper to know them.
        self.mark = f"{os.getpid()}-{os.urandom(8).hex()}"


_lifeline: _Lifeline | None = None
_lock = threading.Lock()


def _forget_in_forked_child() -> None:
    global _lifeline
    line, _lifeline = _lifeline, None
    if line is not None:
        for fd in (line.read_fd, line.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)


def _start_keeper(read_fd: int, mark: str) -> subprocess.Popen[bytes] | None:
    import runner

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(runner.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "runner._lifeline", str(read_fd), mark],
            pass_fds=[read_fd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C or hang-up is the driver's to handle
        )
    except OSError as exc:
        logger.warning(
            "Could not start the lifeline keeper (%s): spawned jobs will outlive this driver "
            "if it is killed.",
            exc,
        )
        return None


def lifeline_mark() -> str | None:
    """The mark a spawned job carries in ``LIFELINE_ENV``; starts the keeper on first use.

    None where there is no lifeline (not Linux, or the keeper could not start).
    """
    global _lifeline
    if not sys.platform.startswith("linux"):
        return None
    with _lock:
        line = _lifeline
        if line is None or line.pid != os.getpid():
            read_fd, write_fd = os.pipe()  # both close-on-exec
            line = _lifeline = _Lifeline(read_fd, write_fd)
        if line.keeper is None or line.keeper.poll() is not None:
            # First use, or the keeper was killed: a new one takes over the same pipe.
            line.keeper = _start_keeper(line.read_fd, line.mark)
        return line.mark if line.keeper is not None else None


# -- the keeper -----------------------------------------------------------------------------


def marked_processes(mark: str) -> list[int]:
    """The processes started with ``LIFELINE_ENV=mark`` in their environment (this user's)."""
    needle = f"\0{LIFELINE_ENV}={mark}\0".encode()
    uid = os.getuid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = b"\0" + f.read()
        except OSError:
            continue
        if needle in environ:
            found.append(int(name))
    return found


def end_jobs(roots: list[int], grace: float = ORPHAN_GRACE) -> None:
    """End each job process of ``roots`` with its whole tree: SIGTERM, ``grace``, SIGKILL."""
    # The trees first: once a job process is gone its orphans move away.
    trees = {root: _process_tree.descendants(root) for root in roots}
    everything = [pid for root in roots for pid in (root, *trees[root])]
    _process_tree.signal_tree(everything, signal.SIGTERM, groups=roots)
    _process_tree.wait_gone(roots, grace)
    for root in roots:
        _process_tree.kill_descendants(root, also=trees[root])
    _process_tree.signal_tree(roots, signal.SIGKILL, groups=roots)


def keep(read_fd: int, mark: str) -> None:
    """Block until the driver is gone (EOF), then end every job process carrying ``mark``."""
    while True:
        try:
            select.select([read_fd], [], [])
            if not os.read(read_fd, 1):
                break
        except InterruptedError:
            continue
    end_jobs(marked_processes(mark))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the EOF ends the keeper
    keep(int(sys.argv[1]), sys.argv[2])
