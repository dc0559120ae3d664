"""Grid search: the spec's contract, results on disk, validation, resume."""

from __future__ import annotations

import json
import logging
import os
import pickle

import pytest
from search_fixtures import ToyConfig, ToyGrid, read_ledger

from runner import GPUJobResult
from runner.errors import SearchConfigError
from runner.grid_search import run_grid_searches


def _grid(tmp_path, name="grid", **overrides):
    ledger = str(tmp_path / "ledger.jsonl")
    options = dict(
        base_dir=str(tmp_path / name),
        sweep_props={"width": [1, 2, 3], "seed": [0, 1]},
        base_experiment_config=ToyConfig(ledger=ledger),
    )
    options.update(overrides)
    return ToyGrid(**options), ledger


def test_cross_product_in_order_with_failures_passed_to_agg(tmp_path):
    grid, ledger = _grid(
        tmp_path, base_experiment_config=ToyConfig(ledger=str(tmp_path / "l"), mode="raise")
    )
    [aggregated] = run_grid_searches([grid], max_gpus=4, simultaneous_jobs_per_gpu=2)
    # odd seeds raise: failures reach agg_results, in cross-product order
    assert aggregated == [
        (True, 10),
        (False, None),
        (True, 20),
        (False, None),
        (True, 30),
        (False, None),
    ]


def test_results_in_config_order_and_devices(tmp_path):
    grids = [
        _grid(tmp_path, name=f"g{i}", sweep_props={"width": [i], "seed": [0, 1, 2]})[0]
        for i in range(3)
    ]
    ledger = grids[0].base_experiment_config.ledger
    results = run_grid_searches(grids, max_gpus=4, simultaneous_jobs_per_gpu=1)
    assert results == [[(True, i * 10 + s) for s in range(3)] for i in range(3)]
    runs = read_ledger(ledger)
    assert len(runs) == 9
    assert {r["device"] for r in runs} <= {"0", "1", "2", "3"}


def test_results_pickle_and_summary(tmp_path):
    grid, _ = _grid(tmp_path)
    [aggregated] = run_grid_searches(grid, max_gpus=2)
    base = tmp_path / "grid"
    [pkl] = list(base.glob("grid_search_results_*.pkl"))
    with open(pkl, "rb") as f:
        payload = pickle.load(f)
    assert payload["results"] == aggregated
    assert payload["total_time"] > 0 and payload["timestamp"] in pkl.name
    assert len(payload["job_results"]) == 6
    assert all(isinstance(r, GPUJobResult) for r in payload["job_results"])
    summary = json.loads((base / "summary.json").read_text())
    assert summary["status"] == "done" and summary["num_jobs"] == 6
    assert summary["sweep_props"] == {"width": [1, 2, 3], "seed": [0, 1]}  # JSON, not a repr
    assert [j["point"] for j in summary["jobs"]][:2] == [
        {"width": 1, "seed": 0},
        {"width": 1, "seed": 1},
    ]
    assert all(j["device"] in ("0", "1") and j["gpu_id"] in (0, 1) for j in summary["jobs"])
    assert summary["jobs"][0]["result"] == {"score": 10, "passed": False}
    assert all(isinstance(j["duration"], float) for j in summary["jobs"])
    for job in summary["jobs"]:
        assert os.path.exists(os.path.join(job["base_dir"], "experiment_output.log"))


def test_unswept_parameter_comes_from_base_config(tmp_path):
    grid, _ = _grid(
        tmp_path, sweep_props={"seed": [0, 1]}, base_experiment_config=ToyConfig(width=7)
    )
    [aggregated] = run_grid_searches([grid], max_gpus=1)
    assert aggregated == [(True, 70), (True, 71)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"sweep_props": {"seeds": [1]}},
            r"sweep_props key 'seeds' is not a parameter.*Did you mean 'seed'",
        ),
        ({"sweep_props": {"seed": []}}, r"sweep_props\['seed'\] is empty"),
        ({"sweep_props": {"seed": 3}}, r"sweep_props\['seed'\]=3 must be a list"),
        (
            {"sweep_props": {"seed": [1]}, "base_experiment_config": object()},
            r"parameter 'width'.*given by no sweep_props key",
        ),
    ],
)
def test_validation_before_any_job(tmp_path, overrides, message):
    grid, ledger = _grid(tmp_path, **overrides)
    with pytest.raises(SearchConfigError, match=message):
        run_grid_searches([grid], max_gpus=1)
    assert read_ledger(ledger) == []
    assert not (tmp_path / "grid").exists()


def test_same_base_dir_twice_is_refused(tmp_path):
    a, ledger = _grid(tmp_path)
    b, _ = _grid(tmp_path)
    with pytest.raises(SearchConfigError, match="share base_dir"):
        run_grid_searches([a, b], max_gpus=1)
    assert read_ledger(ledger) == []


def test_two_points_in_one_folder_is_refused(tmp_path):
    class SameFolder(ToyGrid):
        def get_experiment_config_and_base_dir(self, width: int, seed: int):
            config, _ = self._make(width=width, seed=seed)
            return config, f"{self.base_dir}/width_{width}"  # forgot the seed

    from configs import pydraclass

    grid = pydraclass(SameFolder)(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1], "seed": [0, 1]},
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(SearchConfigError, match=r"both map to the experiment folder"):
        run_grid_searches([grid], max_gpus=1)


