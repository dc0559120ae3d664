"""The fork server: one long-lived, single-threaded process that forks a fresh child per job.

Started once per :class:`~runner.executors.local.LocalExecutor` as
``python -m runner._forkserver <fd>`` (a fresh interpreter, never a fork of the
driver, which may hold threads or CUDA state). It imports the worker side of
Runner and cloudpickle once, and nothing of the user's: no torch, no job
module, so CUDA is never initialised here and every child starts clean. A fork
then costs a few milliseconds instead of the tens of milliseconds of CPU that a
new interpreter and its imports cost.

Protocol, over a ``SOCK_SEQPACKET`` unix socket (one message per datagram, JSON):

* driver -> server: ``{"id", "job_dir", "cwd", "env"}`` with the job's log file
  descriptor attached (``SCM_RIGHTS``).
* driver -> server: ``{"id", "pool": n}``: keep ``n`` children pre-forked (the
  scheduler's slots; see below). Not answered.
* driver -> server: ``{"id", "ping": true}``, answered ``{"id", "pong": true}``
  once the server's imports are done and its pool is full (:meth:`LocalExecutor.start`).
* server -> driver: ``{"id", "pid"}`` once the child runs in its own session
  (so the driver can kill its process group at once), or ``{"id", "error"}``;
  later ``{"pid", "rc"}`` when the server has reaped it (``rc`` as in
  :mod:`subprocess`: ``-N`` for signal N).

Each child: ``setsid()`` (its own session and process group), stdout and stderr
on the log's descriptor (with the encodings a fresh interpreter would pick),
``chdir`` to the driver's working directory (also first on ``sys.path``, as
``-m`` puts it), ``os.environ`` replaced by exactly the job's environment (TZ
re-read), then :func:`runner._worker.main`, and an interpreter's exit (non-daemon
threads, atexit handlers, the job's modules freed, open files closed, flushes), as
``python -m runner._worker`` would. The server preloads only what the job would
import from the same files (see :func:`_preload`).

Pre-forked children: as many as the scheduler has slots (the "pool" message), or
the most jobs seen running at once. The server forks them ahead of need when no
request is waiting: at start-up, and after a burst (a round of a search, a wave of
jobs) once no request has come for ``REFILL_DELAY`` seconds. Each calls ``setsid()``,
rehearses a job's start-up on a dummy job (:func:`_rehearse`), then waits on its own
socket; a request is handed to one of them and answered at once. So the fork, and
the page faults every fresh fork pays, happen while the previous round's jobs run,
not in the burst in which every core is busy starting jobs. A pre-forked child is
still a fresh process that runs one job only, with nothing of any job in it; it
holds about 2.5 MiB of private memory while it waits, and exits when the server's end
of its socket closes (the server exited or died).

When the driver goes away (EOF on the socket), the server terminates the process
groups of the children still running (no orphans), then exits.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import io
import json
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Container
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import runner
from runner import _worker

#: Most bytes one request may take: the job's environment is the bulk of it.
MAX_MESSAGE = _worker.MAX_FORK_REQUEST
#: Seconds the server gives orphaned jobs between SIGTERM and SIGKILL when the driver is gone.
ORPHAN_GRACE = 1.0
#: Seconds without a request after which the server forks children ahead of need: long
#: enough that a burst of requests is over, short next to a job.
REFILL_DELAY = 0.02
#: Most children kept pre-forked (each holds a little private memory while it waits).
MAX_POOL = 64


@dataclass(frozen=True)
class _StartupState:
    """What the server's interpreter chose at start-up, which its forked children inherit."""

    #: The server's working directory when it started, and whether ``-m`` put it first
    #: on sys.path (not with ``-P``): each child puts its job's there instead.
    cwd: str
    cwd_first_on_path: bool
    #: TZ when the server started: a job with another one re-reads it (``time.tzset``).
    tz: str | None
    #: The standard streams' encoding and stdout's error handler for this locale, which
    #: a fresh interpreter picks when PYTHONIOENCODING leaves them unset.
    stdio_encoding: str
    stdout_errors: str
    #: What the server preloaded for its children (see :func:`_preload`): each top-level
    #: name, with the modules that came in under it or under ``runner``.
    preloaded: dict[str, tuple[str, ...]]
    #: The driver's sys.path (as sent) when the server started: with ``cwd``, the state
    #: the preload was checked against.
    job_path_raw: str | None


