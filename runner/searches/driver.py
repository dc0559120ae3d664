"""The search driver: what running a search means, whatever its kind.

A search kind (grid, binary, the next one) is a :class:`SearchRun` subclass that
says which jobs it knows before it starts, how it explores (``explore``, running
jobs through a :class:`SearchSession`), what its summary and results pickle hold
and what it returns. The driver does the rest, once for every kind:

* the sync entry point (:func:`drive`): one scheduler for all the searches of a
  call, one :class:`~runner.searches.context.SearchContext` they share, the
  progress display, and gather-then-raise (one search's bug never discards the
  others' results: they all finish and save first, then the first error is raised);
* each search's lifecycle (:meth:`SearchRun.run`): folder claims, ``summary.json``
  while it runs and once it ends, the ``*_results_<timestamp>.pkl``, what a stopped
  search saw, the closing log line;
* running a batch of jobs (:meth:`SearchSession.run_jobs`): resume, the progress
  counters, and the log lines about reusable or reused results.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from runner._sync import run_sync
from runner.executors import Executor
from runner.front_end import front_end
from runner.job_result import GPUJobResult
from runner.jobs import Job, job_dir_of
from runner.progress import watch
from runner.resume import Reusable, check_reusable, has_finished_result
from runner.scheduler import GPUScheduler
from runner.search_index import SearchIndex
from runner.search_lock import SearchLock
from runner.search_results import new_timestamp, write_results_pickle, write_summary
from runner.searches.context import SearchContext
from runner.searches.points import PointBuilder, check_distinct_base_dirs
from runner.searches.status import SearchStatus
from runner.searches.summary import SUMMARY_FILE, SearchSummary

__all__ = [
    "SearchRun",
    "SearchSession",
    "SlotOptions",
    "count_finished",
    "drive",
    "log_reusable",
    "run_jobs",
]

logger = logging.getLogger("runner")


def count_finished(jobs: Iterable[Job]) -> int:
    """How many of ``jobs`` already hold a successful result for the same config."""
    return sum(has_finished_result(job) for job in jobs)


def log_reusable(owner: str, finished: int) -> None:
    if finished:
        # A warning, in the words of the front end used: rerunning finished jobs may be hours.
        logger.warning(
            "%s: %d job(s) already finished with the same config in earlier runs; they run "
            "again now. Pass %s to reuse their results instead.",
            owner,
            finished,
            front_end().resume,
        )


#: Per-job resume warnings before the rest go to DEBUG (the count still covers them all).
_RERUN_WARNINGS = 20


class _RerunLog:
    """Why a resumed search runs each job again: a warning per job that ran before, and a count."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.reasons: collections.Counter[str] = collections.Counter()
        self.never_ran = 0

    def note(self, job: Job, verdict: Reusable) -> None:
        if not verdict.ran_before:
            self.never_ran += 1
            return
        kind = verdict.reason.split(" (")[0].split(":")[0]
        self.reasons[kind] += 1
        level = logging.WARNING if sum(self.reasons.values()) <= _RERUN_WARNINGS else logging.DEBUG
        logger.log(
            level, "%s: resume runs %s again: %s", self.owner, job_dir_of(job), verdict.reason
        )

    def close(self, reused: int, total: int, so_far: tuple[int, int] | None = None) -> None:
        """Log the batch's count; ``so_far`` (reused, jobs) covers the search's earlier
        batches too: a search run in rounds closes a batch per round (per tested value, for
        bisection), and a batch that reused nothing would read as if the whole resume had."""
        rerun = sum(self.reasons.values())
        if not rerun and not reused:
            return
        parts = [f"{n} {why}" for why, n in self.reasons.most_common()]
        if self.never_ran:
            parts.append(f"{self.never_ran} never ran")
        more = rerun - _RERUN_WARNINGS
        earlier = ""
        if so_far is not None and so_far[1] > total:
            earlier = f" in this batch ({so_far[0]} of {so_far[1]} submitted in the search so far)"
        logger.log(
            logging.WARNING if rerun else logging.INFO,
            "%s: resume reused %d of %d job(s)%s from earlier runs (same config; their code "
            "was not rerun, so delete a job's folder to run it again after changing the "
            "experiment code) and runs %d again%s%s",
            self.owner,
            reused,
            total,
            earlier,
            rerun + self.never_ran,
            f": {', '.join(parts)}" if parts else "",
            f" ({more} not listed above; -v lists them)" if more > 0 else "",
        )


