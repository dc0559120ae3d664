"""The job folder: atomic writes, job.json, and what resume may trust."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import socket
import threading
from typing import Any

import cloudpickle
import pytest
from sched_jobs import RecordJob

from runner.devices import Device
from runner.executors.local import LocalExecutor
from runner.job_folder import (
    atomic_write_bytes,
    atomic_write_json,
    error_summary,
    read_job_json,
    result_summary,
)
from runner.job_record import SCHEMA_VERSION, JobRecord, JobState, job_config_hash
from runner.jobs import Job, config_hash
from runner.resume import has_finished_result, load_finished_result


def _square(config: dict[str, int]) -> int:
    return config["x"] ** 2


def _finished_folder(job: Job, *, status: str = "ok", value: Any = 42) -> None:
    os.makedirs(job.base_dir, exist_ok=True)
    record = JobRecord.for_job(job, attempt=2)
    record.move_to(JobState.RUNNING, gpu_id=1, device="1", start_time=10.0, host="h", pid=7)
    record.move_to(JobState(status), end_time=12.5, exit_code=0)
    record.write(job.base_dir)
    atomic_write_bytes(os.path.join(job.base_dir, "result.pkl"), cloudpickle.dumps(("ok", value)))


def test_atomic_write_replaces_whole_and_leaves_no_temp_file(tmp_path: Any) -> None:
    path = str(tmp_path / "f.json")
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.load(open(path)) == {"a": 2}
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]  # fails mid-write
    assert json.load(open(path)) == {"a": 2}  # the old file survives intact
    assert os.listdir(tmp_path) == ["f.json"]


def test_atomic_write_overwrites_a_dead_writers_leftover_and_honours_the_umask(
    tmp_path: Any,
) -> None:
    path = str(tmp_path / "result.pkl")
    # What a writer killed mid-write leaves, under the name this process and thread use
    # (pids are recycled): it must not block the write, nor survive it.
    writer = f"{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}"
    leftover = tmp_path / f".result.pkl.{writer}.tmp"
    leftover.write_bytes(b"half a pickle from a dead process")
    old_umask = os.umask(0o027)
    try:
        atomic_write_bytes(path, b"whole")
    finally:
        os.umask(old_umask)
    assert open(path, "rb").read() == b"whole"
    assert os.listdir(tmp_path) == ["result.pkl"]
    assert os.stat(path).st_mode & 0o777 == 0o640  # 0o666 less the umask, like open()


def test_job_json_of_a_real_run_has_everything_a_status_table_needs(tmp_path: Any) -> None:
    job = Job(
        run_fn=_square, config={"x": 7}, base_dir=str(tmp_path / "j"), point={"x": 7}, timeout=30
    )
    result = asyncio.run(LocalExecutor().execute(job, Device("GPU-abc")))
    assert result.success and result.result == 49
    record = read_job_json(job.base_dir)
    assert record is not None
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["status"] == "ok" and record["job_type"] == "runner.jobs.Job"
    assert record["config"] == {"x": 7} and record["config_hash"] == config_hash({"x": 7})
    assert record["point"] == {"x": 7} and record["timeout"] == 30
    assert record["device"] == "GPU-abc" and record["gpu_id"] == "GPU-abc"
    assert record["pid"] == result.pid and record["host"] == result.host
    assert record["exit_code"] == 0 and record["signal"] is None and record["attempt"] == 1
    assert record["end_time"] - record["start_time"] == pytest.approx(record["duration"])
    assert record["result_summary"] == 49 and record["error_summary"] is None
    assert record["out_file"] == job.get_out_file() and record["runner_version"]


def test_load_finished_result_reuses_an_ok_folder_with_the_same_config(tmp_path: Any) -> None:
    job = Job(run_fn=_square, config={"x": 3}, base_dir=str(tmp_path / "j"))
    _finished_folder(job, value={"acc": 0.9})
    fresh = Job(run_fn=_square, config={"x": 3}, base_dir=str(tmp_path / "j"))
    r = load_finished_result(fresh)
    assert r is not None
    assert (r.success, r.reused, r.status, r.result, r.job) == (
        True,
        True,
        "ok",
        {"acc": 0.9},
        fresh,
    )
    assert (r.gpu_id, r.duration, r.start_time, r.end_time, r.attempts) == (1, 2.5, 10.0, 12.5, 2)
    assert pickle.loads(pickle.dumps(r)).result == {
        "acc": 0.9
    }  # results are pickled by the searches


def test_load_finished_result_after_a_real_run(tmp_path: Any) -> None:
    job = Job(run_fn=_square, config={"x": 5}, base_dir=str(tmp_path / "j"))
    asyncio.run(LocalExecutor().execute(job, Device("0")))
    r = load_finished_result(job)
    assert r is not None and r.result == 25 and r.reused and r.gpu_id == 0


@pytest.mark.parametrize(
    "damage",
    [
        "changed_config",
        "status_error",
        "missing_result",
        "corrupt_result",
        "truncated_result",
        "corrupt_json",
        "half_json",
        "error_result",
        "missing_folder",
        "no_config",
    ],
)
def test_load_finished_result_distrusts_anything_else(tmp_path: Any, damage: str) -> None:
    job = Job(run_fn=_square, config={"x": 3}, base_dir=str(tmp_path / "j"))
    _finished_folder(job, status="error" if damage == "status_error" else "ok")
    result_pkl = os.path.join(job.base_dir, "result.pkl")
    job_json = os.path.join(job.base_dir, "job.json")
    if damage == "changed_config":
        job = Job(run_fn=_square, config={"x": 4}, base_dir=job.base_dir)
    elif damage == "missing_result":
        os.unlink(result_pkl)
    elif damage == "corrupt_result":
        open(result_pkl, "wb").write(b"not a pickle")
    elif damage == "truncated_result":
        data = open(result_pkl, "rb").read()
        open(result_pkl, "wb").write(data[: len(data) // 2])
    elif damage == "corrupt_json":
        open(job_json, "w").write("[1, 2]")
    elif damage == "half_json":
        text = open(job_json).read()
        open(job_json, "w").write(text[: len(text) // 2])
    elif damage == "error_result":
        atomic_write_bytes(result_pkl, cloudpickle.dumps(("error", "Traceback ...")))
    elif damage == "missing_folder":
        job = Job(run_fn=_square, config={"x": 3}, base_dir=str(tmp_path / "elsewhere"))
    elif damage == "no_config":
        plain = RecordJob(job.base_dir)  # has a `config` field: drop it to get a config-less job
        del plain.config
        assert job_config_hash(plain) is None
        assert load_finished_result(plain) is None
        assert not has_finished_result(plain)
        return
    assert load_finished_result(job) is None
    # The cheap check used for counting reads job.json only: it can't see a bad result.pkl.
    unpickled_only = ("corrupt_result", "truncated_result", "error_result")
    assert has_finished_result(job) is (damage in unpickled_only)


class _OwnIdentityJob(Job):
    """A job that says itself what makes two runs the same (here: only ``x``)."""

    def config_hash(self) -> str:
        return f"x={self.config['x']}"


def test_a_job_defining_config_hash_is_resumed_by_it(tmp_path: Any) -> None:
    job = _OwnIdentityJob(run_fn=_square, config={"x": 3, "noise": 1}, base_dir=str(tmp_path / "j"))
    asyncio.run(LocalExecutor().execute(job, Device("0")))
    assert read_job_json(job.base_dir)["config_hash"] == "x=3"
    same = _OwnIdentityJob(run_fn=_square, config={"x": 3, "noise": 2}, base_dir=job.base_dir)
    r = load_finished_result(same)
    assert r is not None and r.result == 9 and has_finished_result(same)


def test_read_job_json_never_raises(tmp_path: Any) -> None:
    assert read_job_json(str(tmp_path / "missing")) is None
    (tmp_path / "job.json").write_text("{not json")
    assert read_job_json(str(tmp_path)) is None


def test_result_and_error_summaries() -> None:
    np = pytest.importorskip("numpy")
    assert result_summary(np.float64(0.25)) == 0.25
    assert result_summary({"acc": 0.9, "n": 3}) == {"acc": 0.9, "n": 3}
    assert result_summary([1, 2.5, "a"]) == [1, 2.5, "a"]
    assert result_summary(float("nan")) == "nan"
    long = result_summary(list(range(1000)))
    assert isinstance(long, str) and len(long) == 200
    # A dict keeps its numbers, numpy's included, whatever else it holds.
    assert result_summary({"nested": {"a": 1}, "n": 2}) == {"nested": "{'a': 1}", "n": 2}
    mixed = result_summary(
        {"acc": np.float32(0.5), "ok": np.bool_(True), "loss": float("nan"), "hist": np.arange(3)}
    )
    assert mixed == {"acc": 0.5, "ok": True, "loss": "nan", "hist": "array([0, 1, 2])"}
    assert result_summary([np.int64(3), float("inf")]) == [3, "inf"]

    class Lazy:  # a tensor-like whose probing raises: the summary never does
        @property
        def shape(self):
            raise RuntimeError("not materialised")

        def item(self):
            raise RuntimeError("not materialised")

        def __repr__(self):
            return "Lazy()"

    assert result_summary({"acc": 0.9, "t": Lazy()}) == {"acc": 0.9, "t": "Lazy()"}
    assert result_summary([1.0, Lazy()]) == "[1.0, Lazy()]"
    json.dumps([result_summary(v) for v in (None, True, object(), np.arange(3))])
    assert error_summary("Traceback:\n  line\nValueError: bad\n\n") == "ValueError: bad"
    assert error_summary(None) is None