def _origin_on_path(name: str) -> str | None:
    """Where ``import name`` would load from now, ignoring what is already imported."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(name, None)
        except Exception:
            return None
        if spec is not None:
            return spec.origin
    return None


def _same_file(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return a == b or os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _resolves_alike(name: str, job_path: list[str], expected: str | None = None) -> bool:
    """Whether ``import name`` finds the same file here as in a job on ``job_path``.

    A job's ``sys.path`` is the driver's (``runner._worker`` restores it); the server's is
    a fresh interpreter's in the driver's first working directory. Where they disagree
    (a project with a package of the same name, a path added at run time) the job must
    get what a fresh interpreter on the driver's path would, so the server imports nothing
    of it. ``expected``: the file it must also be.
    """
    saved = sys.path[:]
    here = _origin_on_path(name)
    sys.path[:] = job_path + [p for p in saved if p not in job_path]
    try:
        there = _origin_on_path(name)
    finally:
        sys.path[:] = saved
    return _same_file(here, there) and (expected is None or _same_file(here, expected))


def _import_for_children(name: str, *modules: str) -> tuple[str, ...]:
    """Import ``modules``; return the modules that came in under ``name`` or ``runner``."""
    before = set(sys.modules)
    for module in modules:
        importlib.import_module(module)
    return tuple(
        key
        for key in sys.modules
        if key not in before and (key == name or key.startswith((name + ".", "runner.")))
    )


def _preload() -> dict[str, tuple[str, ...]]:
    """Import, once, what jobs import, where a job would import the very same files.

    Runner's job side always (it is how the server itself runs). cloudpickle, and
    Runner's config library (the top-level ``configs`` that the spec names), only where
    the driver's ``sys.path`` finds the same files: a project with a ``configs`` package
    of its own gets its own in its jobs, as under ``spawn``, and none of its code ever
    runs in the server. Returns what was preloaded (see :class:`_StartupState`).
    """
    from runner import job_folder  # noqa: F401  (pre-imported for the children)

    raw = os.environ.get(_worker.SYS_PATH_ENV)
    job_path: list[str] = json.loads(raw) if raw else list(sys.path)
    preloaded = {}
    if _resolves_alike("cloudpickle", job_path):
        preloaded["cloudpickle"] = _import_for_children("cloudpickle", "cloudpickle")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(runner.__file__)))
    runner_configs = os.path.join(package_root, "configs", "__init__.py")
    if _resolves_alike("configs", job_path, expected=runner_configs):
        # Every search job unpickles its search config (its run function is a bound
        # method of it) and, mostly, an experiment config built on BaseExperimentConfig:
        # Runner's own config library, pure Python, nothing that touches a device.
        preloaded["configs"] = _import_for_children(
            "configs",
            "runner.configs.base_experiment_config",
            "runner.configs.search_configs",
        )
    return preloaded


def _startup_state(preloaded: dict[str, tuple[str, ...]]) -> _StartupState:
    cwd = os.getcwd()
    stdout = sys.__stdout__
    return _StartupState(
        cwd=cwd,
        cwd_first_on_path=bool(sys.path) and sys.path[0] == cwd,
        tz=os.environ.get("TZ"),
        stdio_encoding=getattr(stdout, "encoding", None) or "utf-8",
        stdout_errors=getattr(stdout, "errors", None) or "strict",
        preloaded=preloaded,
        job_path_raw=os.environ.get(_worker.SYS_PATH_ENV),
    )


def _forget_shadowed_preloads(preloaded: dict[str, tuple[str, ...]]) -> None:
    """In a child whose job's sys.path or working directory changed since the server
    started: forget a preloaded package that the job's path would now find elsewhere
    (a project's own ``configs``), so that the job imports its own, as under ``spawn``.
    """
    for name, modules in preloaded.items():
        loaded = getattr(getattr(sys.modules.get(name), "__spec__", None), "origin", None)
        if _same_file(_origin_on_path(name), loaded):
            continue
        # What came in with it, and what of it was imported since (a lazy submodule).
        stale = [k for k in sys.modules if k == name or k.startswith(name + ".")]
        for key in dict.fromkeys([*modules, *stale]):
            sys.modules.pop(key, None)
            parent, _, child = key.rpartition(".")
            if parent in sys.modules:
                # ``from runner.configs import search_configs`` would take the attribute.
                sys.modules[parent].__dict__.pop(child, None)


#: Set once by :func:`main`, before the first fork.
_startup: _StartupState | None = None


@dataclass
class ChildSpec:
    """What a forked child needs to become the job's worker."""

    job_dir: str
    cwd: str
    env: dict[str, str]
    log_fd: int


def _text_stream(fd: int, *, unbuffered: bool, encoding: str, errors: str) -> io.TextIOWrapper:
    # Built afresh in the child, as the interpreter would from the job's environment:
    # PYTHONUNBUFFERED makes the log show progress as it happens.
    raw = io.FileIO(fd, "w", closefd=False)
    raw.name = "<stdout>" if fd == 1 else "<stderr>"  # as the interpreter names them
    buffered: Any = raw if unbuffered else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered,
        encoding=encoding,
        errors=errors,
        line_buffering=not unbuffered and fd == 2,
        write_through=unbuffered,
    )


