"""Finding and reading a sweep's files on disk, trusting none of them.

``runner status``, ``show`` and ``plot`` read folders that anyone may have written
to: a file may be half-written, damaged, of another program, or hostile (nested
100,000 levels deep). Every reader here skips such a file with one warning and
goes on. A search folder with a fresh status index (:mod:`runner.search_index`)
has its job folders read from the index instead of walked.

Example:
    >>> list(walk_files("/nonexistent", "job.json"))
    []
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from runner.errors import ReportError
from runner.job_folder import JOB_JSON
from runner.search_index import IndexRows, index_path, parse_index, refresh_unfinished
from runner.search_results import SUMMARY_FILE

__all__ = [
    "check_dir",
    "each_row",
    "job_records",
    "read_json_object",
    "skip_file",
    "walk_files",
]

logger = logging.getLogger("runner")

_SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "node_modules"})


def walk_files(
    root: str,
    name: str,
    indexes: dict[str, dict[str, dict[str, Any]]] | None = None,
    summaries: list[str] | None = None,
) -> Iterator[str]:
    """Paths of every file called ``name`` under ``root``, in a stable order.

    A search folder with a status index (:mod:`runner.search_index`) that is not
    older than its summary has its job folders read from the index, not walked: they
    are left out here, and the index goes into ``indexes`` (search folder -> rows).
    The ``summary.json`` files met go into ``summaries``, so that one walk serves both
    a status table's jobs and its searches.
    """
    for folder, dirs, files in os.walk(root):
        covered: set[str] = set()
        if SUMMARY_FILE in files:
            if summaries is not None:
                summaries.append(os.path.join(folder, SUMMARY_FILE))
            index = _fresh_index(folder)
            if index is not None:
                if indexes is not None:
                    indexes[folder] = index
                # Its job folders that are children of the search folder: not walked.
                covered = {
                    rel
                    for rel in (row.get("dir") for row in index.values())
                    if isinstance(rel, str) and rel and os.sep not in rel and rel != os.pardir
                }
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".") and d not in covered
        )
        if name in files:
            yield os.path.join(folder, name)


def job_records(
    root: str, summaries: list[str] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(job folder, record)`` of every job under ``root``: its ``job.json``, or its row
    in its search's status index when that index is fresh (see :func:`walk_files`, which
    also lists the ``summary.json`` files met into ``summaries``).

    Example:
        >>> list(job_records("/nonexistent"))
        []
    """
    indexes: dict[str, dict[str, dict[str, Any]]] = {}
    walked: dict[str, dict[str, Any]] = {}
    for path in walk_files(root, JOB_JSON, indexes, summaries):
        record = read_json_object(path)
        if record is not None:
            walked[os.path.dirname(path)] = record
    indexed: dict[str, dict[str, Any]] = {}
    for index in indexes.values():
        for folder, record in index.items():
            if isinstance(record, dict):
                indexed[folder] = record
    # A job folder nested deeper than its search's children, or outside its search's
    # folder, is walked too: its index row stands for it, once.
    for folder, record in walked.items():
        if folder not in indexed:
            yield folder, record
    yield from indexed.items()


#: Indexes parsed in this process, by path: ((mtime_ns, size), what was parsed).
_INDEX_CACHE: dict[str, tuple[tuple[int, int], IndexRows]] = {}


def _fresh_index(search_dir: str) -> dict[str, dict[str, Any]] | None:
    """The search's index rows, or None when it has none or it is not this run's."""
    path = index_path(search_dir)
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_mtime_ns, st.st_size)
    cached = _INDEX_CACHE.get(path)
    try:
        index = cached[1] if cached is not None and cached[0] == key else parse_index(search_dir)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        logger.warning("%r: unreadable status index (%s); reading its job folders", path, exc)
        return None
    _INDEX_CACHE[path] = (key, index)
    summary_path = os.path.join(search_dir, SUMMARY_FILE)
    version = _version(summary_path)
    if index.summary is not None and version is not None and version == index.summary_version:
        # The index holds this very summary.json but its per-job lines: no need to parse it.
        _SUMMARY_CACHE[summary_path] = (version, index.summary)
    summary = read_summary_object(summary_path) or {}
    started = summary.get("started")
    if isinstance(started, (int, float)) and not isinstance(started, bool):
        # Another run wrote the summary since (an older Runner keeps no index): stale.
        stale = index.started != started if index.started is not None else st.st_mtime < started
        if stale:
            return None
    return refresh_unfinished(index.rows)  # never cached: the jobs in flight move on


#: Summaries read in this process, by path: ((mtime_ns, size), object). A status table
#: reads a search's summary.json twice (the index's freshness, the search's row), and a
#: 100,000-job grid's summary is tens of MB.
_SUMMARY_CACHE: dict[str, tuple[tuple[int, int], dict[str, Any] | None]] = {}


def _version(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def read_summary_object(path: str) -> dict[str, Any] | None:
    """:func:`read_json_object` for a ``summary.json``, read once per version of the file
    (a status table may be given it without its per-job lines, from the search's index)."""
    key = _version(path)
    if key is None:
        return None
    cached = _SUMMARY_CACHE.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    data = read_json_object(path)
    _SUMMARY_CACHE[path] = (key, data)
    return data


def read_json_object(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``; None, with a one-line warning, when it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:  # removed between the walk and the read
        return None
    except (OSError, ValueError, RecursionError) as exc:  # damaged, not ours, or hostile
        skip_file(path, exc)
        return None
    if not isinstance(data, dict):
        skip_file(path, f"holds a JSON {type(data).__name__}, not an object")
        return None
    return data


def skip_file(path: str, why: object) -> None:
    if isinstance(why, BaseException):
        why = f"{type(why).__name__}: {str(why)[:200]}"
    logger.warning("skipping %r: %s", path, why)  # %r: the name itself may hold escapes


def each_row(path: str, make: Any, *args: Any, **kwargs: Any) -> Any:
    """``make(path, ...)``, or None with a warning when the file's content breaks it."""
    try:
        return make(path, *args, **kwargs)
    except ReportError:  # the user's request (a --metric) is at fault, not the file
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        skip_file(path, exc)
        return None


def check_dir(root: str) -> str:
    if not os.path.isdir(root):
        raise ReportError(f"{root!r} is not a folder; pass the base_dir of a sweep")
    return os.path.abspath(root)
