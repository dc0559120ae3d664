"""Settings for the whole suite.

Hypothesis draws the same examples on every run (``derandomize``), with no example
database carried between runs: a property test that passes here passes in CI, and a
failure found once is found again.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")
