"""W8: one grid of N no-op jobs on 8 fake-GPU slots, to see that cost per job stays flat.

Each size runs in its own driver process (so its peak RSS is its own):

    python -m benchmarks.w8_scale N OUT_DIR     # prints one JSON line of metrics

and :func:`w8_sweep_scale` runs 500 and 10,000 (and 100,000 with ``--w8-100k``).
Metrics per size: the makespan's overhead per job (``makespan x slots / jobs``: the
jobs do nothing), the largest job folder and the bytes per job on disk, the
driver's peak RSS, and how long ``runner status DIR`` and ``runner status DIR
--json`` take on the finished sweep.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from configs import pydraclass
from runner.configs.search_configs import GridSearchConfig

SLOTS_GPUS, SLOTS_PER_GPU = 4, 2
SIZES = (500, 10_000)
BIG = 100_000


def noop(config: dict[str, int]) -> int:
    return config["i"]


@pydraclass
class NoopGrid(GridSearchConfig):
    """N jobs that return their index: the runner's own cost is all there is."""

    def get_experiment_config_and_base_dir(self, i: int):  # type: ignore[override]
        return {"i": i}, f"{self.base_dir}/i={i}"

    def run_experiment_config(self, config: dict[str, int]) -> int:
        return noop(config)

    def agg_results(self, results: list[Any]) -> int:
        return sum(r.success for r in results)


def _folder_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(n: int, root: str) -> dict[str, Any]:
    """Run the N-job grid in this process and measure it (the child side of :func:`run_size`)."""
    from runner.grid_search import run_grid_searches

    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(SLOTS_GPUS))
    base = os.path.join(root, f"grid_{n}")
    grid = NoopGrid(base_dir=base, sweep_props={"i": list(range(n))}, base_experiment_config={})
    start = time.perf_counter()
    [ok] = run_grid_searches(
        [grid], max_gpus=SLOTS_GPUS, simultaneous_jobs_per_gpu=SLOTS_PER_GPU, progress=False
    )
    makespan = time.perf_counter() - start
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if ok != n:
        raise RuntimeError(f"W8: {n - ok} of {n} jobs failed")
    job_dirs = [os.path.join(base, d) for d in os.listdir(base) if d.startswith("i=")]
    sample = job_dirs[:: max(1, len(job_dirs) // 200)]  # the largest folder, from a sample
    runner_cli = [sys.executable, "-m", "runner.cli", "status", base]
    return {
        "jobs": n,
        "makespan_s": makespan,
        "overhead_ms_per_job": makespan * SLOTS_GPUS * SLOTS_PER_GPU / n * 1000,
        "largest_job_folder_bytes": max(_folder_bytes(d) for d in sample),
        "bytes_per_job": _folder_bytes(base) / n,
        "driver_peak_rss_mib": peak_rss_mib,
        "status_s": _timed(runner_cli),
        "status_json_s": _timed([*runner_cli, "--json"]),
    }


def run_size(n: int) -> dict[str, Any]:
    """Measure the N-job grid in a fresh driver process; its folder is removed afterwards."""
    root = tempfile.mkdtemp(prefix=f"runner-w8-{n}-")
    try:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.w8_scale", str(n), root],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def w8_sweep_scale(start_method: str, quick: bool = False) -> dict[str, float | bool]:
    """W8's metrics for each size, flattened (``overhead_ms_per_job_500``, ...) with the ratios."""
    sizes: tuple[int, ...] = (200, 2_000) if quick else SIZES
    if os.environ.get("RUNNER_BENCH_W8_100K") == "1" and not quick:
        sizes = (*sizes, BIG)
    if start_method != "default":
        os.environ["RUNNER_START_METHOD"] = start_method
    metrics: dict[str, float | bool] = {}
    for n in sizes:
        for key, value in run_size(n).items():
            if key != "jobs":
                metrics[f"{key}_{n}"] = value
    small, large = sizes[0], sizes[1]
    metrics["per_job_ratio"] = (
        metrics[f"overhead_ms_per_job_{large}"] / metrics[f"overhead_ms_per_job_{small}"]
    )
    metrics["bytes_per_job_ratio"] = (
        metrics[f"bytes_per_job_{large}"] / metrics[f"bytes_per_job_{small}"]
    )
    metrics["status_s_largest"] = metrics[f"status_s_{sizes[-1]}"]
    return metrics


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), sys.argv[2])))
