"""The fork server start method: same isolation and same verdicts as spawning, and its failures.

Functional only: no timing is asserted (the benchmarks measure speed).
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import psutil
import pytest
from sched_helpers import pid_alive, wait_until
from sched_jobs import FailJob, HangJob, RecordJob

from runner.devices import CPU_DEVICE, Device
from runner.executors.local import LocalExecutor, forkserver_available
from runner.jobs import Job
from runner.scheduler import GPUJobResult, GPUScheduler
from runner.thread_limits import thread_limits

pytestmark = pytest.mark.skipif(not forkserver_available(), reason="the fork server needs Linux")

METHODS = ["forkserver", "spawn"]


def _env_probe(_: Any) -> dict[str, Any]:
    """What the child sees: its environment, path, cwd, session and stream buffering."""
    print("to stdout", flush=False)
    sys.stderr.write("to stderr\n")
    return {
        "env": dict(os.environ),
        "sys_path": list(sys.path),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "sid": os.getsid(0),
        "pgid": os.getpgid(0),
        "ppid": os.getppid(),
        "torch_loaded": "torch" in sys.modules,
        "argv0": os.path.basename(sys.argv[0]),
        "fds": _open_fds(),
    }


def _open_fds() -> list[int]:
    """The descriptors this process holds, but for the one listing them."""
    with os.scandir("/proc/self/fd") as it:
        listed = [int(entry.name) for entry in it]
    return sorted(fd for fd in listed if os.path.exists(f"/proc/self/fd/{fd}"))


def _leave_things_open(path: str) -> str:
    """Leaves a buffered file unclosed and a non-daemon thread running: both must finish."""
    f = open(path, "w")  # noqa: SIM115 - left open on purpose
    f.write("flushed at exit\n")

    def later() -> None:
        time.sleep(0.2)
        with open(path + ".thread", "w") as g:
            g.write("joined\n")

    threading.Thread(target=later).start()
    return "returned"


def _register_atexit(path: str) -> None:
    import atexit

    def write() -> None:
        with open(path, "w") as f:
            f.write("atexit ran\n")

    atexit.register(write)


def _run(executor: LocalExecutor, job: Any, device: Device = CPU_DEVICE) -> GPUJobResult:
    async def main() -> GPUJobResult:
        try:
            return await executor.execute(job, device)
        finally:
            await executor.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("mode", "status", "exit_code", "sig"),
    [
        ("raise", "error", 1, None),
        ("exit3", "error", 3, None),
        ("segfault", "crashed", None, signal.SIGSEGV),
        ("abort", "crashed", None, signal.SIGABRT),
        ("sigkill", "crashed", None, signal.SIGKILL),
    ],
)
def test_exit_codes_and_signals_are_exact(
    tmp_path: Any, method: str, mode: str, status: str, exit_code: int | None, sig: int | None
) -> None:
    result = _run(
        LocalExecutor(grace_period=1.0, start_method=method),  # type: ignore[arg-type]
        FailJob(str(tmp_path / "j"), mode=mode),
    )
    assert not result.success
    assert result.status == status
    assert result.exit_code == exit_code
    assert result.signal == sig


@pytest.mark.parametrize("method", METHODS)
def test_env_path_cwd_and_session_match_the_launch(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    executor = LocalExecutor(start_method=method)  # type: ignore[arg-type]

    async def main() -> list[GPUJobResult]:
        try:
            # The server starts with the first job; later changes to the driver's env,
            # path and cwd must still reach the next jobs.
            first = await executor.execute(
                Job(run_fn=_env_probe, config=None, base_dir=str(tmp_path / "a")),
                Device(cuda_id="3"),
            )
            monkeypatch.setenv("RUNNER_TEST_MARKER", "later")
            monkeypatch.delenv("HOME", raising=False)
            monkeypatch.chdir(tmp_path)
            monkeypatch.syspath_prepend(str(tmp_path / "extra"))
            second = await executor.execute(
                Job(run_fn=_env_probe, config=None, base_dir=str(tmp_path / "b")),
                Device(cuda_id="GPU-abc"),
            )
            return [first, second]
        finally:
            await executor.aclose()

    first, second = asyncio.run(main())
    assert first.success and second.success, (first.error, second.error)
    a, b = first.result, second.result
    assert a["env"]["CUDA_VISIBLE_DEVICES"] == "3"
    assert b["env"]["CUDA_VISIBLE_DEVICES"] == "GPU-abc"
    assert b["env"]["RUNNER_TEST_MARKER"] == "later" and "HOME" not in b["env"]
    assert "RUNNER_TEST_MARKER" not in a["env"]
    # Exactly the launcher's environment: the parent's, plus what the executor sets.
    expected = dict(os.environ, CUDA_VISIBLE_DEVICES="GPU-abc")
    expected.setdefault("PYTHONUNBUFFERED", "1")
    expected.update(thread_limits(os.environ, None))  # each job's share of the cores
    if "CUDA_VISIBLE_DEVICES" not in os.environ:  # devices numbered by NVML: PCI bus order
        expected.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert b["env"] == expected
    assert b["cwd"] == str(tmp_path)
    assert b["sys_path"][: len(sys.path)] == sys.path
    for r in (a, b):
        assert r["sid"] == r["pid"] and r["pgid"] == r["pid"]  # its own session and group
        assert r["ppid"] != os.getpid() or method == "spawn"
        assert not r["torch_loaded"]
        assert r["argv0"] == "_worker.py"
        assert r["fds"] == [0, 1, 2]
    log = open(second.out_file).read()
    assert "to stdout" in log and "to stderr" in log


@pytest.mark.parametrize("method", METHODS)
def test_open_files_threads_and_atexit_finish_like_an_interpreter_exit(
    tmp_path: Any, method: str
) -> None:
    path = str(tmp_path / "out.txt")
    result = _run(
        LocalExecutor(start_method=method),  # type: ignore[arg-type]
        Job(run_fn=_leave_things_open, config=path, base_dir=str(tmp_path / "j")),
    )
    assert result.success and result.result == "returned"
    assert open(path).read() == "flushed at exit\n"
    assert open(path + ".thread").read() == "joined\n"
    marker = str(tmp_path / "atexit.txt")
    result = _run(
        LocalExecutor(start_method=method),  # type: ignore[arg-type]
        Job(run_fn=_register_atexit, config=marker, base_dir=str(tmp_path / "k")),
    )
    assert result.success
    assert open(marker).read() == "atexit ran\n"


def test_timeout_kills_the_whole_group_through_the_server(tmp_path: Any) -> None:
    job = HangJob(str(tmp_path / "hang"), timeout=1.0)
    result = _run(LocalExecutor(grace_period=0.5, start_method="forkserver"), job)
    assert result.status == "timeout"
    with open(os.path.join(str(tmp_path / "hang"), "pids.json")) as f:
        pids = json.load(f)
    wait_until(lambda: not any(pid_alive(p) for p in pids.values()), what="the group to die")


def test_scheduler_shutdown_stops_the_server(fake_gpus: Any, tmp_path: Any) -> None:
    executor = LocalExecutor(start_method="forkserver")

    async def main() -> list[GPUJobResult]:
        async with GPUScheduler(simultaneous_jobs_per_gpu=2, executor=executor) as s:
            return list(
                await asyncio.gather(
                    *(s.run_job(RecordJob(str(tmp_path / f"j{i}"))) for i in range(6))
                )
            )

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    results = asyncio.run(main())
    assert all(r.success for r in results)
    assert {r.result["device"] for r in results} <= {"0", "1", "2", "3"}
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not [p for p in left if pid_alive(p)]


def test_a_dead_server_falls_back_to_spawn_and_loses_no_job(tmp_path: Any) -> None:
    executor = LocalExecutor(grace_period=1.0, start_method="forkserver")
    launcher: Any = executor.launcher

    async def main() -> tuple[GPUJobResult, GPUJobResult, GPUJobResult]:
        try:
            running = asyncio.ensure_future(
                executor.execute(RecordJob(str(tmp_path / "running"), duration=1.0), CPU_DEVICE)
            )
            while launcher._server is None or not launcher._server._workers:
                await asyncio.sleep(0.01)
            server_pid = launcher._server.popen.pid
            os.kill(server_pid, signal.SIGKILL)  # the job it forked keeps running, orphaned
            after = await executor.execute(RecordJob(str(tmp_path / "after")), CPU_DEVICE)
            failing = await executor.execute(FailJob(str(tmp_path / "f"), mode="exit3"), CPU_DEVICE)
            return await running, after, failing
        finally:
            await executor.aclose()

    running, after, failing = asyncio.run(main())
    assert running.success, running.error  # watched to its end, its result collected
    assert after.success and after.result["pid"] == after.pid
    # Spawned by the driver itself, not forked by a (new) server: the fallback is real.
    assert after.result["ppid"] == os.getpid()
    # Spawned, so the exit status is exact again.
    assert failing.status == "error" and failing.exit_code == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PYTHONWARNINGS", "ignore::UserWarning:runner_test"),  # the interpreter's
        ("LD_LIBRARY_PATH", "/nonexistent/runner-test"),  # the dynamic loader's (dlopen too)
        ("MALLOC_ARENA_MAX", "2"),  # glibc's allocator's
        ("LC_ALL", "C.UTF-8"),  # the locale, and so the interpreter's encodings
    ],
)
def test_changed_start_up_variables_spawn_instead(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    executor = LocalExecutor(start_method="forkserver")

    async def main() -> GPUJobResult:
        try:
            await executor.start()
            # Read only when a process starts: a forked child can't honour it.
            monkeypatch.setenv(name, value)
            return await executor.execute(
                Job(run_fn=_env_probe, config=None, base_dir=str(tmp_path / "j")), CPU_DEVICE
            )
        finally:
            await executor.aclose()

    result = asyncio.run(main())
    assert result.success
    assert result.result["ppid"] == os.getpid()  # spawned by the driver itself
    assert result.result["env"][name] == value


# A researcher's project: its own ``configs`` package (the name Runner's config library
# has too), its jobs in a module of its own.
PROJECT_FILES = {
    "configs/__init__.py": "WHOSE = 'the project'\n",
    "project_jobs.py": """
