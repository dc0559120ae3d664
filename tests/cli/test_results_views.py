"""Results, not just jobs: a real ``runner grid`` with ranges, seeds and a failed job, then
what ``status``, ``logs`` and ``show`` make of it; ``bisect`` without ``--precision``; the
warning when a rerun would repeat finished jobs, in the words of the front end used."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import cli_env, run_cli

SCRIPT = textwrap.dedent(
    """
    from configs import pydraclass


    @pydraclass
    class Cfg:
        width: int = 4
        seed: int = 0
        lr: float = 0.1
        name: str = "run"
        base_dir: str | None = None


    def train(config: Cfg) -> dict:
        print(f"training width={config.width} seed={config.seed}", flush=True)
        if (config.width, config.seed) == (8, 1):
            raise ValueError("loss is nan at width=8 seed=1")
        acc = config.width / (config.width + 10) + 0.01 * config.seed
        return {"acc": acc, "loss": 1 - acc, "name": config.name}
    """
)
WIDTHS, SEEDS = [4, 8, 12, 16], [0, 1, 2]


def _acc(width: int, seed: int) -> float:
    return width / (width + 10) + 0.01 * seed


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("views")
    (root / "fit.py").write_text(SCRIPT)
    target = f"{root / 'fit.py'}:train"
    args = ["grid", target, "width=range(4,20,4)", "seed=0:2", "name=12:30"]
    args += ["--gpus", "0", "--cpu-slots", "2", "--base-dir", "g"]
    result = run_cli(args, cwd=root)
    return {"root": root, "result": result, "target": target, "args": args}


def test_grid_ranges_sweep_the_values_they_say(grid: dict) -> None:
    result = grid["result"]
    assert result.returncode == 1, result.stderr  # one job failed
    folders = sorted(os.listdir(grid["root"] / "g"))
    for width in WIDTHS:  # range(4,20,4): Python's, end excluded
        for seed in SEEDS:  # 0:2: both ends included
            assert f"width={width},seed={seed}" in folders
    record = json.loads((grid["root"] / "g" / "width=4,seed=0" / "job.json").read_text())
    assert record["result_summary"]["name"] == "12:30"  # a text field's value is no range


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("width=1:1.5", "whole numbers lo:hi"),
        ("width=5:1:1", "empty range"),
        ("width=range(1,x)", "range() takes whole numbers"),
    ],
)
def test_a_bad_range_exits_2_naming_it(grid: dict, token: str, message: str) -> None:
    result = run_cli(["grid", grid["target"], token, "--base-dir", "bad"], cwd=grid["root"])
    assert result.returncode == 2
    assert message in result.stderr and token.split("=", 1)[1] in result.stderr


def test_grid_ends_with_the_mean_per_point_where_results_are_and_the_first_failure(
    grid: dict,
) -> None:
    out = grid["result"].stdout
    assert "acc mean +- std per point over seed, * highest" in out
    best = next(line for line in out.splitlines() if "*" in line and line.startswith("│ 16"))
    mean = sum(_acc(16, s) for s in SEEDS) / 3
    assert f"{mean:.4g} +- 0.01" in best
    tail = out.splitlines()[-5:]
    assert tail == [
        "runner grid g: results in g",
        "  runner status g   (a table per search; a grid's mean +- std per point)",
        "  runner plot g     (PNG plots)",
        "  first failure: width=8 seed=1: ValueError: loss is nan at width=8 seed=1",
        f"    log: {os.path.join('g', 'width=8,seed=1', 'experiment_output.log')}",
    ]
    # The display leaves the end message to the command (it prints it under its tables).
    assert "results in" not in grid["result"].stderr.replace("runner grid: results in", "")
    err = grid["result"].stderr.splitlines()  # not a terminal: plain lines, none twice
    assert any(line.startswith("[runner] grid g: done, 12/12 done") for line in err)
    assert len(set(err)) == len(err)


def test_status_sorts_numerically_and_summarises_the_grid_per_point(grid: dict) -> None:
    result = run_cli(["status", "g"], cwd=grid["root"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    jobs = [line.split("│")[1].strip() for line in out.splitlines() if "│ width=" in line]
    assert jobs == [f"width={w},seed={s}" for w in WIDTHS for s in SEEDS]  # 4, 8, 12, 16
    assert "best width=16: acc" in out and "4 point(s)" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│ ")}
    assert "*" in rows["16"] and "*" not in rows["12"]
    assert rows["8"].split("│")[3].strip() == "2" and rows["8"].split("│")[4].strip() == "1"


def test_status_filters(grid: dict) -> None:
    failed = json.loads(run_cli(["status", "g", "--failed", "--json"], cwd=grid["root"]).stdout)
    assert [j["point"] for j in failed["jobs"]] == [{"width": 8, "seed": 1}]
    some = json.loads(run_cli(["status", "g", "width=8", "--json"], cwd=grid["root"]).stdout)
    assert [j["point"]["seed"] for j in some["jobs"]] == SEEDS
    one = json.loads(
        run_cli(["status", ".", "seed=2", "width=12", "--json"], cwd=grid["root"]).stdout
    )
    assert [j["point"] for j in one["jobs"]] == [{"width": 12, "seed": 2}]
    named = json.loads(run_cli(["status", ".", "--search", "g", "--json"], cwd=grid["root"]).stdout)
    assert len(named["jobs"]) == 12 and named["searches"][0]["points"]["over"] == ["seed"]
    missing = run_cli(["status", ".", "--search", "nope"], cwd=grid["root"])
    assert missing.returncode == 2 and "matches no search" in missing.stderr
    assert "(searches: g)" in missing.stderr


def test_status_best_point_by_a_metric_to_minimise(grid: dict) -> None:
    result = run_cli(
        ["status", "g", "--metric", "loss", "--lower-is-better", "--json"], cwd=grid["root"]
    )
    [search] = json.loads(result.stdout)["searches"]
    best = [p for p in search["points"]["points"] if p["best"]]
    assert [p["point"] for p in best] == [{"width": 16}]  # the lowest loss
    assert search["points"]["metric"] == "loss"
    bad = run_cli(["status", "g", "--metric", "los"], cwd=grid["root"])
    assert bad.returncode == 2 and "did you mean 'loss'" in bad.stderr


def test_logs_takes_the_printed_form_in_any_order(grid: dict) -> None:
    for job in (["seed=1", "width=12"], ["width=12 seed=1"], ["seed=1,width=12"]):
        result = run_cli(["logs", "g", *job], cwd=grid["root"])
        assert result.returncode == 0, result.stderr
        assert "training width=12 seed=1" in result.stdout
    several = run_cli(["logs", "g", "seed=1"], cwd=grid["root"])
    assert several.returncode == 2
    assert "matches 4 jobs" in several.stderr and "'width=4 seed=1'" in several.stderr
    none = run_cli(["logs", "g", "width=5"], cwd=grid["root"])
    assert none.returncode == 2 and "no job 'width=5'" in none.stderr


def test_show_labels_a_grid_aggregate_with_its_points(grid: dict) -> None:
    result = run_cli(["show", "g/summary.json"], cwd=grid["root"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("aggregated:")
    assert lines[start + 1] == "  width=4 seed=0:"  # each job's value under its point
    machine = json.loads(run_cli(["show", "g/summary.json", "--json"], cwd=grid["root"]).stdout)
    assert isinstance(machine["aggregated"], list)  # --json keeps the stored form


def test_rerunning_into_a_folder_with_finished_jobs_warns_in_cli_words(grid: dict) -> None:
    args = ["grid", grid["target"], "width=[4,12]", "seed=[0]", "name=12:30"]
    again = run_cli([*args, "--gpus", "0", "--base-dir", "g", "--no-progress"], cwd=grid["root"])
    assert again.returncode == 0, again.stderr
    assert "WARNING" in again.stderr and "Pass --resume to reuse" in again.stderr
    assert "resume=True" not in again.stderr


def test_rerunning_through_the_api_warns_with_resume_true(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from runner.grid_search import run_grid_searches
    from runner.quick_sweep import build_grid_search, load_function

    (tmp_path / "fit.py").write_text(SCRIPT)
    script = load_function(f"{tmp_path / 'fit.py'}:train")
    grid = build_grid_search(script, ["width=[4]"], base_dir=str(tmp_path / "api"))
    run_grid_searches([grid], 0, progress=False)
    with caplog.at_level(logging.WARNING, logger="runner"):
        run_grid_searches([grid], 0, progress=False)
    [warning] = [r for r in caplog.records if "already finished" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "Pass resume=True" in warning.getMessage()


def test_bisect_precision_defaults_to_1_for_an_integer_prop(grid: dict) -> None:
    args = ["bisect", grid["target"], "width=10:100", "--success", 'result["acc"] >= 0.7']
    result = run_cli([*args, "--gpus", "0", "--base-dir", "b", "--json"], cwd=grid["root"])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["achieved"]["value"] == 24 and data["failed"]["value"] == 23  # 24/34 >= 0.7
    floats = run_cli(
        ["bisect", grid["target"], "lr=0.1:0.5", "--success", "result", "--base-dir", "f"],
        cwd=grid["root"],
    )
    assert floats.returncode == 2 and "pass --precision" in floats.stderr


def test_status_shows_a_search_waiting_for_slots_as_queued(tmp_path: Path) -> None:
    now = time.time()

    def job(name: str, **record: object) -> None:
        folder = tmp_path / name
        folder.mkdir(parents=True)
        (folder / "job.json").write_text(json.dumps(record))

    summary = {"kind": "grid_search", "status": "running", "num_jobs": 4, "started": now - 600}
    for search in ("first", "second"):
        (tmp_path / search).mkdir()
        (tmp_path / search / "summary.json").write_text(json.dumps(summary))
    alive = {"host": socket.gethostname(), "pid": os.getpid()}
    for i in range(4):  # the first search ran its 4 jobs, 100 s each, 2 at a time
        start = now - 600 + 100 * (i // 2)
        job(f"first/x={i}", status="ok", start_time=start, duration=100, point={"x": i})
    job("second/x=0", status="running", start_time=now - 10, point={"x": 0}, **alive)
    job("second/x=1", status="ok", start_time=now - 10, duration=5, point={"x": 1})
    data = json.loads(run_cli(["status", str(tmp_path), "--json"]).stdout)
    second = next(s for s in data["searches"] if s["base_dir"].endswith("second"))
    # Timed from its first job (10 s ago), not from the search's start (600 s ago).
    assert second["status"] == "running" and 9 < second["duration"] < 60
    assert second["eta"] == pytest.approx(3 * second["duration"], rel=0.01)
    (tmp_path / "second" / "x=0" / "job.json").unlink()
    (tmp_path / "second" / "x=1" / "job.json").unlink()
    data = json.loads(run_cli(["status", str(tmp_path), "--json"]).stdout)
    second = next(s for s in data["searches"] if s["base_dir"].endswith("second"))
    assert (second["status"], second["duration"], second["eta"]) == ("queued", None, None)


def test_status_of_a_large_grid_lists_the_jobs_that_need_a_look(tmp_path: Path) -> None:
    base = tmp_path / "big"
    base.mkdir()
    (base / "summary.json").write_text(
        json.dumps({"kind": "grid_search", "status": "done", "num_jobs": 60, "started": 0})
    )
    for width in range(1, 21):
        for seed in range(3):
            folder = base / f"width={width},seed={seed}"
            folder.mkdir()
            record: dict[str, object] = {"point": {"width": width, "seed": seed}, "status": "ok"}
            if (width, seed) == (7, 2):
                record = {**record, "status": "error", "error_summary": "ValueError: nan"}
            else:
                record["result_summary"] = width + seed / 10
            (folder / "job.json").write_text(json.dumps(record))
    out = run_cli(["status", str(base)]).stdout
    assert "59 job(s) that finished ok are not listed" in out
    assert "width=7,seed=2" in out and "width=7,seed=1" not in out
    assert "mean +- std over seed" in out and "best width=20: result 20.1 +- 0.1" in out
    every = run_cli(["status", str(base), "--all", "--json"]).stdout
    assert len(json.loads(every)["jobs"]) == 60


def test_gpus_0_alone_runs_a_job_per_core(grid: dict) -> None:
    from runner.executors.base import usable_cores

    result = run_cli(
        ["-v", *grid["args"][:2], "width=[4,12]", "--gpus", "0", "--base-dir", "cores"],
        cwd=grid["root"],
    )
    assert result.returncode == 0, result.stderr
    assert f"running on {usable_cores()} CPU slot(s)" in result.stderr
    asked = run_cli(
        ["-v", *grid["args"][:2], "width=[4]", "--gpus", "0", "--cpu-slots", "5"]
        + ["--base-dir", "five"],
        cwd=grid["root"],
    )
    assert "running on 5 CPU slot(s)" in asked.stderr
    bad = run_cli([*grid["args"][:2], "width=[4]", "--cpu-slots", "0"], cwd=grid["root"])
    assert bad.returncode == 2 and "--cpu-slots 0 must be >= 1" in bad.stderr


def test_no_gpu_warning_names_the_cli_options(grid: dict) -> None:
    env = cli_env()
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU, and no --gpus 0: the warning's case
    result = subprocess.run(
        [sys.executable, "-m", "runner.cli", *grid["args"][:2], "width=[4]", "--base-dir", "w"],
        capture_output=True,
        text=True,
        env=env,
        cwd=grid["root"],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "No GPU found" in line)
    assert "--cpu-slots N" in warning and "--gpus 0" in warning
    assert "max_gpus" not in warning and "cpu_slots=" not in warning
