"""W9r (benchmarks/w9_mlp.py): its committed table of real MLP accuracies, its truths, and its
simulation's scoring. No training here: the table was trained once and committed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from benchmarks import w9_mlp
from benchmarks.w9_mlp import AccuracyTable


@pytest.fixture(scope="module")
def table() -> AccuracyTable:
    return w9_mlp.load_table()


def _step_table(threshold: int, seeds: int = 8) -> AccuracyTable:
    """A noiseless table on 1..64: accuracy 0.99 from ``threshold`` up, 0.5 below."""
    accuracy = {h: [0.99 if h >= threshold else 0.5] * seeds for h in range(1, 65)}
    return AccuracyTable(accuracy, list(range(seeds)), {})


def test_the_committed_table_is_complete_and_says_what_made_it(table: AccuracyTable) -> None:
    assert sorted(table.accuracy) == list(range(1, 65))
    assert table.seeds == list(range(24))
    assert all(len(row) == 24 for row in table.accuracy.values())
    # Accuracies on the 450 test images: multiples of 1/450 in [0, 1].
    for row in table.accuracy.values():
        for a in row:
            assert 0 <= a <= 1 and abs(a * 450 - round(a * 450)) < 1e-6
    assert table.meta["config"] == {"alpha": 1e-3, "max_iter": 200}
    assert table.meta["sklearn"] and table.meta["generated"]


def test_truths_match_a_hand_check_of_the_table(table: AccuracyTable) -> None:
    for target in w9_mlp.TARGETS:
        t = w9_mlp.mean_truth(table, target)
        assert t is not None
        row = table.accuracy[t]
        assert sum(row) / 24 >= target - 1e-9
        assert all(sum(table.accuracy[h]) / 24 < target for h in range(1, t))
        j = w9_mlp.job_truth(table, target)
        assert j is not None
        assert sum(a >= target - 1e-9 for a in table.accuracy[j]) >= 12
        assert all(sum(a >= target for a in table.accuracy[h]) < 12 for h in range(1, j))


def test_truths_on_a_small_table_by_hand() -> None:
    # h=1: mean 0.825, 1 of 4 reach 0.9; h=2: mean 0.9, 2 of 4 reach it; h=3: all 4.
    accuracy = {1: [0.9, 0.8, 0.8, 0.8], 2: [0.8, 0.8, 1.0, 1.0], 3: [0.95] * 4}
    small = AccuracyTable(accuracy, [0, 1, 2, 3], {})
    assert w9_mlp.mean_truth(small, 0.9) == 2
    assert w9_mlp.job_truth(small, 0.9) == 2
    assert w9_mlp.job_truth(small, 0.9, rate=0.75) == 3
    assert w9_mlp.mean_truth(small, 0.96) is None
    assert w9_mlp.crossings([1, 2, 3, 4], [False, True, False, True]) == [2, 3, 4]


def test_seeds_are_drawn_without_replacement_at_each_value() -> None:
    accuracy = {1: [i / 450 for i in range(6)], 2: [0.5] * 6}
    draws = w9_mlp.SeedDraws(AccuracyTable(accuracy, list(range(6)), {}), random.Random(1))
    assert sorted(draws.next(1) for _ in range(6)) == accuracy[1]
    assert draws.next(2) == 0.5
    with pytest.raises(ValueError, match="hidden_units=1: all 6 seeds"):
        draws.next(1)


def test_noiseless_table_both_methods_exact_at_the_same_jobs() -> None:
    step = _step_table(20)
    result = w9_mlp.simulate(step, 3, targets=(0.9,))["t090"]
    assert result["truth_mean"] == result["truth_job"] == 20
    bisection, posterior = result["bisection_mean"], result["posterior_mean"]
    assert bisection["exact"] == bisection["coverage"] == 1.0 and bisection["width"] == 1
    assert bisection["jobs"] == 24  # 6 halvings of (1, 64) x 4 seeds
    assert result["budget"] == 24 and posterior["jobs"] <= 24
    assert posterior["exact"] == posterior["coverage"] == 1.0
    assert "posterior" in w9_mlp.format_table({"t090": result})


def test_scoring_counts_hits_exact_answers_coverage_and_beyond_the_range() -> None:
    outcomes = [(20, (19, 20), 24), (22, (18, 23), 24), (None, (60, None), 20)]
    scores = w9_mlp.score(outcomes, 20, 1, 64)
    assert scores["within1"] == pytest.approx(1 / 3)
    assert scores["exact"] == pytest.approx(1 / 3)
    assert scores["mae"] == pytest.approx((0 + 2 + 45) / 3)
    assert scores["coverage"] == pytest.approx(2 / 3)
    assert scores["width"] == pytest.approx((1 + 5 + 4) / 3)
    assert scores["jobs"] == pytest.approx(68 / 3)
    # No value reaches the target: the truth is past the range, and so is a None answer.
    assert w9_mlp.score([(None, (64, None), 24)], None, 1, 64)["exact"] == 1.0


def test_a_tiny_run_on_the_real_table_flattens_into_the_harness_metrics(
    table: AccuracyTable,
) -> None:
    metrics = w9_mlp.w9_mlp(searches=4)
    for tag, target in (("t090", 0.90), ("t096", 0.96)):
        assert metrics[f"{tag}_truth_mean"] == w9_mlp.mean_truth(table, target)
        assert metrics[f"{tag}_truth_job"] == w9_mlp.job_truth(table, target)
        assert metrics[f"{tag}_bisection_mean_jobs"] == 24
        assert metrics[f"{tag}_posterior_mean_jobs"] <= 24
    assert metrics["min_coverage"] == min(
        metrics["t090_posterior_mean_coverage"], metrics["t096_posterior_mean_coverage"]
    )
    assert w9_mlp.targets_hold({"min_coverage": 0.9})
    assert not w9_mlp.targets_hold({"min_coverage": 0.85})
    assert not w9_mlp.targets_hold({"min_coverage": 0.95, "min_coverage_job": 0.85})
    assert metrics["min_coverage_job"] == min(
        metrics["t090_posterior_job_coverage"], metrics["t096_posterior_job_coverage"]
    )


def test_generate_resumes_from_its_partial_file_without_refitting(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    cached = [
        {"hidden_units": h, "seed": s, "accuracy": (h + s) / 450} for h in (1, 2) for s in (0, 1)
    ]
    lines = [json.dumps(row) for row in cached] + ['{"hidden_units": 3, "se']  # cut short
    (tmp_path / "table.json.partial.jsonl").write_text("\n".join(lines))
    w9_mlp.generate(path, hidden_units=range(1, 3), seeds=range(2))  # all cached: no training
    loaded = w9_mlp.load_table(path)
    assert loaded.accuracy == {1: [1 / 450, 2 / 450], 2: [2 / 450, 3 / 450]}
    assert loaded.meta["hidden_units"] == [1, 2] and loaded.meta["seeds"] == [0, 1]
    assert not (tmp_path / "table.json.partial.jsonl").exists()


def test_a_missing_or_incomplete_table_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--generate"):
        w9_mlp.load_table(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"seeds": [0, 1], "accuracy": {"1": [0.5, 0.5], "2": [0.5]}}))
    with pytest.raises(ValueError, match="incomplete table"):
        w9_mlp.load_table(broken)
