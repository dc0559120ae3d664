"""Warm starts (modules preloaded in the fork server) and CPU thread limits per job.

Real processes throughout: installed packages are faked by modules written into a
``site-packages`` folder put on ``sys.path``, which is all that makes a package
"installed" for the preload policy. No timing is asserted (benchmarks/ measures speed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from runner._forkserver import protocol
from runner._forkserver.preload import choose_preloads
from runner.devices import CPU_DEVICE, Device
from runner.executors.local import LocalExecutor, forkserver_available
from runner.jobs import Job
from runner.scheduler import GPUJobResult, GPUScheduler
from runner.thread_limits import THREAD_ENV, thread_limits, threads_per_job

pytestmark = pytest.mark.skipif(not forkserver_available(), reason="the fork server needs Linux")

#: The job's own module, in a project folder (not installed: never preloaded itself).
JOB_MODULE = '''
import os
import sys


def probe(name):
    """Whether ``name`` was imported before the job imported it, and what it saw."""
    already = name in sys.modules
    module = __import__(name)
    return {
        "already": already,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "omp_at_import": getattr(module, "OMP_AT_IMPORT", None),
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
    }


def draw(_):
    """An unseeded draw from numpy's global generator, as code that never seeds makes."""
    already = "numpy" in sys.modules
    import numpy

    return {"already": already, "draw": float(numpy.random.random())}
