"""`runner status` reads a search's index instead of every job folder, and gives the same rows;
without the index (or with a stale one) it reads the folders."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from configs import pydraclass
from runner.configs.search_configs import GridSearchConfig
from runner.grid_search import run_grid_searches
from runner.report import job_rows, search_rows
from runner.search_index import index_path


def _value(config: dict[str, int]) -> int:
    if config["i"] == 2:
        raise ValueError("two is right out")
    return config["i"] * 10


@pydraclass
class IndexGrid(GridSearchConfig):
    def get_experiment_config_and_base_dir(self, i: int):  # type: ignore[override]
        return {"i": i}, f"{self.base_dir}/i={i}"

    def run_experiment_config(self, config: dict[str, int]) -> int:
        return _value(config)

    def agg_results(self, results: list[Any]) -> int:
        return sum(r.success for r in results)


def _rows(root: str) -> list[tuple[Any, ...]]:
    return [(r.folder, r.status, r.device, r.detail, r.point) for r in job_rows(root)]


def test_status_rows_from_the_index_equal_those_from_the_folders(tmp_path: Any) -> None:
    base = str(tmp_path / "grid")
    grid = IndexGrid(base_dir=base, sweep_props={"i": [1, 2, 3]}, base_experiment_config={})
    assert run_grid_searches([grid], max_gpus=0, cpu_slots=2, progress=False) == [2]
    with open(index_path(base)) as f:
        lines = [json.loads(line) for line in f]
    # Compacted: the run's stamp, the summary but its per-job lines (and that file's
    # version), then one line with every job's row.
    assert list(lines[0]) == ["started"] and len(lines) == 3 and len(lines[2]["rows"]) == 3
    assert "jobs" not in lines[1]["summary"] and lines[1]["summary"]["status"] == "done"
    assert {row["status"] for row in lines[2]["rows"]} == {"ok", "error"}
    from_index = _rows(str(tmp_path))
    assert [r[1] for r in from_index] == ["ok", "error", "ok"]
    assert "ValueError: two is right out" in from_index[1][3]
    os.unlink(index_path(base))
    assert _rows(str(tmp_path)) == from_index
    assert [s.jobs for s in search_rows(str(tmp_path))] == ["3/3 (1 failed)"]


def test_an_index_older_than_its_search_is_ignored(tmp_path: Any) -> None:
    base = str(tmp_path / "grid")
    grid = IndexGrid(base_dir=base, sweep_props={"i": [1]}, base_experiment_config={})
    run_grid_searches([grid], max_gpus=0, cpu_slots=1, progress=False)
    with open(index_path(base), "w") as f:  # a leftover claiming a job that is not there
        f.write(json.dumps({"dir": "i=99", "status": "ok", "result_summary": 1}) + "\n")
    past = time.time() - 3600
    os.utime(index_path(base), (past, past))
    assert [os.path.basename(r[0]) for r in _rows(str(tmp_path))] == ["i=1"]


def test_a_queued_job_is_neither_done_nor_failed(tmp_path: Any) -> None:
    from runner.job_record import JobRecord
    from runner.jobs import Job

    for name, status in (("a", "queued"), ("b", "ok")):
        job = Job(run_fn=len, config=[name], base_dir=str(tmp_path / "s" / name))
        os.makedirs(job.base_dir)
        record = JobRecord.for_job(job)
        if status == "ok":
            record.move_to("running", start_time=time.time(), pid=1, host="elsewhere")
            record.move_to("ok")
        record.write(job.base_dir)
    (tmp_path / "s" / "summary.json").write_text(
        json.dumps({"kind": "grid_search", "status": "running", "num_jobs": 2, "started": 0})
    )
    rows = {os.path.basename(r.folder): r for r in job_rows(str(tmp_path))}
    assert rows["a"].status == "queued" and not rows["a"].failed
    [search] = search_rows(str(tmp_path))
    assert search.jobs.startswith("1/2")


@pydraclass
class NestedGrid(IndexGrid):
    def get_experiment_config_and_base_dir(self, i: int):  # type: ignore[override]
        return {"i": i}, f"{self.base_dir}/lr_0.1/i={i}"  # two levels below the search


def test_nested_job_folders_are_listed_once(tmp_path: Any) -> None:
    base = str(tmp_path / "grid")
    grid = NestedGrid(base_dir=base, sweep_props={"i": [1, 3]}, base_experiment_config={})
    run_grid_searches([grid], max_gpus=0, cpu_slots=1, progress=False)
    assert sorted(os.path.basename(r[0]) for r in _rows(str(tmp_path))) == ["i=1", "i=3"]


def test_a_cancelled_search_shows_its_jobs_as_their_folders_say(tmp_path: Any) -> None:
    """Jobs cancelled with their search are journaled as queued only: their folder wins."""
    from runner.job_record import JobRecord
    from runner.jobs import Job
    from runner.search_index import SearchIndex

    base = tmp_path / "s"
    job = Job(run_fn=len, config=[1], base_dir=str(base / "j"))
    os.makedirs(job.base_dir)
    index = SearchIndex(str(base))
    index.begin(123.0)
    index.queued([job])
    index.close(compact=False)
    record = JobRecord.for_job(job)
    record.move_to("cancelled")
    record.write(job.base_dir)
    (base / "summary.json").write_text(json.dumps({"status": "cancelled", "started": 123.0}))
    assert [r[1] for r in _rows(str(tmp_path))] == ["cancelled"]
    (base / "summary.json").write_text(json.dumps({"status": "running", "started": 456.0}))
    # A summary of another run than the index's: the index is stale, the folders are read.
    assert [r[1] for r in _rows(str(tmp_path))] == ["cancelled"]
