"""The live progress display of running searches.

It reads the searches' :class:`~runner.search_common.SearchStatus` counters and the
scheduler's running jobs; it never changes either. Two forms:

* ``"live"`` (stdout is a terminal): a rich table redrawn twice a second, a row per
  search (done / running / queued / failed / total, the binary-search interval,
  elapsed, ETA) and a row per running job (device, run time, and the last line the
  job printed when the terminal is wide enough). Log records that would go to the
  terminal meanwhile are printed above the table (see :mod:`runner._live_terminal`);
  the final table stays on screen once.
* ``"plain"`` (CI, nohup, a Slurm log): ``[runner]`` lines on stderr, one per search
  every ``interval`` seconds (15 by default, so a day-long sweep writes a few
  thousand lines, not millions) and whenever a search starts, finishes a
  binary-search round, or ends.

A search's elapsed time and ETA count from when its first job got a slot: a search
queued behind another shows "queued", not a run time that is really a wait. The ETA
is the remaining job count divided by the observed completion rate of this run (jobs
reused from an earlier run excluded), so it accounts for however many slots the search
gets; for a binary search the total is an estimate, shown with ``~``.

When the searches end, the display says where each one's results are, the commands
to look at them, and its first failed job's error and log (the ``runner`` command
prints that itself, under its results table).

Whatever goes wrong in the display is logged once and the display stops: it
never fails a search. It stops with the searches, on Ctrl-C too.

Example:
    >>> # results = run_grid_searches(configs, progress=False)  # no display
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from runner.scheduler import GPUScheduler
    from runner.search_common import SearchStatus

from runner.front_end import front_end
from runner.jobs import job_dir_of
from runner.sweep_text import (
    Failure,
    end_message,
    error_headline,
    format_duration,
    format_value,
    point_label,
)

__all__ = [
    "PROGRESS_ENV",
    "Failure",
    "ProgressDisplay",
    "end_message",
    "error_headline",
    "format_duration",
    "resolve_mode",
    "watch",
]

logger = logging.getLogger("runner")

T = TypeVar("T")
Mode = Literal["live", "plain"]
Running = Sequence[tuple[Any, Any, float]]

#: ``RUNNER_PROGRESS=0`` turns the display off where ``progress`` is left at None;
#: ``plain`` or ``live`` force that form.
PROGRESS_ENV = "RUNNER_PROGRESS"
#: Seconds between the plain form's periodic lines.
PLAIN_INTERVAL_S = 15.0
#: Seconds between two looks at the counters (cheap: no I/O).
TICK_S = 0.5
_MAX_JOB_ROWS = 20
#: Terminal columns below which the running jobs' last output lines are left out.
_TAIL_MIN_WIDTH = 90


def resolve_mode(progress: bool | None, stream: IO[str] | None = None) -> Mode | None:
    """The display form for ``progress``: None (off), "live" or "plain".

    ``False`` is off; ``True`` and ``None`` are on: live on a terminal, plain lines
    otherwise. With ``None`` the ``RUNNER_PROGRESS`` variable can say ``0``/``off``,
    ``plain`` or ``live``.

    Example:
        >>> import io
        >>> resolve_mode(False), resolve_mode(True, io.StringIO())
        (None, 'plain')
    """
    if progress is False:
        return None
    if progress is None:
        env = os.environ.get(PROGRESS_ENV, "").strip().lower()
        if env in ("0", "off", "false", "no"):
            return None
        if env in ("plain", "live"):
            return env  # type: ignore[return-value]
    return "live" if _is_terminal(stream if stream is not None else sys.stdout) else "plain"


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


class ProgressDisplay:
    """Renders the progress of ``statuses`` (and ``scheduler``'s running jobs).

    Args:
        statuses: The searches' live counters.
        scheduler: The shared scheduler, for the running jobs (optional).
        mode: "live" (rich, redrawn in place) or "plain" (lines).
        stream: Where to write: stdout for live, stderr for plain by default.
        interval: Seconds between the plain form's periodic lines.
        clock: Epoch seconds (tests pass a fake one).
        end_message: Whether :meth:`close` says where the results are (see
            :func:`end_message`); None: unless the front end prints it itself.
        console: The rich console of the live form (default: one on ``stream``).

    Example:
        >>> import io
        >>> from runner.search_common import SearchStatus
        >>> status = SearchStatus(kind="grid_search", name="g", base_dir="/runs/lr",
        ...                       expected_jobs=4, state="running", started=0.0, ended=8.0,
        ...                       submitted=2, finished=2)
        >>> out = io.StringIO()
        >>> ProgressDisplay([status], mode="plain", stream=out, end_message=False).close()
        >>> print(out.getvalue(), end="")
        [runner] grid lr: running, 2/4 done, 0 running, 0 queued, 0 failed, elapsed 8.0s, ETA 8.0s
    """

    def __init__(
        self,
        statuses: Sequence[SearchStatus],
        scheduler: GPUScheduler | None = None,
        *,
        mode: Mode = "plain",
        stream: IO[str] | None = None,
        interval: float = PLAIN_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        end_message: bool | None = None,
        console: Any = None,
    ) -> None:
        self.statuses = list(statuses)
        self.scheduler = scheduler
        self.mode = mode
        self.stream = stream
        self.interval = interval
        self.clock = clock
        # The runner command prints the end message itself, under its results table.
        self.end_message = (
            not front_end().prints_end_message if end_message is None else end_message
        )
        self._seen: dict[int, tuple[Any, ...]] = {}
        self._last_periodic: float | None = None
        #: When each search's first job was seen on a slot: its run time counts from there.
        self._active_since: dict[int, float] = {}
        #: The last look at each search that found it running with no job started.
        self._waiting_at: dict[int, float] = {}
        self._job_dirs: tuple[Any, list[str]] = (None, [])
        self._console = console
        self._live: Any = None
        self._logs_above: Any = None
        self._tails: Any = None
        self._broken = False
        self._closed = False

    # -- what is shown ------------------------------------------------------------------

    def _running_jobs(self) -> list[tuple[Any, Any, float]]:
        if self.scheduler is None:
            return []
        return list(getattr(self.scheduler, "running_jobs", []))

    @staticmethod
    def _job_dir(job: Any) -> str:
        try:
            return job_dir_of(job)
        except Exception:  # a job whose out file can't be told is shown without a folder
            return ""

    @staticmethod
    def job_label(job: Any) -> str:
        """``lr=0.001 seed=1`` from the job's sweep point, else its folder's name."""
        label = point_label(getattr(job, "point", None))
        return label or os.path.basename(ProgressDisplay._job_dir(job)) or repr(job)[:40]

    @staticmethod
    def search_label(status: SearchStatus) -> str:
        kind = {"grid_search": "grid", "binary_search": "bisect"}.get(status.kind, status.kind)
        return f"{kind} {os.path.basename(status.base_dir.rstrip(os.sep)) or status.base_dir}"

    def _on_slot(self, status: SearchStatus, running: Running) -> list[float]:
        """Start times of ``status``'s jobs holding a slot (a job belongs to the search
        whose folder holds it; the rest of its in-flight jobs wait for a slot)."""
        seen, dirs = self._job_dirs
        if seen is not running:  # each job's folder once per look, not once per search
            dirs = [self._job_dir(job) for job, _, _ in running]
            self._job_dirs = (running, dirs)
        prefix = status.base_dir.rstrip(os.sep) + os.sep
        return [
            start
            for (_, _, start), folder in zip(running, dirs, strict=True)
            if folder.startswith(prefix)
        ]

    def observe(self, running: Running) -> None:
        """Note when each search's first job got a slot (called on every tick).

        A job that started and finished between two looks is never seen on its slot:
        it started after the last look that found the search still waiting.
        """
        now = self.clock()
        for status in self.statuses:
            key = id(status)
            starts = self._on_slot(status, running)
            known = self._active_since.get(key)
            if known is not None:
                if starts:
                    self._active_since[key] = min(known, *starts)
            elif starts or status.finished:
                waited_until = self._waiting_at.get(key, status.started)
                candidates = [*starts, *([waited_until] if status.finished else [])]
                known_times = [c for c in candidates if c is not None]
                if known_times:
                    self._active_since[key] = min(known_times)
            elif status.state == "running":
                self._waiting_at[key] = now

    def counts(self, status: SearchStatus, running: Running) -> dict[str, Any]:
        """The numbers of one search's row (also what the plain line says)."""
        now = self.clock()
        on_slot = min(len(self._on_slot(status, running)), status.in_flight)
        if status.state not in ("running", "pending"):  # cancelled jobs never "finish"
            on_slot = in_flight = 0
        else:
            in_flight = status.in_flight
        active = self._active_since.get(id(status))
        if active is None and (on_slot or status.finished):
            active = status.started  # not looked at yet: count from the search's start
        # Without the scheduler's running jobs, a wait can't be told from a run.
        queued = status.state == "running" and active is None and self.scheduler is not None
        end = status.ended if status.ended is not None else now
        begin = active if active is not None else status.started
        elapsed = None if begin is None or queued else max(0.0, end - begin)
        total = status.expected_jobs
        eta: float | None = None
        if status.state == "running" and elapsed and total is not None:
            ran = status.finished - status.reused
            if ran > 0:
                eta = max(0, total - status.finished) / (ran / elapsed)
        elif status.state != "running" and status.started is not None:
            eta = 0.0
        return {
            "state": "queued" if queued else status.state,
            "done": status.finished,
            "running": on_slot,
            "queued": in_flight - on_slot,
            "failed": status.failed,
            "total": total,
            "estimated": status.kind == "binary_search" and status.state == "running",
            "elapsed": elapsed,
            "eta": eta,
        }

    def search_line(self, status: SearchStatus, running: Running) -> str:
        """One plain line: ``[runner] grid sweep: running, 3/8 done, 2 running, ...``."""
        c = self.counts(status, running)
        total = "?" if c["total"] is None else f"{'~' if c['estimated'] else ''}{c['total']}"
        parts = [
            f"{c['done']}/{total} done",
            f"{c['running']} running",
            f"{c['queued']} queued",
            f"{c['failed']} failed",
        ]
        if status.kind == "binary_search" and status.interval is not None:
            lo, hi = status.interval
            parts.append(f"round {status.rounds}, interval ({format_value(lo)}, {format_value(hi)})")
        if c["elapsed"] is not None:
            parts.append(f"elapsed {format_duration(c['elapsed'])}")
        if status.state == "running":
            parts.append(f"ETA {'~' if c['estimated'] else ''}{format_duration(c['eta'])}")
        return f"[runner] {self.search_label(status)}: {c['state']}, {', '.join(parts)}"

    def job_lines(self, running: Running) -> list[str]:
        now = self.clock()
        lines = [
            f"[runner]   {self.job_label(job)} on device {device} for {format_duration(now - start)}"
            for job, device, start in running[:_MAX_JOB_ROWS]
        ]
        if len(running) > _MAX_JOB_ROWS:
            lines.append(f"[runner]   ... and {len(running) - _MAX_JOB_ROWS} more running")
        return lines

    def _tail_of(self, job: Any) -> str | None:
        """The last line ``job`` printed, when the tail reader has it (live form only)."""
        if self._tails is None:
            return None
        try:
            return self._tails.lines.get(job.get_out_file())
        except Exception:  # a job without a log path shows no tail
            return None

    def render(self, width: int | None = None) -> Any:
        """The live form: a rich table of searches and, below it, one of running jobs.

        ``width`` (the terminal's columns) decides whether the jobs' last output lines fit.
        """
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        running = self._running_jobs()
        self.observe(running)
        searches = Table(title="runner", title_justify="left", expand=False)
        # Short headers: the table should fit an 80-column terminal.
        for column in ("search", "state", "done", "run", "queue", "fail", "total"):
            searches.add_column(
                column, justify="left" if column in ("search", "state") else "right"
            )
        bisecting = any(s.kind == "binary_search" for s in self.statuses)
        if bisecting:
            searches.add_column("interval")
        searches.add_column("elapsed", justify="right")
        searches.add_column("ETA", justify="right")
        for status in self.statuses:
            c = self.counts(status, running)
            tilde = "~" if c["estimated"] else ""
            interval = ""
            if status.kind == "binary_search" and status.interval is not None:
                lo, hi = status.interval
                interval = f"({format_value(lo)}, {format_value(hi)}) r{status.rounds}"
            cells: list[Any] = [
                Text(self.search_label(status)),
                c["state"],
                str(c["done"]),
                str(c["running"]),
                str(c["queued"]),
                f"[red]{c['failed']}[/red]" if c["failed"] else "0",
                "?" if c["total"] is None else f"{tilde}{c['total']}",
            ]
            if bisecting:
                cells.append(interval)
            cells.append("" if c["elapsed"] is None else format_duration(c["elapsed"]))
            cells.append(f"{tilde}{format_duration(c['eta'])}" if status.state == "running" else "")
            searches.add_row(*cells)
        if not running or not any(s.state in ("running", "pending") for s in self.statuses):
            return searches  # jobs of ended searches are being stopped: not "running"
        tails = self._tails is not None and (width is None or width >= _TAIL_MIN_WIDTH)
        jobs = Table(expand=False)
        jobs.add_column("running job", no_wrap=True, overflow="ellipsis")
        jobs.add_column("device", justify="right", no_wrap=True)
        jobs.add_column("run time", justify="right", no_wrap=True)
        if tails:
            jobs.add_column("last output", no_wrap=True, overflow="ellipsis", ratio=1)
        now = self.clock()
        for job, device, start in running[:_MAX_JOB_ROWS]:
            row: list[Any] = [Text(self.job_label(job)), str(device), format_duration(now - start)]
            if tails:
                row.append(Text(self._tail_of(job) or "", style="dim"))
            jobs.add_row(*row)
        if len(running) > _MAX_JOB_ROWS:
            jobs.add_row(f"... and {len(running) - _MAX_JOB_ROWS} more", "", "")
        return Group(searches, jobs)

    # -- driving ------------------------------------------------------------------------

    def _write(self, lines: Sequence[str]) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write("".join(line + "\n" for line in lines))
        stream.flush()

    def tick(self, *, final: bool = False) -> None:
        """Redraw (live), or write the lines that are due (plain)."""
        if self._broken:
            return
        try:
            if self.mode == "live":
                self._tick_live(final)
            else:
                self._tick_plain(final)
        except Exception as exc:  # the display must never take a search down
            self._broken = True
            logger.warning(
                "The progress display failed and is turned off (%s: %s); the searches go on.",
                type(exc).__name__,
                exc,
            )
            self._stop_live()

    def _tick_plain(self, final: bool) -> None:
        running = self._running_jobs()
        self.observe(running)
        now = self.clock()
        periodic = self._last_periodic is None or now - self._last_periodic >= self.interval
        lines: list[str] = []
        for status in self.statuses:
            key = (status.state, status.interval)
            changed = self._seen.get(id(status)) != key
            self._seen[id(status)] = key
            # A line on start, on each binary-search round and at the end; others periodic.
            if status.state != "pending" and (changed or (periodic and not final)):
                lines.append(self.search_line(status, running))
        if periodic and not final:
            self._last_periodic = now
            lines += self.job_lines(running)
        if lines:
            self._write(lines)

    def _tick_live(self, final: bool) -> None:
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            from runner._live_terminal import LogsAbove, TailReader

            console = self._console or Console(file=self.stream, emoji=False, highlight=False)
            self._tails = TailReader() if self.scheduler is not None else None
            self._live = Live(
                self.render(console.width),
                console=console,
                # Redrawn by the ticks (and by rich after each line printed above it),
                # not by a thread of its own: one writer at a time, in step with the data.
                auto_refresh=False,
                transient=False,
                redirect_stdout=True,
                # stderr joins the table only when it is this terminal, not a file (2>log).
                redirect_stderr=_is_terminal(sys.stderr),
            )
            self._live.start(refresh=True)
            # After start: Live has redirected sys.stderr; this moves the handlers that
            # captured the terminal before (logging.basicConfig's) above the table too.
            self._logs_above = LogsAbove(console)
            self._logs_above.divert()
        else:
            self._live.update(self.render(self._live.console.width), refresh=True)
        if self._tails is not None and not final:
            self._tails.want(job.get_out_file() for job, _, _ in self._running_jobs())

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        above, self._logs_above = self._logs_above, None
        if self._tails is not None:
            self._tails.stop()
        try:
            if above is not None:
                above.restore()
        finally:
            if live is not None:
                try:
                    live.stop()
                except Exception:  # the terminal went away: nothing more to show
                    pass

    def end_lines(self) -> list[str]:
        """The end message of every search that ran (see :func:`end_message`)."""
        lines: list[str] = []
        for status in self.statuses:
            if status.started is None:
                continue
            first = getattr(status, "first_failure", None)
            lines += end_message(
                self.search_label(status),
                status.base_dir,
                Failure.of(first) if first is not None else None,
            )
        return lines

    async def run(self) -> None:
        """Tick every :data:`TICK_S` seconds until cancelled."""
        while True:
            self.tick()
            await asyncio.sleep(TICK_S)

    def close(self) -> None:
        """Show the final state once, release the terminal, then say where the results are.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        self.tick(final=True)
        console = self._live.console if self._live is not None else None
        self._stop_live()
        if not self.end_message or self._broken:
            return
        lines = self.end_lines()
        if not lines:
            return
        if console is not None:
            for line in lines:
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self._write([f"[runner] {line}" for line in lines])


async def watch(
    work: Awaitable[T],
    statuses: Sequence[SearchStatus],
    scheduler: GPUScheduler | None,
    *,
    progress: bool | None,
) -> T:
    """Await ``work`` with a progress display of ``statuses`` beside it (unless off).

    The display runs as a separate task; it is cancelled and closed when ``work``
    ends, fails or is cancelled (Ctrl-C).

    Example:
        >>> async def main(runs, scheduler):
        ...     return await watch(run_all(runs), [r.status for r in runs], scheduler,
        ...                        progress=None)
    """
    mode = resolve_mode(progress)
    if mode is None:
        return await work
    display = ProgressDisplay(statuses, scheduler, mode=mode)
    task = asyncio.ensure_future(display.run())
    try:
        return await work
    finally:
        task.cancel()
        try:
            await asyncio.wait({task})
        finally:
            display.close()