@dataclass(frozen=True)
class _ModulesMark:
    """The newest entry of ``sys.modules`` when the job started: the server's end there.

    Taken in O(1) and compared by identity: walking every module now would write to
    (and so copy) each one's page, for every job.
    """

    key: str
    module_id: int

    @classmethod
    def now(cls) -> _ModulesMark:
        key = next(reversed(sys.modules))
        return cls(key, id(sys.modules[key]))


def _modules_since(mark: _ModulesMark) -> list[Any] | None:
    """The modules the job added to ``sys.modules``, oldest first; None when unknowable.

    ``sys.modules`` keeps insertion order, so they are the entries after ``mark``. An
    entry that names a server module under another key (multiprocessing's
    ``__mp_main__`` for ``__main__``, which here is this very module) is not the job's.
    None when the job removed or replaced the marked entry.
    """
    added: list[tuple[str, Any]] = []
    for key, module in reversed(sys.modules.items()):
        if key == mark.key and id(module) == mark.module_id:
            break
        added.append((key, module))
    else:
        return None
    added_keys = {key for key, _ in added}
    job_modules = []
    for _key, module in reversed(added):
        if not isinstance(module, type(sys)):  # only modules, as CPython's finalisation
            continue
        name = getattr(module, "__name__", None)
        if isinstance(name, str) and name not in added_keys and sys.modules.get(name) is module:
            continue  # an alias of a server module
        job_modules.append(module)
    return job_modules


def _clear_job_modules(mark: _ModulesMark) -> None:
    """Free the modules the job imported, newest first, as interpreter finalisation does.

    Objects the job left in module globals are then finalised: an unclosed ``gzip`` or
    ``zipfile`` writer writes its trailer, a ``__del__`` runs. The server's own modules
    are left alone (touching them would copy their pages into this process for nothing).
    """
    job_modules = _modules_since(mark)
    if not job_modules:
        return
    for module in reversed(job_modules):
        namespace = module.__dict__
        # CPython's order (_PyModule_ClearDict): names with one leading underscore, then the rest.
        for private in (True, False):
            for key in list(namespace):
                if key == "__builtins__" or not isinstance(key, str):
                    continue
                if private == (key.startswith("_") and not key.startswith("__")):
                    namespace[key] = None
    gc.collect()


#: The C base of every file class, those written in Python (GzipFile) included: an
#: isinstance check against it is a pointer walk, where one against the ``io.IOBase``
#: ABC costs several times more over every object the job left (and writes ABC caches).
_FILE_BASE = cast("type[io.IOBase]", getattr(sys.modules.get("_io"), "_IOBase", io.IOBase))


