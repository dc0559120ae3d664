"""The binary-search math, now in :mod:`runner.searches.bisection` (this path still works)."""

from __future__ import annotations

from runner.searches.bisection import Bisection, BisectionSpace, Evaluation

__all__ = ["Bisection", "BisectionSpace", "Evaluation"]
