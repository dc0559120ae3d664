"""Run the benchmarks of issue 5 and print a table plus one JSON line per workload.

usage: python -m benchmarks.run [--quick] [--only W1,W4] [--reps 3] [--start-method M]

Each workload runs ``--reps`` times (3 by default); every metric is reported as
the median with its spread (min and max). Run it from the repository root on an
otherwise idle machine: the numbers are ratios against bounds that assume the
CPUs are free.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

if __package__ in (None, ""):  # `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import bench, ml_grid, w8_scale, w9_mlp, w9_threshold  # noqa: E402

Metrics = dict[str, float | bool]


@dataclass(frozen=True)
class Workload:
    """One line of the table: what runs, which metric is the headline, and its target."""

    name: str
    title: str
    fn: Callable[[str, bool], Metrics]
    headline: str
    target: str
    #: Whether the target holds, from this workload's medians and those of the workloads
    #: run before it in this run (by name); None when it can't be judged.
    check: Callable[[dict[str, float], dict[str, dict[str, float]]], bool | None]
    #: At most this many repetitions (a workload of minutes runs once).
    max_reps: int | None = None


def _ray_tune_missing() -> str | None:
    """Why the Ray Tune baseline can't run, or None when it can."""
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed"
    try:
        import ray.tune  # noqa: F401
    except ImportError as exc:
        return f"ray.tune is not importable ({exc})"
    return None


WORKLOADS: list[Workload] = [
    Workload(
        "W1",
        "uniform 64 x 0.5 s, 8 slots",
        bench.w1_uniform,
        "ratio",
        "makespan/ideal <= 1.05",
        lambda m, _: m["ratio"] <= 1.05,
    ),
    Workload(
        "W2",
        "lognormal 64 jobs, 8 slots",
        bench.w2_mixed,
        "ratio_greedy",
        "makespan/greedy <= 1.03",
        lambda m, _: m["ratio_greedy"] <= 1.03,
    ),
    Workload(
        "W3a",
        "3 binary searches, 8 slots",
        bench.w3a_searches,
        "ratio",
        "wall/bound <= 1.15, exact",
        lambda m, _: m["ratio"] <= 1.15 and bool(m["exact"]),
    ),
    Workload(
        "W3b",
        "parallel vs classic, 16 slots",
        bench.w3b_parallel_bisection,
        "wall_ratio",
        "rounds >= 2x, wall >= 1.8x, same",
        lambda m, _: m["rounds_ratio"] >= 2 and m["wall_ratio"] >= 1.8 and bool(m["same_answer"]),
        # wall_ratio is timed on a started executor (its start-up apart, as in W1);
        # wall_ratio_cold, the whole call, is reported beside it.
    ),
    Workload(
        "W4",
        "200 no-op jobs, 8 slots",
        bench.w4_overhead,
        "overhead_ms_per_job",
        "< 50 ms/job",
        lambda m, _: m["overhead_ms_per_job"] < 50,
    ),
    Workload(
        "W5",
        "scheduler only, 1k / 10k jobs",
        bench.w5_scale,
        "ms_per_job_10000",
        "< 1 ms/job, 10k <= 1k per job",
        # "No slower per job": the 10k run may not cost more per job than the 1k run, within
        # the timer noise of one repetition (10%).
        lambda m, _: (
            m["ms_per_job_10000"] < 1
            and m["ms_per_job_1000"] < 1
            and m["per_job_ratio_10k_1k"] <= 1.10
        ),
    ),
    Workload(
        "W6",
        "Ctrl-C, 16 jobs + grandchildren",
        bench.w6_ctrl_c,
        "group_exit_s",
        "exit <= 5 s, 0 left",
        lambda m, _: (
            max(m["driver_exit_s"], m["group_exit_s"]) <= 5
            and m["driver_left_alive"] == 0
            and m["group_left_alive"] == 0
        ),
    ),
    Workload(
        "W8",
        "grids of 500 / 10,000 no-op jobs, 8 slots",
        w8_scale.w8_sweep_scale,
        "per_job_ratio",
        "10k/500 per job <= 1.2, bytes flat, status < 2 s",
        lambda m, _: (
            m["per_job_ratio"] <= 1.2
            and m["bytes_per_job_ratio"] <= 1.2
            and m["status_s_largest"] < 2
        ),
        max_reps=1,
    ),
    Workload(
        "W9",
        "threshold under noise: bisection vs posterior, 28 jobs",
        w9_threshold.w9_threshold,
        "within1_ratio_s3",
        "within 1 >= 1.5x bisection at s=3,6; coverage >= 0.90; exact at s=0",
        lambda m, _: w9_threshold.targets_hold(m),
        max_reps=1,
    ),
    Workload(
        "W9r",
        "threshold on real MLP accuracies (0.90, 0.96): bisection vs posterior",
        w9_mlp.w9_mlp,
        "within1_ratio",
        "posterior's 95% interval covers the truth >= 0.90 at both targets",
        lambda m, _: w9_mlp.targets_hold(m),
        max_reps=1,
    ),
    Workload(
        "W10",
        "scikit-learn MLP grid: Runner vs joblib vs loop",
        ml_grid.w10_ml_grid,
        "runner_over_joblib",
        "Runner <= 1.25x joblib, same accuracies",
        lambda m, _: m["runner_over_joblib"] <= 1.25 and bool(m["same_accuracies"]),
        max_reps=1,
    ),
    Workload(
        "W7",
        "ProcessPoolExecutor(8) baseline",
        bench.w7_pool,
        "w4_overhead_ms_per_job",
        "(reference)",
        lambda m, _: True,
    ),
    Workload(
        "W7r",
        "Ray Tune baseline",
        bench.w7_ray_tune,
        "w4_overhead_ms_per_job",
        "Runner ahead on W1, W2, W4",
        lambda m, before: _runner_ahead_of_ray(m, before),
    ),
]


