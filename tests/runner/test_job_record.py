"""The typed job record and the attempt lifecycle: checked transitions, what job.json says
while a job is queued, running and ended, the cause in one line, and a full disk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from runner.devices import CPU_DEVICE
from runner.executors.local import LocalExecutor
from runner.job_record import (
    SCHEMA_VERSION,
    InvalidTransitionError,
    JobRecord,
    JobState,
    read_record_or_reason,
)
from runner.job_result import GPUJobResult
from runner.jobs import Job
from runner.resume import check_reusable

LOG = "experiment_output.log"


def _run(job: Any, timeout: float | None = None) -> GPUJobResult:
    if timeout is not None:
        job.timeout = timeout
    return asyncio.run(LocalExecutor(grace_period=0.5).execute(job, CPU_DEVICE))


# -- the record itself ---------------------------------------------------------------


def test_every_transition_is_checked() -> None:
    allowed = {
        JobState.QUEUED: {JobState.RUNNING, JobState.ERROR, JobState.CANCELLED},
        JobState.RUNNING: {
            JobState.OK,
            JobState.ERROR,
            JobState.CRASHED,
            JobState.TIMEOUT,
            JobState.CANCELLED,
        },
    }
    for start in JobState:
        for end in JobState:
            record = JobRecord(status=start, out_file="/x/log")
            if end in allowed.get(start, set()):
                record.move_to(end)
                assert record.status is end
            else:
                with pytest.raises(InvalidTransitionError, match=f"'{start.value}' -> '{end.value}'"):
                    record.move_to(end)


def test_success_is_derived_from_the_status_and_times_from_the_moves() -> None:
    record = JobRecord(out_file="/x/log")
    record.move_to(JobState.RUNNING, start_time=100.0, pid=12, host="h", device="2", gpu_id=2)
    record.move_to(JobState.OK, end_time=103.0, result_summary=0.5)
    result = record.to_result(job=None, result=0.5)
    assert (result.success, result.status, result.duration, result.gpu_id) == (True, "ok", 3.0, 2)
    crashed = JobRecord(out_file="/x/log")
    crashed.move_to(JobState.RUNNING)
    crashed.move_to(JobState.CRASHED, error_summary="killed by SIGSEGV (11)")
    failed = crashed.to_result(job=None, result="ignored")
    assert not failed.success and failed.result is None
    assert failed.error == "killed by SIGSEGV (11)" and failed.status == "crashed"
    with pytest.raises(TypeError, match="no field 'colour'"):
        JobRecord().move_to(JobState.RUNNING, colour="red")


def test_job_json_round_trips_and_old_records_still_read(tmp_path: Any) -> None:
    job = Job(run_fn=len, config={"lr": 0.1}, base_dir=str(tmp_path), point={"lr": 0.1})
    record = JobRecord.for_job(job, attempt=2)
    record.write(str(tmp_path))
    data = json.loads((tmp_path / "job.json").read_text())
    assert list(data)[:2] == ["schema_version", "status"]
    assert data["schema_version"] == SCHEMA_VERSION and data["status"] == "queued"
    assert JobRecord.read(str(tmp_path)) == record
    # A release-1 record (no "queued" state, no schema 2) reads the same.
    old = dict(data, schema_version=1, status="ok", some_future_key=1)
    (tmp_path / "job.json").write_text(json.dumps(old))
    assert JobRecord.read(str(tmp_path)).status is JobState.OK  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "unreadable job.json"),
        ('{"status": "exploded"}', "unknown status 'exploded'"),
        ('{"status": "ok", "schema_version": 99}', "schema_version 99"),
        ("[1, 2]", "not an object"),
    ],
)
def test_a_damaged_record_is_none_with_the_reason(tmp_path: Any, content: str, why: str) -> None:
    (tmp_path / "job.json").write_text(content)
    record, reason = read_record_or_reason(str(tmp_path))
    assert record is None and why in reason
    assert read_record_or_reason(str(tmp_path / "absent")) == (None, "missing")


# -- the lifecycle on disk -----------------------------------------------------------


@dataclass
class SeeOwnRecordJob:
    """Returns the status its own job.json says while it runs, waiting for the driver's write."""

    base_dir: str

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> tuple[str, int | None, int]:
        path = os.path.join(self.base_dir, "job.json")
        deadline = time.monotonic() + 30
        while True:  # the driver records "running" right after the start; wait for that file
            try:
                with open(path) as f:
                    data = json.load(f)
            except FileNotFoundError:  # not written yet: a local job's first record is this
                data = {"status": "queued", "pid": None}
            if data["status"] != "queued" or time.monotonic() > deadline:
                return data["status"], data["pid"], os.getpid()
            time.sleep(0.01)


