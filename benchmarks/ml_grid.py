"""W10, the real workload: a scikit-learn MLPClassifier grid on the digits data set.

usage: python -m benchmarks.ml_grid [--quick] [--slots N] [--start-method M]

The grid of issue 14 (hidden_units x alpha x seed, 27 jobs; 18 with ``--quick``) run
three ways in one process, one after the other: Runner (``run_grid_searches`` on
``slots`` CPU slots), ``joblib.Parallel(n_jobs=slots)`` (fresh loky workers), and a
plain loop in this process. Every way must find the same test accuracies. Target:
Runner's wall time within 1.25x of joblib's.

Also one job's start-up cost, from the ``execute()`` call to the first line of the job's
function (its module's imports done): cold (``LocalExecutor(preload=False)``: the job
imports scikit-learn itself) and warm (after the first job taught the fork server what
to preload). Each is the median of a few starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/ml_grid.py`: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: The grid: hidden units x L2 penalty x seed.
HIDDEN_UNITS = [16, 32, 64]
ALPHAS = [1e-4, 1e-3, 1e-2]
SEEDS = [0, 1, 2]
#: Start-up samples per kind (cold, warm).
STARTUP_SAMPLES = 3

Metrics = dict[str, float | bool]


def _points(quick: bool) -> list[tuple[int, float, int]]:
    seeds = SEEDS[:2] if quick else SEEDS
    return [(h, a, s) for h in HIDDEN_UNITS for a in ALPHAS for s in seeds]


def _key(result: dict[str, Any]) -> tuple[int, float, int]:
    return (result["hidden_units"], result["alpha"], result["seed"])


def _executor(start_method: str, **options: Any) -> Any:
    from runner.executors.local import LocalExecutor

    if start_method in ("forkserver", "spawn"):
        options["start_method"] = start_method
    return LocalExecutor(**options)


def run_runner(root: str, points: list[tuple[int, float, int]], slots: int, start_method: str) -> list[dict[str, Any]]:
    """The grid through Runner's public API, on ``slots`` CPU slots."""
    from benchmarks.ml_jobs import MLPConfig, MLPGrid
    from runner.grid_search import run_grid_searches

    grid = MLPGrid(
        base_dir=os.path.join(root, "runner_grid"),
        sweep_props={
            "hidden_units": sorted({p[0] for p in points}),
            "alpha": sorted({p[1] for p in points}),
            "seed": sorted({p[2] for p in points}),
        },
        base_experiment_config=MLPConfig(),
    )
    [results] = run_grid_searches(
        [grid], max_gpus=0, cpu_slots=slots, executor=_executor(start_method), progress=False
    )
    return list(results)


def run_joblib(points: list[tuple[int, float, int]], slots: int) -> list[dict[str, Any]]:
    """The grid through ``joblib.Parallel(n_jobs=slots)``, its workers started afresh."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    from benchmarks.ml_jobs import MLPConfig, train_mlp

    configs = [MLPConfig(hidden_units=h, alpha=a, seed=s) for h, a, s in points]
    try:
        return list(Parallel(n_jobs=slots)(delayed(train_mlp)(c) for c in configs))
    finally:
        get_reusable_executor().shutdown(wait=True)  # the next repetition starts cold too


def run_loop(points: list[tuple[int, float, int]]) -> list[dict[str, Any]]:
    """The grid in a plain loop in this process (its imports included, once)."""
    from benchmarks.ml_jobs import MLPConfig, train_mlp

    return [train_mlp(MLPConfig(hidden_units=h, alpha=a, seed=s)) for h, a, s in points]


def startup_costs(root: str, start_method: str) -> dict[str, float]:
    """Seconds from ``execute()`` to the job function's first line, cold and warm (medians)."""
    from benchmarks.ml_jobs import MLPConfig, train_mlp
    from runner.devices import CPU_DEVICE
    from runner.jobs import Job

    def job(name: str) -> Job:
        return Job(
            run_fn=train_mlp,
            config=MLPConfig(max_iter=1),
            base_dir=os.path.join(root, "startup", name),
        )

    async def measure(executor: Any, kind: str, teach_first: bool) -> list[float]:
        try:
            await executor.start()
            if teach_first:  # the first job teaches what to preload; start() waits for it
                await executor.execute(job(f"{kind}_teacher"), CPU_DEVICE)
                await executor.start()
            costs = []
            for i in range(STARTUP_SAMPLES):
                before = time.time()
                result = await executor.execute(job(f"{kind}_{i}"), CPU_DEVICE)
                if not result.success:
                    raise RuntimeError(f"the start-up job failed: {result.error}")
                costs.append(result.result["started"] - before)
            return costs
        finally:
            await executor.aclose()

    cold = asyncio.run(measure(_executor(start_method, preload=False), "cold", False))
    warm = asyncio.run(measure(_executor(start_method), "warm", True))
    return {"startup_cold_s": statistics.median(cold), "startup_warm_s": statistics.median(warm)}


