"""Property tests of the pure threshold math added for issue 16: range ends, contradictions,
and the noise-aware posterior (runner.searches.posterior)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.searches.bisection import Bisection, BisectionSpace, Inconsistency
from runner.searches.posterior import (
    CENTRE_WEIGHT,
    END_MODE_WINS,
    MAX_GRID_INTERVALS,
    MODE_WINS,
    WINDOW_TIE,
    NoisyThreshold,
    ThresholdGrid,
    log_sigmoid,
)

int_ranges = st.tuples(st.integers(-50, 50), st.integers(2, 160)).map(lambda t: (t[0], t[0] + t[1]))


def _drive(search: Bisection, m: int, rule, ends=False):
    while not search.done:
        values = search.propose(m, ends=ends if search.rounds == 0 else False)
        for value in values:
            search.record(value, rule(value), value)
    return search


@settings(max_examples=300, deadline=None)
@given(
    bounds=int_ranges,
    offset=st.integers(-3, 165),
    success_lower=st.booleans(),
    m=st.integers(1, 12),
)
def test_tested_ends_leave_answers_inside_the_range_unchanged(bounds, offset, success_lower, m):
    lo, hi = bounds
    threshold = lo + offset

    def rule(v):
        return v >= threshold if success_lower else v <= threshold

    space = BisectionSpace(lo, hi, 1, integer=True, success_lower=success_lower)
    plain = _drive(Bisection(space), m, rule)
    ends = _drive(Bisection(space), m, rule, ends=True)
    assert ends.interval == plain.interval  # the ends never move the bracket
    assert {lo, hi} <= {e.value for e in ends.history}
    inside = lo < threshold < hi  # the ends themselves answer only with ends tested
    if success_lower:
        beyond_success, beyond_failure = threshold <= lo, threshold > hi
    else:
        beyond_success, beyond_failure = threshold >= hi, threshold < lo
    if inside:
        assert ends.achieved == plain.achieved
        assert ends.outside_range is None
    if beyond_success:  # every value succeeds, the end too: it is the best success
        assert ends.achieved == ((lo, lo) if success_lower else (hi, hi))
        assert ends.outside_range == ("below" if success_lower else "above")
        assert plain.outside_range == ends.outside_range
    if beyond_failure:
        assert ends.achieved is None and plain.achieved is None
        assert ends.failed == ((hi, hi) if success_lower else (lo, lo))
        assert ends.outside_range == ("above" if success_lower else "below")
    assert ends.inconsistencies == [] and plain.inconsistencies == []


@settings(max_examples=300, deadline=None)
@given(
    bounds=int_ranges,
    verdicts=st.lists(st.booleans(), min_size=1, max_size=200),
    success_lower=st.booleans(),
    m=st.integers(1, 12),
)
def test_every_non_monotone_pair_is_recorded(bounds, verdicts, success_lower, m):
    lo, hi = bounds

    def rule(v):  # any rule at all, monotone or not
        return verdicts[(v - lo) % len(verdicts)]

    search = _drive(
        Bisection(BisectionSpace(lo, hi, 1, integer=True, success_lower=success_lower)), m, rule
    )
    tested = sorted((e.value, e.success) for e in search.history)
    expected = [
        Inconsistency(a, b) if sa else Inconsistency(b, a)
        for i, (a, sa) in enumerate(tested)
        for b, sb in tested[i + 1 :]
        if sa != sb and (sa if success_lower else sb)
    ]
    assert sorted(search.inconsistencies, key=repr) == sorted(expected, key=repr)


@settings(max_examples=200, deadline=None)
@given(bounds=int_ranges, offset=st.integers(0, 160), m=st.integers(1, 8), flip=st.integers(0, 50))
def test_revising_a_verdict_replays_the_search(bounds, offset, m, flip):
    lo, hi = bounds
    threshold = lo + 1 + offset % (hi - lo)
    search = _drive(Bisection(BisectionSpace(lo, hi, 1, integer=True)), m, lambda v: v >= threshold)
    answer = (search.achieved, search.failed, search.interval)
    value = search.history[flip % len(search.history)].value
    search.revise(value, value >= threshold, value)  # the same verdict: nothing changes
    assert (search.achieved, search.failed, search.interval) == answer
    search.revise(value, not value >= threshold, value)  # flipped: replayed from the range
    _drive(search, m, lambda v: v >= threshold)
    lo_b, hi_b = search.interval
    known = {e.value: e.success for e in search.history}
    known[value] = not value >= threshold
    assert hi_b == hi or known[hi_b] is True  # the bracket's ends still say what they mean
    assert lo_b == lo or known[lo_b] is False
    assert search.done


# -- the posterior ---------------------------------------------------------------------


def _search_deterministic(lo, hi, threshold, success_lower, k, precision=1, pool=None, rate=0.5):
    model = NoisyThreshold(
        BisectionSpace(lo, hi, precision, integer=True, success_lower=success_lower),
        max_jobs=600,
        pool=pool,
        target_rate=rate,
    )

    def rule(v):
        return v >= threshold if success_lower else v <= threshold

    while not model.done:
        for value in model.propose(k):
            model.record(value, rule(value))
    return model


@settings(max_examples=150, deadline=None)
@given(
    bounds=st.tuples(st.integers(-50, 50), st.integers(2, 120)).map(lambda t: (t[0], t[0] + t[1])),
    offset=st.integers(-3, 125),
    success_lower=st.booleans(),
    k=st.integers(1, 8),
    pool=st.sampled_from([None, None, 1, 2, 3, 4]),
    rate=st.sampled_from([0.5, 0.5, 0.3, 0.7]),
)
def test_a_deterministic_rule_gets_the_exact_answer(bounds, offset, success_lower, k, pool, rate):
    lo, hi = bounds
    threshold = lo + offset
    model = _search_deterministic(lo, hi, threshold, success_lower, k, pool=pool, rate=rate)
    if success_lower:
        all_succeed, all_fail = threshold <= lo, threshold > hi
    else:
        all_succeed, all_fail = threshold >= hi, threshold < lo
    # One job per value at a rate below one half: a single failure barely tells "fails
    # here" from "succeeds 30% of the time here", so the answer may be one value off.
    slack = 1 if pool == 1 and rate < 0.5 else 0
    if all_succeed:
        assert model.outside_range == ("below" if success_lower else "above")
        assert abs(model.estimate - (lo if success_lower else hi)) <= slack
    elif all_fail:
        assert model.outside_range == ("above" if success_lower else "below")
        assert model.estimate is None
    else:
        assert abs(model.estimate - threshold) <= slack
    if pool is None:  # repetitions to spare: confirmed to one value
        assert model.resolved
        if not (all_succeed or all_fail):
            step = (threshold - 1, threshold) if success_lower else (threshold, threshold + 1)
            assert model.interval == step
    else:
        # A few repetitions per value: the values next to the threshold can't be tested
        # again and again, so the 95% interval may stay wider; the search stops there, a
        # few rounds after bisection's path, instead of testing every value of the range
        # (it did, or spent max_jobs).
        assert model.resolved or model.stalled
        rounds_of_bisection = math.ceil(math.log2(hi - lo + 2))
        every_value = (hi - lo + 1) * pool
        assert model.jobs <= min(every_value, (rounds_of_bisection + 3 * pool + 4) * k)


@settings(max_examples=100, deadline=None)
@given(
    observations=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from([True, False, None])), max_size=30
    ),
    success_lower=st.booleans(),
    target=st.floats(0.1, 0.9),
)
def test_the_posterior_is_a_distribution_and_learns_monotonely(observations, success_lower, target):
    model = NoisyThreshold(
        BisectionSpace(0, 40, 1, integer=True, success_lower=success_lower), target_rate=target
    )
    for value, outcome in observations:
        model.record(value, outcome)
    marginal = model.threshold_marginal()
    assert all(p >= 0 for p in marginal) and math.isclose(sum(marginal), 1, abs_tol=1e-9)
    assert math.isclose(sum(p for _, p in model.noise_marginal()), 1, abs_tol=1e-9)
    assert model.judged == sum(o is not None for _, o in observations)
    # A success at x makes "the threshold is at or before x" (from the failing side) likelier.
    x = 20
    before = sum(marginal[: (x if success_lower else 40 - x) + 1])
    unjudged = list(marginal)
    model.record(x, None)
    assert model.threshold_marginal() == unjudged  # an inconclusive job changes nothing
    model.record(x, True)
    after = sum(model.threshold_marginal()[: (x if success_lower else 40 - x) + 1])
    assert after >= before - 1e-12


@settings(max_examples=100, deadline=None)
@given(
    k=st.integers(1, 16), pool=st.integers(1, 4), rounds=st.integers(1, 6), seed=st.integers(0, 99)
)
def test_proposals_stay_on_the_grid_within_the_pool_and_budget(k, pool, rounds, seed):
    rng = random.Random(seed)
    model = NoisyThreshold(BisectionSpace(0, 30, 1, integer=True), max_jobs=50, pool=pool)
    asked: dict[int, int] = {}
    for _ in range(rounds):
        values = model.propose(k)
        assert len(values) <= k
        for value in values:
            assert value in model.grid.values
            asked[value] = asked.get(value, 0) + 1
            model.record(value, rng.random() < 0.5)
    assert all(n <= pool for n in asked.values())
    assert sum(asked.values()) == model.jobs <= 50


def test_float_and_log_grids_resolve_to_precision():
    for log in (False, True):
        space = BisectionSpace(1e-4, 1.0, 1e-3, log=log, success_lower=False)
        model = NoisyThreshold(space, max_jobs=400)
        while not model.done:
            for value in model.propose(4):
                model.record(value, value <= 0.0123)
        lo, hi = model.interval
        assert lo is not None and hi is not None and lo <= 0.0123 < hi + 1e-12
        assert model.resolved


def test_log_grids_are_spaced_by_precision_at_the_high_end():
    # precision is a distance, as for bisection: the widest gap of a geometric grid is at
    # the high end, so that is where it is half a precision (the low end is finer).
    space = BisectionSpace(1e-3, 1e-1, 1e-3, log=True)
    values = ThresholdGrid.of(space).values
    gaps = [b - a for a, b in zip(values, values[1:], strict=False)]
    assert max(gaps) <= space.precision / 2 * (1 + 1e-6)
    assert NoisyThreshold(space).coarsest_step <= space.precision
    # Too wide for the cap: every integer where steps would be under 1, then growing.
    wide = ThresholdGrid.of(BisectionSpace(1, 5000, 1, integer=True, log=True)).values
    assert wide[:400] == tuple(range(1, 401)) and len(wide) <= MAX_GRID_INTERVALS + 1
    assert max(b - a for a, b in zip(wide, wide[1:], strict=False)) <= 12


def test_integer_ranges_up_to_the_cap_use_every_integer():
    span = MAX_GRID_INTERVALS
    assert ThresholdGrid.of(BisectionSpace(7, 7 + span, 1, integer=True)).values == tuple(
        range(7, 8 + span)
    )
    model = NoisyThreshold(BisectionSpace(42, 1274, 1, integer=True), max_jobs=200)
    while not model.done:
        for value in model.propose(4):
            model.record(value, value >= 957)
    assert model.estimate == 957 and model.interval == (956, 957)


def test_a_flat_posterior_leaves_no_estimate_outside_its_interval():
    # One success in the middle and nothing else: a flat posterior leaning low. The
    # estimate stays inside the credible interval, not at the end the interval leaves out.
    model = NoisyThreshold(BisectionSpace(1, 128, 1, integer=True))
    model.record(64, True)
    lo, hi = model.interval
    assert lo is not None and hi is not None and lo < model.estimate <= hi


def test_log_sigmoid_is_stable():
    assert log_sigmoid(1000.0) == 0.0 and log_sigmoid(-1000.0) == -1000.0
    assert math.isclose(log_sigmoid(0.3), math.log(1 / (1 + math.exp(-0.3))))


@settings(max_examples=100, deadline=None)
@given(
    observations=st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=30),
    success_lower=st.booleans(),
    precision=st.sampled_from([1, 2, 3]),
)
def test_the_estimate_holds_the_most_mass_within_precision(observations, success_lower, precision):
    """The estimate is the Bayes answer for "within precision" with exact answers worth
    CENTRE_WEIGHT more: inside the credible interval, no value's window (the values within
    precision of it) plus CENTRE_WEIGHT times its own mass scores higher, unless one value
    alone holds MODE_WINS of it (at a range end, a majority), which is then the answer.
    While the outcomes look deterministic, windows within WINDOW_TIE of the best are a
    tie, won by the likeliest value."""
    space = BisectionSpace(0, 40, precision, integer=True, success_lower=success_lower)
    model = NoisyThreshold(space)
    for value, outcome in observations:
        model.record(value, outcome)
    by_value = {value: p for value, p in model.posterior(min_probability=-1.0)}
    estimate = model.estimate
    mode = max(by_value, key=lambda v: by_value[v])
    if by_value[mode] >= (END_MODE_WINS if mode in (0, 40, None) else MODE_WINS):
        assert estimate == mode
        return

    def window(centre):
        if centre is None:  # "beyond the range" is its own window
            return by_value[None]
        return sum(p for v, p in by_value.items() if v is not None and abs(v - centre) <= precision)

    verdicts: dict[int, set[bool]] = {}
    for value, outcome in observations:
        verdicts.setdefault(value, set()).add(outcome)
    if any(len(seen) == 2 for seen in verdicts.values()):
        assert not model._looks_deterministic()  # a value with both verdicts is noise
    if estimate is None:  # "beyond the range" holds more than any window inside
        assert window(None) >= max(window(v) for v in by_value if v is not None) - 1e-9
        return
    first, last = model._interval_positions()
    first = min(first, model.size)
    inside = {model._value_at(u) for u in range(first, max(first, min(last, model.size)) + 1)}
    assert estimate in inside  # never in a tail the credible interval leaves out
    if model._looks_deterministic():
        best = max(window(v) for v in inside)
        assert window(estimate) >= best - WINDOW_TIE - 1e-5
        near = [v for v in inside if window(v) >= best - WINDOW_TIE + 1e-9]
        assert by_value[estimate] >= max(by_value[v] for v in near) - 1e-9
    else:

        def score(v):
            return window(v) + CENTRE_WEIGHT * by_value[v]

        assert score(estimate) >= max(score(v) for v in inside) - 1e-9


def test_the_noise_scale_is_said_in_the_values_own_terms() -> None:
    steps = NoisyThreshold(BisectionSpace(1, 128, 1, integer=True))
    assert [s for s, _ in steps.noise_scale_marginal()] == pytest.approx(steps.noise)
    # An integer range on a log scale still has every integer as a candidate: steps of 1.
    log_ints = NoisyThreshold(BisectionSpace(1, 128, 1, integer=True, log=True))
    assert log_ints.grid.values[:3] == (1, 2, 3)
    assert [s for s, _ in log_ints.noise_scale_marginal()] == pytest.approx(log_ints.noise)
    halves = NoisyThreshold(BisectionSpace(0.0, 10.0, 1.0))  # candidates 0.5 apart
    assert [s for s, _ in halves.noise_scale_marginal()] == pytest.approx(
        [0.5 * sigma for sigma in halves.noise]
    )
    # A geometric grid (a log scale): neighbours differ by a factor, and so does the scale.
    log = NoisyThreshold(BisectionSpace(1e-4, 1e-1, 1e-5, log=True))
    assert log.grid.geometric and not log_ints.grid.geometric
    ratio = log.grid.values[1] / log.grid.values[0]
    factors = [f for f, _ in log.noise_scale_marginal()]
    assert factors == pytest.approx([ratio**sigma for sigma in log.noise], rel=1e-6)
    assert all(f > 1 for f in factors)
    assert sum(p for _, p in log.noise_scale_marginal()) == pytest.approx(1)


def test_why_it_stopped_is_said_only_once_every_proposed_job_is_recorded() -> None:
    model = NoisyThreshold(BisectionSpace(1, 128, 1, integer=True), max_jobs=4, pool=8)
    values = model.propose(4)
    assert model.done and model.stop_reason is None  # its 4 jobs are still running
    for value in values[:3]:
        model.record(value, value >= 60)
    assert model.stop_reason is None
    model.record(values[3], values[3] >= 60)
    assert model.stop_reason == "max_jobs"


def test_the_default_budget_is_ten_jobs_per_round_bisection_needs_to_reach_precision():
    from runner.searches.noisy import default_max_jobs

    assert default_max_jobs(BisectionSpace(1, 128, 1, integer=True)) == 70  # 7 rounds
    # On a log scale precision is a distance at the high end, as for bisection: (1, 5000)
    # at precision 1 takes bisection 16 rounds; the candidate grid (1,607 values)
    # resolves in 11, and more jobs could not go finer.
    log = BisectionSpace(1, 5000, 1, integer=True, log=True)
    assert default_max_jobs(log) == 160
    assert default_max_jobs(log, len(ThresholdGrid.of(log).values)) == 110


def test_a_value_whose_jobs_cannot_be_judged_is_not_asked_for_again():
    # Jobs at 40..44 always error (None): they leave the posterior as it was, so the same
    # values would be asked for until the budget ran out. Each is given up after
    # UNJUDGED_IN_A_ROW jobs in a row, and the search stops on the values around them.
    from runner.searches.posterior import UNJUDGED_IN_A_ROW

    model = NoisyThreshold(BisectionSpace(1, 128, 1, integer=True), max_jobs=200, pool=64)
    asked: dict[int, int] = {}
    while not model.done:
        for value in model.propose(1):
            asked[value] = asked.get(value, 0) + 1
            model.record(value, None if 40 <= value <= 44 else value >= 42)
    crashing = {v: n for v, n in asked.items() if 40 <= v <= 44}
    assert crashing and max(crashing.values()) == UNJUDGED_IN_A_ROW
    assert model.blocked_indices == {model.grid.nearest(v) for v in crashing}
    assert sum(crashing.values()) <= 5 * UNJUDGED_IN_A_ROW  # the rest went around them
    assert model.stop_reason == "unjudged"
    lo, hi = model.interval
    assert lo is not None and hi is not None and lo <= 39 and 45 <= hi  # it says it can't tell


def test_a_judged_job_clears_a_values_unjudged_run():
    model = NoisyThreshold(BisectionSpace(1, 128, 1, integer=True), pool=64)
    model.record(50, None)
    model.record(50, True)
    model.record(50, None)
    assert not model.blocked_indices  # not two in a row
    model.record(50, None)
    assert model.blocked_indices == {model.grid.nearest(50)}
