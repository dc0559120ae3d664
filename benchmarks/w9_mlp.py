"""W9r: W9 on a real noise shape, issue 16's own example.

scikit-learn's MLP on the digits data (:func:`benchmarks.ml_jobs.train_mlp`, its
defaults): the smallest ``hidden_units`` in (1, 64) whose test accuracy reaches a
target, for the issue's two targets, 0.90 and 0.96. The seed changes the outcome.

The accuracies come from real training, run once and committed
(:data:`TABLE_PATH`: ``hidden_units`` 1..64 x seeds 0..23); the benchmark itself is a
pure simulation through the search strategies over that table, so it runs in seconds.

Two truths per target, both from the whole table:

* **mean truth**: the smallest ``h`` whose mean accuracy over all the table's seeds
  reaches the target (the issue's "20-seed threshold"); what a researcher reports.
* **per-job truth**: the smallest ``h`` where at least half the seeds reach the
  target; what ``target_rate=0.5`` estimates.

Each search draws its seeds at random, without replacement, from the table's seeds at
each tested value:

* **bisection**: classic, 4 seeds per tested value, their mean accuracy against the
  target (as the issue measured, ``--agg mean``); its answer is ``achieved``, its
  interval the final bracket.
* **probabilistic**: :class:`runner.searches.posterior.NoisyThreshold`, each job judged
  alone (accuracy >= target), 4 jobs a round, at the number of jobs bisection used,
  the pool being the table's seeds; its answer is the estimate, its interval the 95%
  credible one.

Per target and method: how often the answer is within 1 of the truth, the mean
absolute error, how often it is exact, the interval's coverage and mean width, jobs;
scored against both truths. The harness (``python -m benchmarks.run --only W9r``)
reports ``within1_ratio``, the method's within-1 rate over bisection's against the
mean truth at the worse of the two targets, and checks that the method's 95%
interval holds both truths in at least 90% of searches at both targets.

    python -m benchmarks.w9_mlp [--quick]     # prints the table and one JSON line
    python -m benchmarks.w9_mlp --generate    # trains the table (minutes; resumable)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.searches.bisection import Bisection, BisectionSpace
from runner.searches.posterior import NoisyThreshold

TABLE_PATH = Path(__file__).parent / "data" / "mlp_digits_accuracy.json"
HIDDEN_UNITS = range(1, 65)
SEEDS = range(24)
TARGETS = (0.90, 0.96)
SEEDS_PER_VALUE = 4
JOBS_PER_ROUND = 4
CONFIDENCE = 0.95
#: Accuracies are multiples of 1/450 (the test set); a mean of four can land a rounding
#: error below an exact hit of the target, which must still count as reaching it.
TOLERANCE = 1e-9

Metrics = dict[str, float | bool]
#: (answer, interval, jobs) of one search; answer None: "beyond the range".
Outcome = tuple[int | None, tuple[int | None, int | None], int]


# -- the table: real training, run once ------------------------------------------------------


def _partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial.jsonl")


def generate(
    path: Path = TABLE_PATH,
    hidden_units: range = HIDDEN_UNITS,
    seeds: range = SEEDS,
) -> dict[str, Any]:
    """Train :func:`train_mlp` at every (hidden_units, seed) and write the table to ``path``.

    Resumable: each fit is appended to ``<path>.partial.jsonl`` as it ends, and a rerun
    skips the fits found there; the partial file is removed once the table is written.
    """
    import sklearn

    from benchmarks.ml_jobs import MLPConfig, train_mlp

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(path)
    done: dict[tuple[int, int], float] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by an interruption
                    continue
                done[(row["hidden_units"], row["seed"])] = row["accuracy"]
    defaults = MLPConfig()
    t0 = time.perf_counter()
    todo = [(h, s) for h in hidden_units for s in seeds if (h, s) not in done]
    print(f"[w9_mlp] {len(done)} fits cached, {len(todo)} to run", file=sys.stderr, flush=True)
    with partial.open("a") as out:
        for i, (h, s) in enumerate(todo, 1):
            result = train_mlp(MLPConfig(hidden_units=h, seed=s))
            done[(h, s)] = result["accuracy"]
            out.write(json.dumps({"hidden_units": h, "seed": s, "accuracy": result["accuracy"]}))
            out.write("\n")
            out.flush()
            if i % 64 == 0 or i == len(todo):
                elapsed = time.perf_counter() - t0
                print(
                    f"[w9_mlp] {i}/{len(todo)} fits, {elapsed:.0f} s", file=sys.stderr, flush=True
                )
    table = {
        "meta": {
            "what": "test accuracy of benchmarks.ml_jobs.train_mlp (MLPClassifier, one hidden "
            "layer, digits data, train_test_split test_size=0.25 random_state=0, inputs / 16)",
            "config": {"alpha": defaults.alpha, "max_iter": defaults.max_iter},
            "hidden_units": [hidden_units.start, hidden_units.stop - 1],
            "seeds": [seeds.start, seeds.stop - 1],
            "sklearn": sklearn.__version__,
            "python": platform.python_version(),
            "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seconds_this_run": round(time.perf_counter() - t0, 1),
            "command": "nice -n 10 python -m benchmarks.w9_mlp --generate",
        },
        "seeds": list(seeds),
        # accuracy[str(h)][i] is the accuracy at hidden_units h with seed seeds[i]
        "accuracy": {str(h): [done[(h, s)] for s in seeds] for h in hidden_units},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_table(table))
    os.replace(tmp, path)
    partial.unlink(missing_ok=True)
    return table


def dump_table(table: dict[str, Any]) -> str:
    """The table as JSON, one ``hidden_units`` row per line (readable, and diffs by row)."""
    rows = ",\n".join(
        f"  {json.dumps(h)}: {json.dumps(row)}" for h, row in table["accuracy"].items()
    )
    meta = json.dumps(table["meta"], indent=1).replace("\n", "\n ")  # nested one deeper
    return (
        "{\n"
        f' "meta": {meta},\n'
        f' "seeds": {json.dumps(table["seeds"])},\n'
        f' "accuracy": {{\n{rows}\n }}\n'
        "}\n"
    )


# -- the table, read ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccuracyTable:
    """Test accuracy per (hidden_units, seed): ``accuracy[h][i]`` with seed ``seeds[i]``."""

    accuracy: dict[int, list[float]]
    seeds: list[int]
    meta: dict[str, Any]

    @property
    def lo(self) -> int:
        return min(self.accuracy)

    @property
    def hi(self) -> int:
        return max(self.accuracy)

    def mean(self, h: int) -> float:
        row = self.accuracy[h]
        return sum(row) / len(row)

    def rate(self, h: int, target: float) -> float:
        """The fraction of seeds whose accuracy at ``h`` reaches ``target``."""
        row = self.accuracy[h]
        return sum(reaches(a, target) for a in row) / len(row)


def reaches(accuracy: float, target: float) -> bool:
    return accuracy >= target - TOLERANCE


def load_table(path: Path = TABLE_PATH) -> AccuracyTable:
    """The committed table; a missing or incomplete one names the command that makes it."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `nice -n 10 python -m benchmarks.w9_mlp --generate` "
            "(minutes of training) to make it"
        )
    raw = json.loads(path.read_text())
    seeds = list(raw["seeds"])
    accuracy = {int(h): list(row) for h, row in raw["accuracy"].items()}
    short = [h for h, row in accuracy.items() if len(row) != len(seeds)]
    if short or sorted(accuracy) != list(range(min(accuracy), max(accuracy) + 1)):
        raise ValueError(
            f"{path}: incomplete table (rows with missing seeds: {short[:5]}, or a gap in "
            "hidden_units); regenerate it with `python -m benchmarks.w9_mlp --generate`"
        )
    return AccuracyTable(accuracy, seeds, raw.get("meta", {}))


