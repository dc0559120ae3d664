"""Searches: one driver that every search kind shares, the kinds as strategies over it.

* :mod:`~runner.searches.driver`: the sync entry point, each search's lifecycle
  (summaries, results pickle, what a stopped search saw), running batches of jobs.
* :mod:`~runner.searches.grid`, :mod:`~runner.searches.binary`: the two kinds.
* :mod:`~runner.searches.bisection`: the threshold math, pure (no I/O, no asyncio).
* :mod:`~runner.searches.points`: validating a config and turning points into jobs.
* :mod:`~runner.searches.context`: what the searches sharing a scheduler share.
* :mod:`~runner.searches.summary`: ``summary.json`` as one typed object.

The public entry points stay where the spec puts them: :mod:`runner.grid_search`
and :mod:`runner.binary_search`. Nothing is imported here, so that reading a
summary (the report, the CLI) does not import the scheduler.
"""
