"""The live progress display of running searches.

It reads the searches' :class:`~runner.search_common.SearchStatus` counters and the
scheduler's running jobs; it never changes either. Two forms:

* ``"live"`` (stdout is a terminal): a rich table redrawn twice a second, a row per
  search (done / running / queued / failed / total, the binary-search interval,
  elapsed, ETA) and a row per running job (device, run time).
* ``"plain"`` (CI, nohup, a Slurm log): log-style lines on stderr, one per search
  every ``interval`` seconds (15 by default, so a day-long sweep writes a few
  thousand lines, not millions) and whenever a search starts, finishes a
  binary-search round, or ends.

The ETA is the remaining job count divided by the observed completion rate of
this run (jobs reused from an earlier run excluded), so it accounts for however
many slots the search gets; for a binary search the total is an estimate, shown
with ``~``.

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

from runner.jobs import job_dir_of

__all__ = ["PROGRESS_ENV", "ProgressDisplay", "format_duration", "resolve_mode", "watch"]

logger = logging.getLogger("runner")

T = TypeVar("T")
Mode = Literal["live", "plain"]

#: ``RUNNER_PROGRESS=0`` turns the display off where ``progress`` is left at None;
#: ``plain`` or ``live`` force that form.
PROGRESS_ENV = "RUNNER_PROGRESS"
#: Seconds between the plain form's periodic lines.
PLAIN_INTERVAL_S = 15.0
#: Seconds between two looks at the counters (cheap: no I/O).
TICK_S = 0.5
_MAX_JOB_ROWS = 20


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
    stream = stream if stream is not None else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        tty = False
    return "live" if tty else "plain"


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``"1m15s"``; ``None`` -> ``"?"``.

    Example:
        >>> format_duration(5.2), format_duration(75), format_duration(3 * 3600 + 60)
        ('5.2s', '1m15s', '3h01m')
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ProgressDisplay:
    """Renders the progress of ``statuses`` (and ``scheduler``'s running jobs).

    Args:
        statuses: The searches' live counters.
        scheduler: The shared scheduler, for the running jobs (optional).
        mode: "live" (rich, redrawn in place) or "plain" (lines).
        stream: Where to write: stdout for live, stderr for plain by default.
        interval: Seconds between the plain form's periodic lines.
        clock: Epoch seconds (tests pass a fake one).

    Example:
        >>> import io
        >>> from runner.search_common import SearchStatus
        >>> status = SearchStatus(kind="grid_search", name="g", base_dir="/runs/lr",
        ...                       expected_jobs=4, state="running", started=0.0, ended=8.0,
        ...                       submitted=2, finished=2)
        >>> out = io.StringIO()
        >>> ProgressDisplay([status], mode="plain", stream=out).close()
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
    ) -> None:
        self.statuses = list(statuses)
        self.scheduler = scheduler
        self.mode = mode
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self._seen: dict[int, tuple[Any, ...]] = {}
        self._last_periodic: float | None = None
        self._live: Any = None
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
        point = getattr(job, "point", None)
        if isinstance(point, dict) and point:
            return " ".join(f"{k}={_fmt(v)}" for k, v in point.items())
        return os.path.basename(ProgressDisplay._job_dir(job)) or repr(job)[:40]

    @staticmethod
    def search_label(status: SearchStatus) -> str:
        kind = {"grid_search": "grid", "binary_search": "bisect"}.get(status.kind, status.kind)
        return f"{kind} {os.path.basename(status.base_dir.rstrip(os.sep)) or status.base_dir}"

    def counts(
        self, status: SearchStatus, running: Sequence[tuple[Any, Any, float]]
    ) -> dict[str, Any]:
        """The numbers of one search's row (also what the plain line says)."""
        now = self.clock()
        prefix = status.base_dir.rstrip(os.sep) + os.sep
        # A job belongs to the search whose folder holds it; the rest of the in-flight
        # jobs wait for a slot.
        on_slot = sum(self._job_dir(job).startswith(prefix) for job, _, _ in running)
        on_slot = min(on_slot, status.in_flight)
        if status.state not in ("running", "pending"):  # cancelled jobs never "finish"
            on_slot = in_flight = 0
        else:
            in_flight = status.in_flight
        end = status.ended if status.ended is not None else now
        elapsed = None if status.started is None else max(0.0, end - status.started)
        total = status.expected_jobs
        eta: float | None = None
        if status.state == "running" and elapsed and total is not None:
            ran = status.finished - status.reused
            if ran > 0:
                eta = max(0, total - status.finished) / (ran / elapsed)
        elif status.state != "running" and status.started is not None:
            eta = 0.0
        return {
            "done": status.finished,
            "running": on_slot,
            "queued": in_flight - on_slot,
            "failed": status.failed,
            "total": total,
            "estimated": status.kind == "binary_search" and status.state == "running",
            "elapsed": elapsed,
            "eta": eta,
        }

    def search_line(self, status: SearchStatus, running: Sequence[tuple[Any, Any, float]]) -> str:
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
            parts.append(f"round {status.rounds}, interval ({_fmt(lo)}, {_fmt(hi)})")
        parts.append(f"elapsed {format_duration(c['elapsed'])}")
        if status.state == "running":
            parts.append(f"ETA {'~' if c['estimated'] else ''}{format_duration(c['eta'])}")
        return f"[runner] {self.search_label(status)}: {status.state}, {', '.join(parts)}"

    def job_lines(self, running: Sequence[tuple[Any, Any, float]]) -> list[str]:
        now = self.clock()
        lines = [
            f"[runner]   {self.job_label(job)} on device {device} for {format_duration(now - start)}"
            for job, device, start in running[:_MAX_JOB_ROWS]
        ]
        if len(running) > _MAX_JOB_ROWS:
            lines.append(f"[runner]   ... and {len(running) - _MAX_JOB_ROWS} more running")
        return lines

    def render(self) -> Any:
        """The live form: a rich table of searches and one of running jobs."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        running = self._running_jobs()
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
                interval = f"({_fmt(lo)}, {_fmt(hi)}) r{status.rounds}"
            cells: list[Any] = [
                Text(self.search_label(status)),
                status.state,
                str(c["done"]),
                str(c["running"]),
                str(c["queued"]),
                f"[red]{c['failed']}[/red]" if c["failed"] else "0",
                "?" if c["total"] is None else f"{tilde}{c['total']}",
            ]
            if bisecting:
                cells.append(interval)
            cells.append(format_duration(c["elapsed"]))
            cells.append(f"{tilde}{format_duration(c['eta'])}" if status.state == "running" else "")
            searches.add_row(*cells)
        if not running:
            return searches
        jobs = Table(expand=False, show_edge=False)
        jobs.add_column("running job")
        jobs.add_column("device", justify="right")
        jobs.add_column("run time", justify="right")
        now = self.clock()
        for job, device, start in running[:_MAX_JOB_ROWS]:
            jobs.add_row(Text(self.job_label(job)), str(device), format_duration(now - start))
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

            console = Console(file=self.stream, emoji=False, highlight=False)
            self._live = Live(self.render(), console=console, refresh_per_second=2, transient=False)
            self._live.start()
        else:
            self._live.update(self.render(), refresh=final)

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            try:
                live.stop()
            except Exception:  # the terminal went away: nothing more to show
                pass

    async def run(self) -> None:
        """Tick every :data:`TICK_S` seconds until cancelled."""
        while True:
            self.tick()
            await asyncio.sleep(TICK_S)

    def close(self) -> None:
        """Show the final state once and release the terminal. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.tick(final=True)
        self._stop_live()


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