def test_missing_methods_and_required_fields(tmp_path):
    from runner.configs.search_configs import GridSearchConfig

    with pytest.raises(
        SearchConfigError,
        match="get_experiment_config_and_base_dir, run_experiment_config not defined",
    ):
        run_grid_searches(
            [GridSearchConfig(base_dir=str(tmp_path), base_experiment_config=ToyConfig())]
        )
    with pytest.raises(SearchConfigError, match="required field.*base_experiment_config"):
        run_grid_searches([ToyGrid(base_dir=str(tmp_path))])


def test_resume_reuses_finished_jobs_only(tmp_path, caplog):
    grid, ledger = _grid(
        tmp_path, base_experiment_config=ToyConfig(ledger=str(tmp_path / "l"), mode="raise")
    )
    ledger = str(tmp_path / "l")
    first = run_grid_searches([grid], max_gpus=2)
    assert len(read_ledger(ledger)) == 6
    # without resume everything runs again, and one line says how to reuse
    with caplog.at_level(logging.INFO, logger="runner"):
        again = run_grid_searches([grid], max_gpus=2)
    assert again == first and len(read_ledger(ledger)) == 12
    assert "3 job(s) already finished" in caplog.text and "resume=True" in caplog.text
    # with resume only the failed ones (odd seeds) run
    resumed = run_grid_searches([grid], max_gpus=2, resume=True)
    assert resumed == first
    runs = read_ledger(ledger)[12:]
    assert sorted((r["width"], r["seed"]) for r in runs) == [(1, 1), (2, 1), (3, 1)]


def test_resume_after_config_change_reruns(tmp_path):
    grid, ledger = _grid(tmp_path, sweep_props={"width": [1], "seed": [0]})
    run_grid_searches([grid], max_gpus=1)
    grid.base_experiment_config.lr = 0.5  # same folder, different config: not reusable
    run_grid_searches([grid], max_gpus=1, resume=True)
    assert [r["lr"] for r in read_ledger(ledger)] == [0.1, 0.5]


def test_agg_error_keeps_every_job_result(tmp_path):
    from configs import pydraclass
    from runner.errors import AggregationError

    @pydraclass
    class Buggy(ToyGrid):
        def agg_results(self, results):
            raise KeyError("score")

    grid = Buggy(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1, 2], "seed": [0]},
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(AggregationError, match="agg_results raised KeyError"):
        run_grid_searches([grid], max_gpus=2)
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["status"] == "error" and len(summary["jobs"]) == 2
    [pkl] = list((tmp_path / "g").glob("grid_search_results_*.pkl"))
    with open(pkl, "rb") as f:
        assert [r.result["score"] for r in pickle.load(f)["job_results"]] == [10, 20]


def test_unpicklable_aggregate_is_returned_and_stored_as_repr(tmp_path, caplog):
    import threading

    from configs import pydraclass

    @pydraclass
    class Locked(ToyGrid):
        def agg_results(self, results):
            return {"best": max(r.result["score"] for r in results), "lock": threading.Lock()}

    grid = Locked(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1, 2], "seed": [0]},
        base_experiment_config=ToyConfig(),
    )
    with caplog.at_level(logging.WARNING, logger="runner"):
        [aggregated] = run_grid_searches([grid], max_gpus=2)
    assert aggregated["best"] == 20
    assert "could not pickle results" in caplog.text
    [pkl] = list((tmp_path / "g").glob("grid_search_results_*.pkl"))
    with open(pkl, "rb") as f:
        payload = pickle.load(f)
    assert payload["unpicklable"] == ["results"] and "best" in payload["results"]
    assert len(payload["job_results"]) == 2
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["status"] == "done"


def test_experiment_config_without_base_dir_gets_a_fix(tmp_path):
    """The spec's quick start sets config.base_dir; a strict config without it needs a hint."""
    from configs import pydraclass

    @pydraclass
    class Bare:
        width: int = 1
        seed: int = 0

    grid = ToyGrid(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1], "seed": [0]},
        base_experiment_config=Bare(),
    )
    with pytest.raises(SearchConfigError, match=r"has no field 'base_dir'.*BaseExperimentConfig"):
        run_grid_searches([grid], max_gpus=1)


def test_default_aggregate_shows_in_the_summary_as_what_each_job_returned(tmp_path):
    from configs import pydraclass
    from runner.configs.search_configs import GridSearchConfig

    @pydraclass
    class Plain(ToyGrid):
        def agg_results(self, results):
            return GridSearchConfig.agg_results(self, results)  # the list, unchanged

    grid = Plain(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1, 2], "seed": [0]},
        base_experiment_config=ToyConfig(),
    )
    [results] = run_grid_searches([grid], max_gpus=2)
    assert [r.result["score"] for r in results] == [10, 20]
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["aggregated"] == [
        {"score": 10, "passed": False},
        {"score": 20, "passed": False},
    ]