def mean_truth(table: AccuracyTable, target: float) -> int | None:
    """The smallest ``h`` whose mean accuracy over all seeds reaches ``target`` (None: none)."""
    return next((h for h in sorted(table.accuracy) if reaches(table.mean(h), target)), None)


def job_truth(table: AccuracyTable, target: float, rate: float = 0.5) -> int | None:
    """The smallest ``h`` where at least ``rate`` of the seeds reach ``target`` (None: none)."""
    return next(
        (h for h in sorted(table.accuracy) if table.rate(h, target) >= rate - TOLERANCE), None
    )


def crossings(values: Sequence[int], passes: Sequence[bool]) -> list[int]:
    """The values where ``passes`` flips from one value to the next (the later of each pair)."""
    return [v for v, a, b in zip(values[1:], passes, passes[1:], strict=False) if a != b]


# -- one search of each method -----------------------------------------------------------------


class SeedDraws:
    """Per tested value, the table's seeds in a random order: each job takes the next one."""

    def __init__(self, table: AccuracyTable, rng: random.Random) -> None:
        self.table = table
        self.rng = rng
        self._order: dict[int, list[int]] = {}

    def next(self, h: int) -> float:
        """The accuracy at ``h`` of a seed not yet drawn there."""
        order = self._order.get(h)
        if order is None:
            order = list(range(len(self.table.seeds)))
            self.rng.shuffle(order)
            self._order[h] = order
        if not order:
            raise ValueError(f"hidden_units={h}: all {len(self.table.seeds)} seeds already drawn")
        return self.table.accuracy[h][order.pop()]


