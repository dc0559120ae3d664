"""In a forked child: become ``python -m runner._worker <job dir>``, then leave as it would.

What a job can observe of its start is what a fresh interpreter would give it: its own
session, stdout and stderr on the log's descriptor (with the encodings a fresh
interpreter would pick), the driver's working directory (also first on ``sys.path``, as
``-m`` puts it), ``os.environ`` replaced by exactly the job's environment (TZ re-read).
Its exit is an interpreter's (non-daemon threads joined, atexit handlers, the job's
modules freed, open files closed, flushes), minus the teardown that would copy every
page shared with the server. While a pre-forked child waits for its job, it rehearses
a job's start on a dummy one (:func:`rehearse`).
"""

from __future__ import annotations

import atexit
import gc
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from runner import _worker
from runner._forkserver import protocol
from runner._forkserver.preload import Preloaded, forget_shadowed_preloads


@dataclass(frozen=True)
class StartupState:
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
    #: What the server preloaded for its children (see :mod:`runner._forkserver.preload`): each top-level
    #: name, with the modules that came in under it or under ``runner``.
    preloaded: Preloaded
    #: The driver's sys.path (as sent) when the server started: with ``cwd``, the state
    #: the preload was checked against.
    job_path_raw: str | None


def startup_state(preloaded: Preloaded) -> StartupState:
    """This interpreter's start-up state, taken in the server before its first fork."""
    cwd = os.getcwd()
    stdout = sys.__stdout__
    return StartupState(
        cwd=cwd,
        cwd_first_on_path=bool(sys.path) and sys.path[0] == cwd,
        tz=os.environ.get("TZ"),
        stdio_encoding=getattr(stdout, "encoding", None) or "utf-8",
        stdout_errors=getattr(stdout, "errors", None) or "strict",
        preloaded=preloaded,
        job_path_raw=os.environ.get(_worker.SYS_PATH_ENV),
    )


@dataclass
class ChildSpec:
    """What a forked child needs to become the job's worker."""

    job_dir: str
    cwd: str
    env: dict[str, str]
    log_fd: int


def text_stream(fd: int, *, unbuffered: bool, encoding: str, errors: str) -> io.TextIOWrapper:
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
class ModulesMark:
    """The newest entry of ``sys.modules`` when the job started: the server's end there.

    Taken in O(1) and compared by identity: walking every module now would write to
    (and so copy) each one's page, for every job.
    """

    key: str
    module_id: int

    @classmethod
    def now(cls) -> ModulesMark:
        key = next(reversed(sys.modules))
        return cls(key, id(sys.modules[key]))


def _modules_since(mark: ModulesMark) -> list[Any] | None:
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


def _clear_job_modules(mark: ModulesMark) -> None:
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


def exit_child(code: int, modules_at_start: ModulesMark | None = None) -> NoReturn:
    """Leave the forked child as an interpreter exit would, minus its costly teardown.

    A normal exit frees every object, and in a forked child that writes to (and so
    copies) every page shared with the server: about 12 ms of CPU per job. What a job
    can observe of an exit is kept, in the interpreter's order: non-daemon threads are
    joined, atexit handlers run (``weakref.finalize``, logging's flush), the modules the
    job imported (those after ``modules_at_start``) are freed so that what they hold is
    finalised (unless a daemon thread still runs), files still open are flushed and
    closed; the standard streams are flushed before and after. Then the processes the
    job left running are killed (:func:`runner._worker.end_job_processes`).
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
        try:
            # Last, once the job's threads and atexit handlers are done with them: what
            # the job left running, daemons that left its session included, dies with it.
            _worker.end_job_processes()
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


def run_child(spec: ChildSpec, startup: StartupState) -> NoReturn:
    """In the forked child: become ``python -m runner._worker <job dir>``, then exit.

    ``startup``: the server's state when it started (what the child inherited).
    """
    os.dup2(spec.log_fd, 1)
    os.dup2(spec.log_fd, 2)
    os.close(spec.log_fd)
    os.chdir(spec.cwd)
    set_environment(spec.env)
    if spec.env.get("TZ") != startup.tz:  # the C library read TZ once, in the server
        time.tzset()
    # As ``python -m`` would put it first: the working directory this job started in.
    if startup.cwd_first_on_path and sys.path and sys.path[0] == startup.cwd:
        sys.path[0] = spec.cwd
    moved = spec.env.get(_worker.SYS_PATH_ENV) != startup.job_path_raw or spec.cwd != startup.cwd
    _worker.restore_sys_path()  # the job's sys.path from here on (main() finds it done)
    if moved and startup.preloaded:
        forget_shadowed_preloads(startup.preloaded)
    unbuffered = bool(spec.env.get("PYTHONUNBUFFERED"))
    encoding, _, errors = spec.env.get("PYTHONIOENCODING", "").partition(":")
    encoding = encoding or startup.stdio_encoding
    sys.stdout = text_stream(
        1, unbuffered=unbuffered, encoding=encoding, errors=errors or startup.stdout_errors
    )
    # stderr always escapes what it can't encode, whatever PYTHONIOENCODING says.
    sys.stderr = text_stream(
        2, unbuffered=unbuffered, encoding=encoding, errors="backslashreplace"
    )
    # The originals too (faulthandler, code that restores them): same descriptors, new buffering.
    sys.__stdout__ = sys.stdout  # type: ignore[misc]
    sys.__stderr__ = sys.stderr  # type: ignore[misc]
    argv = [os.path.abspath(_worker.__file__), spec.job_dir]
    sys.argv = argv
    reseed_preloaded_generators()
    modules_at_start = ModulesMark.now()
    try:
        code = _worker.main(argv)
    except SystemExit as exc:  # the job called sys.exit(n): exit with n, as the interpreter does
        code = _system_exit_code(exc)
    exit_child(code, modules_at_start)


def reseed_preloaded_generators() -> None:
    """Give the job fresh random generators where the server preloaded seeded ones.

    numpy's global generator (``np.random.rand``) and torch's default one are seeded
    from the OS's entropy when a fresh interpreter imports them; a forked child would
    inherit the server's, so every job would draw the same "random" numbers (the same
    unseeded initialisations). Each is reseeded from the OS's entropy, as at import.
    Python's own ``random`` reseeds itself after a fork.
    """
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None and callable(getattr(numpy_random, "seed", None)):
        numpy_random.seed()
    torch = sys.modules.get("torch")
    if torch is not None and callable(getattr(torch, "seed", None)):
        torch.seed()


def set_environment(env: dict[str, str]) -> None:
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


def rehearse(startup: StartupState) -> None:
    """In a pre-forked child, while it waits: walk a job's start-up on a dummy job.

    A forked child pays for every page it first touches: the server's objects it
    writes to (reference counts) are copied, and the interpreter's code is mapped in,
    at a few microseconds each, hundreds of pages per job. Doing the same steps on a
    dummy job now moves that cost out of the burst in which a round's jobs start.
    Nothing here has effects outside this process, and nothing of it reaches the job
    but warmer caches (which a fresh interpreter would fill the same way).
    """
    preloaded = startup.preloaded
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
        request = protocol.Fork(id=0, job_dir="", cwd=os.getcwd(), env=dict(os.environ))
        protocol.decode(protocol.encode(request))
        _worker.header_line("", "1")
        raw = os.environ.get(_worker.SYS_PATH_ENV)
        if raw:  # fill the import system's directory caches for the driver's sys.path
            import importlib.machinery

            importlib.machinery.PathFinder.find_spec("_runner_rehearsal_", json.loads(raw))
    except Exception:  # only ever an optimisation
        pass