'''.replace("THREAD_ENV", repr(THREAD_ENV))

#: Installed packages: a harmless heavy one, and one of each way a preload goes wrong.
PACKAGES = {
    "heavy": "import os\nOMP_AT_IMPORT = os.environ.get('OMP_NUM_THREADS')\n",
    # A fake torch whose CUDA is initialised as soon as it is imported.
    "torch": (
        "class cuda:\n"
        "    @staticmethod\n"
        "    def is_initialized():\n"
        "        return True\n"
    ),
    # Starts a thread when imported (a monitor, a prefetcher).
    "threaded": (
        "import threading\n"
        "threading.Thread(target=threading.Event().wait, daemon=True, name='monitor').start()\n"
    ),
    # Fails where no GPU is visible, as the fork server (CUDA_VISIBLE_DEVICES='') is.
    "needs_gpu": (
        "import os\n"
        "if not os.environ.get('CUDA_VISIBLE_DEVICES'):\n"
        "    raise ImportError('needs_gpu: no GPU visible')\n"
    ),
    # Harmless itself, but pulls in a module known to break forks.
    "wraps_grpc": "import grpc\n",
    "grpc": "",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the job module, and a site-packages folder, both on sys.path."""
    site = tmp_path / "venv" / "lib" / "site-packages"
    for name, text in PACKAGES.items():
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(text)
    code = tmp_path / "project"
    code.mkdir()
    (code / "warm_jobs.py").write_text(JOB_MODULE)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(code))
    for name in ["warm_jobs", *PACKAGES]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def _probe_jobs(root: Path, name: str, count: int) -> list[Job]:
    import warm_jobs  # type: ignore[import-not-found]

    return [
        Job(run_fn=warm_jobs.probe, config=name, base_dir=str(root / "jobs" / f"{name}_{i}"))
        for i in range(count)
    ]


def _run_one_then_rest(
    executor: LocalExecutor, jobs: list[Job], device: Device = CPU_DEVICE
) -> list[GPUJobResult]:
    """Run the first job alone, wait for what it taught (start()), then the others."""

    async def main() -> list[GPUJobResult]:
        try:
            results = [await executor.execute(jobs[0], device)]
            await executor.start()  # a warm server being prepared is ready (or given up)
            results += [await executor.execute(job, device) for job in jobs[1:]]
            return results
        finally:
            await executor.aclose()

    return asyncio.run(main())


def test_the_first_job_teaches_what_later_jobs_find_imported(project: Path) -> None:
    executor = LocalExecutor(start_method="forkserver")
    first, *later = _run_one_then_rest(executor, _probe_jobs(project, "heavy", 3))
    assert first.success and all(r.success for r in later), [r.error for r in [first, *later]]
    assert not first.result["already"]  # cold: the job imported it itself
    for result in later:
        seen = result.result
        assert seen["already"]  # warm: the server had imported it
        assert seen["ppid"] != os.getpid()  # forked, not spawned
        # Imported with the job's thread limits already in force (OpenBLAS reads them then).
        assert seen["omp_at_import"] == seen["env"]["OMP_NUM_THREADS"]
    assert len({r.result["pid"] for r in later}) == len(later)  # still a process per job


def test_warm_jobs_draw_their_own_random_numbers(project: Path) -> None:
    # The server imported numpy (and seeded its global generator) once; each job forked
    # from it must still draw as a fresh interpreter would, not the server's sequence.
    import warm_jobs  # type: ignore[import-not-found]

    jobs = [
        Job(run_fn=warm_jobs.draw, config=None, base_dir=str(project / "jobs" / f"draw_{i}"))
        for i in range(4)
    ]
    first, *later = _run_one_then_rest(LocalExecutor(start_method="forkserver"), jobs)
    assert first.success and all(r.success for r in later), [r.error for r in [first, *later]]
    assert all(r.result["already"] for r in later)  # numpy was preloaded
    draws = [r.result["draw"] for r in [first, *later]]
    assert len(set(draws)) == len(draws), draws


def test_preload_false_keeps_every_start_cold(project: Path) -> None:
    executor = LocalExecutor(start_method="forkserver", preload=False)
    results = _run_one_then_rest(executor, _probe_jobs(project, "heavy", 2))
    assert all(r.success for r in results)
    assert [r.result["already"] for r in results] == [False, False]


def test_modules_named_up_front_are_preloaded_for_the_first_job(project: Path) -> None:
    executor = LocalExecutor(start_method="forkserver", preload=["heavy"])
    results = _run_one_then_rest(executor, _probe_jobs(project, "heavy", 2))
    assert all(r.success for r in results), [r.error for r in results]
    assert [r.result["already"] for r in results] == [True, True]


@pytest.mark.parametrize(
    ("package", "device", "why"),
    [
        ("torch", CPU_DEVICE, "torch initialised CUDA"),
        ("threaded", CPU_DEVICE, "started a thread (monitor)"),
        ("needs_gpu", Device(cuda_id="0"), "importing needs_gpu failed"),
        ("wraps_grpc", CPU_DEVICE, "grpc was imported"),
    ],
)
def test_an_unsafe_preload_falls_back_to_cold_starts_with_one_warning(
    project: Path, caplog: pytest.LogCaptureFixture, package: str, device: Device, why: str
) -> None:
    executor = LocalExecutor(start_method="forkserver")
    with caplog.at_level(logging.WARNING, logger="runner"):
        results = _run_one_then_rest(executor, _probe_jobs(project, package, 3), device)
    assert all(r.success for r in results), [r.error for r in results]
    # Cold, and still forked by the fork server the jobs started with.
    assert [r.result["already"] for r in results] == [False, False, False]
    assert all(r.result["ppid"] != os.getpid() for r in results)
    warnings = [r.getMessage() for r in caplog.records if "Warm starts are off" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert package in warnings[0] and why in warnings[0]
    assert executor.launcher.warm_modules == []  # type: ignore[attr-defined]


def test_a_job_whose_path_finds_another_copy_is_not_handed_the_preloaded_one(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the warm server preloaded heavy, the driver's path puts another heavy first:
    # the job must import that one, as a fresh interpreter would.
    other = project / "other"
    (other / "heavy").mkdir(parents=True)
    (other / "heavy" / "__init__.py").write_text("OMP_AT_IMPORT = 'the other copy'\n")
    executor = LocalExecutor(start_method="forkserver")
    jobs = _probe_jobs(project, "heavy", 2)

    async def main() -> list[GPUJobResult]:
        try:
            first = await executor.execute(jobs[0], CPU_DEVICE)
            await executor.start()
            assert executor.launcher.warm_modules == ["heavy"]  # type: ignore[attr-defined]
            monkeypatch.syspath_prepend(str(other))
            return [first, await executor.execute(jobs[1], CPU_DEVICE)]
        finally:
            await executor.aclose()

    first, moved = asyncio.run(main())
    assert moved.success, moved.error
    assert not moved.result["already"]
    assert moved.result["omp_at_import"] == "the other copy"


def test_preload_option_is_validated() -> None:
    with pytest.raises(ValueError, match="preload='numpy'"):
        LocalExecutor(preload="numpy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'numpy linalg' is not a module name"):
        LocalExecutor(preload=["numpy linalg"])
    assert LocalExecutor(preload=["numpy", "scipy.linalg"]).preload == ("numpy", "scipy.linalg")


def test_a_preload_list_that_cannot_apply_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runner"):
        LocalExecutor(start_method="spawn", preload=["numpy"])
        LocalExecutor(start_method="spawn")  # the default asks for nothing: no warning
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "preload=['numpy'] has no effect" in warnings[0]


def test_choose_preloads_keeps_installed_third_party_modules_only(tmp_path: Path) -> None:
    site = str(tmp_path / "lib" / "site-packages")
    report = {
        "modules": ["sklearn", "sklearn.svm", "sklearn._loss", "mine", "json", "jax", "runner"],
        "files": {
            "sklearn": f"{site}/sklearn/__init__.py",
            "mine": str(tmp_path / "project" / "mine.py"),
            "json": "/usr/lib/python3.11/json/__init__.py",
            "jax": f"{site}/jax/__init__.py",
            "runner": f"{site}/runner/__init__.py",
        },
    }
    assert choose_preloads(report) == ["sklearn", "sklearn.svm"]
    assert choose_preloads({"modules": "garbage"}, extra=("torch",)) == ["torch"]


# -- thread limits ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_each_job_gets_its_share_of_the_cores(
    project: Path, monkeypatch: pytest.MonkeyPatch, fake_gpus: Any, method: str
) -> None:
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    executor = LocalExecutor(start_method=method)  # type: ignore[arg-type]

    async def main() -> list[GPUJobResult]:
        async with GPUScheduler(simultaneous_jobs_per_gpu=2, executor=executor) as scheduler:
            assert scheduler.num_slots == 8
            return list(
                await asyncio.gather(*(scheduler.run_job(j) for j in _probe_jobs(project, "heavy", 2)))
            )

    results = asyncio.run(main())
    assert all(r.success for r in results), [r.error for r in results]
    share = str(threads_per_job(8))
    for result in results:
        assert result.result["env"] == dict.fromkeys(THREAD_ENV, share)


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_thread_variables_the_user_set_are_left_alone(
    project: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    executor = LocalExecutor(start_method=method)  # type: ignore[arg-type]
    results = _run_one_then_rest(executor, _probe_jobs(project, "heavy", 2))
    assert all(r.success for r in results), [r.error for r in results]
    for result in results:
        expected = dict.fromkeys(THREAD_ENV, None) | {"OMP_NUM_THREADS": "3"}
        assert result.result["env"] == expected
    assert "OMP_NUM_THREADS" not in thread_limits({"OMP_NUM_THREADS": "3"}, 2)


def test_threads_per_job_is_the_share_of_cores_and_at_least_one() -> None:
    assert threads_per_job(4, cores=16) == 4
    assert threads_per_job(3, cores=16) == 5
    assert threads_per_job(16, cores=2) == 1
    assert threads_per_job(None, cores=6) == 6


# -- protocol --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        protocol.Fork(id=1, job_dir="/j", cwd="/", env={"A": "b"}),
        protocol.Pool(id=2, size=8),
        protocol.Ping(id=3),
        protocol.Preload(id=4, modules=["numpy", "scipy.linalg"]),
        protocol.Pong(id=3),
        protocol.Started(id=1, pid=123),
        protocol.ForkFailed(id=1, error="fork failed"),
        protocol.Exited(pid=123, rc=-9),
        protocol.Preloaded(id=4, modules=["numpy"], problem=None),
    ],
)
def test_every_message_survives_the_wire(message: protocol.Message) -> None:
    assert protocol.decode(protocol.encode(message)) == message


@pytest.mark.parametrize("data", [b"", b"[1]", b'{"id": 1}', b'{"type": "nope"}', b'{"type": "ping"}'])
def test_what_is_not_a_message_is_refused_by_name(data: bytes) -> None:
    with pytest.raises(protocol.ProtocolError, match="not a fork server message"):
        protocol.decode(data)
