"""Issue 16 through the spec's API: range ends, contradictions, the probabilistic method."""

from __future__ import annotations

import json
import logging

import pytest
from search_fixtures import MajorityBisect, ToyBisect, ToyConfig, read_ledger

from configs import pydraclass
from runner.binary_search import run_binary_searches
from runner.errors import SearchConfigError


def _search(tmp_path, name="b", cls=ToyBisect, threshold=42, **overrides):
    options = dict(
        base_dir=str(tmp_path / name),
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0]},
        base_experiment_config=ToyConfig(
            threshold=threshold,
            ledger=str(tmp_path / f"{name}.jsonl"),
            flips=overrides.pop("flips", ""),
        ),
    )
    options.update(overrides)
    return cls(**options)


def _widths(tmp_path, name="b"):
    return [r["width"] for r in read_ledger(str(tmp_path / f"{name}.jsonl"))]


def test_every_value_succeeding_says_the_threshold_may_lie_below(tmp_path, caplog):
    search = _search(tmp_path, threshold=5, test_range_ends=False)
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1)
    assert outcome.achieved_results[0] == 11 and outcome.failed_results is None
    assert outcome.outside_range == "below"
    assert 10 not in _widths(tmp_path)
    assert "width=10 was not tested" in caplog.text and "test_range_ends=True" in caplog.text
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["outside_range"] == "below"


def test_tested_ends_answer_beyond_the_range(tmp_path, caplog):
    search = _search(tmp_path, threshold=5, test_range_ends=True, parallel_points=1)
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1)
    assert {10, 100} <= set(_widths(tmp_path))
    assert outcome.achieved_results[0] == 10 and outcome.failed_results is None
    assert outcome.outside_range == "below"
    # A range of positive values: the suggestion stays positive (not range=(-80, 100)).
    assert "width=10 succeeded too" in caplog.text and "range=(0, 100)" in caplog.text


def test_a_linear_range_from_zero_names_negative_values_as_the_way_further(tmp_path, caplog):
    search = _search(tmp_path, threshold=-5, range=(0, 64), test_range_ends=True)
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1)
    assert outcome.achieved_results[0] == 0 and outcome.outside_range == "below"
    assert "if width can be negative, widen the range below 0" in caplog.text
    assert "can't reach" not in caplog.text  # a linear scale can, where the prop allows


def test_every_value_failing_says_above(tmp_path):
    [outcome] = run_binary_searches(
        [_search(tmp_path, threshold=500, test_range_ends=True, parallel_points=1)], max_gpus=1
    )
    assert outcome.achieved_results is None and outcome.failed_results[0] == 100
    assert outcome.outside_range == "above"


def test_a_tested_end_closes_the_bracket_next_to_it(tmp_path):
    [outcome] = run_binary_searches(
        [_search(tmp_path, threshold=11, test_range_ends=True, parallel_points=1)], max_gpus=1
    )
    assert outcome.achieved_results[0] == 11 and outcome.failed_results[0] == 10
    assert outcome.outside_range is None


def test_ends_ride_along_when_the_first_round_has_room(tmp_path):
    # 8 slots, one seed, a range holding 5 values inside: 3 places would idle, so the
    # two ends ride along in the first round at no extra round.
    with_ends = _search(tmp_path, name="ends", range=(10, 16), threshold=13)
    without = _search(tmp_path, name="plain", range=(10, 16), threshold=13, test_range_ends=False)
    [a] = run_binary_searches([with_ends], max_gpus=4, simultaneous_jobs_per_gpu=2)
    [b] = run_binary_searches([without], max_gpus=4, simultaneous_jobs_per_gpu=2)
    assert sorted(_widths(tmp_path, "ends")) == list(range(10, 17))
    assert sorted(_widths(tmp_path, "plain")) == list(range(11, 16))
    assert tuple(a) == tuple(b) == ((13, 130), (12, 120)) and a.rounds == b.rounds == 1
    assert a.outside_range is None and a.inconsistencies == []


