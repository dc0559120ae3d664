"""Resume says why it runs a job again: failed before, config changed, corrupt files; and counts."""

from __future__ import annotations

import logging
import os

from search_fixtures import ToyBisect, ToyConfig, ToyGrid, read_ledger

from runner.binary_search import run_binary_searches
from runner.grid_search import run_grid_searches


def _job_dirs(base_dir: str) -> dict[str, str]:
    dirs = {}
    for name in os.listdir(base_dir):
        path = os.path.join(base_dir, name)
        if os.path.isfile(os.path.join(path, "job.json")):
            dirs[name] = path
    return dirs


def test_resume_warns_per_rerun_job_with_its_reason_and_counts(tmp_path, caplog) -> None:
    ledger = str(tmp_path / "ledger")
    grid = ToyGrid(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1, 2, 3, 4], "seed": [0]},
        base_experiment_config=ToyConfig(ledger=ledger),
    )
    run_grid_searches([grid], max_gpus=1)
    folders = sorted(_job_dirs(str(tmp_path / "g")).values())
    assert len(folders) == 4
    # Damage three of the four finished jobs, each in its own way.
    with open(os.path.join(folders[0], "result.pkl"), "wb") as f:
        f.write(b"\x80garbage")
    with open(os.path.join(folders[1], "job.json"), "w") as f:
        f.write("{half a record")
    os.unlink(os.path.join(folders[2], "result.pkl"))
    with caplog.at_level(logging.INFO, logger="runner"):
        run_grid_searches([grid], max_gpus=1, resume=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    per_job = [w for w in warnings if "resume runs" in w]
    assert len(per_job) == 3, warnings
    assert any(folders[0] in w and "corrupt result.pkl" in w for w in per_job)
    assert any(folders[1] in w and "unreadable job.json" in w for w in per_job)
    assert any(folders[2] in w and "result.pkl is missing" in w for w in per_job)
    [count] = [w for w in warnings if "resume reused" in w]
    assert "reused 1 of 4" in count and "runs 3 again" in count
    assert len(read_ledger(ledger)) == 4 + 3  # exactly the damaged ones ran again


def test_resume_says_failed_before_and_config_changed(tmp_path, caplog) -> None:
    ledger = str(tmp_path / "ledger")
    grid = ToyGrid(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1], "seed": [0, 1]},
        base_experiment_config=ToyConfig(ledger=ledger, mode="raise"),  # odd seeds raise
    )
    run_grid_searches([grid], max_gpus=1)
    with caplog.at_level(logging.WARNING, logger="runner"):
        run_grid_searches([grid], max_gpus=1, resume=True)
    assert "failed before (error: RuntimeError: seed 1 diverged)" in caplog.text
    caplog.clear()
    grid.base_experiment_config.lr = 0.5
    with caplog.at_level(logging.WARNING, logger="runner"):
        run_grid_searches([grid], max_gpus=1, resume=True)
    changed = [
        r for r in caplog.records if r.getMessage().endswith("again: config changed since it ran")
    ]
    assert len(changed) == 1 and "width_1_seed_0" in changed[0].getMessage()  # seed 1 failed


def test_resume_count_of_a_late_round_covers_the_earlier_rounds(tmp_path, caplog) -> None:
    # A search closes a batch per round: the round that runs a lost job again reused
    # none of its own, and its line must not read as if the resume had reused nothing.
    search = ToyBisect(
        base_dir=str(tmp_path / "b"),
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0, 1]},
        parallel_points=1,
        base_experiment_config=ToyConfig(),
    )
    [first] = run_binary_searches([search], max_gpus=1)
    last = first.history[-1]
    for job in last["jobs"]:
        os.unlink(os.path.join(job["base_dir"], "result.pkl"))
    total = 2 * len(first.history)
    with caplog.at_level(logging.WARNING, logger="runner"):
        [again] = run_binary_searches([search], max_gpus=1, resume=True)
    assert tuple(again) == tuple(first)
    [count] = [r.getMessage() for r in caplog.records if "resume reused" in r.getMessage()]
    assert "reused 0 of 2 job(s) in this batch" in count
    assert f"({total - 2} of {total} submitted in the search so far)" in count
