"""The ``runner`` commands that look at sweeps on disk: status, show, plot and logs.

They read ``summary.json`` and ``job.json`` (``show`` unpickles a ``.pkl`` the user
names), never a running driver: they work on a sweep that runs, ended or crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import gc
import os
import sys
import time
from typing import Any, Literal

from runner._cli_common import UsageError, console, duration, print_json, rel, table
from runner.job_folder import JOB_JSON
from runner.jobs import OUT_FILE_NAME

__all__ = ["add_commands"]

#: Jobs listed without a filter before the table keeps to those that need a look.
_ALL_JOBS_UP_TO = 50


# -- status -------------------------------------------------------------------------------


def _search_name(base_dir: str, root: str) -> str:
    """The search's folder relative to DIR; its own name when it is DIR."""
    name = rel(base_dir, root)
    return os.path.basename(base_dir) if name == "." else name


def _select_searches(searches: list[Any], name: str | None, root: str) -> list[Any]:
    if name is None:
        return searches
    wanted = name.rstrip("/")
    chosen = [
        s
        for s in searches
        if wanted in (rel(s.base_dir, root), os.path.basename(s.base_dir), s.base_dir)
        or fnmatch.fnmatch(rel(s.base_dir, root), wanted)
    ]
    if not chosen:
        known = ", ".join(rel(s.base_dir, root) for s in searches) or "none"
        raise UsageError(f"--search {name!r} matches no search under {root} (searches: {known})")
    return chosen


def _points_table(row: Any, root: str, query: dict[str, Any], *, every: bool) -> Any:
    """A grid's mean +- std per point; past 50 points (no filter, no --all), the best
    points and the first ones, with a line saying how many are left out."""
    from runner._sweep_tokens import point_matches, sort_key

    stats = row.points
    shown = [p for p in stats.points if point_matches(query, p.point)] if query else stats.points
    left_out = 0
    if not query and not every and len(shown) > _ALL_JOBS_UP_TO:
        # Rendering a table of 100,000 rows takes minutes: the best and the first points.
        kept = [p for p in shown if p.best]
        kept += [p for p in shown[: _ALL_JOBS_UP_TO - len(kept)] if not p.best]
        left_out, shown = len(shown) - len(kept), kept
    shown = sorted(shown, key=lambda p: tuple(sort_key(v) for v in p.point.values()))
    keys = list(dict.fromkeys(k for p in shown for k in p.point))
    over = f" over {', '.join(stats.over)}" if stats.over else ""
    best = "highest" if stats.direction == "max" else "lowest"
    title = f"{_search_name(row.base_dir, root)}: {stats.metric} mean +- std{over}, * {best}"
    rows = [
        (
            *(p.point.get(k, "") for k in keys),
            p.text(),
            p.n,
            p.missing or "",
            "*" if p.best else "",
        )
        for p in shown
    ]
    if left_out:
        title += f" ({left_out} more point(s): --all lists them, key=value picks some)"
    return table(title, [*keys, stats.metric, "n", "failed", "best"], rows, right=["n", "failed"])