def _close_open_files() -> None:
    """Close the files the job still holds open, each wrapper before what it wraps.

    Interpreter finalisation would flush and close them when it frees them; a forked
    child skips that. Frozen objects (the server's) are not listed, so this only walks
    what the job created. Closing a wrapper first (``gzip.open(..., "wt")`` is a text
    wrapper around a ``GzipFile`` around a file) lets it write out what it holds.
    """
    standard = {id(s) for s in (sys.stdin, sys.stdout, sys.stderr)}
    found = {
        id(o): o
        for o in gc.get_objects()
        if isinstance(o, _FILE_BASE) and id(o) not in standard and _open_for_writing(o)
    }
    wraps = {
        key: [id(inner) for inner in _held_files(f) if id(inner) in found]
        for key, f in found.items()
    }
    wrappers_left = dict.fromkeys(found, 0)
    for inners in wraps.values():
        for inner in inners:
            wrappers_left[inner] += 1
    ready = [key for key, n in wrappers_left.items() if n == 0]
    done: set[int] = set()
    while ready or len(done) < len(found):
        if not ready:  # a cycle of files holding each other: close the rest in any order
            ready = [key for key in found if key not in done]
        key = ready.pop()
        if key in done:
            continue
        done.add(key)
        _close_quietly(found[key])
        for inner in wraps[key]:
            wrappers_left[inner] -= 1
            if wrappers_left[inner] == 0:
                ready.append(inner)


def _open_for_writing(f: io.IOBase) -> bool:
    # Readers hold nothing to write out (the kernel closes their descriptors at exit), and
    # closing one that a daemon thread is blocked reading (a subprocess's pipe) would wait
    # for that thread's lock for ever.
    try:
        return not f.closed and f.writable()
    except Exception:  # a detached wrapper, a half-built object: nothing to close
        return False


def _held_files(f: io.IOBase) -> list[io.IOBase]:
    """The files ``f`` holds directly: a C wrapper's buffer or raw file, a Python one's attributes."""
    held = []
    for ref in gc.get_referents(f):
        if isinstance(ref, _FILE_BASE):
            held.append(ref)
        elif isinstance(ref, dict):  # the instance's __dict__
            held.extend(v for v in ref.values() if isinstance(v, _FILE_BASE))
    return held


def _close_quietly(f: io.IOBase) -> None:
    try:
        f.close()
    except Exception as exc:  # as the interpreter reports a failing finaliser; exit as planned
        try:
            sys.stderr.write(f"Exception ignored while closing {f!r} at exit: {exc!r}\n")
        except Exception:
            pass


def exit_child(code: int, modules_at_start: _ModulesMark | None = None) -> NoReturn:
    """Leave the forked child as an interpreter exit would, minus its costly teardown.

    A normal exit frees every object, and in a forked child that writes to (and so
    copies) every page shared with the server: about 12 ms of CPU per job. What a job
    can observe of an exit is kept, in the interpreter's order: non-daemon threads are
    joined, atexit handlers run (``weakref.finalize``, logging's flush), the modules the
    job imported (those after ``modules_at_start``) are freed so that what they hold is
    finalised (unless a daemon thread still runs), files still open are flushed and
    closed; the standard streams are flushed before and after.
    Like ``multiprocessing``'s forked children it then leaves with ``os._exit``.
    """
    leave = os._exit  # bound now: nothing below may stand between the job and its exit
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
        _flush_standard_streams()  # first, as the interpreter does: before anything closes
        # The interpreter stops daemon threads before it frees modules; a forked child
        # can't, and one that ran on (a progress bar's monitor, a data loader's pin-memory
        # thread) would trip over the freed globals. Then open files are still closed.
        if _daemon_threads_alive():
            _close_open_files_beside_daemons()
        else:
            if modules_at_start is not None:
                _clear_job_modules(modules_at_start)
            _close_open_files()
        _flush_standard_streams()
    except BaseException:  # a finaliser's failure is reported, as the interpreter would
        try:
            import traceback

            traceback.print_exc()
            _flush_standard_streams()
        except BaseException:
            pass
    finally:
        leave(code)


#: Seconds the exit waits for open files to close while daemon threads run (one may hold
#: a file's lock for ever, blocked in a write); the interpreter's own shutdown gives up too.
CLOSE_WAIT_BESIDE_DAEMONS = 1.0


