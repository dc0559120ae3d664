"""W9: how often a threshold search is right under noise, bisection against the posterior.

Pure simulation through the search strategies (no processes): thresholds ``t``
drawn at random in (20, 100), the range (1, 128), integer values, precision 1.
A job at ``x`` succeeds with probability ``sigmoid((x - t) / s)`` (``s = 0``: iff
``x >= t``), for ``s`` in 0, 1, 3, 6, 500 searches each (100 with ``--quick``).

* **bisection**: classic, 4 seeds per tested value, majority vote (a 2-2 tie is a
  coin flip); its answer is ``achieved``, its interval the final bracket.
* **probabilistic**: :class:`runner.searches.posterior.NoisyThreshold`, 4 jobs a
  round, at the same number of jobs (28: 7 rounds x 4 seeds); its answer is the
  estimate, its interval the 95% credible one.

Per method and ``s``: how often the answer is within 1 of ``t``, the mean absolute
error, the interval's coverage (``t`` inside) and mean width (an end beyond the
range counts as the range end). Targets (issue 16): at ``s`` = 3 and 6 the
posterior is within 1 at least 1.5x as often as bisection; its interval covers
``t`` at least 90% of the time at every ``s``; at ``s = 0`` it is exact.

Then one end-to-end run through ``run_binary_searches`` (``method="probabilistic"``,
real processes on 4 fake GPUs x 2 slots, seeds from a pool of 64): its answer,
interval, jobs and wall time.

    python -m benchmarks.w9_threshold [--quick]     # prints the table and one JSON line
"""

from __future__ import annotations

import json
import math
import random
import sys
import tempfile
import time
from typing import Any

from benchmarks.workloads import ThresholdConfig, ThresholdSearch
from configs import pydraclass
from runner.searches.bisection import Bisection, BisectionSpace
from runner.searches.posterior import NoisyThreshold

LO, HI = 1, 128
NOISE = (0, 1, 3, 6)
SEEDS_PER_VALUE = 4
JOBS_PER_ROUND = 4
CONFIDENCE = 0.95

Metrics = dict[str, float | bool]


def success_probability(x: float, t: float, s: float) -> float:
    """The chance that a job at ``x`` succeeds: logistic through ``t``, or a step at s = 0."""
    if s == 0:
        return 1.0 if x >= t else 0.0
    z = (x - t) / s
    return 1 / (1 + math.exp(-z)) if z > -700 else 0.0


def _space() -> BisectionSpace:
    return BisectionSpace(LO, HI, 1, integer=True)


def bisection_search(t: int, s: float, rng: random.Random) -> tuple[int | None, tuple, int]:
    """(answer, bracket, jobs) of classic bisection with 4 seeds per value, majority vote."""
    search = Bisection(_space())
    jobs = 0
    while not search.done:
        for value in search.propose(1):
            wins = sum(rng.random() < success_probability(value, t, s) for _ in range(4))
            jobs += SEEDS_PER_VALUE
            success = wins > 2 or (wins == 2 and rng.random() < 0.5)
            search.record(value, success, wins)
    achieved = search.achieved
    return (None if achieved is None else achieved[0]), search.interval, jobs


def posterior_search(
    t: int, s: float, rng: random.Random, max_jobs: int
) -> tuple[int | None, tuple, int]:
    """(estimate, credible interval, jobs) of the probabilistic method, 4 jobs a round."""
    model = NoisyThreshold(_space(), confidence=CONFIDENCE, max_jobs=max_jobs, pool=64)
    while not model.done:
        for value in model.propose(JOBS_PER_ROUND):
            model.record(value, rng.random() < success_probability(value, t, s))
    estimate = model.estimate
    return (None if estimate is None else int(estimate)), model.interval, model.jobs


def _score(answers: list[tuple[int | None, tuple, int]], truths: list[int]) -> dict[str, float]:
    within = errors = covered = width = jobs = 0.0
    for (answer, (lo, hi), n), t in zip(answers, truths, strict=True):
        guess = HI + 1 if answer is None else answer  # "beyond the range": past the end
        within += abs(guess - t) <= 1
        errors += abs(guess - t)
        covered += (lo is None or lo < t) and (hi is None or t <= hi)
        width += (HI if hi is None else hi) - (LO if lo is None else lo)
        jobs += n
    n_searches = len(truths)
    return {
        "within1": within / n_searches,
        "mae": errors / n_searches,
        "coverage": covered / n_searches,
        "width": width / n_searches,
        "jobs": jobs / n_searches,
    }


