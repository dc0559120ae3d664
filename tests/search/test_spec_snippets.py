"""The spec's snippets and the examples run as written, on fake GPUs and on CPU slots."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _run(args, cwd, cuda="0,1,2,3"):
    env = {**os.environ, "PYTHONPATH": ROOT}
    if cuda is None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = cuda
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_spec_binary_search_snippet(tmp_path):
    _run([os.path.join(HERE, "spec_snippets", "spec_binary_search.py")], cwd=tmp_path)
    summary = json.loads((tmp_path / "results/binary_search/summary.json").read_text())
    assert summary["status"] == "done"
    assert summary["achieved"]["value"] == 42 and summary["failed"]["value"] == 41
    assert all(isinstance(p["value"], int) for p in summary["points"])
    devices = {j["device"] for p in summary["points"] for j in p["jobs"]}
    assert devices <= {"0", "1", "2", "3"}


def test_spec_grid_search_snippet(tmp_path):
    _run([os.path.join(HERE, "spec_snippets", "spec_grid_search.py")], cwd=tmp_path)
    for size in (10, 20, 30, 40):
        summary = json.loads((tmp_path / f"results/grid_search_{size}/summary.json").read_text())
        assert summary["status"] == "done" and summary["num_jobs"] == 4
        assert [j["point"] for j in summary["jobs"]] == [
            {"num_parameters": size, "seed": s} for s in (42, 43, 44, 45)
        ]
        best = max(j["result"] for j in summary["jobs"])
        assert summary["aggregated"] == pytest.approx(best)


@pytest.mark.parametrize("cuda", ["0,1,2,3", ""], ids=["fake-gpus", "cpu-slots"])
def test_example_binary_search(tmp_path, cuda):
    proc = _run(["-m", "examples.example_binary_search"], cwd=tmp_path, cuda=cuda)
    assert "smallest num_parameters reaching 0.5: 42" in proc.stdout
    assert "largest failing num_parameters:      41" in proc.stdout
    if cuda == "":
        assert "no GPU" in proc.stderr or "CPU" in proc.stderr


def test_example_grid_search(tmp_path):
    proc = _run(["-m", "examples.example_grid_search"], cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("num_parameters=")]
    assert len(lines) == 4 and "(seed 44)" in lines[0]


def test_dummy_experiment_cli(tmp_path):
    proc = _run(["-m", "examples.dummy_experiment", "num_parameters=42", "seed=44"], cwd=tmp_path)
    assert "accuracy=0.5040" in proc.stdout
