"""Binary search: the spec's contract, int-awareness, parallel rounds, errors, resume."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
from search_fixtures import FloatBisect, ToyBisect, ToyConfig, read_ledger

from runner.binary_search import run_binary_searches
from runner.errors import InconclusiveSearchError, SearchConfigError

HERE = os.path.dirname(os.path.abspath(__file__))


def _search(tmp_path, name="bisect", **overrides):
    ledger = str(tmp_path / "ledger.jsonl")
    options = dict(
        base_dir=str(tmp_path / name),
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0, 1]},
        base_experiment_config=ToyConfig(ledger=ledger),
    )
    options.update(overrides)
    return ToyBisect(**options), ledger


def test_finds_threshold_with_int_points_only(tmp_path):
    search, ledger = _search(tmp_path)
    [(achieved, failed)] = run_binary_searches([search], max_gpus=4, simultaneous_jobs_per_gpu=2)
    assert achieved == (42, 421) and failed == (41, 411)
    widths = [r["width"] for r in read_ledger(ledger)]
    assert widths and all(type(w) is int for w in widths)
    assert {r["device"] for r in read_ledger(ledger)} <= {"0", "1", "2", "3"}


def test_classic_sequence_and_results_file(tmp_path):
    search, ledger = _search(tmp_path, parallel_points=1)
    [outcome] = run_binary_searches([search], max_gpus=1)
    assert [h["value"] for h in outcome.history] == [55, 32, 43, 37, 40, 41, 42]
    assert outcome.rounds == 7 and outcome.interval == (41, 42) and outcome.error is None
    [pkl] = list((tmp_path / "bisect").glob("binary_search_results_*.pkl"))
    with open(pkl, "rb") as f:
        payload = pickle.load(f)
    assert payload["search_range"] == (10, 100) and payload["precision"] == 1
    assert payload["achieved_results"] == (42, 421) and payload["failed_results"] == (41, 411)
    assert payload["total_time"] > 0 and payload["timestamp"] in pkl.name
    assert len(payload["history"]) == 7
    summary = json.loads((tmp_path / "bisect" / "summary.json").read_text())
    assert summary["status"] == "done"
    assert summary["achieved"] == {"value": 42, "result": 421}
    assert [p["value"] for p in summary["points"]] == [55, 32, 43, 37, 40, 41, 42]
    assert all(len(p["jobs"]) == 2 for p in summary["points"])
    jobs = [j for p in summary["points"] for j in p["jobs"]]
    assert {j["device"] for j in jobs} == {"0"} and {j["gpu_id"] for j in jobs} == {0}
    for job in jobs:  # the summary names the device as job.json does
        record = json.loads((tmp_path / "bisect" / job["base_dir"] / "job.json").read_text())
        assert job["device"] == record["device"]


def test_parallel_rounds_same_answer_fewer_rounds(tmp_path):
    classic, _ = _search(tmp_path, name="classic", parallel_points=1, sweep_props={"seed": [0]})
    parallel, _ = _search(tmp_path, name="parallel", sweep_props={"seed": [0]})
    [c] = run_binary_searches([classic], max_gpus=4, simultaneous_jobs_per_gpu=2)
    [p] = run_binary_searches([parallel], max_gpus=4, simultaneous_jobs_per_gpu=2)
    assert tuple(p) == tuple(c)
    assert p.rounds <= 3 < c.rounds  # 8 slots / 1 seed: 8 values a round


def test_concurrent_searches_share_one_scheduler(tmp_path):
    searches = [
        _search(tmp_path, name=f"s{t}", base_experiment_config=ToyConfig(threshold=t))[0]
        for t in (20, 42, 77)
    ]
    outcomes = run_binary_searches(searches, max_gpus=4, simultaneous_jobs_per_gpu=2)
    assert [o.achieved_results[0] for o in outcomes] == [20, 42, 77]
    assert [o.failed_results[0] for o in outcomes] == [19, 41, 76]


def test_direction_higher_and_float_log_scale(tmp_path):
    search = FloatBisect(
        base_dir=str(tmp_path / "lr"),
        prop="lr",
        range=(1e-5, 1e-1),
        precision=1e-5,
        scale="log",
        success_direction_lower=False,
        base_experiment_config=ToyConfig(),
        parallel_points=1,
    )
    [outcome] = run_binary_searches([search], max_gpus=1)
    achieved, failed = outcome
    assert achieved[0] <= 3e-3 < failed[0]
    assert failed[0] - achieved[0] <= 1e-5
    assert outcome.history[0]["value"] == pytest.approx(1e-3)  # geometric midpoint


def test_int_annotation_makes_float_range_integer(tmp_path):
    search, ledger = _search(tmp_path, range=(10.0, 100.0), precision=0.5)
    [(achieved, _)] = run_binary_searches([search], max_gpus=2)
    assert achieved[0] == 42
    assert all(type(r["width"]) is int for r in read_ledger(ledger))


def test_inconclusive_point_is_retried_once_then_search_stops(tmp_path):
    search, ledger = _search(
        tmp_path,
        parallel_points=1,
        base_experiment_config=ToyConfig(ledger=str(tmp_path / "l"), mode="crash"),
    )
    [outcome] = run_binary_searches([search], max_gpus=2)
    assert outcome.error and "inconclusive twice" in outcome.error and "width=55" in outcome.error
    assert tuple(outcome) == (None, None)
    assert len(read_ledger(str(tmp_path / "l"))) == 4  # 2 seeds, run twice
    summary = json.loads((tmp_path / "bisect" / "summary.json").read_text())
    assert summary["status"] == "error" and "inconclusive" in summary["error"]
    with pytest.raises(InconclusiveSearchError, match="inconclusive twice"):
        outcome.raise_if_stopped()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"range": (100, 10)}, r"range=\(100, 10\) is empty: lo must be below hi"),
        ({"range": (5, 5)}, r"range=\(5, 5\) is empty"),
        ({"range": (1,)}, r"must be a pair"),
        ({"precision": 0}, r"precision=0 must be a positive number"),
        ({"precision": -1}, r"precision=-1 must be a positive number"),
        ({"prop": "widht"}, r"prop 'widht' is not a parameter.*Did you mean 'width'"),
        ({"sweep_props": {"seed": []}}, r"sweep_props\['seed'\] is empty"),
        ({"sweep_props": {"width": [1]}}, r"both the searched prop and a sweep_props key"),
        ({"scale": "log", "range": (0, 10)}, r"scale='log' needs a positive range"),
        ({"parallel_points": 0}, r"parallel_points=0 must be 'auto' or a whole number"),
    ],
)
def test_validation_before_any_job(tmp_path, overrides, message):
    search, ledger = _search(tmp_path, **overrides)
    with pytest.raises(SearchConfigError, match=message):
        run_binary_searches([search], max_gpus=1)
    assert read_ledger(ledger) == []


def test_missing_prop_is_named(tmp_path):
    search = ToyBisect(
        base_dir=str(tmp_path / "b"), range=(1, 2), precision=1, base_experiment_config=ToyConfig()
    )
    with pytest.raises(SearchConfigError, match="required field.*prop"):
        run_binary_searches([search], max_gpus=1)


def test_folder_without_searched_value_is_refused(tmp_path):
    from configs import pydraclass

    @pydraclass
    class Forgetful(ToyBisect):
        def get_experiment_config_and_base_dir(self, width, seed):
            config, _ = self._make(width=width, seed=seed)
            return config, f"{self.base_dir}/seed_{seed}"  # forgot the width

    search = Forgetful(
        base_dir=str(tmp_path / "b"),
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0, 1]},
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(SearchConfigError, match="both map to the experiment folder"):
        run_binary_searches([search], max_gpus=1)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def test_killed_search_resumes_to_same_answer_without_rerunning(tmp_path):
    base_dir, ledger, gate = str(tmp_path / "b"), str(tmp_path / "ledger"), str(tmp_path / "gate")
    driver = [sys.executable, os.path.join(HERE, "bisect_driver.py"), base_dir, ledger, gate]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, *sys.path])}
    # Classic order is 55, 32, 43, 37, ...: the jobs of width 37 block until the gate opens.
    proc = subprocess.Popen([*driver, "37", "fresh"], env=env, stdout=subprocess.PIPE, text=True)
    _wait_for(lambda: sum(r["width"] == 37 for r in read_ledger(ledger)) == 2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    first_run = read_ledger(ledger)
    assert sorted({r["width"] for r in first_run}) == [32, 37, 43, 55]
    stopped = json.loads(open(os.path.join(base_dir, "summary.json")).read())
    assert stopped["status"] == "cancelled"
    assert "the driver was cancelled; rerun with resume=True" in stopped["error"]

    open(gate, "w").close()
    resumed = subprocess.run(
        [*driver, "37", "resume"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
        check=True,
    )
    assert "ANSWER 42 41" in resumed.stdout
    runs = [(r["width"], r["seed"]) for r in read_ledger(ledger)]
    for width in (55, 32, 43):  # finished before the kill: never run again
        assert runs.count((width, 0)) == 1 and runs.count((width, 1)) == 1
    assert runs.count((37, 0)) == 2  # cancelled mid-run: ran again


def test_values_of_one_round_sharing_a_folder_are_refused(tmp_path):
    """A folder name that rounds the searched value would swap results between values."""
    from configs import pydraclass

    @pydraclass
    class Rounded(FloatBisect):
        def get_experiment_config_and_base_dir(self, lr, seed):
            config, _ = self._make(lr=lr, seed=seed)
            return config, f"{self.base_dir}/lr_{lr:.2f}_seed_{seed}"

    search = Rounded(
        base_dir=str(tmp_path / "b"),
        prop="lr",
        range=(0.0, 1.0),
        precision=1e-4,
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(SearchConfigError, match="already uses for the point|both map to"):
        run_binary_searches([search], max_gpus=4, simultaneous_jobs_per_gpu=2)


def test_agg_results_error_names_the_search_and_keeps_the_history(tmp_path):
    from configs import pydraclass
    from runner.errors import AggregationError

    @pydraclass
    class Buggy(ToyBisect):
        def agg_results(self, results):
            if results[0].result["score"] < 400:
                raise ValueError("bug in agg")
            return super().agg_results(results)

    search = Buggy(
        base_dir=str(tmp_path / "b"),
        prop="width",
        range=(10, 100),
        precision=1,
        parallel_points=1,
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(AggregationError, match=r"raised ValueError: bug in agg for width=32"):
        run_binary_searches([search], max_gpus=2)
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["status"] == "error" and "bug in agg" in summary["error"]
    [pkl] = list((tmp_path / "b").glob("binary_search_results_*.pkl"))
    with open(pkl, "rb") as f:
        assert [h["value"] for h in pickle.load(f)["history"]] == [55]