def _space(table: AccuracyTable) -> BisectionSpace:
    return BisectionSpace(table.lo, table.hi, 1, integer=True)


def bisection_search(table: AccuracyTable, target: float, rng: random.Random) -> Outcome:
    """Classic bisection, 4 seeds per value, their mean accuracy against ``target``."""
    search = Bisection(_space(table))
    draws = SeedDraws(table, rng)
    jobs = 0
    while not search.done:
        for value in search.propose(1):
            accuracies = [draws.next(int(value)) for _ in range(SEEDS_PER_VALUE)]
            jobs += SEEDS_PER_VALUE
            mean = sum(accuracies) / len(accuracies)
            search.record(value, reaches(mean, target), mean)
    achieved = search.achieved
    lo, hi = search.interval
    return (None if achieved is None else int(achieved[0])), (int(lo), int(hi)), jobs


def posterior_search(
    table: AccuracyTable, target: float, rng: random.Random, max_jobs: int
) -> Outcome:
    """The probabilistic method: each job judged alone, 4 a round, up to ``max_jobs``."""
    model = NoisyThreshold(
        _space(table), confidence=CONFIDENCE, max_jobs=max_jobs, pool=len(table.seeds)
    )
    draws = SeedDraws(table, rng)
    while not model.done:
        for value in model.propose(JOBS_PER_ROUND):
            model.record(value, reaches(draws.next(int(value)), target))
    estimate = model.estimate
    lo, hi = model.interval
    return (
        None if estimate is None else int(estimate),
        (None if lo is None else int(lo), None if hi is None else int(hi)),
        model.jobs,
    )


# -- scoring -----------------------------------------------------------------------------------


def score(outcomes: Sequence[Outcome], truth: int | None, lo: int, hi: int) -> dict[str, float]:
    """How close ``outcomes`` land to ``truth`` on the range (lo, hi); None is past ``hi``.

    An interval ``(a, b)`` holds ``t`` when ``a < t <= b`` (an end None is unbounded);
    its width counts an unbounded end as the range's end.
    """
    t = hi + 1 if truth is None else truth

    def one(outcome: Outcome) -> dict[str, float]:
        answer, (a, b), jobs = outcome
        error = abs((hi + 1 if answer is None else answer) - t)
        return {
            "within1": float(error <= 1),
            "mae": float(error),
            "exact": float(error == 0),
            "coverage": float((a is None or a < t) and (b is None or t <= b)),
            "width": float((hi if b is None else b) - (lo if a is None else a)),
            "jobs": float(jobs),
        }

    rows = [one(outcome) for outcome in outcomes]
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}


def target_tag(target: float) -> str:
    """``0.9`` -> ``t090``: a metric-name form of a target."""
    return f"t{round(target * 100):03d}"


def simulate(
    table: AccuracyTable, searches: int, seed: int = 9, targets: Sequence[float] = TARGETS
) -> dict[str, Any]:
    """Both methods at each target, scored against both truths.

    Returns ``{"t090": {"truth_mean": 6, "truth_job": 6, "bisection_mean": {...},
    "posterior_job": {...}, ...}}`` (method_truth -> scores).
    """
    out: dict[str, Any] = {}
    for k, target in enumerate(targets):
        rng = random.Random(seed * 1000 + k)
        bisection = [bisection_search(table, target, rng) for _ in range(searches)]
        budget = round(sum(n for _, _, n in bisection) / searches)  # the same number of jobs
        posterior = [posterior_search(table, target, rng, budget) for _ in range(searches)]
        truths = {"mean": mean_truth(table, target), "job": job_truth(table, target)}
        entry: dict[str, Any] = {"target": target, "budget": budget}
        for name, truth in truths.items():
            entry[f"truth_{name}"] = truth
            for method, outcomes in (("bisection", bisection), ("posterior", posterior)):
                entry[f"{method}_{name}"] = score(outcomes, truth, table.lo, table.hi)
        out[target_tag(target)] = entry
    return out