def test_no_room_no_ends(tmp_path):
    # 2 slots: a round of 2 values has no room for the ends at no extra round.
    [outcome] = run_binary_searches([_search(tmp_path)], max_gpus=2)
    assert not {10, 100} & set(_widths(tmp_path))


def test_contradiction_is_recorded_and_retested_with_more_repetitions(tmp_path, caplog):
    # Threshold 60; seed 0 wrongly passes at 32. Round 1 tests 32, 55, 77: 32 succeeds
    # below 55's failure. Both are re-tested with seed 1, the majority settles them.
    search = _search(
        tmp_path,
        cls=MajorityBisect,
        threshold=60,
        flips="32:0",
        sweep_props={"seed": [0, 1, 2]},
        repetitions=1,
        parallel_points=3,
        test_range_ends=False,
    )
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1)
    assert "width=32 succeeded but width=55 failed" in caplog.text
    assert "re-testing" in caplog.text
    assert [(p.success, p.failure, p.resolved) for p in outcome.inconsistencies] == [(32, 55, True)]
    retests = sorted(h["value"] for h in outcome.history if h["retest"])
    assert retests == [32, 55]
    assert outcome.achieved_results[0] == 60 and outcome.failed_results[0] == 59
    runs = read_ledger(str(tmp_path / "b.jsonl"))
    assert sorted(r["seed"] for r in runs if r["width"] == 32) == [0, 1]
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["inconsistencies"] == [{"success": 32, "failure": 55, "resolved": True}]


def test_contradiction_without_a_pool_is_recorded_and_says_how_to_retest(tmp_path, caplog):
    search = _search(
        tmp_path,
        cls=MajorityBisect,
        threshold=60,
        flips="32:0",
        parallel_points=3,
        test_range_ends=False,
    )
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1)
    assert [(p.success, p.failure, p.resolved) for p in outcome.inconsistencies] == [
        (32, 55, False)
    ]
    assert "Add repetitions to sweep_props" in caplog.text


def test_margin_at_the_answer_is_reported(tmp_path, caplog):
    search = _search(tmp_path, cls=MajorityBisect, sweep_props={"seed": [0, 1, 2]})
    with caplog.at_level(logging.INFO, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=2)
    assert outcome.margin is not None
    assert outcome.margin.achieved == pytest.approx(0.5) and outcome.margin.failed == pytest.approx(
        -0.5
    )
    assert "margin to the target at the answer width=42: +0.5" in caplog.text


def test_probabilistic_method_on_a_deterministic_rule_is_exact(tmp_path):
    search = _search(
        tmp_path,
        method="probabilistic",
        sweep_props={"seed": list(range(16))},
        max_jobs=60,
        range=(1, 128),
    )
    [outcome] = run_binary_searches([search], max_gpus=4, simultaneous_jobs_per_gpu=2)
    achieved, failed = outcome
    assert outcome.estimate == 42 and achieved[0] == 42 and failed[0] == 41
    assert outcome.interval == (41, 42) and outcome.confidence == 0.95
    assert outcome.jobs == len(read_ledger(str(tmp_path / "b.jsonl"))) <= 60
    assert sum(p for _, p in outcome.posterior) == pytest.approx(1, abs=1e-3)
    # A value tested again took the next seed: no job ran twice.
    runs = [(r["width"], r["seed"]) for r in read_ledger(str(tmp_path / "b.jsonl"))]
    assert len(runs) == len(set(runs))
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["method"] == "probabilistic" and summary["estimate"] == 42


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"method": "probabilistic", "confidence": 1.5}, "confidence=1.5 must lie strictly"),
        ({"method": "probabilistic", "max_jobs": 0}, "max_jobs=0 must be None"),
        ({"repetitions": 5}, "repetitions=5 must be None"),
    ],
)
def test_new_options_are_checked_before_any_job(tmp_path, overrides, message):
    with pytest.raises(SearchConfigError, match=message):
        run_binary_searches([_search(tmp_path, **overrides)], max_gpus=1)
    assert read_ledger(str(tmp_path / "b.jsonl")) == []