@contextlib.contextmanager
def _no_cycle_collection() -> Any:
    """The cyclic garbage collector off for a short command that builds a row per job:
    at 100,000 jobs it re-walked the live rows again and again (0.5 s of a 1.7 s
    ``runner status``), while the rows hold no cycles to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cmd_status(args: argparse.Namespace) -> int:
    with _no_cycle_collection():
        return _status(args)


def _status(args: argparse.Namespace) -> int:
    from runner._sweep_tokens import parse_point, point_matches
    from runner.report import job_rows, jobs_of, search_rows

    root = os.path.abspath(args.dir)
    if not os.path.isdir(root):
        raise UsageError(f"{args.dir!r} is not a folder; pass the base_dir of a sweep")
    query = parse_point(args.filters) if args.filters else {}
    summaries: list[str] = []  # one walk of the tree for the jobs and the searches
    all_jobs = job_rows(root, sort=False, summaries=summaries)  # sorted once filtered, below
    direction: Literal["max", "min"] = "min" if args.lower_is_better else "max"
    searches = search_rows(
        root, all_jobs, summaries=summaries, metric=args.metric, direction=direction
    )
    searches = _select_searches(searches, args.search, root)
    jobs = all_jobs
    if args.search is not None:
        jobs = [j for s in searches for j in jobs_of(s.base_dir, all_jobs)]
    if query:
        jobs = [j for j in jobs if j.point is not None and point_matches(query, j.point)]
    if args.failed:
        jobs = [j for j in jobs if j.failed]
    filtered = bool(query or args.failed or args.search)
    hidden = 0
    if not filtered and not args.all and len(jobs) > _ALL_JOBS_UP_TO:
        needs_a_look = [j for j in jobs if j.status != "ok"]
        hidden = len(jobs) - len(needs_a_look)
        jobs = needs_a_look
    jobs = sorted(jobs, key=lambda j: j.sort_key())
    if args.json:
        print_json(
            {"searches": [s.as_dict() for s in searches], "jobs": [j.as_dict() for j in jobs]}
        )
        return 0
    out = console()
    if not searches and not all_jobs:
        out.print(f"No searches or jobs under {root} (no summary.json or job.json).")
        return 0
    if searches:
        out.print(
            table(
                f"Searches under {root}",
                ["search", "kind", "status", "jobs", "run time", "ETA", "result"],
                [
                    (
                        _search_name(s.base_dir, root),
                        s.kind,
                        s.status,
                        s.jobs,
                        duration(s.duration),
                        duration(s.eta),
                        s.detail,
                    )
                    for s in searches
                ],
            )
        )
    for search in searches:
        if search.points is not None and len(search.points.points) > 1:
            out.print(_points_table(search, root, query, every=args.all))
    if jobs:
        title = "Failed jobs" if args.failed else "Jobs"
        if hidden:
            title = "Jobs that did not finish ok"
        out.print(
            table(
                title,
                ["job", "status", "device", "duration", "result / last error"],
                [
                    (rel(j.folder, root), j.status, j.device, duration(j.duration), j.detail)
                    for j in jobs
                ],
            )
        )
    elif filtered:
        out.print("No job matches the filters.")
    if hidden:
        out.print(
            f"{hidden} job(s) that finished ok are not listed: --all lists every job; "
            "key=value, --search NAME or --failed pick some.",
            markup=False,
        )
    return 0


# -- show ---------------------------------------------------------------------------------


def _cmd_show(args: argparse.Namespace) -> int:
    from runner.report import label_grid_aggregate, load_results_file, to_jsonable
    from runner.threshold_words import label_threshold

    path = args.file
    if not os.path.isfile(path):
        raise UsageError(f"{path!r} is not a file; pass a *_results_*.pkl or a summary.json")
    if not path.endswith(".json"):
        print(
            f"runner show: unpickling {path} runs code from it; open only results files you trust.",
            file=sys.stderr,
        )
    data = to_jsonable(load_results_file(path))
    if args.json:
        print_json(data)  # as stored: machines index the lists themselves
        return 0
    data = label_threshold(label_grid_aggregate(data))
    import yaml

    sys.stdout.write(
        yaml.safe_dump(
            data, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True
        )
    )
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from runner.plots import write_plots

    if not os.path.exists(args.dir):
        raise UsageError(f"{args.dir!r} does not exist; pass the base_dir of a sweep")
    props = [p for p in (args.x, args.y) if p]
    for path in write_plots(
        args.dir, out=args.out, metric=args.metric, props=props or None, success=args.success
    ):
        print(path)
    return 0


# -- logs ---------------------------------------------------------------------------------


def _job_folders(root: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if JOB_JSON in files or OUT_FILE_NAME in files:
            found.append(folder)
    return found


def _folder_point(folder: str) -> dict[str, Any]:
    """The job's swept values: job.json's point, else read from a ``k=v,k=v`` folder name."""
    from runner._sweep_tokens import parse_point
    from runner.sweep_files import read_json_object

    record = read_json_object(os.path.join(folder, JOB_JSON)) or {}
    point = record.get("point")
    if isinstance(point, dict):
        return point
    try:
        return parse_point(os.path.basename(folder))
    except Exception:  # not a k=v name
        return {}


def _by_point(root: str, folders: list[str], text: str) -> list[str]:
    """The folders whose point has every ``key=value`` of ``text`` (any order, spaces or
    commas); when several match, those with exactly these keys, if any."""
    from runner._sweep_tokens import parse_point, point_matches

    try:
        query = parse_point(text)
    except Exception:  # not key=value: a folder name then
        return []
    if not query:
        return []
    points = {f: _folder_point(f) for f in folders}
    matches = [f for f in folders if point_matches(query, points[f])]
    exact = [f for f in matches if set(points[f]) == set(query)]
    return exact if len(matches) > 1 and exact else matches


def _find_log(root: str, job: str) -> str:
    import difflib

    from runner._sweep_tokens import sort_key
    from runner.sweep_text import point_label

    for candidate in (job, os.path.join(root, job)):
        if os.path.isfile(candidate):
            return candidate
        if os.path.isdir(candidate) and (
            os.path.exists(os.path.join(candidate, OUT_FILE_NAME))
            or os.path.exists(os.path.join(candidate, JOB_JSON))
        ):
            return os.path.join(candidate, OUT_FILE_NAME)
    folders = _job_folders(root)
    names = {f: rel(f, root) for f in folders}
    matches = [f for f in folders if os.path.basename(f) == job or names[f] == job.rstrip("/")]
    if not matches:
        matches = _by_point(root, folders, job)
    matches.sort(key=lambda f: tuple(sort_key(v) for v in _folder_point(f).values()))
    if len(matches) == 1:
        return os.path.join(matches[0], OUT_FILE_NAME)
    if matches:
        labels = [point_label(_folder_point(m)) for m in matches[:20]]
        listed = "\n  ".join(
            f"{names[m]}   ({label})" for m, label in zip(matches, labels, strict=False)
        )
        more = f"\n  ... and {len(matches) - 20} more" if len(matches) > 20 else ""
        raise UsageError(
            f"{job!r} matches {len(matches)} jobs under {root}; name one by more of its "
            f"values, e.g. {labels[0] or names[matches[0]]!r}:\n  {listed}{more}"
        )
    if not folders:
        raise UsageError(f"no job folders under {root!r} (none holds job.json)")
    close = difflib.get_close_matches(job, [os.path.basename(f) for f in folders], n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = [names[f] for f in folders[:20]]
    more = f"\n  ... and {len(folders) - 20} more" if len(folders) > 20 else ""
    listed = "\n  ".join(shown)
    raise UsageError(
        f"no job {job!r} under {root}.{hint} Name it by folder or by its values "
        f"('lr=0.001 seed=1', keys in any order). Jobs:\n  {listed}{more}"
    )


def _tail_bytes(path: str, lines: int, end: int) -> bytes:
    """The last ``lines`` lines of the file's first ``end`` bytes, reading backwards in blocks."""
    block = 64 * 1024
    data = b""
    with open(path, "rb") as f:
        pos = end
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    if lines <= 0:
        return b""
    parts = data.split(b"\n")
    trailing = parts[-1] == b""
    if trailing:
        parts = parts[:-1]
    return b"\n".join(parts[-lines:]) + (b"\n" if trailing else b"")


