"""What ``runner grid`` and ``runner bisect`` print when a sweep ends: the job table (for
a large grid, its failed jobs), the mean +- std per point over the seeds, and where the
results are with the first failure."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from runner._cli_common import safe_text, table
from runner.sweep_text import Failure, end_message

__all__ = ["JOB_ROWS", "first_failure_of", "grid_tables", "job_table_rows", "print_end"]

#: Jobs a finished grid lists one by one; past that, its points and failed jobs.
JOB_ROWS = 50


def job_table_rows(jobs: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A row per job summary (summary.json's form): point, status, device, duration, result."""
    from runner.sweep_text import format_duration

    rows = []
    for job in jobs:
        point = " ".join(f"{k}={v}" for k, v in (job.get("point") or {}).items())
        detail = job.get("result") if job.get("success") else job.get("error")
        rows.append(
            (
                point,
                job.get("status"),
                "cpu" if job.get("device") is None else job.get("device"),
                format_duration(job.get("duration")) if job.get("duration") is not None else "",
                detail if isinstance(detail, str) else json.dumps(detail, default=repr),
            )
        )
    return rows


def grid_tables(jobs: Sequence[dict[str, Any]], title: str) -> list[Any]:
    """The job table of a small grid; mean +- std per point when seeds repeat a point;
    for a large grid, the points and the jobs that failed."""
    from runner.errors import ReportError
    from runner.grid_points import point_stats

    tables = []
    ok = [(dict(j.get("point") or {}), j.get("result")) for j in jobs if j.get("success")]
    failed = [dict(j.get("point") or {}) for j in jobs if not j.get("success")]
    stats = None
    try:
        stats = point_stats(ok, failed=failed) if ok else None
    except ReportError:  # results that are not numbers: the job table shows them
        pass
    many = len(jobs) > JOB_ROWS
    if not many or stats is None:
        tables.append(
            table(
                title,
                ["point", "status", "device", "duration", "result / error"],
                job_table_rows(jobs),
            )
        )
    if stats is not None and len(stats.points) < len(jobs):
        over = f" over {', '.join(stats.over)}" if stats.over else ""
        keys = list(dict.fromkeys(k for p in stats.points for k in p.point))
        tables.append(
            table(
                f"{stats.metric} mean +- std per point{over}, * highest",
                [*keys, stats.metric, "n", "failed", "best"],
                [
                    (
                        *(p.point.get(k, "") for k in keys),
                        p.text(),
                        p.n,
                        p.missing or "",
                        "*" if p.best else "",
                    )
                    for p in stats.points
                ],
            )
        )
    if many and stats is not None and failed:
        bad = [j for j in jobs if not j.get("success")]
        tables.append(
            table(
                f"{len(bad)} failed job(s)",
                ["point", "status", "device", "duration", "error"],
                job_table_rows(bad),
            )
        )
    return tables


def first_failure_of(summary: Any) -> Failure | None:
    """The first failed job of a binary search's summary (its tested values' jobs)."""
    from runner.jobs import OUT_FILE_NAME

    for tested in getattr(summary, "points", None) or []:
        for job in tested.jobs:
            if not job.success:
                log = os.path.join(job.base_dir, OUT_FILE_NAME) if job.base_dir else None
                return Failure(dict(job.point), job.error, log)
    return None


def print_end(console: Any, label: str, base_dir: str, failure: Failure | None) -> None:
    """Where the results are, the commands to look at them, and the first failure."""
    for line in end_message(label, os.path.abspath(base_dir), failure):
        console.print(safe_text(line), markup=False, soft_wrap=True)