def _close_open_files_beside_daemons() -> None:
    import threading

    closer = threading.Thread(target=_close_open_files, daemon=True)
    closer.start()
    closer.join(CLOSE_WAIT_BESIDE_DAEMONS)


def _daemon_threads_alive() -> bool:
    threading = sys.modules.get("threading")
    if threading is None:
        return False
    current = threading.current_thread()
    return any(t is not current and t.is_alive() for t in threading.enumerate())


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def run_child(spec: ChildSpec) -> NoReturn:
    """In the forked child: become ``python -m runner._worker <job dir>``, then exit."""
    startup = _startup or _startup_state({})
    os.dup2(spec.log_fd, 1)
    os.dup2(spec.log_fd, 2)
    os.close(spec.log_fd)
    os.chdir(spec.cwd)
    _set_environment(spec.env)
    if spec.env.get("TZ") != startup.tz:  # the C library read TZ once, in the server
        time.tzset()
    # As ``python -m`` would put it first: the working directory this job started in.
    if startup.cwd_first_on_path and sys.path and sys.path[0] == startup.cwd:
        sys.path[0] = spec.cwd
    moved = spec.env.get(_worker.SYS_PATH_ENV) != startup.job_path_raw or spec.cwd != startup.cwd
    _worker.restore_sys_path()  # the job's sys.path from here on (main() finds it done)
    if moved and startup.preloaded:
        _forget_shadowed_preloads(startup.preloaded)
    unbuffered = bool(spec.env.get("PYTHONUNBUFFERED"))
    encoding, _, errors = spec.env.get("PYTHONIOENCODING", "").partition(":")
    encoding = encoding or startup.stdio_encoding
    sys.stdout = _text_stream(
        1, unbuffered=unbuffered, encoding=encoding, errors=errors or startup.stdout_errors
    )
    # stderr always escapes what it can't encode, whatever PYTHONIOENCODING says.
    sys.stderr = _text_stream(
        2, unbuffered=unbuffered, encoding=encoding, errors="backslashreplace"
    )
    # The originals too (faulthandler, code that restores them): same descriptors, new buffering.
    sys.__stdout__ = sys.stdout  # type: ignore[misc]
    sys.__stderr__ = sys.stderr  # type: ignore[misc]
    argv = [os.path.abspath(_worker.__file__), spec.job_dir]
    sys.argv = argv
    modules_at_start = _ModulesMark.now()
    try:
        code = _worker.main(argv)
    except SystemExit as exc:  # the job called sys.exit(n): exit with n, as the interpreter does
        code = _system_exit_code(exc)
    exit_child(code, modules_at_start)


def _set_environment(env: dict[str, str]) -> None:
    """Make ``os.environ`` exactly ``env``, changing only what differs from the server's.

    A job's environment differs from the server's in a few variables (the device, the
    attempt); each change is a ``putenv`` or ``unsetenv`` in the C library, and clearing
    and refilling all of them cost about 0.6 ms and 120 page faults per job.
    """
    environ = os.environ
    for key in [k for k in environ if k not in env]:
        del environ[key]
    for key, value in env.items():
        if environ.get(key) != value:
            environ[key] = value


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    try:
        sys.stderr.write(f"{exc.code}\n")
    except Exception:
        pass
    return 1


@dataclass
class _Idle:
    """A pre-forked child, in its own session, waiting on ``sock`` for its one job."""

    pid: int
    sock: socket.socket


