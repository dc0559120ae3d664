"""``runner grid`` and ``runner bisect`` end to end through the installed console script,
then ``status``, ``show``, ``plot`` and ``logs`` on what they left on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import cli_env, run_cli

GRID_POINTS = [(seed, lr) for seed in (1, 2) for lr in (0.001, 0.0001)]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory, train_target: str) -> dict[str, object]:
    root = tmp_path_factory.mktemp("sweeps")
    grid = run_cli(
        [
            "grid",
            train_target,
            "seed=[1,2]",
            "lr=[1e-3,1e-4]",
            "width=50",
            "--gpus",
            "4",
            "--jobs-per-gpu",
            "2",
            "--base-dir",
            str(root / "grid"),
            "--json",
        ],
        console_script=True,
    )
    bisect = run_cli(
        [
            "bisect",
            train_target,
            "width=10:100",
            "--precision",
            "1",
            "--success",
            'result["acc"] >= 0.5',
            "--seeds",
            "42,43",
            "--base-dir",
            str(root / "bisect"),
            "--json",
        ],
        console_script=True,
    )
    return {"root": root, "grid": grid, "bisect": bisect}


def test_grid_runs_every_point_in_folders_named_by_swept_values(sweeps: dict) -> None:
    grid = sweeps["grid"]
    assert grid.returncode == 0, grid.stderr
    assert "Traceback" not in grid.stderr
    data = json.loads(grid.stdout)
    assert data["failed"] == 0
    points = [(j["point"]["seed"], j["point"]["lr"]) for j in data["jobs"]]
    assert points == GRID_POINTS
    for job in data["jobs"]:
        # the fixed value reached every job; the function ran in the job's own process
        assert job["result"]["acc"] == pytest.approx(50 / 92 + 0.001 * job["point"]["seed"])
        assert job["result"]["lr"] == job["point"]["lr"]
        assert job["result"]["device"] in {"0", "1", "2", "3"}
    folders = sorted(os.listdir(sweeps["root"] / "grid"))
    for seed, lr in GRID_POINTS:
        assert f"seed={seed},lr={lr}" in folders


def test_grid_prints_plain_progress_lines_when_not_a_terminal(sweeps: dict) -> None:
    lines = [ln for ln in sweeps["grid"].stderr.splitlines() if ln.startswith("[runner] grid")]
    assert lines, sweeps["grid"].stderr
    assert lines[-1].startswith("[runner] grid grid: done, 4/4 done, 0 running, 0 queued, 0 failed")


def test_bisect_finds_the_threshold_with_all_seeds_succeeding(sweeps: dict) -> None:
    bisect = sweeps["bisect"]
    assert bisect.returncode == 0, bisect.stderr
    data = json.loads(bisect.stdout)
    # acc = w / (w + 42) + 0.001 * (seed % 5): seed 42 first reaches 0.5 at w = 42
    assert data["achieved"]["value"] == 42
    assert data["failed"]["value"] == 41
    assert data["interval"] == [41, 42]
    assert os.path.exists(data["results_file"])
    names = os.listdir(sweeps["root"] / "bisect")
    assert "width=42,seed=42" in names and "width=42,seed=43" in names
    progress = [ln for ln in bisect.stderr.splitlines() if ln.startswith("[runner] bisect")]
    assert "interval (41, 42)" in progress[-1] and ": done," in progress[-1]


def test_status_lists_searches_and_jobs(sweeps: dict) -> None:
    result = run_cli(["status", str(sweeps["root"]), "--json"])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    kinds = {os.path.basename(s["base_dir"]): (s["kind"], s["status"]) for s in data["searches"]}
    assert kinds == {"grid": ("grid_search", "done"), "bisect": ("binary_search", "done")}
    grid_jobs = [j for j in data["jobs"] if "/grid/" in j["folder"]]
    assert len(grid_jobs) == 4 and {j["status"] for j in grid_jobs} == {"ok"}
    assert all(j["device"] in {"0", "1", "2", "3"} for j in grid_jobs)

    table = run_cli(["status", str(sweeps["root"])], console_script=True)
    assert table.returncode == 0
    assert "grid_search" in table.stdout and "binary_search" in table.stdout
    assert "grid/seed=1,lr=0.001" in table.stdout
    assert "achieved 42" in table.stdout


def test_show_summary_and_pickle(sweeps: dict, script_dir: Path) -> None:
    summary = sweeps["root"] / "bisect" / "summary.json"
    shown = run_cli(["show", str(summary), "--json"])
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["achieved"]["value"] == 42
    assert "unpickling" not in shown.stderr

    human = run_cli(["show", str(summary)])
    assert "prop: width" in human.stdout

    pickle_file = json.loads(sweeps["bisect"].stdout)["results_file"]
    loaded = run_cli(["show", pickle_file, "--json"])
    assert loaded.returncode == 0, loaded.stderr
    assert "only results files you trust" in loaded.stderr
    payload = json.loads(loaded.stdout)
    assert payload["achieved_results"][0] == 42
    assert payload["prop"] == "width"

    grid_pickle = next((sweeps["root"] / "grid").glob("grid_search_results_*.pkl"))
    elsewhere = run_cli(["show", str(grid_pickle)], cwd=sweeps["root"])
    # the jobs' function uses helper_mod, importable only beside the script
    assert elsewhere.returncode == 2 and "No module named 'helper_mod'" in elsewhere.stderr
    assert "summary.json" in elsewhere.stderr
    grid = run_cli(["show", str(grid_pickle), "--json"], cwd=script_dir)
    assert grid.returncode == 0, grid.stderr
    results = json.loads(grid.stdout)["results"]
    assert [r["point"]["seed"] for r in results] == [1, 1, 2, 2]
    assert all(r["success"] for r in results)


def test_plot_writes_pngs_of_both_searches(sweeps: dict, tmp_path: Path) -> None:
    import matplotlib.image

    result = run_cli(["plot", str(sweeps["root"]), "-o", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    paths = result.stdout.split()
    assert sorted(os.path.basename(p) for p in paths) == [
        "bisect_binary_search.png",
        "grid_grid_search.png",
    ]
    sizes = {os.path.basename(p): matplotlib.image.imread(p).shape[:2] for p in paths}
    assert sizes["grid_grid_search.png"] == (450, 700)
    height, width = sizes["bisect_binary_search.png"]  # the threshold view: panels, header
    assert height >= 600 and width >= 850


def test_plot_bad_prop_and_metric_exit_2(sweeps: dict) -> None:
    grid = str(sweeps["root"] / "grid")
    bad_prop = run_cli(["plot", grid, "--x", "sed"])
    assert bad_prop.returncode == 2
    assert "did you mean 'seed'" in bad_prop.stderr and "Traceback" not in bad_prop.stderr
    bad_metric = run_cli(["plot", grid, "--metric", "accc"])
    assert bad_metric.returncode == 2 and "did you mean 'acc'" in bad_metric.stderr


def test_logs_tail_and_unknown_job(sweeps: dict) -> None:
    root = str(sweeps["root"])
    result = run_cli(["logs", root, "seed=2,lr=0.0001"])
    assert result.returncode == 0, result.stderr
    assert "training width=50 seed=2" in result.stdout
    assert result.stdout.startswith("===== runner: attempt 1")

    one = run_cli(["logs", root, "grid/seed=2,lr=0.0001", "-n", "1"])
    assert one.stdout == "training width=50 seed=2\n"

    missing = run_cli(["logs", root, "seed=3,lr=0.0001"])
    assert missing.returncode == 2
    assert "no job 'seed=3,lr=0.0001'" in missing.stderr
    assert "grid/seed=1,lr=0.001" in missing.stderr  # the candidates are listed
    assert "Traceback" not in missing.stderr


def test_logs_follow_prints_new_lines_until_terminated(sweeps: dict) -> None:
    log = sweeps["root"] / "grid" / "seed=1,lr=0.001" / "experiment_output.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "logs", str(sweeps["root"]), "seed=1,lr=0.001", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        seen = []
        while "training width=50 seed=1" not in "".join(seen):  # the tail came out
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            seen.append(line)
        with open(log, "a") as f:
            f.write("appended after the tail\n")
        assert proc.stdout.readline() == "appended after the tail\n"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_optional_list_field_takes_a_list_as_one_value_and_a_list_of_lists_sweeps_it() -> None:
    from configs import pydraclass
    from runner.quick_sweep import parse_sweep_args

    @pydraclass
    class Layers:
        layers: list[int] = None  # type: ignore[assignment]  # the pydrafig habit: optional
        seed: int = 0

    fixed = parse_sweep_args(Layers, ["layers=[1,2]"])
    assert fixed.sweep == {} and fixed.base_config.layers == [1, 2]
    swept = parse_sweep_args(Layers, ["layers=[[1,2],[3]]"])
    assert swept.sweep == {"layers": [[1, 2], [3]]}
