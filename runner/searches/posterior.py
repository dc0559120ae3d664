"""The noise-aware threshold search: a grid posterior over the threshold and the noise. Pure.

No I/O, no asyncio, no jobs: a :class:`NoisyThreshold` is told the outcome of
each job (one Bernoulli draw at one tested value) and says which values to test
next, the estimate, and the credible interval.

The model, and what it assumes:

* **Monotone success rate.** A job at value ``x`` succeeds with probability
  ``p(x)``, which rises through the threshold towards the better side (with
  lower values better, successes lie above the threshold). The threshold ``T`` is
  the best value whose rate reaches ``target_rate``: on a grid of candidate values
  it is the first one, counted from the failing side, where ``p >= target_rate``.
* **A logistic shape with unknown scale**, plus a small lapse: in grid steps,
  ``p(u) = lapse/2 + (1 - lapse) * sigmoid((u - tau) / sigma + logit(target_rate))``,
  ``tau`` the crossing point, ``sigma`` the noise scale. ``sigma`` is not known:
  it has its own grid, log-spaced from near-deterministic (a step, where a
  deterministic rule's answer comes out exact) to half the range. The lapse
  (1%) keeps one odd job (a crash judged a failure, say) from ruling out the
  truth. Other shapes (probit, asymmetric) are approximated by the nearest scale.
* **Jobs are independent** given the value (different seeds), so the posterior is
  the prior times one likelihood factor per judged job; inconclusive jobs
  (``None``) are not counted.
* **Priors**: uniform over the threshold's grid position, including the two
  hypotheses "at or beyond the low end" and "beyond the high end"; log-uniform
  over the noise scale.

Each round tests values at quantiles of the threshold's posterior (one job per
quantile, at the value where the posterior probability of "the threshold is at
or before it" is closest to the quantile; a value asked twice takes two
repetitions), so a deterministic rule is searched like parallel bisection. The search stops when the central credible
interval at ``confidence`` is no wider than ``precision``, when the threshold lies
beyond an end of the range at that confidence, or when ``max_jobs`` are spent.

Example:
    >>> from runner.searches.bisection import BisectionSpace
    >>> search = NoisyThreshold(BisectionSpace(1, 128, 1, integer=True), max_jobs=60)
    >>> while not search.done:
    ...     for value in search.propose(4):
    ...         search.record(value, value >= 42)
    >>> search.estimate, search.interval
    (42, (41, 42))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from runner.searches.bisection import BisectionSpace, OutsideRange

__all__ = ["NoisyThreshold", "StopReason", "ThresholdGrid", "fits_a_step", "log_sigmoid"]

Number = int | float
StopReason = Literal["resolved", "repetitions", "unjudged", "max_jobs"]

#: Most candidate values a grid holds; the cost of a job's update grows with it (about
#: 12 ms a job at 4,096, against 3 ms at 1,024: nothing beside a training job).
MAX_GRID_INTERVALS = 4096
#: Noise scales in the prior, log-spaced from NOISE_FLOOR grid steps (a step, to a
#: deterministic rule) to NOISE_CEILING times the range.
NOISE_LEVELS = 16
NOISE_FLOOR = 0.05
NOISE_CEILING = 0.5
#: How far a round's quantiles spread from the median (1: from 1/(k+1) to k/(k+1)).
#: Half-way keeps a round's jobs where they split the likely thresholds, not in the tails;
#: measured on W9 (benchmarks/w9_threshold.py), it lands within precision more often
#: under noise and costs a deterministic rule nothing.
SPREAD = 0.5
#: Jobs in a row at one value that could not be judged (they errored, or job_success
#: said None) after which the value is not tested again: such jobs leave the posterior
#: as it was, so the same value would be asked for again and again (a value that runs
#: out of memory, a full disk) until the budget is spent. Twice, as bisection's
#: inconclusive value.
UNJUDGED_IN_A_ROW = 2
#: The probability that a job's verdict is a coin flip, whatever the value.
LAPSE = 0.01
#: How much more than the best window "beyond the range" must hold to be the answer.
TIE_WEIGHT = 1e-6
#: While the outcomes look deterministic (no failure on the success side of a success,
#: and the noise most likely under a quarter of a step), windows holding this close to the most
#: posterior mass are a tie, broken by the likeliest centre value: outcomes that fit a
#: deterministic rule point at one value, and the window one value off can hold a
#: little more (at ``target_rate`` below 0.5, one failure barely tells "fails here" from
#: "succeeds 30% of the time here").
WINDOW_TIE = 0.05
#: What a window's centre value adds to its window's mass when windows are compared: the
#: Bayes answer for "within precision, and exactly right is worth a little more". Without
#: it, where a window spans several candidates (float ranges, precision above one step)
#: many centres hold nearly the same mass and the tail decided: an estimate the posterior
#: gave 7% beside a value it gave 89%. Measured paired (benchmarks, 400 to 1,500 searches
#: each, same runs, estimators compared): on (0, 1) at precision 0.05 within precision
#: 0.975 -> 0.998 and mean error 0.024 -> 0.010; on (1, 128) at precision 3 mean error
#: 1.03 -> 0.47 (s = 1); on W9 (precision 1) within 1 +0.004 / -0.003 / -0.001 at
#: s = 1 / 3 / 6, inside the measurement's noise.
CENTRE_WEIGHT = 0.05
#: A value holding this much of the posterior alone is the answer, whatever its window;
#: at a range end, whose window is cut in half, a majority is enough.
MODE_WINS = 0.95
END_MODE_WINS = 0.5


def fits_a_step(tallies: Iterable[tuple[Number, int, int]], success_lower: bool = True) -> bool:
    """Whether ``(value, successes, judged)`` tallies are what a step function gives: no
    failure at or past a success (with ``success_lower``, successes lie above failures).

    Example:
        >>> fits_a_step([(3, 0, 2), (5, 2, 2)]), fits_a_step([(3, 1, 2), (5, 2, 2)])
        (True, False)
        >>> fits_a_step([(3, 0, 1), (5, 1, 1)], success_lower=False)
        False
    """
    failed = [v for v, successes, judged in tallies if successes < judged]
    passed = [v for v, successes, judged in tallies if successes > 0] if failed else []
    if not failed or not passed:
        return True
    if success_lower:
        return max(failed) < min(passed)
    return min(failed) > max(passed)


def log_sigmoid(z: float) -> float:
    """``log(1 / (1 + exp(-z)))``, without overflow for any finite ``z``.

    Example:
        >>> round(log_sigmoid(0.0), 6), log_sigmoid(-800.0)
        (-0.693147, -800.0)
    """
    if z >= 0:
        return -math.log1p(math.exp(-z))
    return z - math.log1p(math.exp(z))


@dataclass(frozen=True)
class ThresholdGrid:
    """The candidate values of a probabilistic search, ascending, both range ends included.

    Integer ranges of at most :data:`MAX_GRID_INTERVALS` steps use every integer;
    others use evenly spaced values (geometric on ``scale="log"``) half a
    ``precision`` apart, or coarser when that would exceed the cap.

    Example:
        >>> ThresholdGrid.of(BisectionSpace(1, 5, 1, integer=True)).values
        (1, 2, 3, 4, 5)
    """

    values: tuple[Number, ...]
    space: BisectionSpace
    #: Geometric (``scale="log"``, not every integer): neighbours differ by a factor.
    geometric: bool = False

    @classmethod
    def of(cls, space: BisectionSpace) -> ThresholdGrid:
        lo, hi = space.lo, space.hi
        if space.integer and hi - lo <= MAX_GRID_INTERVALS:
            return cls(tuple(range(int(lo), int(hi) + 1)), space)
        if space.log:
            # precision is a distance, as for bisection: geometric candidates half a
            # precision apart at the high end are that close everywhere (the cap permitting).
            width = math.log(hi / lo)
            step = math.log1p(space.precision / hi) / 2
        else:
            width = hi - lo
            step = space.precision / 2
        n = max(2, min(MAX_GRID_INTERVALS, math.ceil(width / max(step, 1e-300))))
        values: list[Number] = []
        for i in range(n + 1):
            v = lo * (hi / lo) ** (i / n) if space.log else lo + (hi - lo) * i / n
            v = round(v) if space.integer else float(v)
            if not values or v > values[-1]:
                values.append(v)
        values[0], values[-1] = lo, hi
        return cls(tuple(values), space, geometric=space.log)

    def nearest(self, value: Number) -> int:
        """The index of the grid value closest to ``value``."""
        import bisect

        i = bisect.bisect_left(self.values, value)
        if i == 0:
            return 0
        if i == len(self.values):
            return i - 1
        return i if self.values[i] - value < value - self.values[i - 1] else i - 1


class NoisyThreshold:
    """The posterior over (threshold, noise scale) of one search, and its proposals.

    Positions are counted from the failing side (``u``): ``u = 0`` is the range end
    where failures belong, ``u = G`` the end where successes do. The threshold
    hypotheses ``tau`` lie on half steps from ``-0.5`` to ``G + 1``; a hypothesis'
    threshold value is the grid value at ``ceil(tau)`` (``G + 1``: beyond the range).

    Args:
        space: the searched range, precision, direction.
        confidence: the credible interval's probability.
        target_rate: the success rate that defines the threshold.
        max_jobs: the budget.
        pool: repetitions available per value (``None``: unlimited).
        grid: the candidates, when already built for ``space`` (else built here).
    """

    def __init__(
        self,
        space: BisectionSpace,
        *,
        confidence: float = 0.95,
        target_rate: float = 0.5,
        max_jobs: int = 100,
        pool: int | None = None,
        grid: ThresholdGrid | None = None,
    ) -> None:
        if not 0 < confidence < 1:
            raise ValueError(f"confidence={confidence!r} must lie strictly between 0 and 1")
        if not 0 < target_rate < 1:
            raise ValueError(f"target_rate={target_rate!r} must lie strictly between 0 and 1")
        if max_jobs < 1:
            raise ValueError(f"max_jobs={max_jobs!r} must be at least 1")
        self.space = space
        self.grid = ThresholdGrid.of(space) if grid is None else grid
        self.confidence = confidence
        self.target_rate = target_rate
        self.max_jobs = max_jobs
        self.pool = pool
        self.size = len(self.grid.values) - 1  # G
        #: Threshold hypotheses: tau = h / 2 for h in -1 .. 2G + 2 (two per threshold value).
        self.num_tau = 2 * self.size + 4
        top = max(1.0, (self.size + 1) * NOISE_CEILING)
        bottom = NOISE_FLOOR
        self.noise = [
            bottom * (top / bottom) ** (k / (NOISE_LEVELS - 1)) for k in range(NOISE_LEVELS)
        ]
        self._tables = self._likelihood_tables()
        self._log_post = [[0.0] * self.num_tau for _ in self.noise]
        self.jobs = 0  # judged or not, every job recorded
        self.judged = 0
        self.proposed = 0
        self.used: dict[int, int] = {}  # grid index -> repetitions taken
        self.unjudged_in_a_row: dict[int, int] = {}  # grid index -> its last jobs unjudged
        self.outcomes: dict[int, list[bool]] = {}
        self._marginal_cache: list[float] | None = None
        self._reach = space.precision * (1 + 1e-9)

    # -- the model -------------------------------------------------------------------

    def _likelihood_tables(self) -> list[tuple[list[float], list[float]]]:
        """Per noise scale, log-likelihoods of a success and of a failure against
        ``e = 2u - h`` (twice the distance from the crossing), stored reversed so
        that one job's update is one contiguous slice per scale."""
        c = math.log(self.target_rate / (1 - self.target_rate))
        span = range(-(2 * self.size + 2), 2 * self.size + 2)  # e over every (u, h)
        tables = []
        for sigma in self.noise:
            succ, fail = [], []
            for e in span:
                z = e / (2 * sigma) + c
                p = LAPSE / 2 + (1 - LAPSE) * math.exp(log_sigmoid(z))
                q = LAPSE / 2 + (1 - LAPSE) * math.exp(log_sigmoid(-z))
                succ.append(math.log(p))
                fail.append(math.log(q))
            tables.append((succ[::-1], fail[::-1]))
        return tables

    def _u(self, index: int) -> int:
        """Grid index -> position from the failing side."""
        return index if self.space.success_lower else self.size - index

    def _index(self, u: int) -> int:
        return u if self.space.success_lower else self.size - u

    def record(self, value: Number, success: bool | None) -> None:
        """Count one job at ``value`` (a grid value): success, failure, or None (not judged)."""
        index = self.grid.nearest(value)
        self.jobs += 1
        self._marginal_cache = None
        if success is None:
            self.unjudged_in_a_row[index] = self.unjudged_in_a_row.get(index, 0) + 1
            return
        self.unjudged_in_a_row.pop(index, None)
        self.judged += 1
        self.outcomes.setdefault(index, []).append(bool(success))
        u = self._u(index)
        length = 4 * self.size + 4
        start = length - 1 - (2 * u + 1 + 2 * self.size + 2)
        for row, (succ, fail) in zip(self._log_post, self._tables, strict=True):
            table = succ if success else fail
            row[:] = [a + b for a, b in zip(row, table[start : start + self.num_tau], strict=True)]

    # -- the posterior ---------------------------------------------------------------

    def _weights(self) -> list[list[float]]:
        top = max(max(row) for row in self._log_post)
        rows = [[math.exp(v - top) for v in row] for row in self._log_post]
        total = sum(sum(row) for row in rows)
        return [[w / total for w in row] for row in rows]

    def _tau_marginal(self) -> list[float]:
        if self._marginal_cache is None:
            rows = self._weights()
            self._marginal_cache = [sum(col) for col in zip(*rows, strict=True)]
        return self._marginal_cache

    def threshold_marginal(self) -> list[float]:
        """P(threshold position u = 0 .. G + 1), positions from the failing side."""
        tau = self._tau_marginal()
        return [tau[2 * t] + tau[2 * t + 1] for t in range(self.size + 2)]

    def noise_marginal(self) -> list[tuple[float, float]]:
        """``(noise scale in grid steps, probability)`` for each scale of the prior."""
        rows = self._weights()
        return [(sigma, sum(row)) for sigma, row in zip(self.noise, rows, strict=True)]

    def noise_scale_marginal(self) -> list[tuple[float, float]]:
        """``(noise scale, probability)`` in the swept value's own terms: on a grid of
        evenly spaced candidates a distance (the spacing times the scale in grid steps),
        on a geometric one (``scale="log"``) a factor. The success rate climbs from about
        27% to 73% across one scale either side of the threshold (``target_rate=0.5``).

        Example:
            >>> model = NoisyThreshold(BisectionSpace(0, 20, 0.5))  # grid steps of 0.25
            >>> model.noise[0], model.noise_scale_marginal()[0][0]
            (0.05, 0.0125)
        """
        values = self.grid.values
        if self.grid.geometric:
            step = math.log(values[-1] / values[0]) / self.size
            return [(math.exp(sigma * step), p) for sigma, p in self.noise_marginal()]
        step = float(values[-1] - values[0]) / self.size
        return [(sigma * step, p) for sigma, p in self.noise_marginal()]

    def _quantile_position(self, marginal: Sequence[float], q: float) -> int:
        cumulative = 0.0
        for position, p in enumerate(marginal):
            cumulative += p
            if cumulative >= q - 1e-12:
                return position
        return len(marginal) - 1

    def _value_at(self, position: int) -> Number | None:
        """The grid value of a threshold position (None: beyond the success end)."""
        if position > self.size:
            return None
        return self.grid.values[self._index(position)]

    @property
    def estimate(self) -> Number | None:
        """The Bayes answer for "within ``precision`` of the threshold" (0-1 loss), exact
        answers weighted a little more: the value inside the credible interval whose
        window (the values within ``precision`` of it) holds the most posterior mass,
        plus :data:`CENTRE_WEIGHT` times its own; while the outcomes look deterministic,
        the likeliest value among windows within :data:`WINDOW_TIE` of the most. A value that
        alone holds :data:`MODE_WINS` of the mass (a deterministic rule, searched to the
        end) is the answer itself, at a range end a majority. None when the answer is
        "beyond the range".

        Measured on W9 (benchmarks/w9_threshold.py, 1,000+ searches, paired): the window
        lands within 1 of the truth about 3 points more often than weighting the centre
        value twice, which pulls the answer towards a lone peak. The tie for
        deterministic-looking outcomes changes no W9 answer and gives a deterministic
        rule at ``target_rate=0.3`` its exact answer (the window one value lower held
        0.5% more); applied to every search it cost 0.002 to 0.006 at s = 3."""
        marginal = self.threshold_marginal()
        mode = max(range(self.size + 2), key=marginal.__getitem__)
        at_an_end = mode in (0, self.size, self.size + 1)
        if marginal[mode] >= (END_MODE_WINS if at_an_end else MODE_WINS):
            return self._value_at(mode)
        values = self.grid.values
        windows: list[float] = []
        lo = 0
        hi = 0
        mass = 0.0
        # A sliding window over positions 0..G: [lo, hi) holds the positions whose
        # values lie within precision of the centre's.
        for centre in range(self.size + 1):
            centre_value = values[self._index(centre)]
            while hi <= self.size and abs(values[self._index(hi)] - centre_value) <= self._reach:
                mass += marginal[hi]
                hi += 1
            while abs(values[self._index(lo)] - centre_value) > self._reach:
                mass -= marginal[lo]
                lo += 1
            windows.append(mass)
        most = max(windows)
        if marginal[-1] * (1 + TIE_WEIGHT) >= most:
            return None  # beyond the success end holds more than any window inside
        # Centres inside the credible interval only: with little data (a flat posterior
        # leaning to one end) the best window can sit in the tail the interval leaves out.
        first, last = self._interval_positions()
        first = min(first, self.size)
        centres = range(first, max(first, min(last, self.size)) + 1)
        if self._looks_deterministic():
            best = max(windows[c] for c in centres)
            near = [c for c in centres if windows[c] >= best - WINDOW_TIE]
            return self._value_at(max(near, key=marginal.__getitem__))
        return self._value_at(
            max(centres, key=lambda c: windows[c] + CENTRE_WEIGHT * marginal[c])
        )

    def _looks_deterministic(self) -> bool:
        """Every failure lies on the failing side of every success (no value has had both
        verdicts), and the noise is most likely under a quarter of a candidate step:
        outcomes a step function gives."""
        tallies = [(self._u(i), sum(v), len(v)) for i, v in self.outcomes.items()]
        if not fits_a_step(tallies):  # positions count from the failing side
            return False
        cumulative = 0.0
        for sigma, p in self.noise_marginal():
            cumulative += p
            if cumulative >= 0.5:
                return sigma < 0.25
        return False

    def _interval_positions(self) -> tuple[int, int]:
        marginal = self.threshold_marginal()
        tail = (1 - self.confidence) / 2
        return (
            self._quantile_position(marginal, tail + 1e-12),
            self._quantile_position(marginal, 1 - tail),
        )

    @property
    def interval(self) -> tuple[Number | None, Number | None]:
        """The credible bracket ``(failing side, success side)`` as bisection's interval
        reads: the threshold lies past the first, at or before the second (ascending
        order; ``None`` where it is unbounded, beyond a range end)."""
        first, last = self._interval_positions()
        fail_side = None if first == 0 else self.grid.values[self._index(first - 1)]
        success_side = self._value_at(last)
        pair = (fail_side, success_side)
        return pair if self.space.success_lower else (pair[1], pair[0])

    @property
    def outside_range(self) -> OutsideRange | None:
        """Beyond which end the threshold most likely lies, if beyond one."""
        median = self._quantile_position(self.threshold_marginal(), 0.5)
        if 0 < median <= self.size:
            return None
        all_succeed = median == 0  # else every value fails
        # With lower values better, successes lie above the threshold: all succeeding
        # puts it at or below lo.
        return "below" if all_succeed == self.space.success_lower else "above"

    @property
    def resolved(self) -> bool:
        """Whether the interval is as narrow as asked (or as the grid allows: one value),
        or the threshold lies beyond an end at the asked confidence."""
        marginal = self.threshold_marginal()
        if marginal[0] >= self.confidence or marginal[-1] >= self.confidence:
            return True
        first, last = self._interval_positions()
        if first == last and 0 < first <= self.size:
            return True
        lo, hi = self.interval
        if lo is None or hi is None:
            return False
        return abs(hi - lo) <= self.space.precision * (1 + 1e-9)

    @property
    def coarsest_step(self) -> float:
        """The widest gap between neighbouring candidate values (the answer's resolution)."""
        values = self.grid.values
        return max(float(b - a) for a, b in zip(values, values[1:], strict=False))

    @property
    def done(self) -> bool:
        return self.proposed >= self.max_jobs or self.resolved or self.stalled

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the search is done: ``"resolved"`` (as narrow as asked, or beyond an end),
        ``"repetitions"`` (none left where they would decide the answer), ``"max_jobs"``;
        None while it goes on, and while jobs it proposed have not been recorded."""
        if self.jobs < self.proposed:
            return None
        if self.resolved:
            return "resolved"
        if self.stalled:
            unjudged = any(self._index(u) in self.blocked_indices for u in self._decisive())
            return "unjudged" if unjudged else "repetitions"
        if self.proposed >= self.max_jobs:
            return "max_jobs"
        return None

    @property
    def stalled(self) -> bool:
        """Whether no value that decides the answer can be tested again (its repetitions
        used up, or its last jobs unjudged, :data:`UNJUDGED_IN_A_ROW`): those in the
        credible interval and its failing-side neighbour. Jobs elsewhere could not narrow
        it (a deterministic rule with one repetition per value stops here, after
        bisection's path, instead of testing every value of the range)."""
        return not any(self._open(self._index(u)) for u in self._decisive())

    def _decisive(self) -> range:
        """Positions of the values that decide the answer."""
        first, last = self._interval_positions()
        return range(max(0, first - 1), min(last, self.size) + 1)

    @property
    def blocked_indices(self) -> set[int]:
        """Grid indices not tested again: their last jobs could not be judged."""
        return {i for i, n in self.unjudged_in_a_row.items() if n >= UNJUDGED_IN_A_ROW}

    def _open(self, index: int) -> bool:
        """Whether the value at ``index`` can be tested again."""
        if self.unjudged_in_a_row.get(index, 0) >= UNJUDGED_IN_A_ROW:
            return False
        return self.pool is None or self.used.get(index, 0) < self.pool

    # -- choosing values -------------------------------------------------------------

    def propose(self, k: int) -> list[Number]:
        """Up to ``k`` values (repeats allowed) for this round's jobs: at the posterior's
        quantiles ``1/(k+1) .. k/(k+1)``; [] once done. Each is one job."""
        if k < 1:
            raise ValueError(f"k={k!r}: a round runs at least one job")
        if self.done:
            return []
        k = min(k, self.max_jobs - self.proposed)
        cdf: list[float] = []
        total = 0.0
        for p in self.threshold_marginal()[: self.size + 1]:
            total += p
            cdf.append(total)
        values: list[Number] = []
        for i in range(k):
            # Test where P(threshold at or before u) is closest to the quantile: a job
            # there splits the hypotheses as the quantile says. (Testing at the
            # quantile's own position would ask, once the mass sits on two neighbours,
            # only the question whose answer is already known.)
            q = 0.5 + SPREAD * ((i + 1) / (k + 1) - 0.5)
            position = min(range(self.size + 1), key=lambda u: abs(cdf[u] - q))
            index = self._available(self._index(position))
            if index is None:
                break
            self.used[index] = self.used.get(index, 0) + 1
            values.append(self.grid.values[index])
        self.proposed += len(values)
        return sorted(values)

    def _available(self, index: int) -> int | None:
        """``index``, or the nearest grid index that can be tested again."""
        if self._open(index):
            return index
        for distance in range(1, self.size + 1):
            for candidate in (index - distance, index + distance):
                if 0 <= candidate <= self.size and self._open(candidate):
                    return candidate
        return None

    def posterior(self, min_probability: float = 1e-4) -> list[tuple[Number | None, float]]:
        """``(threshold value, probability)`` where it exceeds ``min_probability``, in value
        order; ``None`` stands for "beyond the success end of the range"."""
        pairs = [
            (self._value_at(t), p)
            for t, p in enumerate(self.threshold_marginal())
            if p > min_probability
        ]
        return pairs if self.space.success_lower else pairs[::-1]