def _timed(fn: Any, *args: Any) -> tuple[float, list[dict[str, Any]]]:
    start = time.perf_counter()
    results = fn(*args)
    return time.perf_counter() - start, sorted(results, key=_key)


def w10_ml_grid(start_method: str, quick: bool = False, slots: int | None = None) -> Metrics:
    """Runner vs joblib vs a loop on the MLP grid, and one job's start-up cold and warm."""
    from runner.thread_limits import available_cores

    slots = slots or min(len(_points(quick)), available_cores())
    points = _points(quick)
    with tempfile.TemporaryDirectory() as root:
        joblib_s, by_joblib = _timed(run_joblib, points, slots)
        runner_s, by_runner = _timed(run_runner, root, points, slots, start_method)
        loop_s, by_loop = _timed(run_loop, points)
        startup = startup_costs(root, start_method)
    accuracies = [[r["accuracy"] for r in results] for results in (by_runner, by_joblib, by_loop)]
    if len(by_runner) != len(points):
        raise RuntimeError(f"Runner returned {len(by_runner)} results for {len(points)} jobs")
    return {
        "jobs": len(points),
        "slots": slots,
        "runner_s": runner_s,
        "joblib_s": joblib_s,
        "loop_s": loop_s,
        "runner_over_joblib": runner_s / joblib_s,
        "runner_over_loop": runner_s / loop_s,
        "same_accuracies": accuracies[0] == accuracies[1] == accuracies[2],
        "max_accuracy_diff": max(
            abs(a - b) for other in accuracies[1:] for a, b in zip(accuracies[0], other, strict=True)
        ),
        **startup,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ml_grid", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 seeds instead of 3 (18 jobs)")
    parser.add_argument("--slots", type=int, default=None, help="jobs at once (default: the cores)")
    parser.add_argument(
        "--start-method", default="default", choices=["default", "forkserver", "spawn"]
    )
    args = parser.parse_args(argv)
    metrics = w10_ml_grid(args.start_method, args.quick, args.slots)
    print(json.dumps(metrics))
    print()
    print(f"{'system':<40} {'wall s':>8}")
    print(f"{'Runner, ' + str(metrics['slots']) + ' CPU slots':<40} {metrics['runner_s']:>8.2f}")
    print(f"{'joblib.Parallel(n_jobs=' + str(metrics['slots']) + ')':<40} {metrics['joblib_s']:>8.2f}")
    print(f"{'plain loop, one process':<40} {metrics['loop_s']:>8.2f}")
    print(
        f"Runner / joblib = {metrics['runner_over_joblib']:.3f} (target <= 1.25); "
        f"same accuracies: {metrics['same_accuracies']} (max diff {metrics['max_accuracy_diff']:.2g})"
    )
    print(
        f"one job's start-up (execute() -> first line): cold {metrics['startup_cold_s']:.3f} s, "
        f"warm {metrics['startup_warm_s']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
