"""The search configs of the spec: subclass one, write its three methods, run it.

``GridSearchConfig`` evaluates the cross product of ``sweep_props``;
``BinarySearchConfig`` searches one property ``prop`` over ``range`` and runs the
cross product of ``sweep_props`` (seeds, say) at each tested value. Both build
each job through the user's ``get_experiment_config_and_base_dir(**props)`` and
run it with ``run_experiment_config(config)`` in a fresh process.
"""

from __future__ import annotations

from typing import Any, Literal

from configs import REQUIRED, pydraclass

__all__ = ["SearchConfig", "GridSearchConfig", "BinarySearchConfig"]


@pydraclass
class SearchConfig:
    """What grid and binary searches share: where results go, what to sweep, how to run."""

    #: The search's folder: its ``*_results_<timestamp>.pkl`` and ``summary.json`` land here.
    base_dir: str = REQUIRED
    #: Properties to sweep, each a non-empty list: ``{"seed": [42, 43], "lr": [1e-3, 1e-4]}``.
    sweep_props: dict[str, Any] = {}
    #: The experiment config the user's ``get_experiment_config_and_base_dir`` copies.
    base_experiment_config: Any = REQUIRED
    #: Seconds a job may run before it is terminated (``None``: no limit).
    timeout: float | None = None
    #: Extra attempts for a job that crashes (a signal, an OOM kill), not for its own exception.
    retries: int = 0

    def get_experiment_config_and_base_dir(self, **props: Any) -> tuple[Any, str]:
        """Return ``(experiment_config, experiment_base_dir)`` for one point of the sweep."""
        raise NotImplementedError(
            f"{type(self).__name__} must define get_experiment_config_and_base_dir(self, ...), "
            "returning (experiment_config, experiment_base_dir) for the given property values"
        )

    def run_experiment_config(self, config: Any) -> Any:
        """Run one experiment in its own process and return its result."""
        raise NotImplementedError(
            f"{type(self).__name__} must define run_experiment_config(self, config), "
            "which runs one experiment and returns its result"
        )


@pydraclass
class GridSearchConfig(SearchConfig):
    """Run every combination of ``sweep_props`` and aggregate the results.

    Example:
        >>> import copy
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class LrGrid(GridSearchConfig):
        ...     def get_experiment_config_and_base_dir(self, lr, seed):
        ...         config = copy.deepcopy(self.base_experiment_config)
        ...         config.update(lr=lr, seed=seed)
        ...         return config, f"{self.base_dir}/lr_{lr}_seed_{seed}"
        ...     def run_experiment_config(self, config):
        ...         return config["lr"] * config["seed"]
        >>> grid = LrGrid(base_dir="results/grid", base_experiment_config={},
        ...               sweep_props={"lr": [0.1, 0.01], "seed": [1, 2]})
        >>> # run_grid_searches([grid]) runs 4 jobs and returns [agg_results(results)]
    """

    def agg_results(self, results: list[Any]) -> Any:
        """Aggregate the ``GPUJobResult`` of every point (failures included, in sweep order).

        The default returns the list unchanged; override it to reduce it.
        """
        return results


@pydraclass
class BinarySearchConfig(SearchConfig):
    """Find the threshold value of ``prop`` within ``range`` to within ``precision``.

    At each tested value, one job runs per combination of ``sweep_props`` and
    ``agg_results`` turns their results into ``(success, result)``.

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class WidthSearch(BinarySearchConfig):
        ...     def get_experiment_config_and_base_dir(self, width, seed):
        ...         return {"width": width, "seed": seed}, f"{self.base_dir}/w{width}_s{seed}"
        ...     def run_experiment_config(self, config):
        ...         return config["width"] >= 42
        ...     def agg_results(self, results):
        ...         return all(r.success and r.result for r in results), None
        >>> search = WidthSearch(base_dir="results/width", prop="width", range=(1, 100),
        ...                      precision=1, sweep_props={"seed": [1, 2]},
        ...                      base_experiment_config={})
    """

    #: The property searched over: a parameter of ``get_experiment_config_and_base_dir``.
    prop: str = REQUIRED
    #: ``(lo, hi)``: the bounds of the search (tested themselves only per ``test_range_ends``).
    range: tuple = REQUIRED
    #: The search stops once the interval is this narrow (ints: adjacent values at 1).
    precision: int | float = REQUIRED
    #: ``True``: lower values are better, so a success moves the search lower.
    success_direction_lower: bool = True
    #: ``"linear"`` bisects arithmetically, ``"log"`` geometrically (learning rates, sizes).
    scale: Literal["linear", "log"] = "linear"
    #: Values tested per round: ``"auto"`` fills idle slots, ``1`` is classic bisection.
    parallel_points: int | Literal["auto"] = "auto"
    #: Test ``lo`` and ``hi`` themselves in the first round: ``"auto"`` when the round
    #: leaves two places idle (no extra round), ``True`` always, ``False`` never. They
    #: only say what lies beyond the range; answers inside it are classic bisection's.
    test_range_ends: bool | Literal["auto"] = "auto"
    #: Combinations of ``sweep_props`` run per tested value (``None``: all of them).
    #: Fewer leaves a pool from which values with contradicting verdicts are re-tested.
    repetitions: int | None = None
    #: ``"bisection"`` (classic, exact for deterministic rules) or ``"probabilistic"``
    #: (a posterior over the threshold and the noise, for outcomes that vary by seed).
    method: Literal["bisection", "probabilistic"] = "bisection"
    #: Probabilistic: the credible interval's probability; it stops once that interval
    #: is no wider than ``precision``.
    confidence: float = 0.95
    #: Probabilistic: the most jobs to run (``None``: ten per round classic bisection needs).
    max_jobs: int | None = None
    #: Probabilistic: the threshold is where a job succeeds with this probability.
    target_rate: float = 0.5

    def agg_results(self, results: list[Any]) -> tuple[bool | None, Any]:
        """Turn one tested value's ``GPUJobResult`` list into ``(success, result)``.

        Return ``success=None`` when the value can't be judged (every job crashed, say):
        the value is run once more, then the search stops with an error.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define agg_results(self, results), "
            "returning (success, result) for one tested value"
        )

    def job_success(self, result: Any) -> bool | None:
        """Judge one job on its own (``method="probabilistic"``): True, False, or None
        when it can't be judged (not counted). Default: ``agg_results([result])[0]``."""
        success = self.agg_results([result])[0]
        return None if success is None else bool(success)

    def margin(self, result: Any) -> float | None:
        """How far an aggregated result is from the success target, signed (positive:
        the success side), or None when the rule has no numeric target (the default).

        Reported at the answer and at its failing neighbour: a margin of 0.002 says the
        answer could flip with another seed."""
        return None