def _cmd_logs(args: argparse.Namespace) -> int:
    root = os.path.abspath(args.dir)
    if not os.path.isdir(root):
        raise UsageError(f"{args.dir!r} is not a folder; pass the base_dir of a sweep")
    if args.lines < 0:
        raise UsageError(f"--lines {args.lines} must be >= 0")
    path = _find_log(root, " ".join(args.job))
    out = sys.stdout.buffer
    try:
        while not os.path.exists(path):
            if not args.follow:
                raise UsageError(f"{path} does not exist yet: the job has not started")
            time.sleep(0.25)  # -f on a queued job: wait for its log to appear
        end = os.path.getsize(path)
        out.write(_tail_bytes(path, args.lines, end))
        out.flush()
        if not args.follow:
            return 0
        with open(path, "rb") as f:
            f.seek(end)
            while True:
                chunk = f.read(64 * 1024)
                if chunk:
                    out.write(chunk)
                    out.flush()
                    continue
                if os.path.getsize(path) < f.tell():  # truncated: start over
                    f.seek(0)
                time.sleep(0.2)  # polling, like tail -f without inotify
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `runner logs ... | head`
        return 0


# -- the parsers --------------------------------------------------------------------------


def add_commands(sub: Any) -> None:
    """Add status, show, plot and logs to the ``runner`` parser's sub-parsers."""
    p = sub.add_parser(
        "status",
        help="the searches under DIR, a grid's result per point, and the jobs",
        description="Searches (summary.json) and jobs (job.json) under DIR. A grid shows "
        "its metric's mean +- std per point over the seeds (props named seed or *_seed), "
        "the best point marked. Jobs are listed by their values as numbers; past "
        f"{_ALL_JOBS_UP_TO} jobs only those not ok are, unless --all or a filter. A search "
        "whose jobs wait for slots shows 'queued'; run time and ETA count from its first "
        "job. Reads JSON only (no unpickling); a 'running' job whose process is gone "
        "shows as 'lost'.",
        epilog="examples: runner status runs/lr --failed;  runner status runs lr=0.001 "
        "seed=1;  runner status runs --search lr --metric loss --lower-is-better",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument(
        "filters",
        nargs="*",
        metavar="key=value",
        help="only the jobs (and grid points) with these values",
    )
    p.add_argument("--failed", action="store_true", help="only the jobs that did not succeed")
    p.add_argument(
        "--search",
        default=None,
        metavar="NAME",
        help="only this search: its folder (relative to DIR), its name, or a glob",
    )
    p.add_argument("--all", action="store_true", help="list every job, however many")
    p.add_argument(
        "--metric",
        default=None,
        help="what a grid's points are compared by: a key of dict results, or an expression "
        "over result (default: the result, or its first numeric key)",
    )
    p.add_argument(
        "--lower-is-better",
        action="store_true",
        help="the best point has the lowest mean (a loss), not the highest",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser(
        "show",
        help="print a results .pkl or summary.json readably",
        description="Print a results file; a grid's aggregate is labelled with each "
        "job's point; a threshold search's answer comes first, in words: its interval (and "
        "the probabilistic method's estimate), whether the threshold may lie beyond the "
        "range, contradicting verdicts, the margin at the answer. A .pkl is unpickled, which runs code from it: only open files you "
        "trust. summary.json is plain JSON.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON (for machines)")
    p.set_defaults(handler=_cmd_show)

    p = sub.add_parser(
        "plot",
        help="PNG plots of the searches under DIR",
        description="A PNG per search under DIR. A threshold (binary) search: the "
        "metric of each job and the aggregate per tested value, the success fraction and "
        "count per value, the posterior (probabilistic) or the bracket per round "
        "(bisection), the answer and its interval, contradicting pairs and an untested "
        "range end marked; log x when the values span decades, and a second column zoomed "
        "on the answer when the full axis squashes it. A grid: its numeric job result "
        "averaged over the other swept props (seeds): lines for one prop, a heatmap for "
        "two. Needs matplotlib (runner[plot]).",
        epilog="examples: runner plot runs/size --success 'result[\"acc\"] >= 0.9';  "
        "runner plot runs/ -o plots/ --metric loss",
    )
    p.add_argument(
        "dir", metavar="DIR", help="a sweep's base_dir, a parent of several, or a summary.json"
    )
    p.add_argument(
        "-o",
        "--out",
        default=None,
        metavar="OUT",
        help="folder for the PNGs (default: each search's own folder)",
    )
    p.add_argument(
        "--metric",
        default=None,
        help="what to plot of each job's result: a key of dict results (acc), or an "
        "expression over result (default: the result, or its first numeric key)",
    )
    p.add_argument(
        "--success",
        default=None,
        metavar="EXPR",
        help="a threshold search's success rule, as given to runner bisect "
        "('result >= 0.5'): when it is one comparison, its target is drawn, the jobs "
        "passing it are counted, and its left side is the metric. Without it, the target "
        "is drawn when the search's margins imply one",
    )
    p.add_argument("--x", default=None, metavar="PROP", help="grid prop on the x axis")
    p.add_argument("--y", default=None, metavar="PROP", help="grid prop on the y axis (heatmap)")
    p.set_defaults(handler=_cmd_plot)

    p = sub.add_parser(
        "logs",
        help="the tail of a job's experiment_output.log",
        description="Print the end of a job's log; -f keeps printing what it writes until "
        "Ctrl-C. Name the job by its folder, or by its values as the tables print them "
        "(lr=0.001 seed=1, keys in any order, with spaces or commas; a subset is enough "
        "when it picks one job).",
        epilog="examples: runner logs runs/lr 'lr=0.001 seed=1';  runner logs runs/lr seed=1 "
        "lr=1e-3 -f",
    )
    p.add_argument("dir", metavar="DIR", help="the sweep's base_dir")
    p.add_argument(
        "job", nargs="+", metavar="JOB", help="the job's folder (or path), or its key=value pairs"
    )
    p.add_argument("-n", "--lines", type=int, default=20, help="lines to show (default 20)")
    p.add_argument("-f", "--follow", action="store_true", help="follow the log as it grows")
    p.set_defaults(handler=_cmd_logs)