import gzip
import os
import sys
import time
import zipfile

LEFT_OPEN = []


def probe(_):
    import configs
    import here_module  # in the driver's working directory when the job started

    return {
        "configs": os.path.realpath(configs.__file__),
        "here_module": os.path.realpath(here_module.__file__),
        "tzname": list(time.tzname),
        "stdout": [sys.stdout.name, sys.stdout.encoding, sys.stdout.errors],
        "stderr": [sys.stderr.name, sys.stderr.encoding, sys.stderr.errors],
        "ppid": os.getppid(),
    }


def leave_archives_open(path):
    archive = gzip.open(path + ".gz", "wt")
    archive.write("hello\\n")
    bundle = zipfile.ZipFile(path + ".zip", "w")
    bundle.writestr("a.txt", "hello")
    LEFT_OPEN.extend([archive, bundle])  # never closed: the interpreter's exit finalises them
    return "returned"


def leave_a_file_open_beside_a_daemon(path):
    import threading

    def monitor():  # like a progress bar's monitor thread: reads module globals forever
        while True:
            time.sleep(0.001)
            assert gzip.open and LEFT_OPEN is not None

    threading.Thread(target=monitor, daemon=True).start()
    archive = gzip.open(path + ".gz", "wt")
    archive.write("hello\\n")
    LEFT_OPEN.append(archive)
    return "returned"