class Server:
    """The server's loop: requests in, children forked, exits reaped and reported."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: set[int] = set()
        #: Pre-forked children, oldest first, and how many to keep: the most jobs seen
        #: running at once (a search round, a wave of jobs: the slots in use).
        self.idle: deque[_Idle] = deque()
        self.pool_target = 0
        #: True once no request came for REFILL_DELAY: refill until the next request.
        self._quiet = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        # SIGCHLD only needs to wake select(); the reaping happens in the loop.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.sock.send(json.dumps(message).encode())
        except OSError:  # the driver is gone; EOF on the next read ends the loop
            pass

    def _reap(self) -> None:
        while self.children or self.idle:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                self._drop_idle()
                return
            if pid == 0:
                return
            if pid in self.children:
                self.children.discard(pid)
                self._send({"pid": pid, "rc": os.waitstatus_to_exitcode(status)})
            else:  # a pre-forked child that died before it got a job (killed from outside)
                self._drop_idle({pid})

    def _drop_idle(self, pids: Container[int] | None = None) -> None:
        """Forget the pre-forked children ``pids`` (all when None) and close their sockets."""
        for idle in [i for i in self.idle if pids is None or i.pid in pids]:
            self.idle.remove(idle)
            idle.sock.close()

    def _hand_to_idle(self, request: dict[str, Any], data: bytes, log_fd: int) -> bool:
        """Give the request to a pre-forked child; False when none could take it."""
        while self.idle:
            idle = self.idle.popleft()
            try:
                socket.send_fds(idle.sock, [data], [log_fd])
            except (BrokenPipeError, ConnectionError):  # it died meanwhile; the reaper collects it
                idle.sock.close()
                continue
            except OSError:  # the request can't travel this way (its size): fork on demand
                self.idle.appendleft(idle)
                return False
            idle.sock.close()
            os.close(log_fd)
            self.children.add(idle.pid)
            self._send({"id": request["id"], "pid": idle.pid})
            return True
        return False

    def _prefork(self) -> ChildSpec | None:
        """Fork one child that waits for a job; in that child, return its job's spec."""
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # out of processes: requests still fork (and report) on demand
            for end in (parent_end, child_end):
                end.close()
            os.close(ready_r)
            os.close(ready_w)
            self.pool_target = len(self.idle)
            return None
        if pid == 0:
            os.setsid()
            os.close(ready_w)
            os.close(ready_r)
            parent_end.close()
            self._forget_in_child()
            return _wait_for_job(child_end)
        child_end.close()
        os.close(ready_w)
        # As for a fork on demand: the pid is handed out only once the child leads its group.
        while os.read(ready_r, 1):
            pass
        os.close(ready_r)
        self.idle.append(_Idle(pid, parent_end))
        return None

    def _fork(self, request: dict[str, Any], log_fd: int) -> ChildSpec | None:
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(ready_r)
            os.close(ready_w)
            os.close(log_fd)
            self._send({"id": request["id"], "error": f"fork failed: {exc}"})
            return None
        if pid == 0:
            os.setsid()
            os.close(ready_w)  # EOF tells the server the child leads its own group now
            os.close(ready_r)
            self._forget_in_child()
            return ChildSpec(request["job_dir"], request["cwd"], request["env"], log_fd)
        os.close(ready_w)
        os.close(log_fd)
        # Wait for the setsid(): a cancel right after the reply must reach the child's group.
        while os.read(ready_r, 1):
            pass
        os.close(ready_r)
        self.children.add(pid)
        self._send({"id": request["id"], "pid": pid})
        return None

    def _forget_in_child(self) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.sock.close()
        # The server's ends of the waiting children's sockets: only the server may hold
        # them, so that its exit (or death) is the EOF that ends those children.
        for idle in self.idle:
            idle.sock.close()
        self.idle.clear()

    def _terminate_orphans(self) -> None:
        # Pre-forked children ran nothing: kill them and reap them now, without a grace.
        waiting = [idle.pid for idle in self.idle]
        self._drop_idle()
        for pid in waiting:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if not self.children:
            return
        # Each job leads its own process group. SIGKILL goes to every group that got
        # SIGTERM, even once its leader has exited: what it started may ignore SIGTERM.
        # (A group's id is not reused while any member lives.)
        groups = list(self.children)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pgid in groups:
                try:
                    os.killpg(pgid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + ORPHAN_GRACE
            while self.children and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.01)
        self._reap()

    def serve(self) -> ChildSpec | None:
        """Serve until the driver hangs up (returns None) or, in a forked child, its spec."""
        while True:
            timeout = None
            if len(self.idle) < self.pool_target:
                timeout = 0.0 if self._quiet else REFILL_DELAY
            readable, _, _ = select.select([self.sock.fileno(), self.wake_r], [], [], timeout)
            if not readable:  # no request for a while: the burst is over, fork ahead of need
                self._quiet = True
                spec = self._prefork()
                if spec is not None:
                    return spec
                continue
            if self.wake_r in readable:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            self._reap()
            if self.sock.fileno() not in readable:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 1)
            except (ConnectionError, OSError):
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                self._terminate_orphans()
                return None
            request = json.loads(data)
            if "pool" in request:  # the scheduler's slots: fork that many ahead of need
                for fd in fds:
                    os.close(fd)
                self.pool_target = max(self.pool_target, min(MAX_POOL, int(request["pool"])))
                self._quiet = True  # no burst to wait out: start now, requests first
                continue
            if request.get("ping"):  # the driver waits for the server to be ready
                for fd in fds:
                    os.close(fd)
                # Ready includes the pool asked for (a failed fork lowers the target).
                while len(self.idle) < self.pool_target:
                    spec = self._prefork()
                    if spec is not None:
                        return spec
                self._send({"id": request["id"], "pong": True})
                continue
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                self._send({"id": request.get("id"), "error": "no log descriptor received"})
                continue
            self._quiet = False
            if not self._hand_to_idle(request, data, fds[0]):
                spec = self._fork(request, fds[0])
                if spec is not None:
                    return spec
            self.pool_target = min(MAX_POOL, max(self.pool_target, len(self.children)))