async def run_jobs(
    jobs: Sequence[Job],
    scheduler: GPUScheduler,
    *,
    resume: bool,
    status: SearchStatus | None = None,
    index: SearchIndex | None = None,
) -> list[GPUJobResult]:
    """Run ``jobs`` concurrently; with ``resume``, reuse each one's finished result.

    With ``resume``, every job that is run again is logged with the reason (failed
    before, config changed, corrupt result, ...), and a count closes the batch.
    ``index`` records each job's submission and end for ``runner status``.
    """
    rerun_log = _RerunLog(status.name if status is not None else "resume")
    if index is not None:
        index.queued(jobs)
    if status is not None:
        status.submitted += len(jobs)

    async def one(job: Job) -> GPUJobResult:
        result = None
        if resume:
            verdict = check_reusable(job)
            result = verdict.result
            if result is None:
                rerun_log.note(job, verdict)
        if result is None:
            result = await scheduler.run_job(job)
        if status is not None:
            status.record(result)
        if index is not None:
            index.ended(job)
        return result

    # A few feeders take the jobs in order, not a task per job: 100,000 queued jobs then
    # cost their Job objects only, and the scheduler's queue holds what can start soon.
    # Twice the slots keep every slot fed; jobs reused from disk pass through at once.
    # Every slot is filled below, in the jobs' order, before the list is returned.
    results: list[GPUJobResult] = [None] * len(jobs)  # type: ignore[list-item]
    order = iter(enumerate(jobs))

    async def feeder() -> None:
        for i, job in order:  # one shared iterator: each feeder takes the next job
            results[i] = await one(job)

    feeders = [
        asyncio.ensure_future(feeder()) for _ in range(min(len(jobs), 2 * scheduler.num_slots))
    ]
    try:
        await asyncio.gather(*feeders)
    finally:
        # One feeder's error (or a cancel) stops the batch: no job starts after it.
        for task in feeders:
            task.cancel()
        await asyncio.gather(*feeders, return_exceptions=True)
    if resume:
        so_far = None if status is None else (status.reused, status.submitted)
        rerun_log.close(
            sum(bool(getattr(r, "reused", False)) for r in results), len(results), so_far
        )
    return results


class SearchSession:
    """One search's handle on the scheduler and the context while it runs."""

    def __init__(
        self, run: SearchRun, scheduler: GPUScheduler, context: SearchContext, *, resume: bool
    ) -> None:
        self.run = run
        self.scheduler = scheduler
        self.context = context
        self.resume = resume
        self._told_about_reuse = resume
        self.index = SearchIndex(run.builder.base_dir)

    def claim(self, jobs: Sequence[Job]) -> None:
        """Claim ``jobs``' folders before they run: two points sharing one would swap results."""
        self.context.folders.claim(jobs, self.run.name)

    def save_progress(self) -> None:
        """Rewrite the search's ``summary.json`` as it stands (between rounds, say)."""
        self.run.save("running")

    def share(self) -> int:
        """The slots this search may fill now (its fair share among the searches running)."""
        return self.context.share(self.scheduler.num_slots)

    async def run_jobs(
        self, jobs: Sequence[Job], *, reuse: bool | None = None
    ) -> list[GPUJobResult]:
        """Run ``jobs``; ``reuse`` (default: the call's ``resume``) reuses finished results.

        Without resume, the first batch holding jobs that already finished in an
        earlier run says so once (they run again; resume=True would reuse them).
        """
        resume = self.resume if reuse is None else reuse
        if not self._told_about_reuse and not resume:
            finished = count_finished(jobs)
            if finished:
                self._told_about_reuse = True
                log_reusable(self.run.name, finished)
        return await run_jobs(
            jobs,
            self.scheduler,
            resume=resume,
            status=self.run.status,
            index=self.index,
        )


