"""The child side of the local executor: ``python -m runner._worker <job dir>``.

The parent has already pointed this process's stdout and stderr (file descriptors 1
and 2) at the job's log, set ``CUDA_VISIBLE_DEVICES``, and put its ``sys.path`` in
``RUNNER_WORKER_SYS_PATH``. Here: write the attempt's header, load ``job.pkl``,
run ``job.run()``, write ``result.pkl`` atomically.

Exit codes: 0 ok; 1 the job raised (or its value could not be pickled) and
result.pkl says why; anything else is the job's own doing (``sys.exit(n)``) or a
signal, and result.pkl is absent.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback

SYS_PATH_ENV = "RUNNER_WORKER_SYS_PATH"
ATTEMPT_ENV = "RUNNER_WORKER_ATTEMPT"
#: Where a job that returns writes what it imported (JSON, see :func:`report_imports`):
#: set by the fork server's launcher on the first jobs, to learn what to preload.
IMPORTS_ENV = "RUNNER_WORKER_IMPORTS_FILE"

EXIT_OK = 0
EXIT_JOB_FAILED = 1


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
    imports_file = os.environ.pop(IMPORTS_ENV, None)  # the job's own children don't report
    modules_before = set(sys.modules) if imports_file else None

    import cloudpickle

    from runner.job_folder import RESULT_PKL, atomic_write_bytes
    from runner.job_pickle import load_job

    result_path = os.path.join(job_dir, RESULT_PKL)
    try:
        job = load_job(job_dir)
        value = job.run()
    except Exception:
        return _fail(result_path, traceback.format_exc())
    try:
        payload = cloudpickle.dumps(("ok", value))
    except Exception as exc:
        text = (
            f"The job returned a value of type {type(value).__name__} that cannot be pickled "
            f"({type(exc).__name__}: {exc}); return plain data (numbers, dicts, arrays) instead.\n"
            + traceback.format_exc()
        )
        return _fail(result_path, text)
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


def _fail(result_path: str, text: str) -> int:
    """Report the job's failure: the text to its log and, as ("error", text), to result.pkl."""
    import cloudpickle

    from runner.job_folder import atomic_write_bytes

    sys.stderr.write(text)
    sys.stderr.flush()
    # No fsync, as for a success: the driver flushes result.pkl once it has read it.
    atomic_write_bytes(result_path, cloudpickle.dumps(("error", text)), fsync=False)
    return EXIT_JOB_FAILED


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
