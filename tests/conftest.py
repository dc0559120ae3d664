"""Settings for the whole suite.

Hypothesis draws the same examples on every run (``derandomize``), with no example
database carried between runs: a property test that passes here passes in CI, and a
failure found once is found again. To explore with fresh random examples, run with
``HYPOTHESIS_PROFILE=random`` (or pytest's ``--hypothesis-profile random``).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("random", derandomize=False, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