class SearchRun(abc.ABC):
    """One validated search of some kind; :meth:`run` is its whole life on a scheduler."""

    #: "grid_search", "binary_search", ...: the results pickle's prefix and the summary's kind.
    kind: ClassVar[str]
    #: Whether the search sizes its rounds to its share of the slots (it is then counted
    #: among the context's active searches while it runs).
    shares_slots: ClassVar[bool] = False

    def __init__(self, config: Any, builder: PointBuilder) -> None:
        self.config = config
        self.builder = builder
        self.name = builder.name
        self.status = SearchStatus(kind=self.kind, name=self.name, base_dir=builder.base_dir)
        #: Why the search stopped early without raising (it then ends with status "error").
        self.error: str | None = None
        self.started = 0.0
        #: The summary last written to ``summary.json``.
        self.last_summary: SearchSummary | None = None

    # -- what each kind provides ------------------------------------------------------

    @property
    @abc.abstractmethod
    def known_jobs(self) -> list[Job]:
        """Jobs known before the search starts: their folders are checked before any runs."""

    @abc.abstractmethod
    async def explore(self, session: SearchSession) -> None:
        """Run the search's jobs through ``session``; set ``self.error`` to stop early."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The kind's own fields of :class:`SearchSummary`, as the search stands now."""

    @abc.abstractmethod
    def payload(self, timestamp: str, total_time: float) -> dict[str, Any] | None:
        """What the results pickle holds (None: nothing worth saving yet)."""

    @abc.abstractmethod
    def outcome(self, results_file: str, total_time: float) -> Any:
        """What the run function returns for this search."""

    @abc.abstractmethod
    def answer_text(self) -> str:
        """The answer in a few words, for the closing log line."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget a previous run's state (a run object may be run again)."""

    # -- the lifecycle ----------------------------------------------------------------

    def summary(self, status: str, **fields: Any) -> SearchSummary:
        """The search's :class:`SearchSummary` now."""
        return SearchSummary(**self._summary_head(status), **fields, **self.describe())

    def _summary_head(self, status: str) -> dict[str, Any]:
        """What a summary says whatever the search saw (no user hook is called)."""
        return dict(
            kind=self.kind,
            search=type(self.config).__name__,
            base_dir=self.builder.base_dir,
            status=status,
            started=self.started,
        )

    def save(self, status: str, **fields: Any) -> str:
        """Write the search's ``summary.json`` as it stands; return its path."""
        self.last_summary = self.summary(status, **fields)
        try:
            return write_summary(self.builder.base_dir, self.last_summary)
        except OSError as exc:
            if status != "running":
                raise
            # A progress snapshot only: the search goes on, and its end is saved again.
            logger.warning("%s: could not update summary.json: %s", self.name, exc)
            return ""

    async def run(self, scheduler: GPUScheduler, *, context: SearchContext, resume: bool) -> Any:
        """Run the search on ``scheduler``; save what it saw however it ends.

        Holds the search folder's lock for the run, unless the caller holds it already
        (``context.locked_folders``): one driver per folder, from the async API too.
        """
        with contextlib.ExitStack() as stack:
            base_dir = self.builder.base_dir
            if base_dir not in context.locked_folders:
                stack.enter_context(SearchLock(base_dir))
                context.locked_folders.add(base_dir)
                stack.callback(context.locked_folders.discard, base_dir)
            if not self.shares_slots:
                return await self._run(scheduler, context, resume)
            with context.active():
                # Let searches started together register before any sizes its first round.
                await asyncio.sleep(0)
                return await self._run(scheduler, context, resume)

    async def _run(self, scheduler: GPUScheduler, context: SearchContext, resume: bool) -> Any:
        self.reset()
        self.error = None
        session = SearchSession(self, scheduler, context, resume=resume)
        session.claim(self.known_jobs)
        base_dir = self.builder.base_dir
        self.started = time.time()
        self.status.started, self.status.state = self.started, "running"
        session.index.begin(self.started)
        self.save("running")
        try:
            await self.explore(session)
            state = "error" if self.error else "done"
            self.status.state, self.status.ended = state, time.time()
            total_time = time.time() - self.started
            timestamp = new_timestamp()
            try:
                path = write_results_pickle(
                    base_dir, self.kind, timestamp, self.payload(timestamp, total_time) or {}
                )
                self.save(
                    state,
                    timestamp=timestamp,
                    total_time=total_time,
                    results_file=path,
                    error=self.error,
                )
            except OSError as exc:  # a full disk: the results are still returned, in memory
                path = ""
                logger.error(
                    "%s: could not save the search's results in %s (%s: %s); they are returned "
                    "but not on disk. Free space, then rerun with resume to save them (finished "
                    "jobs are reused).",
                    self.name,
                    base_dir,
                    type(exc).__name__,
                    exc,
                )
        except BaseException as exc:
            cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            self._save_stopped("cancelled" if cancelled else "error", exc)
            raise
        finally:
            session.index.close(compact=True, summary_path=os.path.join(base_dir, SUMMARY_FILE))
        # The progress display says how long it took and where the folder is; the log adds
        # the answer and the results file.
        logger.info("%s: %s; results file %s", self.name, self.answer_text(), path or "not saved")
        return self.outcome(path, total_time)

    def _save_stopped(self, status: str, exc: BaseException) -> None:
        """Keep what a stopped search saw: summary.json always, the pickle on errors."""
        self.status.state, self.status.ended = status, time.time()
        if status == "cancelled" and not str(exc):
            # A Ctrl-C or a cancelled task carries no message: say what happened instead.
            why = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "cancelled"
            error = (
                f"{type(exc).__name__}: the driver was {why}; rerun with "
                f"{front_end().resume} to go on (finished jobs are reused)"
            )
        else:
            error = f"{type(exc).__name__}: {exc}"
        fields: dict[str, Any] = {"error": error}
        try:
            if status == "error":
                timestamp = new_timestamp()
                payload = self.payload(timestamp, time.time() - self.started)
                if payload is not None:
                    fields["results_file"] = write_results_pickle(
                        self.builder.base_dir, self.kind, timestamp, payload
                    )
            self.save(status, **fields)
        except Exception as exc_saving:  # never hide the error that stopped the search
            logger.warning(
                "%s: could not save the stopped search's state (%s: %s); summary.json says "
                "only that it stopped",
                self.name,
                type(exc_saving).__name__,
                exc_saving,
            )
            # The last summary that could be built (its history, range, method), with the
            # status and the error: what needs no user hook (agg_results, margin).
            last = self.last_summary or SearchSummary(**self._summary_head(status))
            with contextlib.suppress(Exception):
                write_summary(
                    self.builder.base_dir,
                    dataclasses.replace(last, status=status, error=fields["error"], stopped=None),
                )


