"""The margin of a comparison rule, as ``runner bisect`` reports it."""

from __future__ import annotations

import pytest

from runner.quick_sweep import ScriptBinarySearch
from runner.searches.margin import comparison_margin, seeds_margin


@pytest.mark.parametrize(
    "rule, result, margin",
    [
        ('result["acc"] >= 0.9', {"acc": 0.902}, 0.002),
        ('result["acc"] > 0.9', {"acc": 0.85}, -0.05),
        ("result <= 3", 1, 2.0),
        ("0.5 < result", 0.75, 0.25),  # the target on the left: still positive when it holds
        ('result["loss"] * 2 < 1', {"loss": 0.4}, 0.2),
    ],
)
def test_a_comparison_has_a_signed_margin(rule, result, margin):
    assert comparison_margin(rule, result) == pytest.approx(margin)


@pytest.mark.parametrize(
    "rule, result",
    [
        ("bool(result)", True),
        ('result["acc"] >= 0.9 and result["loss"] < 1', {"acc": 1, "loss": 0}),
        ("result == 3", 3),
        ('result["acc"] >= 0.9', {"other": 1}),  # the metric is missing: no margin, no error
        ("result >= 0.5", True),  # a bool is not a metric
        ("1 <= result < 10", 3),
    ],
)
def test_other_rules_have_none(rule, result):
    assert comparison_margin(rule, result) is None


def test_seeds_aggregate_as_the_rule_does():
    values = [0.91, 0.95, 0.93]
    assert seeds_margin("result >= 0.9", values, "all") == pytest.approx(0.01)
    assert seeds_margin("result >= 0.9", values, "any") == pytest.approx(0.05)
    assert seeds_margin("result >= 0.9", 0.93, "mean") == pytest.approx(0.03)
    assert seeds_margin("result >= 0.9", [0.91, "x"], "all") is None


def test_runner_bisect_searches_report_it():
    search = ScriptBinarySearch.__new__(ScriptBinarySearch)
    object.__setattr__(search, "success", 'result["acc"] >= 0.5')
    object.__setattr__(search, "agg", "all")
    assert search.margin([{"acc": 0.52}, {"acc": 0.6}]) == pytest.approx(0.02)
