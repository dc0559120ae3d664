"""What grid and binary searches share, now in :mod:`runner.searches` (these names still work).

There is no global table any more: the searches sharing a scheduler share an
explicit :class:`~runner.searches.context.SearchContext`.
"""

from __future__ import annotations

from runner.searches.context import FolderRegistry, SearchContext
from runner.searches.driver import count_finished, log_reusable, run_jobs
from runner.searches.points import PointBuilder, check_distinct_base_dirs, check_job_dirs_distinct
from runner.searches.status import SearchStatus

__all__ = [
    "FolderRegistry",
    "PointBuilder",
    "SearchContext",
    "SearchStatus",
    "check_distinct_base_dirs",
    "check_job_dirs_distinct",
    "count_finished",
    "log_reusable",
    "run_jobs",
]
