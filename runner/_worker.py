"""The child side of the local executor: ``python -m runner._worker <job dir>``.

The parent has already pointed this process's stdout and stderr (file descriptors 1
and 2) at the job's log, set ``CUDA_VISIBLE_DEVICES``, and put its ``sys.path`` in
``RUNNER_WORKER_SYS_PATH``. Here: write the attempt's header, load ``job.pkl``,
run ``job.run()``, write ``result.pkl`` atomically.

Exit codes: 0 ok; 1 the job raised (or its value could not be pickled) and
result.pkl says why; anything else is the job's own doing (``sys.exit(n)``) or a
signal, and result.pkl is absent. A job's own ``KeyboardInterrupt`` is an exception
like any other (no terminal reaches a job: it runs in a session of its own).

The worker is a child subreaper, so everything the job starts stays its descendant,
daemons that called ``setsid`` included; when the job is done (after its threads,
its atexit handlers) the worker ends them all before it exits
(:func:`end_job_processes`). A failure is reported to result.pkl first and to the log
through a copy of the log's descriptor taken at start: a job that closed its
standard streams still has its traceback recorded.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback

from runner import _process_tree

SYS_PATH_ENV = "RUNNER_WORKER_SYS_PATH"
ATTEMPT_ENV = "RUNNER_WORKER_ATTEMPT"
#: Where a job that returns writes what it imported (JSON, see :func:`report_imports`):
#: set by the fork server's launcher on the first jobs, to learn what to preload.
IMPORTS_ENV = "RUNNER_WORKER_IMPORTS_FILE"
#: The mark by which the driver's lifeline keeper knows a spawned job (see :mod:`runner._lifeline`).
LIFELINE_ENV = "RUNNER_LIFELINE"

EXIT_OK = 0
EXIT_JOB_FAILED = 1

#: Seconds the worker waits for its descendants to die after SIGKILL (a process stuck in
#: the kernel, e.g. on a dead network mount, may take longer; the worker exits anyway).
DESCENDANTS_EXIT_WAIT = 2.0


class LogReport:
    """The job's log, as the worker found it on descriptor 2 at start, for reporting a failure.

    The job may close descriptors 1 and 2 (or ``sys.stderr``), and a file it opens later
    may then get number 2: the worker writes to descriptor 2 only while it still is the
    log, else to the log reopened by the path it had at start. No descriptor is held
    meanwhile: the job sees only its standard ones, as in a fresh interpreter.
    """

    def __init__(self) -> None:
        self.identity: tuple[int, int] | None = None
        self.path: str | None = None
        try:
            st = os.fstat(2)
            self.identity = (st.st_dev, st.st_ino)
            self.path = os.readlink("/proc/self/fd/2")
        except OSError:
            pass

    def _is_log(self, fd: int) -> bool:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == self.identity

    def write(self, text: str) -> None:
        """Append ``text`` to the log; best effort, never raises."""
        for stream in (sys.stdout, sys.stderr):  # what the job printed comes first
            try:
                stream.flush()
            except Exception:
                pass
        if self.identity is None:
            return
        data = text.encode("utf-8", errors="backslashreplace")
        try:
            if self._is_log(2):
                _write_all(2, data)
                return
        except OSError:
            pass
        if self.path is None or not self.path.startswith("/"):
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if self._is_log(fd):
                _write_all(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def end_job_processes() -> None:
    """Kill every process the job left running, detached ones included, then reap them.

    Called last, when the job is done: its threads joined and its atexit handlers run
    (a multiprocessing pool is joined there), so only what it abandoned is left. Cheap
    when the job started nothing: a subreaper with no child has no descendant at all.
    """
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return
    except (AttributeError, OSError):
        pass
    killed = _process_tree.kill_descendants(os.getpid())
    if killed:
        _process_tree.wait_gone(killed, DESCENDANTS_EXIT_WAIT)
    while True:  # reap them here: once this process is gone, init may never do it
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break


def header_line(device: str, attempt: str) -> str:
    """The line that opens each attempt's part of the log."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return (
        f"===== runner: attempt {attempt} on device {device or 'cpu'} "
        f"(CUDA_VISIBLE_DEVICES={device!r}), host {socket.gethostname()}, pid {os.getpid()}, "
        f"started {stamp} =====\n"
    )


