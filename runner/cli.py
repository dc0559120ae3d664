"""The ``runner`` command: start sweeps from the shell, watch them, inspect and plot them.

Commands (``runner COMMAND --help`` for each)::

    runner status DIR [key=v] [--failed] [--search NAME]   searches, a grid's mean +- std
                                 per point, and jobs (job.json/summary.json only)
    runner show FILE [--json]    a results .pkl or summary.json, readably
    runner plot DIR [-o OUT]     PNG plots: binary-search traces, grid lines/heatmaps
    runner logs DIR JOB [-f]     the tail of a job's log (JOB: its folder or lr=0.1 seed=1)
    runner gpus                  the devices Runner would use, and why
    runner grid SCRIPT:FN key=[a,b] key=1:128 ...   a grid search of a script's function
    runner bisect SCRIPT:FN key=lo:hi --success EXPR [--precision P]
                                 [--method probabilistic [--confidence P] [--max-jobs N]]

The commands that read sweeps live in :mod:`runner._cli_inspect`.

Bad arguments exit with code 2 and a one-line message; a sweep whose jobs
failed exits with 1; Ctrl-C exits with 130 once every job is stopped.

Example:
    >>> main(["gpus", "--json"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = ["build_parser", "main"]

from runner._cli_common import UsageError, console, print_json, table
from runner._cli_inspect import add_commands as add_inspect_commands

logger = logging.getLogger("runner")


# Short names for the shared helpers (the sweep commands below use them).
_UsageError = UsageError
_console = console
_table = table
_print_json = print_json


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
            "devices: none; jobs run on CPU slots (one per core, or --cpu-slots N) with "
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
    if args.cpu_slots is not None and args.cpu_slots < 1:
        raise _UsageError(f"--cpu-slots {args.cpu_slots} must be >= 1")
    if not args.no_progress and getattr(args, "json", False):
        from runner.progress import PROGRESS_ENV

        # stdout carries the JSON alone: the progress goes to stderr, as plain lines, even
        # on a terminal (this command's own process; the variable is the display's switch).
        os.environ.setdefault(PROGRESS_ENV, "plain")
    return {
        "max_gpus": args.gpus,
        "simultaneous_jobs_per_gpu": args.jobs_per_gpu,
        "resume": args.resume,
        "executor": args.executor,
        "progress": False if args.no_progress else None,
        "skip_busy_gpus": args.skip_busy_gpus,
        "cpu_slots": args.cpu_slots,
    }


def _takes_numbers(config_class: type) -> Callable[[str], bool]:
    """Whether a (dotted) field can hold a number: a text field's ``12:30`` is no range."""

    def check(key: str) -> bool:
        from configs._hints import field_hints
        from configs._types import strip_annotation

        owner: Any = config_class
        try:
            *parents, last = key.split(".")
            for part in parents:
                owner = strip_annotation(field_hints(owner).get(part, Any))
            return strip_annotation(field_hints(owner).get(last, Any)) is not str
        except Exception:  # not a config class down the path: let the value decide
            return True

    return check


def _cmd_grid(args: argparse.Namespace) -> int:
    from runner._cli_results import grid_tables, print_end
    from runner._sweep_tokens import expand_ranges
    from runner.grid_search import run_grid_searches
    from runner.quick_sweep import build_grid_search, default_base_dir
    from runner.search_results import job_summary
    from runner.sweep_text import Failure

    options = _run_options(args)
    script = _load_script(args.target)
    base_dir = args.base_dir or default_base_dir(script)
    tokens = expand_ranges(args.overrides, _takes_numbers(script.config_class))
    grid = build_grid_search(
        script, tokens, base_dir=base_dir, timeout=args.timeout, retries=args.retries
    )
    print(f"runner grid: results in {os.path.abspath(base_dir)}", file=sys.stderr)
    [results] = run_grid_searches([grid], **options)
    jobs = [job_summary(r) for r in results]
    failed = sum(not j["success"] for j in jobs)
    if args.json:
        _print_json({"base_dir": os.path.abspath(base_dir), "jobs": jobs, "failed": failed})
    else:
        console = _console()
        title = f"{args.target}: {len(jobs)} job(s), {failed} failed"
        for shown in grid_tables(jobs, title):
            console.print(shown)
        first = next((r for r in results if not r.success), None)
        print_end(
            console,
            f"runner grid {os.path.basename(os.path.abspath(base_dir))}",
            base_dir,
            Failure.of(first) if first is not None else None,
        )
    return 1 if failed else 0