async def _run_all(
    runs: Sequence[SearchRun], scheduler: GPUScheduler, context: SearchContext, resume: bool
) -> list[Any]:
    outcomes = await asyncio.gather(
        *(run.run(scheduler, context=context, resume=resume) for run in runs),
        return_exceptions=True,
    )
    # One search's bug (in agg_results, say) must not discard the others' results:
    # they all finish and save first, then the first error is raised.
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)


@dataclasses.dataclass(frozen=True)
class SlotOptions:
    """How the scheduler of a call lays out its slots (see :class:`GPUScheduler`)."""

    max_gpus: int | None = None
    simultaneous_jobs_per_gpu: int | None = None
    skip_busy_gpus: bool = False
    cpu_slots: int | None = None


def drive(
    runs: Sequence[SearchRun],
    slots: SlotOptions,
    *,
    resume: bool,
    executor: Executor | str | None,
    progress: bool | None,
) -> list[Any]:
    """Run validated searches concurrently on one scheduler; their outcomes, in order.

    Every folder the searches know before they start is claimed first, so that two
    searches (or two points) sharing one fail before any job runs; and each search
    folder is locked for the call (:class:`~runner.search_lock.SearchLock`), so a
    second driver on the same folder is refused before any job runs.
    """
    check_distinct_base_dirs([run.builder for run in runs])
    context = SearchContext()
    for run in runs:
        context.folders.claim(run.known_jobs, run.name)
    with contextlib.ExitStack() as locks:
        for run in runs:  # all before any search starts: a second driver is refused early
            locks.enter_context(SearchLock(run.builder.base_dir))
            context.locked_folders.add(run.builder.base_dir)
        return _drive_locked(
            runs, context, slots, resume=resume, executor=executor, progress=progress
        )


def _drive_locked(
    runs: Sequence[SearchRun],
    context: SearchContext,
    slots: SlotOptions,
    *,
    resume: bool,
    executor: Executor | str | None,
    progress: bool | None,
) -> list[Any]:

    async def main() -> list[Any]:
        async with GPUScheduler(
            slots.max_gpus,
            slots.simultaneous_jobs_per_gpu,
            executor=executor,
            skip_busy_gpus=slots.skip_busy_gpus,
            cpu_slots=slots.cpu_slots,
        ) as scheduler:
            return await watch(
                _run_all(runs, scheduler, context, resume),
                [run.status for run in runs],
                scheduler,
                progress=progress,
            )

    return run_sync(main())
