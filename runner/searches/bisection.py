"""The binary-search math: which values to test next, and what the answer is. Pure.

No I/O, no asyncio, no knowledge of jobs: a :class:`Bisection` is told the outcome
of each tested value and says which values to test next, so every executor and
every search driver share it, and it can be tested exhaustively.

Semantics (those of classic bisection, the spec's contract):

* The search keeps an open interval ``(lo, hi)`` and stops once
  ``hi - lo <= precision`` (for integer searches, also once ``lo`` and ``hi``
  are adjacent). The ends of the initial range are bounds: tested only when
  asked (``propose(m, ends=True)``), and then only to say what lies beyond them;
  they never move the interval, so answers inside the range stay classic ones.
* ``success_lower=True`` ("lower values are better"): a success at ``v`` moves
  the search to lower values (``hi = v``); a failure moves it up (``lo = v``).
  ``success_lower=False`` mirrors it.
* The answer is the best succeeding value tested (the bound on the success side)
  and the closest failing one (the other bound), each with its aggregated result.
  A tested range end beyond the last bracket answers for that side (a succeeding
  ``lo`` is a better success than any inside value, with lower values better).
* :attr:`Bisection.outside_range` says when every tested value succeeded (the
  threshold may lie beyond the range on the success side) or every one failed;
  :attr:`Bisection.inconsistencies` lists every non-monotone pair seen; a value
  re-judged (more repetitions) is recorded with :meth:`Bisection.revise`, which
  replays the search from the full range with the new verdict.

Parallel bisection: a round may test ``m`` values at once. Two ways of choosing
them keep the answer identical to classic bisection's:

* *tree* (the general case): the values are the midpoints classic bisection
  would test in its next rounds, breadth first (``m = 2**d - 1`` resolves ``d``
  classic rounds at once). The search then follows classic bisection's path
  through the tested values, so the answer equals classic bisection's for every
  deterministic rule, monotone or not.
* *even* (integer searches with unit precision): the ``m`` values split the
  interval evenly, shrinking it ``(m + 1)``-fold a round. Under a monotone rule
  the final bracket, two adjacent integers around the threshold, is unique, so
  the answer again equals classic bisection's, in fewer rounds than the tree.

With ``m = 1`` both are classic bisection, value for value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Bisection",
    "BisectionSpace",
    "Evaluation",
    "Inconsistency",
    "OutsideRange",
]

Number = int | float
#: Beyond which end of the range the threshold may lie: below ``lo`` or above ``hi``.
OutsideRange = Literal["below", "above"]


@dataclass(frozen=True)
class Inconsistency:
    """Two tested values whose verdicts contradict a monotone rule.

    ``success`` succeeded and ``failure`` failed on the wrong sides of each other:
    with lower values better (successes above the threshold) a success below a
    failure; with higher values better, a success above one.
    """

    success: Number
    failure: Number


@dataclass(frozen=True)
class BisectionSpace:
    """The searched interval and how to cut it.

    Example:
        >>> BisectionSpace(10, 100, precision=1, integer=True).midpoint(10, 100)
        55
    """

    lo: Number
    hi: Number
    precision: Number
    integer: bool = False
    log: bool = False
    #: ``True``: a success moves the search to lower values (lower is better).
    success_lower: bool = True

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ValueError(f"range=({self.lo!r}, {self.hi!r}): lo must be below hi")
        if not self.precision > 0:
            raise ValueError(f"precision={self.precision!r} must be positive")
        if self.log and self.lo <= 0:
            raise ValueError(f"range=({self.lo!r}, {self.hi!r}): scale='log' needs lo > 0")

    def is_resolved(self, lo: Number, hi: Number) -> bool:
        """Whether classic bisection stops on the interval ``(lo, hi)``."""
        if self.integer and hi - lo <= 1:
            return True
        return hi - lo <= self.precision or not self.interior_points(lo, hi, 1)

    def midpoint(self, lo: Number, hi: Number) -> Number:
        """The value classic bisection tests on ``(lo, hi)``."""
        points = self.interior_points(lo, hi, 1)
        if not points:
            raise ValueError(f"the interval ({lo!r}, {hi!r}) has no interior point")
        return points[0]

    def interior_points(self, lo: Number, hi: Number, m: int) -> list[Number]:
        """Up to ``m`` distinct values splitting ``(lo, hi)`` evenly, strictly inside it.

        For ``m = 1`` this is classic bisection's midpoint: ``(lo + hi) // 2`` for
        integers, the arithmetic or (``log``) geometric mean otherwise.
        """
        points: list[Number] = []
        for i in range(1, m + 1):
            value = self._split(lo, hi, i, m + 1)
            if lo < value < hi and (not points or value > points[-1]):
                points.append(value)
        return points

    def _split(self, lo: Number, hi: Number, i: int, parts: int) -> Number:
        if self.integer:
            lo_i, hi_i = int(lo), int(hi)
            if self.log:
                value = math.floor(lo_i * (hi_i / lo_i) ** (i / parts))
                # Geometric steps near lo can round back onto it; the smallest
                # useful step is one integer.
                return min(max(value, lo_i + 1), hi_i - 1)
            return lo_i + ((hi_i - lo_i) * i) // parts
        if self.log:
            return float(lo * (hi / lo) ** (i / parts))
        if 2 * i == parts:
            return (lo + hi) / 2  # the textbook midpoint, bit for bit
        return lo + (hi - lo) * i / parts


@dataclass
class Evaluation:
    """The outcome of one tested value."""

    value: Number
    success: bool
    result: Any
    round: int


@dataclass
class Bisection:
    """Classic or parallel bisection over a :class:`BisectionSpace`.

    Drive it round by round: ``propose(m)`` gives the values to test, then
    ``record(value, success, result)`` for each of them, until ``done``.

    Example:
        >>> search = Bisection(BisectionSpace(10, 100, precision=1, integer=True))
        >>> while not search.done:
        ...     for v in search.propose(1):
        ...         search.record(v, v >= 42, f"r{v}")
        >>> search.achieved, search.failed, search.interval
        ((42, 'r42'), (41, 'r41'), (41, 42))
    """

    space: BisectionSpace
    #: "tree", "even" or "auto" (even for integer searches of unit precision).
    strategy: Literal["auto", "tree", "even"] = "auto"
    lo: Number = field(init=False)
    hi: Number = field(init=False)
    rounds: int = field(init=False, default=0)
    history: list[Evaluation] = field(init=False, default_factory=list)
    _known: dict[Number, Evaluation] = field(init=False, default_factory=dict, repr=False)
    _pending: set[Number] = field(init=False, default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.lo, self.hi = self.space.lo, self.space.hi
        if self.strategy == "auto":
            unit = self.space.integer and self.space.precision <= 1
            self.strategy = "even" if unit else "tree"
        if self.strategy not in ("tree", "even"):
            raise ValueError(f"strategy={self.strategy!r}: expected 'auto', 'tree' or 'even'")

    @property
    def interval(self) -> tuple[Number, Number]:
        """The current bracket ``(lo, hi)``; the threshold lies between them."""
        return (self.lo, self.hi)

    @property
    def done(self) -> bool:
        return self.space.is_resolved(self.lo, self.hi)

    def _bounds(self) -> tuple[Number, Number]:
        """(success-side bound, failure-side bound) of the bracket."""
        return (self.hi, self.lo) if self.space.success_lower else (self.lo, self.hi)

    @property
    def achieved(self) -> tuple[Number, Any] | None:
        """``(value, result)`` of the best succeeding value tested, or ``None``."""
        success_bound, failure_bound = self._bounds()
        # The failure-side bound is a failure or an untouched range end; a tested end
        # that succeeded there beats every success inside.
        end = self._known.get(failure_bound)
        if end is not None and end.success:
            return (end.value, end.result)
        return self._outcome_at(success_bound, success=True)

    @property
    def failed(self) -> tuple[Number, Any] | None:
        """``(value, result)`` of the failing value closest to the answer, or ``None``."""
        success_bound, failure_bound = self._bounds()
        end = self._known.get(success_bound)
        if end is not None and not end.success:
            return (end.value, end.result)
        return self._outcome_at(failure_bound, success=False)

    @property
    def ends_tested(self) -> list[Number]:
        """The range ends tested so far."""
        return [end for end in (self.space.lo, self.space.hi) if end in self._known]

    @property
    def outside_range(self) -> OutsideRange | None:
        """Where the threshold may lie beyond the range: every tested value succeeded
        (it may lie past the end on the success side) or every one failed; else None.

        A tested end that says otherwise (it failed while all inside succeeded) closes
        that side: the threshold is then inside, next to the end.
        """
        verdicts = {e.success for e in self._known.values()}
        if len(verdicts) != 1:
            return None
        (all_succeeded,) = verdicts
        success_below = self.space.success_lower  # successes lie above the threshold
        return "below" if all_succeeded == success_below else "above"

    @property
    def inconsistencies(self) -> list[Inconsistency]:
        """Every pair of tested values whose verdicts no monotone rule gives, in value order."""
        ordered = sorted(self._known.values(), key=lambda e: e.value)
        pairs = []
        for i, low in enumerate(ordered):
            for high in ordered[i + 1 :]:
                if low.success == high.success:
                    continue
                # Lower values better: successes belong above failures.
                wrong = low.success if self.space.success_lower else high.success
                if wrong:
                    success, failure = (low, high) if low.success else (high, low)
                    pairs.append(Inconsistency(success.value, failure.value))
        return pairs

    def propose(self, m: int = 1, *, ends: bool | Literal["if_room"] = False) -> list[Number]:
        """The values to test this round (at most ``m``, at least one unless done).

        With ``ends=True`` the range ends not yet tested come on top of the ``m``; with
        ``"if_room"``, only when the round leaves two of its ``m`` places idle (the
        interval holds fewer values than that), so testing them costs no round. Every
        proposed value must be recorded before the next call.
        """
        if m < 1:
            raise ValueError(f"m={m!r}: a round tests at least one value")
        if self._pending:
            raise RuntimeError(f"values {sorted(self._pending)} were proposed but not recorded")
        if self.done:
            return []
        if self.strategy == "even":
            points = self.space.interior_points(self.lo, self.hi, m)
        else:
            points = self._tree_points(m)
        points = [p for p in points if p not in self._known]
        if ends == "if_room":
            ends = len(points) + 2 <= m
        if ends:
            points += [end for end in (self.space.lo, self.space.hi) if end not in self._known]
        self.rounds += 1
        self._pending = set(points)
        return sorted(points)

    def record(self, value: Number, success: bool, result: Any = None) -> None:
        """Report the outcome of a proposed value."""
        if value not in self._pending:
            raise ValueError(f"value {value!r} was not proposed in this round")
        self._pending.discard(value)
        evaluation = Evaluation(value, bool(success), result, self.rounds)
        self._known[value] = evaluation
        self.history.append(evaluation)
        if not self._pending:
            self._advance()

    def revise(self, value: Number, success: bool, result: Any = None) -> None:
        """Replace the verdict of a tested value (judged again on more repetitions) and
        replay the search from the full range, as if that verdict had come first."""
        if self._pending:
            raise RuntimeError(f"values {sorted(self._pending)} were proposed but not recorded")
        previous = self._known.get(value)
        if previous is None:
            raise ValueError(f"value {value!r} was never tested, so it can't be revised")
        self._known[value] = Evaluation(value, bool(success), result, previous.round)
        self.lo, self.hi = self.space.lo, self.space.hi
        self._advance()

    def _tree_points(self, m: int) -> list[Number]:
        """Classic bisection's next untested midpoints, breadth first."""
        points: list[Number] = []
        frontier: list[tuple[Number, Number]] = [(self.lo, self.hi)]
        while frontier and len(points) < m:
            next_frontier: list[tuple[Number, Number]] = []
            for lo, hi in frontier:
                if self.space.is_resolved(lo, hi):
                    continue
                mid = self.space.midpoint(lo, hi)
                if mid not in self._known:
                    points.append(mid)
                    if len(points) == m:
                        break
                next_frontier += [(lo, mid), (mid, hi)]
            frontier = next_frontier
        return points

    def _advance(self) -> None:
        if self.strategy == "tree":
            self._follow_classic_path()
        else:
            self._bracket()

    def _move(self, value: Number, success: bool) -> None:
        if success == self.space.success_lower:
            self.hi = value
        else:
            self.lo = value

    def _follow_classic_path(self) -> None:
        while not self.done:
            evaluation = self._known.get(self.space.midpoint(self.lo, self.hi))
            if evaluation is None:
                return
            self._move(evaluation.value, evaluation.success)

    def _bracket(self) -> None:
        inside = sorted(v for v in self._known if self.lo < v < self.hi)
        self._bracket_points(inside)

    def _bracket_points(self, values: Sequence[Number]) -> None:
        # Walk from the failing side while results fail; the first success
        # closes the bracket. Under a monotone rule this is the unique bracket.
        failing_first = self.space.success_lower
        ordered = list(values) if failing_first else list(reversed(values))
        for value in ordered:
            evaluation = self._known[value]
            self._move(value, evaluation.success)
            if evaluation.success:
                return

    def _outcome_at(self, bound: Number, *, success: bool) -> tuple[Number, Any] | None:
        evaluation = self._known.get(bound)
        if evaluation is None or evaluation.success != success:
            return None
        return (evaluation.value, evaluation.result)
