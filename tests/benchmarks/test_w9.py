"""W9's simulation and its end-to-end run work and score as they say (not its targets:
those are the harness's business, python -m benchmarks.run --only W9)."""

from __future__ import annotations

import random

from benchmarks import w9_threshold as w9


def test_noise_model_is_a_step_at_zero_and_logistic_otherwise() -> None:
    assert w9.success_probability(42, 42, 0) == 1.0 and w9.success_probability(41, 42, 0) == 0.0
    assert w9.success_probability(42, 42, 3) == 0.5
    assert w9.success_probability(-1e6, 42, 1) == 0.0


def test_both_methods_are_exact_without_noise_and_scored_on_the_same_thresholds() -> None:
    table = w9.simulate(8, seed=3)
    for method in ("bisection", "posterior"):
        exact = table[f"{method}_s0"]
        assert exact["within1"] == 1.0 and exact["mae"] == 0 and exact["coverage"] == 1.0
    assert table["bisection_s3"]["jobs"] == 28  # 7 rounds x 4 seeds
    assert all(table[f"posterior_s{s}"]["jobs"] <= 28 for s in w9.NOISE)
    assert "posterior" in w9.format_table(table)


def test_scoring_counts_an_answer_beyond_the_range_as_past_its_end() -> None:
    scores = w9._score([(None, (127, None), 28), (50, (49, 50), 28)], [128, 50])
    assert scores["within1"] == 1.0 and scores["coverage"] == 1.0 and scores["mae"] == 0.5


def test_targets_are_judged_from_the_metrics() -> None:
    good = {"within1_ratio_s3": 1.6, "within1_ratio_s6": 1.7, "min_coverage": 0.93, "exact_s0": 1.0}
    assert w9.targets_hold(good)
    assert not w9.targets_hold({**good, "min_coverage": 0.85})


def test_the_end_to_end_run_goes_through_run_binary_searches() -> None:
    metrics = w9.end_to_end(threshold=40, noise=0.0, max_jobs=40)
    assert metrics["e2e_estimate"] == 40 and metrics["e2e_covered"]
    assert metrics["e2e_jobs"] <= 40


def test_bisection_search_votes_four_seeds() -> None:
    answer, bracket, jobs = w9.bisection_search(60, 0, random.Random(0))
    assert answer == 60 and bracket == (59, 60) and jobs == 28


def test_every_noise_shape_crosses_one_half_at_the_threshold_and_rises() -> None:
    for shape, curve in w9.SHAPES.items():
        assert abs(curve(0.0, 3.0) - 0.5) < 1e-12, shape
        rates = [curve(d, 3.0) for d in range(-40, 41)]
        assert all(a <= b for a, b in zip(rates, rates[1:], strict=False)), shape
        assert 0 <= rates[0] < 0.5 < rates[-1] <= 1, shape
        assert w9.success_probability(60, 60, 3, shape) == curve(0.0, 3.0)


def test_other_shapes_are_scored_like_the_logistic_one() -> None:
    shapes = w9.simulate_shapes(20, seed=3)
    assert set(shapes) == set(w9.SHAPES) - {"logistic"}
    for scores in shapes.values():
        assert set(scores) == {
            f"{m}_s{s}" for m in ("bisection", "posterior") for s in w9.SHAPE_NOISE
        }
        # The method's interval holds the threshold under every shape (W9's 500 searches:
        # 0.94 to 0.98); bisection's one-value bracket seldom does.
        for s in w9.SHAPE_NOISE:
            assert scores[f"posterior_s{s}"]["coverage"] >= 0.9
            assert scores[f"bisection_s{s}"]["coverage"] <= 0.5
    # A split shape pulls the estimate towards its slow side.
    assert shapes["split, slow above"]["posterior_s6"]["bias"] > 0
    assert shapes["split, slow below"]["posterior_s3"]["bias"] < 0
    assert "split, slow above" in w9.format_shapes(shapes)
    assert w9.shape_key("floor 0.1, ceiling 0.9") == "floor_0_1_ceiling_0_9"


def test_bisections_exact_rate_sums_its_verdict_paths() -> None:
    assert w9.bisection_within1_exact(60, 0) == 1.0  # one path, exact
    # No signal: every one of the 128 verdict paths is equally likely, each ends on its
    # own answer, and 3 of them lie within 1 of t.
    assert abs(w9.bisection_within1_exact(60, 1e9) - 3 / 128) < 1e-6
    # What the sampled rate estimates: 4,000 sampled searches agree within their noise.
    rng = random.Random(5)
    sampled = sum(abs((w9.bisection_search(50, 3, rng)[0] or 129) - 50) <= 1 for _ in range(4000))
    assert abs(sampled / 4000 - w9.bisection_within1_exact(50, 3)) < 0.03


def test_long_run_ratio_is_the_method_over_bisections_exact_rate_with_an_interval() -> None:
    rates = w9.long_run(searches=20, seed=3)
    assert set(rates) == {3, 6}
    for r in rates.values():
        assert r["searches"] == 20
        assert 0 < r["bisection_within1_exact"] < 1
        assert r["ratio"] == r["posterior_within1"] / r["bisection_within1_exact"]
        assert r["ratio_low"] <= r["ratio"] <= r["ratio_high"]
        assert r["posterior_low"] <= r["posterior_within1"] <= r["posterior_high"]
    assert "long run, s=3: 20 searches" in w9.format_long_run(rates)
