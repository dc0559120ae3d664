"""Property tests of the pure bisection math: parallel rounds give classic answers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.bisection import Bisection, BisectionSpace


def _run(space: BisectionSpace, m: int, rule, strategy: str = "auto"):
    search = Bisection(space, strategy=strategy)  # type: ignore[arg-type]
    tested: list = []
    while not search.done:
        values = search.propose(m)
        assert values, "a search that is not done must propose something"
        tested.append(values)
        for value in values:
            search.record(value, rule(value), ("result", value))
    return search, tested


def _classic_reference(lo, hi, precision, rule, success_lower, integer):
    """Textbook bisection, written independently of the module under test."""
    tested = []
    while True:
        if integer and hi - lo <= 1:
            break
        if hi - lo <= precision:
            break
        mid = (lo + hi) // 2 if integer else (lo + hi) / 2
        if not lo < mid < hi:
            break
        tested.append(mid)
        if rule(mid) == success_lower:
            hi = mid
        else:
            lo = mid
    return lo, hi, tested


int_ranges = st.tuples(st.integers(-500, 500), st.integers(2, 2000)).map(
    lambda t: (t[0], t[0] + t[1])
)


@settings(max_examples=300, deadline=None)
@given(
    bounds=int_ranges,
    precision=st.integers(1, 50),
    threshold_offset=st.integers(-5, 2005),
    success_lower=st.booleans(),
    m=st.integers(1, 16),
)
def test_int_parallel_answer_equals_classic(bounds, precision, threshold_offset, success_lower, m):
    lo, hi = bounds
    threshold = lo + threshold_offset

    def rule(v):  # monotone: successes on the side the direction says is better
        return v >= threshold if success_lower else v <= threshold

    space = BisectionSpace(lo, hi, precision, integer=True, success_lower=success_lower)
    classic, classic_tested = _run(space, 1, rule)
    parallel, parallel_tested = _run(space, m, rule)
    ref_lo, ref_hi, ref_tested = _classic_reference(lo, hi, precision, rule, success_lower, True)
    assert [v for (v,) in classic_tested] == ref_tested
    assert classic.interval == (ref_lo, ref_hi)
    assert parallel.achieved == classic.achieved
    assert parallel.failed == classic.failed
    assert parallel.rounds <= classic.rounds
    assert all(isinstance(v, int) for round_ in parallel_tested for v in round_)
    assert all(len(round_) <= m for round_ in parallel_tested)


@settings(max_examples=200, deadline=None)
@given(
    lo=st.floats(-100, 100),
    width=st.floats(0.5, 1000),
    precision_frac=st.floats(1e-4, 0.3),
    threshold_frac=st.floats(-0.1, 1.1),
    success_lower=st.booleans(),
    m=st.integers(1, 16),
)
def test_float_parallel_answer_equals_classic(
    lo, width, precision_frac, threshold_frac, success_lower, m
):
    hi = lo + width
    precision = width * precision_frac
    threshold = lo + width * threshold_frac

    def rule(v):
        return v >= threshold if success_lower else v <= threshold

    space = BisectionSpace(lo, hi, precision, success_lower=success_lower)
    classic, _ = _run(space, 1, rule)
    parallel, _ = _run(space, m, rule)
    ref_lo, ref_hi, _ = _classic_reference(lo, hi, precision, rule, success_lower, False)
    assert classic.interval == (ref_lo, ref_hi)
    assert parallel.interval == classic.interval
    assert parallel.achieved == classic.achieved
    assert parallel.failed == classic.failed


@settings(max_examples=100, deadline=None)
@given(
    outcomes=st.lists(st.booleans(), min_size=64, max_size=64),
    m=st.integers(1, 9),
)
def test_tree_strategy_matches_classic_for_any_rule(outcomes, m):
    """The tree strategy follows classic's path, so even a non-monotone rule agrees."""

    def rule(v):
        return outcomes[int(v * 1000) % 64]

    space = BisectionSpace(0.0, 1.0, 1e-3)
    classic, _ = _run(space, 1, rule)
    parallel, _ = _run(space, m, rule, strategy="tree")
    assert parallel.interval == classic.interval
    assert parallel.achieved == classic.achieved


def test_rounds_shrink_with_parallel_points():
    space = BisectionSpace(10, 100, 1, integer=True)
    rounds = {m: _run(space, m, lambda v: v >= 57)[0].rounds for m in (1, 3, 4, 8)}
    assert rounds[1] == 6
    # (m + 1)-fold shrinking: ceil(log_(m+1)(90)) rounds
    assert rounds[4] == 3 and rounds[8] <= 3 and rounds[3] <= 4
    tree = _run(space, 3, lambda v: v >= 57, strategy="tree")[0]
    assert tree.rounds == math.ceil(6 / 2)


def test_spec_example_int_points_and_answer():
    space = BisectionSpace(10, 100, 1, integer=True)
    search, tested = _run(space, 1, lambda v: v >= 42)
    assert tested[0] == [55]
    assert search.achieved == (42, ("result", 42))
    assert search.failed == (41, ("result", 41))
    assert search.interval == (41, 42)


def test_nothing_succeeds_or_everything_succeeds():
    space = BisectionSpace(10, 100, 1, integer=True)
    none, _ = _run(space, 4, lambda v: False)
    assert none.achieved is None and none.failed == (99, ("result", 99))
    everything, _ = _run(space, 4, lambda v: True)
    assert everything.failed is None and everything.achieved == (11, ("result", 11))


def test_success_direction_higher():
    space = BisectionSpace(0, 1000, 1, integer=True, success_lower=False)
    search, _ = _run(space, 1, lambda v: v <= 333)
    assert search.achieved[0] == 333 and search.failed[0] == 334


def test_log_scale_is_geometric():
    space = BisectionSpace(1e-5, 1e-1, 1e-7, log=True)
    search = Bisection(space)
    (first,) = search.propose(1)
    assert first == pytest.approx(1e-3)


def test_log_scale_int_never_repeats_or_leaves_interval():
    space = BisectionSpace(1, 1000, 1, integer=True, log=True)
    search, tested = _run(space, 1, lambda v: v >= 500)
    values = [v for round_ in tested for v in round_]
    assert len(values) == len(set(values))
    assert search.achieved[0] == 500


def test_bad_spaces_and_protocol_errors():
    with pytest.raises(ValueError, match="lo must be below hi"):
        BisectionSpace(5, 5, 1)
    with pytest.raises(ValueError, match="precision=0 must be positive"):
        BisectionSpace(0, 5, 0)
    with pytest.raises(ValueError, match="needs lo > 0"):
        BisectionSpace(0, 5, 1, log=True)
    search = Bisection(BisectionSpace(0, 100, 1, integer=True))
    search.propose(2)
    with pytest.raises(RuntimeError, match="not recorded"):
        search.propose(1)
    with pytest.raises(ValueError, match="was not proposed"):
        search.record(7, True)
