"""The driver both search kinds share: slot options, the explicit context, summary.json."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from search_fixtures import ToyBisect, ToyConfig, ToyGrid, read_ledger

from runner.binary_search import run_binary_search, run_binary_searches
from runner.errors import SearchConfigError
from runner.grid_search import run_grid_search, run_grid_searches
from runner.scheduler import GPUScheduler
from runner.searches.context import SearchContext
from runner.searches.summary import SCHEMA_VERSION, SearchSummary, read_summary


def _bisect(tmp_path, name, **overrides):
    options = dict(
        base_dir=str(tmp_path / name),
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0]},
        base_experiment_config=ToyConfig(ledger=str(tmp_path / f"{name}.jsonl")),
    )
    options.update(overrides)
    return ToyBisect(**options)


def _first_round(outcome) -> list[int]:
    return [h["value"] for h in outcome.history if h["round"] == 1]


def test_cpu_slots_reach_the_scheduler(tmp_path):
    # Two CPU slots, one seed: each round of an "auto" search tests two values.
    [outcome] = run_binary_searches([_bisect(tmp_path, "b")], max_gpus=0, cpu_slots=2)
    assert outcome.achieved_results[0] == 42
    assert len(_first_round(outcome)) == 2
    assert {r["device"] for r in read_ledger(str(tmp_path / "b.jsonl"))} == {""}
    summary = read_summary(str(tmp_path / "b"))
    assert summary is not None
    assert {j.device for p in summary.points for j in p.jobs} == {None}


def test_cpu_slots_are_checked_before_any_job(tmp_path):
    grid = ToyGrid(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1], "seed": [0]},
        base_experiment_config=ToyConfig(ledger=str(tmp_path / "l")),
    )
    with pytest.raises(Exception, match="cpu_slots"):
        run_grid_searches([grid], max_gpus=0, cpu_slots=0)
    assert read_ledger(str(tmp_path / "l")) == []


def test_skip_busy_gpus_is_passed_on(tmp_path, caplog):
    grid = ToyGrid(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": [1], "seed": [0, 1]},
        base_experiment_config=ToyConfig(),
    )
    with caplog.at_level(logging.WARNING, logger="runner"):
        [aggregated] = run_grid_searches([grid], max_gpus=2, skip_busy_gpus=True)
    assert aggregated == [(True, 10), (True, 11)]
    # Fake GPUs have no NVML behind them: the scheduler says it could not check.
    assert "skip_busy_gpus" in caplog.text


def test_a_shared_context_splits_the_slots_between_searches(tmp_path):
    async def main(shared: bool):
        context = SearchContext() if shared else None
        async with GPUScheduler(max_gpus=4, simultaneous_jobs_per_gpu=2) as scheduler:
            return await asyncio.gather(
                *(
                    run_binary_search(
                        _bisect(tmp_path, f"{name}{shared}"), scheduler, context=context
                    )
                    for name in ("a", "b")
                )
            )

    alone = asyncio.run(main(shared=False))
    shared = asyncio.run(main(shared=True))
    assert [o.achieved_results[0] for o in alone + shared] == [42] * 4
    assert [len(_first_round(o)) for o in alone] == [8, 8]  # each thinks it has the 8 slots
    assert [len(_first_round(o)) for o in shared] == [4, 4]  # a fair share each


def test_a_shared_context_checks_folders_across_searches(tmp_path):
    # A grid and a binary search in one folder: the grid's point width=55 takes the
    # folder that the binary search's first value (55) would write into.
    grid = ToyGrid(
        base_dir=str(tmp_path / "s"),
        sweep_props={"width": [55], "seed": [0]},
        base_experiment_config=ToyConfig(),
    )

    async def main(context):
        async with GPUScheduler(max_gpus=1) as scheduler:
            await run_grid_search(grid, scheduler, context=context)
            await run_binary_search(_bisect(tmp_path, "s"), scheduler, context=context)

    with pytest.raises(SearchConfigError, match="already uses for the point"):
        asyncio.run(main(SearchContext()))


def test_summary_is_one_typed_object_written_and_read_back(tmp_path):
    [outcome] = run_binary_searches([_bisect(tmp_path, "b")], max_gpus=2)
    data = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    read_back = SearchSummary.from_json(data)
    assert read_back == outcome.summary
    assert read_back.to_json() == data
    assert read_back.achieved is not None and read_back.achieved.value == 42
    assert "num_failed" not in data and "prop" in data  # only the binary search's fields
    assert data["num_jobs"] == outcome.jobs == 8


def test_old_summaries_read_with_defaults():
    summary = SearchSummary.from_json({"kind": "grid_search", "status": "running"})
    assert summary.schema_version == 0 and summary.jobs is None and summary.points == []
    assert (
        SearchSummary.from_json({"points": [{"value": 3, "success": "yes"}]}).points[0].success
        is None
    )
