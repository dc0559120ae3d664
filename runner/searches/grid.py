"""Grid search as a strategy over the driver: every job is known before anything runs."""

from __future__ import annotations

import logging
from typing import Any

from runner.configs.search_configs import GridSearchConfig
from runner.errors import AggregationError
from runner.job_result import GPUJobResult
from runner.jobs import Job
from runner.searches.driver import SearchRun, SearchSession
from runner.searches.points import PointBuilder, check_job_dirs_distinct
from runner.searches.summary import JobSummary, json_summary

__all__ = ["GridSearch"]

logger = logging.getLogger("runner")


class GridSearch(SearchRun):
    """One validated grid search: the cross product of ``sweep_props``, aggregated once."""

    kind = "grid_search"

    def __init__(self, config: GridSearchConfig) -> None:
        super().__init__(config, PointBuilder(config, base=GridSearchConfig))
        self.jobs = self.builder.jobs_for()
        check_job_dirs_distinct(self.jobs, self.name)
        self.status.expected_jobs = len(self.jobs)
        self.results: list[GPUJobResult] | None = None
        self.aggregated: Any = None

    @property
    def known_jobs(self) -> list[Job]:
        return self.jobs

    def reset(self) -> None:
        self.results, self.aggregated = None, None

    async def explore(self, session: SearchSession) -> None:
        logger.debug("%s: running %d job(s)", self.name, len(self.jobs))  # progress says it
        self.results = await session.run_jobs(self.jobs)
        self.aggregated = self._aggregate(self.results)

    def _aggregate(self, results: list[GPUJobResult]) -> Any:
        try:
            return self.config.agg_results(results)
        except Exception as exc:
            raise AggregationError(
                f"{self.name}: agg_results raised {type(exc).__name__}: {exc}; every "
                "job's result is saved (job folders and the results pickle), so fix agg_results "
                "and rerun with resume=True to aggregate without running the jobs again"
            ) from exc

    @property
    def num_failed(self) -> int | None:
        return None if self.results is None else sum(not r.success for r in self.results)

    def describe(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "sweep_props": {
                key: [json_summary(v) for v in values] for key, values in self.builder.sweep.items()
            },
            "num_jobs": len(self.jobs),
        }
        if self.results is not None:
            fields["jobs"] = [JobSummary.from_result(r) for r in self.results]
            fields["num_failed"] = self.num_failed
            fields["aggregated"] = json_summary(self.aggregated)
        return fields

    def payload(self, timestamp: str, total_time: float) -> dict[str, Any] | None:
        if self.results is None:
            return None
        return {
            "results": self.aggregated,
            "total_time": total_time,
            "timestamp": timestamp,
            "sweep_props": self.builder.sweep,
            "points": [job.point for job in self.jobs],
            "job_results": self.results,
        }

    def outcome(self, results_file: str, total_time: float) -> Any:
        return self.aggregated

    def answer_text(self) -> str:
        return f"{len(self.jobs)} job(s), {self.num_failed} failed"