def test_an_attempt_is_queued_then_running_then_ended_on_disk(tmp_path: Any) -> None:
    from runner.executors._remote import RemoteAttempt

    # A cluster job may wait in the cluster's queue: its folder says so.
    attempt = RemoteAttempt(SeeOwnRecordJob(str(tmp_path / "a")))
    assert attempt.prepare() is None
    assert JobRecord.read(attempt.job_dir).status is JobState.QUEUED  # type: ignore[union-attr]
    result = _run(SeeOwnRecordJob(str(tmp_path / "b")))
    assert result.success, result.error
    status_seen, pid_seen, own_pid = result.result
    assert (status_seen, pid_seen) == ("running", own_pid)  # the job's own process
    final = JobRecord.read(str(tmp_path / "b"))
    assert final is not None and final.status is JobState.OK and final.pid == own_pid
    assert final.duration is not None and final.end_time is not None


@dataclass
class EndJob:
    base_dir: str
    how: str
    timeout: float | None = None

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> None:
        import ctypes
        import sys

        print("===== a line that looks like the runner's header", flush=True)
        print("the job's last words", flush=True)
        if self.how == "exit3":
            sys.exit(3)
        if self.how == "segfault":
            ctypes.string_at(0)
        if self.how == "hang":
            time.sleep(60)  # the job's work: killed at its timeout
        if self.how == "raise":
            raise ValueError("learning rate must be positive, got -1")


@pytest.mark.parametrize(
    ("how", "status", "summary"),
    [
        ("exit3", "error", "exited with code 3"),
        ("segfault", "crashed", "killed by SIGSEGV (11)"),
        ("hang", "timeout", "timed out after 0.5 s"),
        ("raise", "error", "ValueError: learning rate must be positive, got -1"),
    ],
)
def test_the_error_summary_is_the_cause_not_the_logs_last_line(
    tmp_path: Any, how: str, status: str, summary: str
) -> None:
    result = _run(EndJob(str(tmp_path), how), timeout=0.5 if how == "hang" else None)
    record = JobRecord.read(str(tmp_path))
    assert record is not None and result.status == status == record.status.value
    assert record.error_summary is not None and record.error_summary.startswith(summary)
    assert "last words" not in record.error_summary


# -- a full disk ---------------------------------------------------------------------


@contextlib.contextmanager
def _tiny_tmpfs(path: Any, size: str) -> Iterator[str]:
    os.makedirs(path, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@dataclass
class FillDiskJob:
    """Fills its folder's disk to the last byte, then returns a value it can't store."""

    base_dir: str
    fill: bool = True

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, LOG)

    def run(self) -> bytes:
        if not self.fill:
            return b"x" * 100_000
        with open(os.path.join(self.base_dir, "..", "ballast"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
            except OSError:
                pass
        return b"x" * 100_000


def test_a_full_disk_fails_the_job_as_data_and_leaves_no_record_running(tmp_path: Any) -> None:
    with _tiny_tmpfs(tmp_path / "disk", "256k") as disk:
        job = FillDiskJob(os.path.join(disk, "job"))
        result = _run(job)
        assert not result.success and result.status in ("error", "crashed")
        record = JobRecord.read(job.base_dir)
        assert record is not None and record.finished, record  # never left "running"
        assert not check_reusable(job).result  # a resume reruns it ...
        os.unlink(os.path.join(disk, "ballast"))  # ... once space is freed, and then it works
        rerun = _run(FillDiskJob(job.base_dir, fill=False))
        assert rerun.success and rerun.result == b"x" * 100_000, rerun.error


def test_a_read_only_folder_fails_the_job_before_it_starts(tmp_path: Any) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], check=False)
    try:
        if os.access(folder, os.W_OK) and not _is_read_only_mount(str(folder)):
            pytest.skip("cannot make a read-only bind mount here")
        result = _run(Job(run_fn=len, config=[1], base_dir=str(folder / "job")))
    finally:
        subprocess.run(["umount", str(folder)], check=False)
    assert not result.success and result.status == "error"
    assert "Read-only file system" in (result.error or "") and "job folder" in (result.error or "")


def _is_read_only_mount(path: str) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def test_a_job_still_running_elsewhere_is_not_started_twice(tmp_path: Any) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    # Another process runs this job (an earlier driver's cluster job that outlived it).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from runner.job_lock import open_job_log; "
            f"open_job_log({str(job_dir / 'experiment_output.log')!r}); "
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        ledger = tmp_path / "ran"
        job = Job(run_fn=_touch, config=str(ledger), base_dir=str(job_dir))
        refused = _run(job)
        assert not refused.success and "still running in another process" in (refused.error or "")
        assert "still running in another process" in (refused.error or "") and not ledger.exists()
    finally:
        holder.communicate("")  # its end releases the lock
    assert _run(job).success and ledger.exists()


def _touch(path: str) -> None:
    open(path, "w").close()
