"""The search index: what ``runner status`` reads instead of every job folder.

A sweep of 100,000 jobs has 100,000 ``job.json`` files; reading them all takes
seconds. The driver keeps, in each search folder, ``.runner/index.jsonl``: a
journal it appends to in O(1) per job, one line per event:

* ``{"started": <the summary's started>}``: a run of the search begins;
* ``{"queued": [{"dir": ..., "point": ...}, ...]}``: a batch of jobs submitted;
* ``{"dir": ..., "status": ..., <job.json's fields>}``: a job that ended, as its
  ``job.json`` says (the folder stays the truth; this is a copy).

``dir`` is the job folder relative to the search folder. When the search ends,
the journal is compacted (the last state of every job, on one line
``{"rows": [...]}``, rewritten atomically), so a finished sweep reads in one parse. :func:`read_index` gives the last state of
each job; a job the index does not know as ended (queued, running, or cancelled
with its search) is read from its own ``job.json``. The index is only a cache: with it missing or unreadable,
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

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from runner.job_folder import atomic_write_bytes, read_job_json
from runner.job_pickle import SHARED_DIR
from runner.jobs import job_dir_of

__all__ = [
    "INDEX_FILE",
    "IndexRows",
    "SearchIndex",
    "index_path",
    "parse_index",
    "read_index",
    "refresh_unfinished",
]

logger = logging.getLogger("runner")

INDEX_FILE = "index.jsonl"

#: job.json's fields that a status table shows; the rest stay in the folder.
#: States of a job that has not ended (the index may be behind its folder).
_UNFINISHED = ("queued", "running")

_FIELDS = (
    "status",
    "point",
    "device",
    "host",
    "pid",
    "attempt",
    "start_time",
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
        self._closed = False

    def _append(self, obj: Any) -> None:
        if self._broken or self._closed:
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

    def begin(self, started: float) -> None:
        """Stamp the journal with this run's start (the summary's ``started``): a reader
        tells an index of this run from a leftover of an earlier one by it."""
        self._append({"started": started})

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
        row = _row(record)
        row["dir"] = os.path.relpath(job_dir, self.base_dir)
        self._append(row)

    def close(self, *, compact: bool, summary_path: str | None = None) -> None:
        """Stop appending; with ``compact``, rewrite the journal as one line of all the rows.

        ``summary_path``: the search's final ``summary.json``: its fields but the per-job
        lines go into the index too, with the file's version, so that a status table of
        a 100,000-job grid need not parse that (tens of MB) file.
        """
        self._closed = True
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if not compact or self._broken or not os.path.exists(self.path):
            return
        try:
            index = parse_index(self.base_dir)
            rows = refresh_unfinished(index.rows)  # a cancelled job's end is in its folder
            lines = [json.dumps({"started": index.started})] if index.started is not None else []
            head = _summary_head(summary_path) if summary_path else None
            if head is not None:
                lines.append(json.dumps(head, separators=(",", ":"), default=repr))
            # One line for all the rows: read back with one parse, not one per job (100,000
            # small parses cost seconds).
            compacted = {"rows": [_row(row) | {"dir": row["dir"]} for row in rows.values()]}
            lines.append(json.dumps(compacted, separators=(",", ":"), default=repr))
            atomic_write_bytes(self.path, ("\n".join(lines) + "\n").encode(), fsync=False)
        except (OSError, ValueError) as exc:
            logger.warning("%s: could not compact the status index: %s", self.base_dir, exc)


def _folder(base_dir: str, rel: str) -> str:
    """The absolute job folder of ``rel`` (as ``os.path.relpath`` wrote it): a plain child
    path is joined as text, cheaper than normalising each of 100,000."""
    if rel and rel != os.curdir and not rel.startswith(os.pardir) and not os.path.isabs(rel):
        return base_dir + os.sep + rel
    return os.path.normpath(os.path.join(base_dir, rel))


def _summary_head(path: str) -> dict[str, Any] | None:
    """``{"summary": <summary.json but its "jobs">, "summary_version": [mtime_ns, size]}``."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    summary.pop("jobs", None)
    return {"summary": summary, "summary_version": [st.st_mtime_ns, st.st_size]}


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """A job.json's status-table fields, those it has (a missing one reads as None)."""
    return {key: value for key in _FIELDS if (value := record.get(key)) is not None}


def _point(job: Any) -> Any:
    point = getattr(job, "point", None)
    return point if isinstance(point, dict) else None


@dataclasses.dataclass(frozen=True)
class IndexRows:
    """An index as read: the start time of the run that last wrote it, and a row per job."""

    #: The ``started`` of the search run that wrote it last (its summary's), or None
    #: for an index without the stamp.
    started: float | None
    #: By absolute job folder: ``dir`` (relative) and job.json's status-table fields.
    rows: dict[str, dict[str, Any]]
    #: The search's summary.json without its per-job lines, and that file's version
    #: (mtime_ns, size), written when the search ended; None before.
    summary: dict[str, Any] | None = None
    summary_version: tuple[int, int] | None = None


def parse_index(base_dir: str) -> IndexRows:
    """Read the journal of the search in ``base_dir``: the last line per job wins.

    Raises:
        FileNotFoundError: The search has no index (written by an older Runner, or
            its driver could not write one): walk the job folders instead.
        OSError: The index can't be read.
    """
    base_dir = os.path.abspath(base_dir)
    started: float | None = None
    rows: dict[str, dict[str, Any]] = {}
    summary: dict[str, Any] | None = None
    summary_version: tuple[int, int] | None = None
    with open(index_path(base_dir), encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):  # cut short by a crash: folders have the truth
                continue
            if not isinstance(obj, dict):
                continue
            if isinstance(obj.get("started"), (int, float)):
                started = float(obj["started"])
            elif isinstance(obj.get("summary"), dict):
                version = obj.get("summary_version")
                if isinstance(version, list) and len(version) == 2:
                    summary, summary_version = obj["summary"], (version[0], version[1])
            elif isinstance(obj.get("queued"), list):
                for entry in obj["queued"]:  # submitted (again): its last state is this run's
                    if isinstance(entry, dict) and isinstance(entry.get("dir"), str):
                        rows[entry["dir"]] = {
                            "dir": entry["dir"],
                            "status": "queued",
                            "point": entry.get("point"),
                        }
            elif isinstance(obj.get("rows"), list):  # a compacted index: every job's row
                for row in obj["rows"]:
                    if isinstance(row, dict) and isinstance(row.get("dir"), str):
                        rows[row["dir"]] = row
            elif isinstance(obj.get("dir"), str):
                rows[obj["dir"]] = obj
    by_folder = {_folder(base_dir, rel): row for rel, row in rows.items()}
    return IndexRows(started, by_folder, summary, summary_version)


def refresh_unfinished(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``rows`` with each job the index does not know as ended read from its own job.json.

    A job "queued" in the index may be running, may have ended a moment ago, or may
    have been cancelled with its search (a cancelled job's end is not journaled): its
    folder says which. Costs one read per such job only.
    """
    fresh = dict(rows)
    for folder, row in rows.items():
        if row.get("status") in _UNFINISHED:
            record = read_job_json(folder)
            if record is not None:
                fresh[folder] = _row(record) | {"dir": row["dir"]}
    return fresh


def read_index(base_dir: str) -> dict[str, dict[str, Any]]:
    """The last known state of each job of the search in ``base_dir``, by absolute job folder
    (:func:`parse_index`, then :func:`refresh_unfinished`).

    Raises:
        FileNotFoundError: The search has no index: walk the job folders instead.
        OSError: The index can't be read.
    """
    return refresh_unfinished(parse_index(base_dir).rows)