""",
}


def _fresh_interpreter_streams() -> list[list[str]]:
    """What a fresh interpreter's standard streams are, in this locale."""
    code = (
        "import json, sys; print(json.dumps([[s.name, s.encoding, s.errors] "
        "for s in (sys.stdout, sys.stderr)]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONIOENCODING"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("project_on_path", ["before the server starts", "after"])
@pytest.mark.parametrize("method", METHODS)
def test_a_job_sees_what_a_fresh_interpreter_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, project_on_path: str
) -> None:
    project = tmp_path / "project"
    for relative, text in PROJECT_FILES.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)
    later = tmp_path / "later"
    later.mkdir()
    (later / "here_module.py").write_text("")
    monkeypatch.delitem(sys.modules, "project_jobs", raising=False)
    if project_on_path == "before the server starts":
        monkeypatch.syspath_prepend(str(project))
    executor = LocalExecutor(start_method=method)  # type: ignore[arg-type]

    async def main() -> tuple[GPUJobResult, GPUJobResult, GPUJobResult]:
        try:
            await executor.start()  # the server starts before the driver's changes below
            if project_on_path == "after":
                monkeypatch.syspath_prepend(str(project))
            project_jobs = importlib.import_module("project_jobs")
            monkeypatch.setenv("TZ", "XYZ-5")
            monkeypatch.chdir(later)
            probe = await executor.execute(
                Job(run_fn=project_jobs.probe, config=None, base_dir=str(tmp_path / "probe")),
                CPU_DEVICE,
            )

            async def leave_open(run_fn: Any, name: str) -> GPUJobResult:
                job = Job(
                    run_fn=run_fn,
                    config=str(tmp_path / name),
                    base_dir=str(tmp_path / f"{name}_job"),
                )
                return await executor.execute(job, CPU_DEVICE)

            archives = await leave_open(project_jobs.leave_archives_open, "left")
            daemon = await leave_open(project_jobs.leave_a_file_open_beside_a_daemon, "beside")
            return probe, archives, daemon
        finally:
            await executor.aclose()

    probe, archives, daemon = asyncio.run(main())
    assert probe.success, probe.error
    seen = probe.result
    assert (seen["ppid"] == os.getpid()) == (method == "spawn")
    assert seen["configs"] == str((project / "configs" / "__init__.py").resolve())
    assert seen["here_module"] == str((later / "here_module.py").resolve())
    assert seen["tzname"] == ["XYZ", "XYZ"]
    assert [seen["stdout"], seen["stderr"]] == _fresh_interpreter_streams()
    assert archives.success and archives.result == "returned", archives.error
    with gzip.open(tmp_path / "left.gz", "rt") as f:
        assert f.read() == "hello\n"
    with zipfile.ZipFile(tmp_path / "left.zip") as z:
        assert z.read("a.txt") == b"hello"
    # A daemon thread still running at exit trips over nothing freed under it.
    assert daemon.success, daemon.error
    assert "Traceback" not in Path(daemon.out_file).read_text()
    if method == "forkserver":  # and the file is complete (CPython's own exit may lose it)
        with gzip.open(tmp_path / "beside.gz", "rt") as f:
            assert f.read() == "hello\n"