def _rehearse() -> None:
    """In a pre-forked child, while it waits: walk a job's start-up on a dummy job.

    A forked child pays for every page it first touches: the server's objects it
    writes to (reference counts) are copied, and the interpreter's code is mapped in,
    at a few microseconds each, hundreds of pages per job. Doing the same steps on a
    dummy job now moves that cost out of the burst in which a round's jobs start.
    Nothing here has effects outside this process, and nothing of it reaches the job
    but warmer caches (which a fresh interpreter would fill the same way).
    """
    preloaded = _startup.preloaded if _startup is not None else {}
    try:
        from runner.jobs import Job

        # Only what the server preloaded: importing here is what the job must do itself.
        config: Any = None
        if "configs" in preloaded:
            from runner.configs.base_experiment_config import BaseExperimentConfig

            config = BaseExperimentConfig(base_dir="")
        job = Job(run_fn=len, config=config, base_dir="")
        if "cloudpickle" in preloaded:
            import cloudpickle

            cloudpickle.loads(cloudpickle.dumps(job))
            cloudpickle.dumps(("ok", {"value": 0.5, "seed": 0, "passed": True}))
        request = {"id": 0, "job_dir": "", "cwd": os.getcwd(), "env": dict(os.environ)}
        json.loads(json.dumps(request))
        _worker.header_line("", "1")
        raw = os.environ.get(_worker.SYS_PATH_ENV)
        if raw:  # fill the import system's directory caches for the driver's sys.path
            import importlib.machinery

            importlib.machinery.PathFinder.find_spec("_runner_rehearsal_", json.loads(raw))
    except Exception:  # only ever an optimisation
        pass


def _wait_for_job(sock: socket.socket) -> ChildSpec:
    """In a pre-forked child: block until the server hands over a job (or exit on EOF)."""
    _rehearse()

    try:
        data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 1)
    except OSError:
        data, fds = b"", []
    sock.close()
    if not data or len(fds) != 1:  # the server is gone: nothing was started, nothing to flush
        os._exit(0)
    request = json.loads(data)
    return ChildSpec(request["job_dir"], request["cwd"], request["env"], fds[0])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m runner._forkserver <socket fd>\n")
        return 2
    sock = socket.socket(fileno=int(argv[1]))
    sock.setblocking(True)
    global _startup
    _startup = _startup_state(_preload())
    # Objects alive now are shared copy-on-write with every child: keep the collector
    # from touching (and so copying) their pages.
    gc.freeze()
    spec = Server(sock).serve()
    if spec is None:
        return 0
    run_child(spec)


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Only the server gets here (a child exits in run_child), its children reaped and
    # nothing of its own to clean up: skip the interpreter's teardown, which the driver's
    # shutdown would wait for.
    os._exit(code)