def noise_profile(table: AccuracyTable, target: float, around: int, width: int = 6) -> str:
    """Mean accuracy and the fraction of seeds reaching ``target`` near ``around``."""
    rows = [f"  target {target}: h, mean accuracy, min..max, share of seeds reaching it"]
    for h in range(max(table.lo, around - width), min(table.hi, around + width) + 1):
        row = table.accuracy[h]
        rows.append(
            f"  {h:>3} {table.mean(h):.4f} {min(row):.3f}..{max(row):.3f} "
            f"{table.rate(h, target):.2f}"
        )
    return "\n".join(rows)


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{'target':>6} {'truth':<9} {'method':<13} {'within 1':>8} {'MAE':>6} {'exact':>6} "
        f"{'coverage':>8} {'width':>6} {'jobs':>5}"
    ]
    for entry in result.values():
        for name in ("mean", "job"):
            truth = entry[f"truth_{name}"]
            for method in ("bisection", "posterior"):
                r = entry[f"{method}_{name}"]
                lines.append(
                    f"{entry['target']:>6.2f} {name + '=' + str(truth):<9} {method:<13} "
                    f"{r['within1']:>8.3f} {r['mae']:>6.2f} {r['exact']:>6.3f} "
                    f"{r['coverage']:>8.3f} {r['width']:>6.1f} {r['jobs']:>5.1f}"
                )
    return "\n".join(lines)


def w9_mlp(
    start_method: str = "default", quick: bool = False, searches: int | None = None
) -> Metrics:
    """The benchmark harness's entry (W9r): the simulation's figures, flattened.

    ``start_method`` is the harness's and unused (no processes); ``searches`` per target
    defaults to 500 (100 with ``quick``)."""
    result = simulate(load_table(), searches or (100 if quick else 500))
    metrics: Metrics = {}
    for tag, entry in result.items():
        for name in ("mean", "job"):
            truth = entry[f"truth_{name}"]
            metrics[f"{tag}_truth_{name}"] = -1.0 if truth is None else float(truth)
            for method in ("bisection", "posterior"):
                for key, value in entry[f"{method}_{name}"].items():
                    metrics[f"{tag}_{method}_{name}_{key}"] = value
        base = max(entry["bisection_mean"]["within1"], 1e-9)
        metrics[f"{tag}_within1_ratio"] = entry["posterior_mean"]["within1"] / base
    tags = list(result)
    metrics["within1_ratio"] = min(float(metrics[f"{tag}_within1_ratio"]) for tag in tags)
    metrics["min_coverage"] = min(float(metrics[f"{tag}_posterior_mean_coverage"]) for tag in tags)
    metrics["min_coverage_job"] = min(
        float(metrics[f"{tag}_posterior_job_coverage"]) for tag in tags
    )
    return metrics


def targets_hold(m: dict[str, float]) -> bool:
    """W9r's check: the method's 95% interval holds the truth at least 90% of the time at
    every target, the mean truth (``min_coverage``) and the per-job one alike."""
    return m["min_coverage"] >= 0.90 and m.get("min_coverage_job", 1.0) >= 0.90


def main(argv: Sequence[str]) -> int:
    if "--generate" in argv:
        generate()
        return 0
    quick = "--quick" in argv
    t0 = time.perf_counter()
    table = load_table()
    result = simulate(table, 100 if quick else 500)
    print(format_table(result))
    for entry in result.values():
        truth = entry["truth_mean"] or entry["truth_job"] or table.hi
        print(noise_profile(table, entry["target"], truth))
        means = [reaches(table.mean(h), entry["target"]) for h in sorted(table.accuracy)]
        flips = crossings(sorted(table.accuracy), means)
        if len(flips) > 1:
            print(f"  the mean crosses {entry['target']} {len(flips)} times: at {flips}")
        if entry["truth_mean"] != entry["truth_job"]:
            print(f"  the truths differ: mean {entry['truth_mean']}, per job {entry['truth_job']}")
    print(
        json.dumps(
            {
                "workload": "W9r",
                "table": str(TABLE_PATH.relative_to(Path(__file__).parent.parent)),
                "simulation": result,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
