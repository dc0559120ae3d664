"""The benchmark harness runs from its command and computes its references right.

Functional only: the speed targets are the harness's business (python -m benchmarks.run),
never a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks import bench, run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_greedy_makespan_is_list_scheduling_in_submission_order() -> None:
    # Two slots: 3 and 1 start at 0; 2 takes the slot freed at 1 and ends at 3; 4 starts at 3.
    assert bench.greedy_makespan([3, 1, 2, 4], slots=2) == 7
    assert bench.greedy_makespan([0.5] * 64, slots=8) == pytest.approx(4.0)


def test_w2_durations_are_fixed_with_the_mean_and_longest_the_issue_asks() -> None:
    durations = bench.w2_durations()
    assert durations == bench.w2_durations()  # seeded: the same every run
    assert len(durations) == 64 and max(durations) == 3.0
    assert sum(durations) / len(durations) == pytest.approx(0.5, abs=1e-3)


def test_ray_comparison_needs_runners_own_numbers_from_the_same_run() -> None:
    ray = {"w1_makespan_s": 58.0, "w2_makespan_s": 58.0, "w4_overhead_ms_per_job": 900.0}
    runner = {
        "W1": {"makespan_s": 4.1},
        "W2": {"makespan_s": 4.5},
        "W4": {"overhead_ms_per_job": 45.0},
    }
    assert run._runner_ahead_of_ray(ray, runner) is True
    assert run._runner_ahead_of_ray(ray, {**runner, "W4": {"overhead_ms_per_job": 1000.0}}) is False
    assert run._runner_ahead_of_ray(ray, {"W1": runner["W1"]}) is None  # can't judge


def test_the_command_prints_one_json_line_per_workload_and_a_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "W4,W5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [line["workload"] for line in lines] == ["W4", "W5"]
    for line in lines:
        assert line["reps"] == 1 and isinstance(line["ok"], bool)
        for stats in line["metrics"].values():
            assert stats["min"] <= stats["median"] <= stats["max"]
    assert lines[0]["metrics"]["overhead_ms_per_job"]["median"] > 0
    assert "workload" in proc.stdout and "W5" in proc.stdout.split("workload", 1)[1]


def test_an_unknown_workload_is_refused_by_name() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--only", "W99"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "'W99' names no workload" in proc.stderr
