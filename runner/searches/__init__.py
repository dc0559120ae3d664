"""Searches: one driver that every search kind shares, the kinds as strategies over it.

* :mod:`~runner.searches.driver`: the sync entry point, each search's lifecycle
  (summaries, results pickle, what a stopped search saw), running batches of jobs.
* :mod:`~runner.searches.grid`, :mod:`~runner.searches.binary` (bisection), and
  :mod:`~runner.searches.noisy` (``method="probabilistic"``): the kinds.
* :mod:`~runner.searches.bisection` and :mod:`~runner.searches.posterior`: the
  threshold math, pure (no I/O, no asyncio), property-tested.
* :mod:`~runner.searches.points`, :mod:`~runner.searches.space`: validating a config
  and turning points into jobs.
* :mod:`~runner.searches.context`: what the searches sharing a scheduler share.
* :mod:`~runner.searches.status`: the live counters the progress display reads.
* :mod:`~runner.searches.summary`: ``summary.json`` as one typed object.
* :mod:`~runner.searches.margin`: how far a comparison rule's metric is from its target.

The public entry points stay where the spec puts them: :mod:`runner.grid_search`
and :mod:`runner.binary_search`. Nothing is imported here, so that reading a
summary (the report, the CLI) does not import the scheduler.
"""
