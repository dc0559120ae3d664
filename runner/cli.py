"""The ``runner`` command: start sweeps from the shell, watch them, inspect and plot them.

Commands (``runner COMMAND --help`` for each)::

    runner status DIR            searches and jobs under DIR (job.json/summary.json only)
    runner show FILE [--json]    a results .pkl or summary.json, readably
    runner plot DIR [-o OUT]     PNG plots: binary-search traces, grid lines/heatmaps
    runner logs DIR JOB [-f]     the tail of a job's experiment_output.log
    runner gpus                  the devices Runner would use, and why
    runner grid SCRIPT:FN key=[a,b] ...          a grid search of a script's function
    runner bisect SCRIPT:FN key=lo:hi --precision P --success EXPR

Bad arguments exit with code 2 and a one-line message; a sweep whose jobs
failed exits with 1; Ctrl-C exits with 130 once every job is stopped.

Example:
    >>> main(["gpus", "--json"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["build_parser", "main"]

from runner.job_folder import JOB_JSON
from runner.jobs import OUT_FILE_NAME

logger = logging.getLogger("runner")

_LOG_NAME = OUT_FILE_NAME


class _UsageError(Exception):
    """A bad argument found after parsing: exit 2 with the message, no traceback."""


# -- output helpers -----------------------------------------------------------------------


def _console(file: IO[str] | None = None) -> Any:
    from rich.console import Console

    stream = file if file is not None else sys.stdout
    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = 160  # a log file or a pipe: wide rows beat wrapped ones
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, emoji=False)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title) if title else None, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text, not markup: a folder called [red] must print as written.
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return table


def _duration(seconds: float | None) -> str:
    from runner.progress import format_duration

    return "" if seconds is None else format_duration(seconds)


def _rel(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=repr) + "\n")


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever ``sys.stderr`` is now, so the live display can redirect logs above it."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def _setup_logging(verbose: int) -> None:
    root = logging.getLogger("runner")
    if any(isinstance(h, _CurrentStderr) for h in root.handlers):
        return
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    root.propagate = False


# -- status, show, plot -------------------------------------------------------------------


def _cmd_status(args: argparse.Namespace) -> int:
    from runner.report import job_rows, search_rows

    root = os.path.abspath(args.dir)
    if not os.path.isdir(root):
        raise _UsageError(f"{args.dir!r} is not a folder; pass the base_dir of a sweep")
    jobs = job_rows(root)
    searches = search_rows(root, jobs)
    if args.json:
        _print_json(
            {
                "searches": [s.as_dict() for s in searches],
                "jobs": [j.as_dict() for j in jobs],
            }
        )
        return 0
    console = _console()
    if not searches and not jobs:
        console.print(f"No searches or jobs under {root} (no summary.json or job.json).")
        return 0
    if searches:
        console.print(
            _table(
                f"Searches under {root}",
                ["search", "kind", "status", "jobs", "duration", "detail"],
                [
                    (
                        _rel(s.base_dir, root),
                        s.kind,
                        s.status,
                        s.jobs,
                        _duration(s.duration),
                        s.detail,
                    )
                    for s in searches
                ],
            )
        )
    if jobs:
        console.print(
            _table(
                "Jobs",
                ["job", "status", "device", "duration", "result / last error"],
                [
                    (_rel(j.folder, root), j.status, j.device, _duration(j.duration), j.detail)
                    for j in jobs
                ],
            )
        )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from runner.report import load_results_file, to_jsonable

    path = args.file
    if not os.path.isfile(path):
        raise _UsageError(f"{path!r} is not a file; pass a *_results_*.pkl or a summary.json")
    if not path.endswith(".json"):
        print(
            f"runner show: unpickling {path} runs code from it; open only results files you trust.",
            file=sys.stderr,
        )
    data = to_jsonable(load_results_file(path))
    if args.json:
        _print_json(data)
        return 0
    import yaml

    sys.stdout.write(
        yaml.safe_dump(
            data, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True
        )
    )
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from runner.report import write_plots

    if not os.path.exists(args.dir):
        raise _UsageError(f"{args.dir!r} does not exist; pass the base_dir of a sweep")
    props = [p for p in (args.x, args.y) if p]
    for path in write_plots(args.dir, out=args.out, metric=args.metric, props=props or None):
        print(path)
    return 0


# -- logs ----------------------------------------------------------------------------------


def _job_folders(root: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if JOB_JSON in files or _LOG_NAME in files:
            found.append(folder)
    return found


def _find_log(root: str, job: str) -> str:
    import difflib

    for candidate in (job, os.path.join(root, job)):
        if os.path.isfile(candidate):
            return candidate
        if os.path.isdir(candidate) and (
            os.path.exists(os.path.join(candidate, _LOG_NAME))
            or os.path.exists(os.path.join(candidate, JOB_JSON))
        ):
            return os.path.join(candidate, _LOG_NAME)
    folders = _job_folders(root)
    names = {f: _rel(f, root) for f in folders}
    matches = [f for f in folders if os.path.basename(f) == job or names[f] == job.rstrip("/")]
    if len(matches) == 1:
        return os.path.join(matches[0], _LOG_NAME)
    if matches:
        listed = "\n  ".join(names[m] for m in matches)
        raise _UsageError(f"{job!r} matches several jobs under {root}; pass one of:\n  {listed}")
    if not folders:
        raise _UsageError(f"no job folders under {root!r} (none holds job.json)")
    close = difflib.get_close_matches(job, [os.path.basename(f) for f in folders], n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = [names[f] for f in folders[:20]]
    more = f"\n  ... and {len(folders) - 20} more" if len(folders) > 20 else ""
    listed = "\n  ".join(shown)
    raise _UsageError(f"no job {job!r} under {root}.{hint} Jobs:\n  {listed}{more}")


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
        raise _UsageError(f"{args.dir!r} is not a folder; pass the base_dir of a sweep")
    if args.lines < 0:
        raise _UsageError(f"--lines {args.lines} must be >= 0")
    path = _find_log(root, args.job)
    out = sys.stdout.buffer
    try:
        while not os.path.exists(path):
            if not args.follow:
                raise _UsageError(f"{path} does not exist yet: the job has not started")
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


# -- gpus ----------------------------------------------------------------------------------


def _cmd_gpus(args: argparse.Namespace) -> int:
    from runner.devices import (
        DEFAULT_BUSY_MEMORY_THRESHOLD_MIB,
        nvml_memory_used_mib,
        select_devices,
    )

    if args.max_gpus is not None and args.max_gpus < 0:
        raise _UsageError(f"--max-gpus {args.max_gpus} must be >= 0")
    info = select_devices(max_gpus=args.max_gpus)
    threshold = (
        args.busy_threshold
        if args.busy_threshold is not None
        else DEFAULT_BUSY_MEMORY_THRESHOLD_MIB
    )
    used = nvml_memory_used_mib(list(info.devices)) if info.devices else None
    devices = []
    for device in info.devices:
        mib = None if used is None else used.get(device)
        devices.append(
            {
                "device": str(device),
                "memory_used_mib": None if mib is None else round(mib),
                "busy": None if mib is None else mib > threshold,
            }
        )
    busy_note = (
        "no GPU, nothing to check"
        if not info.devices
        else "NVML is unavailable (no driver, or nvidia-ml-py missing): can't tell which are busy"
        if used is None
        else f"busy = more than {threshold} MiB of memory in use (NVML)"
    )
    if args.json:
        _print_json({**info.as_dict(), "busy_check": busy_note, "device_status": devices})
        return 0
    print(f"source:  {info.source}")
    print(f"why:     {info.reason}")
    if not info.devices:
        print(
            "devices: none; jobs run on CPU slots (--jobs-per-gpu of them) with "
            "CUDA_VISIBLE_DEVICES=''"
        )
        return 0
    print(f"devices: {', '.join(str(d) for d in info.devices)}")
    print(f"busy:    {busy_note}")
    if used is not None:
        rows = [
            (
                d["device"],
                "?" if d["memory_used_mib"] is None else f"{d['memory_used_mib']} MiB",
                "?" if d["busy"] is None else "busy" if d["busy"] else "free",
            )
            for d in devices
        ]
        _console().print(_table("", ["device", "memory used", "state"], rows))
    return 0


# -- grid and bisect -----------------------------------------------------------------------


def _load_script(target: str) -> Any:
    from runner.quick_sweep import load_function

    return load_function(target)


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.gpus is not None and args.gpus < 0:
        raise _UsageError(f"--gpus {args.gpus} must be >= 0 (0: CPU only)")
    if args.jobs_per_gpu < 1:
        raise _UsageError(f"--jobs-per-gpu {args.jobs_per_gpu} must be >= 1")
    return {
        "max_gpus": args.gpus,
        "simultaneous_jobs_per_gpu": args.jobs_per_gpu,
        "resume": args.resume,
        "executor": args.executor,
        "progress": False if args.no_progress else None,
    }


def _job_table_rows(jobs: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    from runner.progress import format_duration

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


def _cmd_grid(args: argparse.Namespace) -> int:
    from runner.grid_search import run_grid_searches
    from runner.quick_sweep import build_grid_search, default_base_dir
    from runner.search_results import job_summary

    options = _run_options(args)
    script = _load_script(args.target)
    base_dir = args.base_dir or default_base_dir(script)
    grid = build_grid_search(
        script, args.overrides, base_dir=base_dir, timeout=args.timeout, retries=args.retries
    )
    print(f"runner grid: results in {os.path.abspath(base_dir)}", file=sys.stderr)
    [results] = run_grid_searches([grid], **options)
    jobs = [job_summary(r) for r in results]
    failed = sum(not j["success"] for j in jobs)
    if args.json:
        _print_json({"base_dir": os.path.abspath(base_dir), "jobs": jobs, "failed": failed})
    else:
        console = _console()
        console.print(
            _table(
                f"{args.target}: {len(jobs)} job(s), {failed} failed",
                ["point", "status", "device", "duration", "result / error"],
                _job_table_rows(jobs),
            )
        )
        console.print(f"results: {os.path.abspath(base_dir)}")
    return 1 if failed else 0


def _parse_seeds(text: str | None) -> list[Any]:
    from configs.cli import parse_value

    if not text:
        return []
    seeds = [parse_value(part.strip()) for part in text.split(",") if part.strip()]
    if not seeds:
        raise _UsageError(f"--seeds {text!r} lists no seed; e.g. --seeds 42,43")
    return seeds


def _cmd_bisect(args: argparse.Namespace) -> int:
    from runner.binary_search import run_binary_searches
    from runner.quick_sweep import build_binary_search, default_base_dir

    options = _run_options(args)
    if not args.precision > 0:
        raise _UsageError(f"--precision {args.precision} must be > 0")
    parallel: int | str = args.parallel_points
    if parallel != "auto":
        try:
            parallel = int(parallel)
        except ValueError:
            raise _UsageError(
                f"--parallel-points {parallel!r} must be 'auto' or a whole number"
            ) from None
    script = _load_script(args.target)
    base_dir = args.base_dir or default_base_dir(script)
    precision = int(args.precision) if float(args.precision).is_integer() else args.precision
    search = build_binary_search(
        script,
        args.overrides,
        base_dir=base_dir,
        precision=precision,
        success=args.success,
        seeds=_parse_seeds(args.seeds),
        seed_key=args.seed_key,
        agg=args.agg,
        lower=args.direction == "lower",
        scale=args.scale,
        parallel_points=parallel,
        timeout=args.timeout,
        retries=args.retries,
    )
    print(f"runner bisect: results in {os.path.abspath(base_dir)}", file=sys.stderr)
    [outcome] = run_binary_searches([search], **options)
    from runner.search_results import json_summary

    achieved, failed = outcome
    prop = search.prop
    data: dict[str, Any] = {
        "base_dir": os.path.abspath(base_dir),
        "prop": prop,
        "achieved": None
        if achieved is None
        else {"value": achieved[0], "result": json_summary(achieved[1])},
        "failed": None
        if failed is None
        else {"value": failed[0], "result": json_summary(failed[1])},
        "interval": list(outcome.interval) if outcome.interval else None,
        "rounds": outcome.rounds,
        "error": outcome.error,
        "results_file": outcome.results_file,
    }
    if args.json:
        _print_json(data)
        return 1 if outcome.error else 0
    console = _console()
    rows = [
        (
            p["value"],
            p["round"],
            {True: "success", False: "failure", None: "inconclusive"}[p["success"]],
            json.dumps(p["result"], default=repr),
        )
        for p in sorted(outcome.history, key=lambda p: p["value"])
    ]
    console.print(
        _table(f"{args.target}: {prop} tested", [prop, "round", "verdict", "result"], rows)
    )
    for label in ("achieved", "failed"):
        entry = data[label]
        text = (
            "none"
            if entry is None
            else f"{prop}={entry['value']}  result {json.dumps(entry['result'], default=repr)}"
        )
        console.print(f"{label}: {text}", markup=False)
    console.print(f"interval: {data['interval']} after {outcome.rounds} round(s)", markup=False)
    if outcome.error:
        console.print(f"error: {outcome.error}", markup=False)
    console.print(f"results: {outcome.results_file}", markup=False)
    return 1 if outcome.error else 0


# -- the parser ----------------------------------------------------------------------------


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SCRIPT.py:FUNCTION", help="the function to run")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config values: key=value fixes one, key=[a,b] sweeps it (nested.key works)",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        default=None,
        metavar="N",
        help="use at most N GPUs (default: all visible; 0: CPU only)",
    )
    parser.add_argument(
        "--jobs-per-gpu", type=int, default=1, metavar="K", help="jobs sharing one GPU (default 1)"
    )
    parser.add_argument(
        "--base-dir",
        default=None,
        metavar="DIR",
        help="where results go (default: results/<function>_<timestamp>)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse jobs that already finished with the same config",
    )
    parser.add_argument("--executor", default=None, help="local (default), ray or slurm")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds a job may run before it is killed",
    )
    parser.add_argument(
        "--retries", type=int, default=0, metavar="N", help="extra attempts for a job that crashes"
    )
    parser.add_argument("--no-progress", action="store_true", help="no live progress display")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def build_parser() -> argparse.ArgumentParser:
    """The ``runner`` argument parser (one sub-parser per command).

    Example:
        >>> build_parser().parse_args(["logs", "runs/lr", "seed=1", "-f"]).follow
        True
    """
    parser = argparse.ArgumentParser(
        prog="runner",
        description="Start, watch, inspect and plot sweeps of ML experiments.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "status",
        help="a table of the searches and jobs under DIR",
        description="Searches (summary.json) and jobs (job.json) under DIR: "
        "status, device, duration, result or last error line. Reads JSON only "
        "(no unpickling); a 'running' job whose process is gone shows as 'lost'.",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser(
        "show",
        help="print a results .pkl or summary.json readably",
        description="Print a results file. A .pkl is unpickled, which runs code "
        "from it: only open files you trust. summary.json is plain JSON.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON (for machines)")
    p.set_defaults(handler=_cmd_show)

    p = sub.add_parser(
        "plot",
        help="PNG plots of the searches under DIR",
        description="A PNG per search under DIR: a binary search's trace (values "
        "tested per round, successes and failures, the final interval); a grid's "
        "numeric job result averaged over the other swept props (seeds): lines "
        "for one prop, a heatmap for two. Needs matplotlib (runner[plot]).",
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
        help="what to plot for grids: a key of dict results (acc), or an expression "
        "over result (default: the result, or its first numeric key)",
    )
    p.add_argument("--x", default=None, metavar="PROP", help="grid prop on the x axis")
    p.add_argument("--y", default=None, metavar="PROP", help="grid prop on the y axis (heatmap)")
    p.set_defaults(handler=_cmd_plot)

    p = sub.add_parser(
        "logs",
        help="the tail of a job's experiment_output.log",
        description="Print the end of a job's log; -f keeps printing what it writes until Ctrl-C.",
    )
    p.add_argument("dir", metavar="DIR", help="the sweep's base_dir")
    p.add_argument("job", metavar="JOB", help="the job folder's name (or path)")
    p.add_argument("-n", "--lines", type=int, default=20, help="lines to show (default 20)")
    p.add_argument("-f", "--follow", action="store_true", help="follow the log as it grows")
    p.set_defaults(handler=_cmd_logs)

    p = sub.add_parser(
        "gpus",
        help="the devices Runner would use, and why",
        description="Which devices a sweep would use (CUDA_VISIBLE_DEVICES, "
        "NVML, torch or none) and which are busy (NVML memory use).",
    )
    p.add_argument("--max-gpus", type=int, default=None, metavar="N", help="as max_gpus")
    p.add_argument(
        "--busy-threshold",
        type=float,
        default=None,
        metavar="MIB",
        help="memory in use above which a GPU counts as busy (default 1024)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_gpus)

    p = sub.add_parser(
        "grid",
        help="grid search over a script's function",
        description="Run FUNCTION from SCRIPT.py (its first parameter annotated "
        "with a @pydraclass config) for every combination of the key=[a,b] "
        "values. Each job's folder is named by its swept values, e.g. "
        "lr=0.001,seed=1.",
        epilog="example: runner grid train.py:train seed=[1,2,3] lr=[1e-3,1e-4] "
        "--gpus 4 --jobs-per-gpu 2 --base-dir runs/lr",
    )
    _add_run_options(p)
    p.set_defaults(handler=_cmd_grid)

    p = sub.add_parser(
        "bisect",
        help="binary search over a script's function",
        description="Binary-search the key=lo:hi property of FUNCTION's config "
        "for the threshold at which --success holds. With --seeds, each value "
        "runs once per seed and --agg combines them: all (default: every seed "
        "must succeed), any (one is enough) or mean (the expression is applied "
        "to the mean result). Failed jobs are left out; a value whose jobs all "
        "failed is inconclusive.",
        epilog="example: runner bisect train.py:train num_parameters=10:100 "
        "--precision 1 --success 'result >= 0.5' --seeds 42,43",
    )
    _add_run_options(p)
    p.add_argument(
        "--precision", type=float, required=True, help="stop once the interval is this narrow"
    )
    p.add_argument(
        "--success",
        default="result",
        metavar="EXPR",
        help="when a job's result counts as a success: comparisons, arithmetic, "
        "and/or/not, result['key'] (default: result is truthy)",
    )
    p.add_argument("--seeds", default=None, metavar="S1,S2", help="seeds to run at each value")
    p.add_argument(
        "--seed-key",
        default="seed",
        metavar="KEY",
        help="the config field --seeds sets (default seed)",
    )
    p.add_argument(
        "--agg",
        choices=("all", "any", "mean"),
        default="all",
        help="how the seeds' results combine (default all)",
    )
    p.add_argument(
        "--direction",
        choices=("lower", "higher"),
        default="lower",
        help="where a success moves the search: lower (default; the smallest "
        "succeeding value) or higher (the largest)",
    )
    p.add_argument("--scale", choices=("linear", "log"), default="linear")
    p.add_argument(
        "--parallel-points",
        default="auto",
        metavar="N",
        help="values tested per round: auto (fill free slots) or N",
    )
    p.set_defaults(handler=_cmd_bisect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``runner`` console script.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ok, 1 a sweep's job failed or a search stopped early,
        2 bad arguments, 130 interrupted.

    Example:
        >>> main(["status", "/nonexistent"])  # doctest: +SKIP
        2
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # key=value tokens after an option land here; anything else is a real mistake.
        if args.command in ("grid", "bisect") and not any(t.startswith("-") for t in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    from configs.errors import InvalidConfigurationError
    from runner._expr import ExpressionError
    from runner.errors import (
        DeviceConfigError,
        ExecutorConfigError,
        MissingDependencyError,
        SearchConfigError,
    )
    from runner.report import ReportError

    bad_input = (
        _UsageError,
        ReportError,
        SearchConfigError,
        InvalidConfigurationError,
        ExpressionError,
        DeviceConfigError,
        ExecutorConfigError,
    )
    try:
        code: int = args.handler(args)
        return code
    except bad_input as exc:
        print(f"runner {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MissingDependencyError as exc:
        print(f"runner {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"runner {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
