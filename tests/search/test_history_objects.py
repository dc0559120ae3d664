"""A binary search's history keeps each value's aggregate as agg_results returned it, and
its JSON form beside it (not a repr string)."""

from __future__ import annotations

import dataclasses
import pickle

from search_fixtures import ToyBisect, ToyConfig

from configs import pydraclass
from runner.binary_search import run_binary_searches


@dataclasses.dataclass
class Score:
    """An aggregate with no JSON form of its own."""

    best: int
    seeds: int


@pydraclass
class ScoreBisect(ToyBisect):
    def agg_results(self, results):
        ok = [r for r in results if r.success]
        passed = all(r.result["passed"] for r in ok)
        return passed, Score(best=max(r.result["score"] for r in ok), seeds=len(ok))


def test_history_holds_the_aggregate_objects(tmp_path) -> None:
    search = ScoreBisect(
        base_dir=str(tmp_path / "b"),
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0, 1]},
        base_experiment_config=ToyConfig(ledger=str(tmp_path / "ledger")),
    )
    [outcome] = run_binary_searches([search], max_gpus=2)
    first = outcome.history[0]
    assert first["value"] == 55 and first["result"] == Score(best=551, seeds=2)
    assert isinstance(first["result_json"], str) and "Score(best=551" in first["result_json"]
    [pkl] = list((tmp_path / "b").glob("binary_search_results_*.pkl"))
    with open(pkl, "rb") as f:
        assert pickle.load(f)["history"][0]["result"] == Score(best=551, seeds=2)
