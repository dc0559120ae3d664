"""The search index: what ``runner status`` reads instead of every job folder.

A sweep of 100,000 jobs has 100,000 ``job.json`` files; reading them all takes
seconds. The driver keeps, in each search folder, ``.runner/index.jsonl``: a
journal it appends to in O(1) per job, one line per event:

* ``{"queued": [{"dir": ..., "point": ...}, ...]}``: a batch of jobs submitted;
* ``{"dir": ..., "status": ..., <job.json's fields>}``: a job that ended, as its
  ``job.json`` says (the folder stays the truth; this is a copy).

``dir`` is the job folder relative to the search folder. When the search ends,
the journal is compacted (the last line per job, rewritten atomically), so a
finished sweep reads in one pass. :func:`read_index` gives the last state of
each job; a job still "queued" in the index while its search runs may be running:
:func:`read_index` reads that job's own ``job.json`` (at most the jobs in flight
plus those waiting). The index is only a cache: with it missing or unreadable,
``runner status`` walks the job folders as before.

Example:
    >>> import tempfile
    >>> from runner.jobs import Job
    >>> search = tempfile.mkdtemp()
    >>> index = SearchIndex(search)
    >>> job = Job(run_fn=len, config=[1], base_dir=f"{search}/a", point={"x": 1})
    >>> index.queued([job])
    >>> [(row["dir"], row["status"]) for row in read_index(search).values()]
    [('a', 'queued')]
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from runner.job_folder import atomic_write_bytes, read_job_json
from runner.job_pickle import SHARED_DIR
from runner.jobs import job_dir_of

__all__ = ["INDEX_FILE", "SearchIndex", "read_index"]

logger = logging.getLogger("runner")

INDEX_FILE = "index.jsonl"

#: job.json's fields that a status table shows; the rest stay in the folder.
_FIELDS = (
    "status",
    "point",
    "device",
    "gpu_id",
    "host",
    "pid",
    "attempt",
    "start_time",
    "end_time",
    "duration",
    "error_summary",
    "result_summary",
)


def index_path(base_dir: str) -> str:
    """Where a search folder's index lives."""
    return os.path.join(base_dir, SHARED_DIR, INDEX_FILE)


class SearchIndex:
    """The driver's side: append the events of one search's jobs; compact at the end.

    A write that fails (a full disk) disables the index with one warning: ``runner
    status`` then reads the job folders, and the search goes on.
    """

    def __init__(self, base_dir: str) -> None:
        self.base_dir = os.path.abspath(base_dir)
        self.path = index_path(self.base_dir)
        self._fd: int | None = None
        self._broken = False

    def _append(self, obj: Any) -> None:
        if self._broken:
            return
        line = (json.dumps(obj, separators=(",", ":"), default=repr) + "\n").encode()
        try:
            if self._fd is None:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o644)
            os.write(self._fd, line)  # one write of one line: appends never interleave
        except OSError as exc:
            self._broken = True
            logger.warning(
                "%s: could not write the status index (%s); `runner status` will read the "
                "job folders instead",
                self.base_dir,
                exc,
            )

    def _dir(self, job: Any) -> str:
        return os.path.relpath(job_dir_of(job), self.base_dir)

    def queued(self, jobs: Sequence[Any]) -> None:
        """Record a batch of submitted jobs (one line)."""
        if jobs:
            self._append(
                {"queued": [{"dir": self._dir(job), "point": _point(job)} for job in jobs]}
            )

    def ended(self, job: Any) -> None:
        """Record how a job ended, as its folder's ``job.json`` says."""
        job_dir = job_dir_of(job)
        record = read_job_json(job_dir) or {"status": "unknown"}
        row = {key: record.get(key) for key in _FIELDS}
        row["dir"] = os.path.relpath(job_dir, self.base_dir)
        self._append(row)

    def close(self, *, compact: bool) -> None:
        """Stop appending; with ``compact``, rewrite the journal as one line per job."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if not compact or self._broken or not os.path.exists(self.path):
            return
        try:
            rows = _read_rows(self.path)
            lines = [json.dumps(row, separators=(",", ":"), default=repr) for row in rows.values()]
            atomic_write_bytes(self.path, ("\n".join(lines) + "\n").encode(), fsync=False)
        except (OSError, ValueError) as exc:
            logger.warning("%s: could not compact the status index: %s", self.base_dir, exc)


def _point(job: Any) -> Any:
    point = getattr(job, "point", None)
    return point if isinstance(point, dict) else None


def _read_rows(path: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:  # a line cut short by a crash: the folders have the truth
                continue
            if not isinstance(obj, dict):
                continue
            if "queued" in obj:
                for entry in obj["queued"]:  # submitted (again): its last state is this run's
                    rows[entry["dir"]] = {
                        "dir": entry["dir"],
                        "status": "queued",
                        "point": entry.get("point"),
                    }
            elif isinstance(obj.get("dir"), str):
                rows[obj["dir"]] = obj
    return rows


def read_index(base_dir: str, *, search_running: bool = True) -> dict[str, dict[str, Any]]:
    """The last known state of each job of the search in ``base_dir``, by absolute job folder.

    Each row holds ``dir`` (relative) and job.json's status-table fields. While the
    search runs (``search_running``), a job the index still calls "queued" is read
    from its own ``job.json`` (it may be running, or have ended a moment ago).

    Raises:
        FileNotFoundError: The search has no index (written by an older Runner, or
            its driver could not write one): walk the job folders instead.
        OSError: The index can't be read.
    """
    base_dir = os.path.abspath(base_dir)
    rows = _read_rows(index_path(base_dir))
    found: dict[str, dict[str, Any]] = {}
    for rel, row in rows.items():
        folder = os.path.normpath(os.path.join(base_dir, rel))
        if row.get("status") == "queued" and search_running:
            record = read_job_json(folder)
            if record is not None:
                row = {key: record.get(key) for key in _FIELDS} | {"dir": rel}
        found[folder] = row
    return found