def test_probabilistic_rounds_follow_parallel_points_and_resume_replays(tmp_path):
    def search():
        return _search(
            tmp_path,
            method="probabilistic",
            sweep_props={"seed": list(range(8))},
            max_jobs=30,
            parallel_points=2,
            range=(1, 64),
        )

    [first] = run_binary_searches([search()], max_gpus=4, simultaneous_jobs_per_gpu=2)
    per_round: dict[int, int] = {}
    for point in first.history:
        per_round[point["round"]] = per_round.get(point["round"], 0) + len(point["jobs"])
    assert set(per_round.values()) <= {1, 2} and first.rounds == len(per_round)
    ran = len(read_ledger(str(tmp_path / "b.jsonl")))
    # The posterior is deterministic given the outcomes: a resumed run asks for the same
    # jobs again and reuses every one.
    [again] = run_binary_searches([search()], max_gpus=4, simultaneous_jobs_per_gpu=2, resume=True)
    assert len(read_ledger(str(tmp_path / "b.jsonl"))) == ran
    assert (again.estimate, again.interval, tuple(again)) == (
        first.estimate,
        first.interval,
        tuple(first),
    )


@pydraclass
class _AggBreaksAfterJudging(ToyBisect):
    """Judges each job itself, but its agg_results raises: the answer can't be built."""

    def job_success(self, result):
        return bool(result.result["passed"])

    def agg_results(self, results):
        raise KeyError("accuracy")


def test_a_search_whose_answer_cannot_be_built_still_saves_that_it_stopped(tmp_path, caplog):
    search = _search(
        tmp_path,
        cls=_AggBreaksAfterJudging,
        method="probabilistic",
        sweep_props={"seed": list(range(4))},
        max_jobs=8,
    )
    with (
        caplog.at_level(logging.WARNING, logger="runner"),
        pytest.raises(Exception, match="accuracy"),
    ):
        run_binary_searches([search], max_gpus=1)
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    # Not left "running": the status and the error, on the last summary that could be
    # built (its range and method), without the parts agg_results builds.
    assert summary["status"] == "error" and "accuracy" in summary["error"]
    assert summary["prop"] == "width" and summary["method"] == "probabilistic"
    assert summary["range"] == [10, 100] and summary.get("stopped") is None
    assert "could not save the stopped search's state" in caplog.text


@pydraclass
class _JudgesNothing(ToyBisect):
    """A job_success that can never decide: every job is inconclusive."""

    def job_success(self, result):
        return None


def test_a_probabilistic_search_that_can_judge_no_job_stops_with_an_error(tmp_path, caplog):
    from runner.searches.noisy import NO_VERDICT_JOBS

    search = _search(
        tmp_path,
        cls=_JudgesNothing,
        method="probabilistic",
        sweep_props={"seed": list(range(16))},
        max_jobs=60,
    )
    with caplog.at_level(logging.ERROR, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1, cpu_slots=2)
    # Not 60 jobs and an answer read off the prior: it stops, says why, answers nothing.
    assert NO_VERDICT_JOBS <= outcome.jobs < NO_VERDICT_JOBS + 2
    assert tuple(outcome) == (None, None) and outcome.estimate is None
    # Nor an interval or a posterior: they would be the prior's.
    assert outcome.interval == (None, None) and outcome.posterior is None
    assert "no job could be judged" in outcome.error and "job_success" in outcome.error
    assert "no job could be judged" in caplog.text
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["status"] == "error" and summary["estimate"] is None
    assert summary["noise"] is None and summary["posterior"] is None