def _write_header(device: str, attempt: str) -> None:
    # os.write, not print: the header must precede anything the job writes at any level.
    os.write(1, header_line(device, attempt).encode())


def restore_sys_path() -> None:
    """Put the driver's sys.path (from the environment) first; a no-op once done."""
    raw = os.environ.pop(SYS_PATH_ENV, None)  # not inherited by the job's own children
    if not raw:
        return
    parent_path = json.loads(raw)
    sys.path[:] = parent_path + [p for p in sys.path if p not in parent_path]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m runner._worker <job dir>\n")
        return 2
    job_dir = argv[1]
    _write_header(os.environ.get("CUDA_VISIBLE_DEVICES", ""), os.environ.pop(ATTEMPT_ENV, "1"))
    restore_sys_path()
    # The lifeline's mark stays in /proc/<pid>/environ, where the keeper looks; out of the
    # job's sight and its own children's.
    os.environ.pop(LIFELINE_ENV, None)
    _process_tree.become_subreaper()  # what the job starts stays findable, setsid or not
    log = LogReport()
    imports_file = os.environ.pop(IMPORTS_ENV, None)  # the job's own children don't report
    modules_before = set(sys.modules) if imports_file else None

    import cloudpickle

    from runner.job_folder import RESULT_PKL, atomic_write_bytes
    from runner.job_pickle import load_job

    result_path = os.path.join(job_dir, RESULT_PKL)
    try:
        job = load_job(job_dir)
        value = job.run()
    except SystemExit:  # the job's sys.exit(n): the process exits with n
        raise
    except BaseException:  # KeyboardInterrupt too: raised by the job, so the job's error
        return _fail(result_path, traceback.format_exc(), log)
    try:
        payload = cloudpickle.dumps(("ok", value))
    except Exception as exc:
        text = (
            f"The job returned a value of type {type(value).__name__} that cannot be pickled "
            f"({type(exc).__name__}: {exc}); return plain data (numbers, dicts, arrays) instead.\n"
            + traceback.format_exc()
        )
        return _fail(result_path, text, log)
    # No fsync here: it would add milliseconds to every job's turnaround. The driver flushes
    # result.pkl to disk in the background once it has read it (LocalExecutor).
    atomic_write_bytes(result_path, payload, fsync=False)
    if imports_file and modules_before is not None:
        report_imports(imports_file, modules_before)
    return EXIT_OK


def report_imports(path: str, modules_before: set[str]) -> None:
    """Write the modules imported since ``modules_before`` to ``path``, as JSON.

    ``{"modules": [name, ...], "files": {top-level name: its file}}``, names in import
    order: what the fork server may preload for the next jobs (the driver decides
    which). Best effort: a report that can't be written only leaves starts cold.
    """
    modules = [name for name in list(sys.modules) if name not in modules_before]
    files = {}
    for name in modules:
        top = name.partition(".")[0]
        if top not in files:
            files[top] = getattr(sys.modules.get(top), "__file__", None)
    try:
        with open(path, "w") as f:
            json.dump({"modules": modules, "files": files}, f)
    except (OSError, TypeError, ValueError):
        pass


def _fail(result_path: str, text: str, log: LogReport) -> int:
    """Report the job's failure: as ("error", text) to result.pkl, then the text to its log.

    Neither depends on the standard streams, which the job may have closed.
    """
    import cloudpickle

    from runner.job_folder import atomic_write_bytes

    try:
        # No fsync, as for a success: the driver flushes result.pkl once it has read it.
        atomic_write_bytes(result_path, cloudpickle.dumps(("error", text)), fsync=False)
    finally:
        log.write(text)
    return EXIT_JOB_FAILED


def finish_process() -> None:
    """End a spawned worker as the interpreter would, but end what the job left running last.

    Non-daemon threads are joined and atexit handlers run first, in the interpreter's
    order (they are not run again at exit); then the job's leftover processes are killed.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the job may have closed them
            pass
    try:
        import atexit
        import threading

        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    finally:
        end_job_processes()


if __name__ == "__main__":
    exit_code: object = EXIT_JOB_FAILED
    try:
        exit_code = main(sys.argv)
    except SystemExit as exc:  # the job's sys.exit(n): exit with n below, as it asked
        exit_code = exc.code
    finally:
        finish_process()
    sys.exit(exit_code)