def _cmd_bisect(args: argparse.Namespace) -> int:
    from runner._cli_bisect import run_bisect

    return run_bisect(args, _run_options(args))


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
    parser.add_argument(
        "--skip-busy-gpus",
        action="store_true",
        help="leave out GPUs whose memory other processes already use",
    )
    parser.add_argument(
        "--cpu-slots",
        type=int,
        default=None,
        metavar="N",
        help="jobs at once when running on CPU (default: one per core); with --gpus 0 "
        "or no GPU found",
    )
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

    add_inspect_commands(sub)  # status, show, plot, logs

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
        "with a @pydraclass config) for every combination of the swept values. "
        "A key sweeps a list, key=[a,b,c], or a range of whole numbers: key=1:128 "
        "(both ends included), key=1:128:2 (a step), or key=range(1,129) (Python's, "
        "end excluded). Each job's folder is named by its swept values, e.g. "
        "lr=0.001,seed=1. When the sweep ends: a table per job (or, with seeds, the "
        "mean +- std per point), where the results are, and the first failure.",
        epilog="examples: runner grid train.py:train seed=[1,2,3] lr=[1e-3,1e-4] "
        "--gpus 4 --jobs-per-gpu 2 --base-dir runs/lr;  runner grid train.py:train "
        "hidden_units=1:128 seed=range(3) --gpus 0 --cpu-slots 8",
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
        "failed is inconclusive. With --method probabilistic, for outcomes that "
        "vary from seed to seed, each job is judged on its own by --success, a "
        "posterior over the threshold (and the noise) picks the values to run, "
        "--seeds is the pool of repetitions (a value run again takes the next "
        "unused seed; default 0..63), and the search stops once the --confidence "
        "interval is no wider than --precision, or after --max-jobs jobs. The "
        "end says the answer, the interval (and the estimate), the jobs run, the "
        "margin to a comparison's target, whether the threshold may lie outside "
        "the range, and contradicting verdicts.",
        epilog="examples: runner bisect train.py:train num_parameters=10:100 "
        "--precision 1 --success 'result >= 0.5' --seeds 42,43;  runner bisect "
        "train.py:train hidden_units=1:128 --success 'result[\"acc\"] >= 0.9' "
        "--method probabilistic --confidence 0.9 --max-jobs 60 --gpus 0 --cpu-slots 8",
    )
    _add_run_options(p)
    p.add_argument(
        "--precision",
        type=float,
        default=None,
        help="stop once the interval is this narrow (default 1 for an integer prop; "
        "needed for a float one)",
    )
    p.add_argument(
        "--success",
        default="result",
        metavar="EXPR",
        help="when a job's result counts as a success: comparisons, arithmetic, "
        "and/or/not, result['key'] (default: result is truthy)",
    )
    p.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2",
        help="seeds to run at each value; with --method probabilistic the pool a value "
        "tested again draws from (default there: 0,1,...,63)",
    )
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
        help="values tested per round: auto (fill free slots) or N (probabilistic: jobs per round)",
    )
    p.add_argument(
        "--repetitions",
        type=int,
        default=None,
        metavar="K",
        help="bisection: seeds run at each value (default: every --seeds); the rest are "
        "kept to re-test values whose verdicts contradict each other",
    )
    p.add_argument(
        "--test-range-ends",
        choices=("auto", "yes", "no"),
        default=None,
        help="bisection: test lo and hi themselves in the first round: auto (default: "
        "when the round has room), yes, no",
    )
    p.add_argument(
        "--method",
        choices=("bisection", "probabilistic"),
        default="bisection",
        help="bisection (default: exact for a rule that does not vary by seed) or "
        "probabilistic (noise-aware: a posterior over the threshold, one job per free slot)",
    )
    p.add_argument(
        "--confidence",
        type=float,
        default=None,
        metavar="P",
        help="probabilistic: the credible interval's probability (default 0.95)",
    )
    p.add_argument(
        "--max-jobs",
        type=int,
        default=None,
        metavar="N",
        help="probabilistic: the most jobs to run (default: ten per round bisection would need)",
    )
    p.add_argument(
        "--target-rate",
        type=float,
        default=None,
        metavar="R",
        help="probabilistic: the threshold is where a job succeeds with this "
        "probability (default 0.5)",
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
    from runner.front_end import CLI, using_front_end

    with using_front_end(CLI):  # messages name --resume, --cpu-slots, not resume=True
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    from configs.errors import InvalidConfigurationError
    from runner._expr import ExpressionError
    from runner.errors import (
        AggregationError,
        DeviceConfigError,
        ExecutorConfigError,
        MissingDependencyError,
        SearchConfigError,
        SearchLockedError,
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
    except AggregationError as exc:
        if isinstance(exc.__cause__, ExpressionError):
            # A --success (or --agg mean) that does not fit what the jobs returned.
            print(
                f"runner {args.command}: error: --success {exc.__cause__}; the jobs' results "
                "are kept in their folders: fix --success (or --agg) and rerun with --resume",
                file=sys.stderr,
            )
            return 2
        print(f"runner {args.command}: {exc}", file=sys.stderr)
        return 1
    except (MissingDependencyError, SearchLockedError) as exc:
        # Not a bad argument: the message says what to install, or who runs the folder.
        print(f"runner {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"runner {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
