"""What the searches sharing one scheduler share, as an object passed to each of them.

A :class:`SearchContext` is made by whoever starts the searches (the run
functions make one per call) and handed to every search that runs on the same
scheduler. It holds the folder claims, so that no two points of any of them
write into one experiment folder, and the count of binary searches running
now, so that each sizes its rounds to its fair share of the slots.

Example:
    >>> context = SearchContext()
    >>> with context.active():
    ...     context.share(num_slots=8)
    8
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from runner.errors import SearchConfigError
from runner.jobs import Job, job_dir_of
from runner.searches.points import check_job_dirs_distinct, format_kwargs

__all__ = ["FolderRegistry", "SearchContext"]


class FolderRegistry:
    """Every experiment folder handed out in one context, and the point it belongs to.

    Two points sharing a folder would overwrite each other's results, and a search
    would read one point's result as the other's: a wrong answer, silently. Values
    a binary search tests in different rounds, or in other searches, are checked too.
    Claiming a folder again for the same owner and point is allowed.
    """

    def __init__(self) -> None:
        self._owners: dict[str, tuple[str, str, dict[str, Any]]] = {}

    def claim(self, jobs: Sequence[Job], owner: str) -> None:
        """Register ``jobs``' folders for ``owner``; raise if another point already has one."""
        check_job_dirs_distinct(jobs, owner)
        for job in jobs:
            folder = job_dir_of(job)
            key = repr(sorted(job.point.items()))
            previous = self._owners.get(folder)
            if previous is not None and previous[:2] != (owner, key):
                raise SearchConfigError(
                    f"{owner}: the point {format_kwargs(job.point)} maps to the experiment "
                    f"folder {folder!r}, which {previous[0]} already uses for the point "
                    f"{format_kwargs(previous[2])}; make get_experiment_config_and_base_dir put "
                    "every swept value, at full precision, in the folder name"
                )
        for job in jobs:
            self._owners[job_dir_of(job)] = (owner, repr(sorted(job.point.items())), job.point)


@dataclasses.dataclass
class SearchContext:
    """What the searches running on one scheduler share; pass the same one to each."""

    folders: FolderRegistry = dataclasses.field(default_factory=FolderRegistry)
    #: Searches that size their rounds to the free slots, running now.
    active_searches: int = 0
    #: Search folders whose driver lock the caller already holds (``drive`` takes them
    #: all before any search starts); a search takes its own lock otherwise.
    locked_folders: set[str] = dataclasses.field(default_factory=set)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Count a round-sizing search as running for the duration of the block."""
        self.active_searches += 1
        try:
            yield
        finally:
            self.active_searches -= 1

    def share(self, num_slots: int) -> int:
        """The slots one running search may fill: an equal share, at least one."""
        return max(1, num_slots // max(1, self.active_searches))