def _runner_ahead_of_ray(ray: dict[str, float], runner: dict[str, dict[str, float]]) -> bool | None:
    """Runner's makespans (W1, W2) and overhead per job (W4) below Ray Tune's, same run."""
    if not all(name in runner for name in ("W1", "W2", "W4")):
        return None  # run W1, W2 and W4 with W7r to compare
    return (
        runner["W1"]["makespan_s"] < ray["w1_makespan_s"]
        and runner["W2"]["makespan_s"] < ray["w2_makespan_s"]
        and runner["W4"]["overhead_ms_per_job"] < ray["w4_overhead_ms_per_job"]
    )


def _summarise(reps: list[Metrics]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key in reps[0]:
        values = [float(r[key]) for r in reps]
        out[key] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
    return out


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def _ensure_bytecode() -> None:
    """Byte-compile Runner and the benchmark jobs when this interpreter will not do it.

    With ``PYTHONDONTWRITEBYTECODE`` set (some containers set it), nothing writes
    ``.pyc`` files, so every fresh interpreter (the fork server, each spawned job)
    compiles Runner from source again: tens of milliseconds that a regular install,
    which pip byte-compiles, never pays, and that would be measured as the runner's.
    """
    if not sys.dont_write_bytecode:
        return
    import compileall

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for package in ("runner", "configs", "benchmarks"):
        compileall.compile_dir(os.path.join(root, package), quiet=1)
    print(
        "[benchmarks] PYTHONDONTWRITEBYTECODE is set: byte-compiled runner, configs and "
        "benchmarks first, as pip does on install",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 repetition, smaller workloads")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument(
        "--start-method",
        default="default",
        choices=["default", "forkserver", "spawn"],
        help="how the local executor starts each job's process (default: the executor's own)",
    )
    parser.add_argument("--details", action="store_true", help="print every metric in the table")
    parser.add_argument(
        "--w8-100k", action="store_true", help="W8 also runs 100,000 jobs (several minutes)"
    )
    args = parser.parse_args(argv)
    if args.w8_100k:
        os.environ["RUNNER_BENCH_W8_100K"] = "1"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("runner").setLevel(logging.ERROR)  # the binary searches log every round

    only = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    reps = args.reps or (1 if args.quick else 3)
    selected = [w for w in WORKLOADS if not only or w.name.upper() in only]
    if only and not selected:
        parser.error(
            f"--only {args.only!r} names no workload; pick from "
            + ", ".join(w.name for w in WORKLOADS)
        )
    _ensure_bytecode()
    rows: list[tuple[str, str, str, str, str, str]] = []
    medians_by_name: dict[str, dict[str, float]] = {}
    for workload in selected:
        missing = _ray_tune_missing() if workload.name == "W7r" else None
        if missing:
            print(json.dumps({"workload": "W7r", "skipped": missing}), flush=True)
            rows.append(("W7r", workload.title, "skipped", missing[:40], "-", "-"))
            continue
        results: list[Metrics] = []
        t0 = time.perf_counter()
        for _ in range(min(reps, workload.max_reps or reps)):
            results.append(workload.fn(args.start_method, args.quick))
        summary = _summarise(results)
        medians = {k: v["median"] for k, v in summary.items()}
        ok = workload.check(medians, medians_by_name)
        medians_by_name[workload.name] = medians
        line = {
            "workload": workload.name,
            "title": workload.title,
            "start_method": args.start_method,
            "reps": reps,
            "quick": args.quick,
            "target": workload.target,
            "ok": ok,
            "seconds": round(time.perf_counter() - t0, 2),
            "metrics": {k: {s: round(v, 5) for s, v in d.items()} for k, d in summary.items()},
        }
        print(json.dumps(line), flush=True)
        head = summary[workload.headline]
        rows.append(
            (
                workload.name,
                workload.title,
                f"{workload.headline} {_fmt(head['median'])}",
                f"[{_fmt(head['min'])}, {_fmt(head['max'])}]",
                workload.target,
                "-" if ok is None else "yes" if ok else "NO",
            )
        )
        if args.details:
            for key, d in summary.items():
                if key != workload.headline:
                    rows.append(
                        (
                            "",
                            "",
                            f"{key} {_fmt(d['median'])}",
                            f"[{_fmt(d['min'])}, {_fmt(d['max'])}]",
                            "",
                            "",
                        )
                    )
    header = ("workload", "what", "median", "spread [min, max]", "target", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