def test_exit_closes_files_held_past_the_modules_wrapper_first(tmp_path: Path) -> None:
    # Held by a module the job did not import (sys), so no module teardown frees it: the
    # exit closes the text wrapper, then the GzipFile (its trailer), then the file.
    path = str(tmp_path / "held.gz")
    code = (
        "import gzip, sys\n"
        "from runner._forkserver.child import ModulesMark, exit_child\n"
        f"sys.runner_test_held = gzip.open({path!r}, 'wt')\n"
        "sys.runner_test_held.write('hello\\n')\n"
        "exit_child(0, ModulesMark.now())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with gzip.open(path, "rt") as f:
        assert f.read() == "hello\n"


def _uses_multiprocessing(_: Any) -> bool:
    """Imports multiprocessing, as torch does: it aliases ``__main__`` as ``__mp_main__``."""
    import concurrent.futures  # noqa: F401
    import multiprocessing  # noqa: F401

    return sys.modules["__mp_main__"] is sys.modules["__main__"]


def _reads_a_pipe_in_a_daemon_thread(_: Any) -> str:
    """Returns while a daemon thread is blocked reading a still-running subprocess's output."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; print('line', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    first = threading.Event()

    def follow() -> None:
        for _line in proc.stdout:  # type: ignore[union-attr]
            first.set()

    threading.Thread(target=follow, daemon=True).start()
    first.wait()
    return "returned"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("job_fn", [_uses_multiprocessing, _reads_a_pipe_in_a_daemon_thread])
def test_what_ml_jobs_leave_behind_does_not_spoil_their_exit(
    tmp_path: Path, method: str, job_fn: Any
) -> None:
    # The timeout only bounds a regression (an exit that hangs); it never fires otherwise.
    job = Job(run_fn=job_fn, config=None, base_dir=str(tmp_path / "j"), timeout=60.0)
    result = _run(LocalExecutor(grace_period=1.0, start_method=method), job)  # type: ignore[arg-type]
    assert result.success, result.error
    assert result.exit_code == 0
    assert result.result in (True, "returned")


@pytest.mark.parametrize("daemon_thread", [False, True])
def test_exit_frees_the_jobs_modules_unless_a_daemon_thread_runs_on(
    tmp_path: Path, daemon_thread: bool
) -> None:
    # A module the job imported holds an object whose finaliser leaves a mark. The exit
    # frees the module (the finaliser runs), except beside a still running daemon thread,
    # which the interpreter would have stopped first and which must not meet freed globals.
    marker = str(tmp_path / "finalised")
    code = (
        "import sys, threading, types\n"
        "from runner._forkserver.child import ModulesMark, exit_child\n"
        "mark = ModulesMark.now()\n"
        "class Marks:\n"
        f"    def __del__(self): open({marker!r}, 'w').close()\n"
        "job_module = types.ModuleType('job_module')\n"
        "job_module.held = Marks()\n"
        "sys.modules['job_module'] = job_module\n"
        "del Marks, job_module\n"
        f"if {daemon_thread}:\n"
        "    threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "exit_child(0, mark)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert os.path.exists(marker) == (not daemon_thread)


def _wait_for_gate(gate: str) -> int:
    """Says it started (a file), then waits until the test opens the gate (another file)."""
    Path(gate + ".started").write_text("")
    while not os.path.exists(gate):
        time.sleep(0.01)
    return os.getpid()


def test_a_request_too_large_for_the_socket_is_spawned_and_harms_no_other_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = LocalExecutor(start_method="forkserver")
    gate = str(tmp_path / "gate")

    def probe(name: str) -> Job:
        return Job(run_fn=_env_probe, config=None, base_dir=str(tmp_path / name))

    async def main() -> tuple[GPUJobResult, GPUJobResult, GPUJobResult]:
        loop = asyncio.get_running_loop()
        try:
            waiting = asyncio.ensure_future(
                executor.execute(
                    Job(run_fn=_wait_for_gate, config=gate, base_dir=str(tmp_path / "w")),
                    CPU_DEVICE,
                )
            )
            await loop.run_in_executor(
                None, lambda: wait_until(lambda: os.path.exists(gate + ".started"))
            )
            # 300 kB of environment: more than a unix socket takes in one message.
            for i in range(3):
                monkeypatch.setenv(f"RUNNER_TEST_BULK_{i}", "x" * 100_000)
            big = await executor.execute(probe("big"), CPU_DEVICE)
            for i in range(3):
                monkeypatch.delenv(f"RUNNER_TEST_BULK_{i}")
            after = await executor.execute(probe("after"), CPU_DEVICE)
            Path(gate).write_text("")
            return await waiting, big, after
        finally:
            await executor.aclose()

    waiting, big, after = asyncio.run(main())
    assert big.success and big.result["ppid"] == os.getpid()  # spawned by the driver
    assert len(big.result["env"]["RUNNER_TEST_BULK_2"]) == 100_000
    assert waiting.success and waiting.result == waiting.pid  # the running job was untouched
    assert after.success and after.result["ppid"] != os.getpid()  # and the server still forks


KILLED_DRIVER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "scripts", "killed_driver.py"
)


def test_a_killed_driver_leaves_no_job_process_behind(tmp_path: Path) -> None:
    driver = subprocess.Popen(
        [sys.executable, KILLED_DRIVER, str(tmp_path)], start_new_session=True
    )
    pids: list[int] = []
    try:
        records = [tmp_path / name / "pids.json" for name in ("plain", "stubborn")]
        wait_until(lambda: all(r.exists() for r in records), what="both jobs to start")
        pids = [pid for r in records for pid in json.loads(r.read_text()).values()]
        pids += [c.pid for c in psutil.Process(driver.pid).children()]  # the fork server
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        # The server sees the hang-up: SIGTERM to each job's group, then SIGKILL to every
        # such group, even where the job itself died of SIGTERM and its grandchild did not.
        wait_until(lambda: not any(pid_alive(p) for p in pids), what="every job process to go")
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_start_method_is_validated_and_defaults_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="start_method"):
        LocalExecutor(start_method="fork")  # type: ignore[arg-type]
    monkeypatch.delenv("RUNNER_START_METHOD", raising=False)
    assert LocalExecutor().start_method == "forkserver"
    monkeypatch.setenv("RUNNER_START_METHOD", "spawn")
    assert LocalExecutor().start_method == "spawn"
    assert LocalExecutor(start_method="forkserver").start_method == "forkserver"
    monkeypatch.setenv("RUNNER_START_METHOD", "fork")
    with pytest.raises(ValueError, match="RUNNER_START_METHOD"):
        LocalExecutor()


# -- pre-forked children -------------------------------------------------------------------


def _meet(args: tuple[str, int, str]) -> int:
    """Wait until ``count`` jobs have reached this point (files in ``folder``): they overlap."""
    folder, count, name = args
    open(os.path.join(folder, name), "w").close()
    deadline = time.monotonic() + 20
    while len(os.listdir(folder)) < count and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting on files the other jobs write, not on time
    return os.getpid()


async def _burst_then_pool(executor: LocalExecutor, folder: str, count: int) -> set[int]:
    """Run ``count`` overlapping jobs, then wait for the server to pre-fork as many children.

    Returns the waiting children's pids (the server's only children once the burst is over).
    The burst's jobs may have taught the executor modules to preload: ``start`` waits
    for the warm server that then takes over, so the pool is the one the next jobs use.
    """
    os.makedirs(folder)
    await asyncio.gather(
        *(
            executor.execute(
                Job(run_fn=_meet, config=(folder, count, str(i)), base_dir=f"{folder}_{i}"),
                CPU_DEVICE,
            )
            for i in range(count)
        )
    )
    await executor.start()
    server = psutil.Process(executor.launcher._server.popen.pid)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while len(server.children()) < count:
        assert time.monotonic() < deadline, "the server never pre-forked its children"
        await asyncio.sleep(0.01)
    return {p.pid for p in server.children()}


def test_pre_forked_children_run_the_next_burst_with_the_same_isolation(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = LocalExecutor(start_method="forkserver")
    devices = [Device(cuda_id="0"), Device(cuda_id="GPU-abc"), Device(cuda_id="MIG-1")]

    async def main() -> tuple[set[int], list[GPUJobResult]]:
        try:
            waiting = await _burst_then_pool(executor, str(tmp_path / "meet"), len(devices))
            # Set after the children were forked: the job's launch, not the fork, decides.
            monkeypatch.setenv("RUNNER_TEST_MARKER", "later")
            monkeypatch.chdir(tmp_path)
            monkeypatch.syspath_prepend(str(tmp_path / "extra"))
            results = await asyncio.gather(
                *(
                    executor.execute(
                        Job(run_fn=_env_probe, config=None, base_dir=str(tmp_path / f"p{i}")),
                        device,
                    )
                    for i, device in enumerate(devices)
                )
            )
            return waiting, list(results)
        finally:
            await executor.aclose()

    waiting, results = asyncio.run(main())
    assert all(r.success for r in results), [r.error for r in results]
    pids = {r.result["pid"] for r in results}
    assert pids <= waiting and len(pids) == len(devices)  # one pre-forked child per job
    for result, device in zip(results, devices, strict=True):
        seen = result.result
        expected = dict(os.environ, CUDA_VISIBLE_DEVICES=device.cuda_id)
        expected.setdefault("PYTHONUNBUFFERED", "1")
        expected.update(thread_limits(os.environ, None))  # each job's share of the cores
        if "CUDA_VISIBLE_DEVICES" not in os.environ:
            expected.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        assert seen["env"] == expected
        assert seen["cwd"] == str(tmp_path)
        assert seen["sys_path"][: len(sys.path)] == sys.path
        assert seen["sid"] == seen["pid"] and seen["pgid"] == seen["pid"]
        assert not seen["torch_loaded"] and seen["argv0"] == "_worker.py"
        assert seen["fds"] == [0, 1, 2]  # nothing of the server's: no socket, no pipe
        log = open(result.out_file).read()
        assert log.startswith("===== runner: attempt 1 on device")
        assert "to stdout" in log and "to stderr" in log
    # The executor's shutdown took the unused children with the server.
    assert not [p for p in waiting - pids if pid_alive(p)]


def test_pre_forked_children_report_exits_and_signals_exactly(tmp_path: Any) -> None:
    executor = LocalExecutor(grace_period=1.0, start_method="forkserver")
    modes = [("exit3", "error", 3, None), ("segfault", "crashed", None, signal.SIGSEGV)]
    modes += [("sigkill", "crashed", None, signal.SIGKILL), ("raise", "error", 1, None)]

    async def main() -> tuple[set[int], list[GPUJobResult]]:
        try:
            waiting = await _burst_then_pool(executor, str(tmp_path / "meet"), len(modes))
            results = await asyncio.gather(
                *(
                    executor.execute(FailJob(str(tmp_path / mode), mode=mode), CPU_DEVICE)
                    for mode, *_ in modes
                )
            )
            return waiting, list(results)
        finally:
            await executor.aclose()

    waiting, results = asyncio.run(main())
    assert {r.pid for r in results} <= waiting
    for result, (mode, status, exit_code, sig) in zip(results, modes, strict=True):
        assert (result.status, result.exit_code, result.signal) == (status, exit_code, sig), mode


def test_pre_forked_children_exit_when_the_server_dies(tmp_path: Any) -> None:
    executor = LocalExecutor(start_method="forkserver")

    async def main() -> set[int]:
        try:
            waiting = await _burst_then_pool(executor, str(tmp_path / "meet"), 2)
            os.kill(executor.launcher._server.popen.pid, signal.SIGKILL)  # type: ignore[attr-defined]
            return waiting
        finally:
            await executor.aclose()

    waiting = asyncio.run(main())
    # Nothing kills them: the end of the server's socket is their signal to go.
    wait_until(lambda: not any(pid_alive(p) for p in waiting), what="the waiting children to exit")


def test_a_started_scheduler_has_a_child_waiting_per_slot(fake_gpus: Any, tmp_path: Any) -> None:
    executor = LocalExecutor(start_method="forkserver")

    async def main() -> tuple[set[int], list[GPUJobResult]]:
        async with GPUScheduler(simultaneous_jobs_per_gpu=2, executor=executor) as scheduler:
            await executor.start()  # ready means: imports done and one child per slot forked
            server = psutil.Process(executor.launcher._server.popen.pid)  # type: ignore[attr-defined]
            waiting = {p.pid for p in server.children()}
            assert len(waiting) == scheduler.num_slots == 8
            results = await asyncio.gather(
                *(scheduler.run_job(RecordJob(str(tmp_path / f"j{i}"))) for i in range(8))
            )
            return waiting, list(results)

    waiting, results = asyncio.run(main())
    assert all(r.success for r in results)
    assert {r.result["pid"] for r in results} == waiting  # the first jobs, too, found one
    assert not [p for p in waiting if pid_alive(p)]  # and the shutdown left none behind