def simulate(searches: int, seed: int = 9) -> dict[str, dict[str, float]]:
    """Both methods at every noise level, on the same thresholds: ``{"bisection_s3": {...}}``."""
    out: dict[str, dict[str, float]] = {}
    for s in NOISE:
        rng = random.Random(seed * 1000 + s)
        truths = [rng.randint(20, 100) for _ in range(searches)]
        bisection = [bisection_search(t, s, rng) for t in truths]
        budget = round(sum(n for _, _, n in bisection) / searches)  # the same number of jobs
        posterior = [posterior_search(t, s, rng, budget) for t in truths]
        out[f"bisection_s{s}"] = _score(bisection, truths)
        out[f"posterior_s{s}"] = _score(posterior, truths)
    return out


# -- one end-to-end run --------------------------------------------------------------------


@pydraclass
class NoisyJobConfig(ThresholdConfig):
    """One job of the end-to-end run: a Bernoulli draw seeded by (value, seed)."""

    threshold: int = 60
    noise: float = 3.0


def noisy_job(config: NoisyJobConfig) -> dict[str, Any]:
    rng = random.Random(config.value * 100_003 + config.seed)
    p = success_probability(config.value, config.threshold, config.noise)
    return {"passed": rng.random() < p, "p": p}


@pydraclass
class NoisyThresholdSearch(ThresholdSearch):
    """W3's threshold search (its folders, its props) with noisy jobs, judged one by one."""

    def run_experiment_config(self, config: NoisyJobConfig) -> dict[str, Any]:  # type: ignore[override]
        return noisy_job(config)

    def agg_results(self, results: list[Any]) -> tuple[bool | None, Any]:
        ok = [r.result for r in results if r.success]
        if not ok:
            return None, None
        rate = sum(r["passed"] for r in ok) / len(ok)
        return rate >= 0.5, rate


def end_to_end(threshold: int = 60, noise: float = 3.0, max_jobs: int = 28) -> Metrics:
    """One probabilistic search through ``run_binary_searches`` on 8 fake-GPU slots."""
    from benchmarks.bench import fake_gpus
    from runner.binary_search import run_binary_searches

    with tempfile.TemporaryDirectory() as root, fake_gpus(4):
        search = NoisyThresholdSearch(
            base_dir=f"{root}/w9",
            prop="value",
            range=(LO, HI),
            precision=1,
            sweep_props={"seed": list(range(64))},
            method="probabilistic",
            max_jobs=max_jobs,
            base_experiment_config=NoisyJobConfig(threshold=threshold, noise=noise),
        )
        t0 = time.perf_counter()
        [outcome] = run_binary_searches([search], simultaneous_jobs_per_gpu=2, progress=False)
        wall = time.perf_counter() - t0
    lo, hi = outcome.interval or (None, None)
    return {
        "e2e_estimate": float(outcome.estimate) if outcome.estimate is not None else -1.0,
        "e2e_error": abs((outcome.estimate or HI + 1) - threshold),
        "e2e_covered": (lo is None or lo < threshold) and (hi is None or threshold <= hi),
        "e2e_jobs": float(outcome.jobs),
        "e2e_rounds": float(outcome.rounds),
        "e2e_wall_s": wall,
    }


def w9_threshold(start_method: str = "default", quick: bool = False) -> Metrics:
    """The benchmark harness's entry: the simulation's figures, then the end-to-end run."""
    table = simulate(100 if quick else 500)
    metrics: Metrics = {}
    for name, scores in table.items():
        for key, value in scores.items():
            metrics[f"{name}_{key}"] = value
    for s in (3, 6):
        base = max(table[f"bisection_s{s}"]["within1"], 1e-9)
        metrics[f"within1_ratio_s{s}"] = table[f"posterior_s{s}"]["within1"] / base
    metrics["min_coverage"] = min(table[f"posterior_s{s}"]["coverage"] for s in NOISE)
    metrics["exact_s0"] = table["posterior_s0"]["mae"] == 0
    metrics.update(end_to_end())
    return metrics


def targets_hold(m: dict[str, float]) -> bool:
    """Issue 16's targets for W9."""
    return (
        m["within1_ratio_s3"] >= 1.5
        and m["within1_ratio_s6"] >= 1.5
        and m["min_coverage"] >= 0.90
        and bool(m["exact_s0"])
    )


def format_table(table: dict[str, dict[str, float]]) -> str:
    lines = [
        f"{'s':>3}  {'method':<13} {'within 1':>8} {'MAE':>6} {'coverage':>8} {'width':>6} {'jobs':>5}"
    ]
    for s in NOISE:
        for method in ("bisection", "posterior"):
            r = table[f"{method}_s{s}"]
            lines.append(
                f"{s:>3}  {method:<13} {r['within1']:>8.3f} {r['mae']:>6.2f} "
                f"{r['coverage']:>8.3f} {r['width']:>6.1f} {r['jobs']:>5.1f}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    table = simulate(100 if quick else 500)
    print(format_table(table))
    e2e = end_to_end()
    print(
        json.dumps(
            {
                "workload": "W9",
                "simulation": table,
                "end_to_end": e2e,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    )