def test_under_noise_achieved_and_failed_agree_with_their_own_tallies(tmp_path):
    import random

    # Verdicts flipped at random near the threshold: the tested value next to the
    # estimate can have gone the other way. Each end is a value whose majority agrees.
    rng = random.Random(4)
    flips = ",".join(
        f"{w}:{s}" for w in range(30, 56) for s in range(8) if rng.random() < 0.3
    )
    search = _search(
        tmp_path,
        cls=MajorityBisect,
        method="probabilistic",
        sweep_props={"seed": list(range(8))},
        max_jobs=40,
        range=(1, 128),
        flips=flips,
    )
    [outcome] = run_binary_searches([search], max_gpus=1, cpu_slots=2)
    passed: dict[int, list[bool]] = {}
    for point in outcome.history:
        for job in point["jobs"]:
            passed.setdefault(point["value"], []).append(job["result"]["passed"])
    achieved, failed = outcome
    assert achieved is not None and failed is not None
    assert 2 * sum(passed[achieved[0]]) > len(passed[achieved[0]])
    assert 2 * sum(passed[failed[0]]) <= len(passed[failed[0]])
    assert failed[0] < outcome.estimate <= achieved[0]


@pydraclass
class _NeverDecides(ToyBisect):
    def agg_results(self, results):
        return None, None


def test_an_inconclusive_value_is_retried_reusing_its_finished_jobs_without_a_resume_hint(
    tmp_path, caplog
):
    search = _search(tmp_path, cls=_NeverDecides, sweep_props={"seed": [0, 1]}, parallel_points=1)
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1)
    assert "inconclusive twice" in outcome.error
    assert len(read_ledger(str(tmp_path / "b.jsonl"))) == 2  # the retry reused both jobs
    assert "already finished" not in caplog.text and "resume=True" not in caplog.text


@pydraclass
class _StricterAggregate(ToyBisect):
    """Each job judged by its own verdict; the aggregate asks for more than any value had."""

    def job_success(self, result):
        return bool(result.result["passed"])

    def agg_results(self, results):
        return False, len(results)


def test_every_job_succeeding_is_said_so_even_when_no_aggregate_agreed(tmp_path, caplog):
    search = _search(
        tmp_path,
        cls=_StricterAggregate,
        threshold=-5,
        method="probabilistic",
        sweep_props={"seed": list(range(8))},
        max_jobs=24,
    )
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1, cpu_slots=2)
    assert outcome.outside_range == "below" and outcome.achieved_results is None
    warning = next(r.getMessage() for r in caplog.records if "every tested value" in r.getMessage())
    assert "every tested value of width succeeded" in warning, warning
    # test_range_ends is bisection's: not suggested to a probabilistic search.
    assert "test_range_ends" not in warning


@pydraclass
class _CrashesAround42(ToyBisect):
    """A job at width 40..44 always raises (out of memory, say); the rule is deterministic."""

    def run_experiment_config(self, config):
        if 40 <= config.width <= 44:
            raise MemoryError(f"width {config.width} does not fit")
        return super().run_experiment_config(config)


def test_a_value_whose_jobs_keep_failing_is_given_up_not_retried_until_the_budget_is_spent(
    tmp_path, caplog
):
    from runner.searches.posterior import UNJUDGED_IN_A_ROW

    search = _search(
        tmp_path,
        cls=_CrashesAround42,
        method="probabilistic",
        sweep_props={"seed": list(range(16))},
        max_jobs=60,
        parallel_points=1,
    )
    with caplog.at_level(logging.WARNING, logger="runner"):
        [outcome] = run_binary_searches([search], max_gpus=1, cpu_slots=2)
    crashed: dict[int, int] = {}
    for point in outcome.history:
        if 40 <= point["value"] <= 44:
            crashed[point["value"]] = crashed.get(point["value"], 0) + len(point["jobs"])
    assert crashed and max(crashed.values()) == UNJUDGED_IN_A_ROW
    given_up = [r.getMessage() for r in caplog.records if "is not tested again" in r.getMessage()]
    assert len(given_up) == len(crashed)
    assert "MemoryError: width" in given_up[0]  # the jobs' own error, named
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["stopped"] in ("unjudged", "max_jobs")
    lo, hi = outcome.interval
    assert lo <= 42 <= hi  # honest about not seeing past the crashing values
