"""The progress display: plain lines when stdout is not a terminal, the live table, and that
it never fails or outlives a search."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Any

import pytest

from runner.devices import Device
from runner.grid_search import run_grid_searches
from runner.jobs import Job
from runner.progress import ProgressDisplay, format_duration, resolve_mode, watch
from runner.quick_sweep import build_binary_search, build_grid_search, load_function
from runner.search_common import SearchStatus


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeScheduler:
    def __init__(self) -> None:
        self.running_jobs: list[tuple[Any, Device, float]] = []


def _grid_status(base: str = "/runs/lr") -> SearchStatus:
    return SearchStatus(kind="grid_search", name="Grid", base_dir=base, expected_jobs=10)


def test_resolve_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("RUNNER_PROGRESS", raising=False)
    assert resolve_mode(False, Tty()) is None
    assert resolve_mode(None, Tty()) == "live"
    assert resolve_mode(None, io.StringIO()) == "plain"
    assert resolve_mode(True, io.StringIO()) == "plain"
    monkeypatch.setenv("RUNNER_PROGRESS", "0")
    assert resolve_mode(None, Tty()) is None
    assert resolve_mode(True, io.StringIO()) == "plain"  # an explicit True wins
    monkeypatch.setenv("RUNNER_PROGRESS", "plain")
    assert resolve_mode(None, Tty()) == "plain"


def test_plain_lines_counts_eta_and_rate() -> None:
    clock, scheduler, out = FakeClock(), FakeScheduler(), io.StringIO()
    status = _grid_status()
    display = ProgressDisplay(
        [status],
        scheduler,
        mode="plain",
        stream=out,
        interval=15,
        clock=clock,  # type: ignore[arg-type]
    )
    display.tick()
    assert out.getvalue() == ""  # pending: nothing to say yet

    status.state, status.started = "running", clock.now
    status.submitted, status.finished, status.failed = 6, 4, 1
    job = Job(
        run_fn=len, config=[], base_dir="/runs/lr/lr=0.1,seed=1", point={"lr": 0.1, "seed": 1}
    )
    other = Job(run_fn=len, config=[], base_dir="/elsewhere/x")
    scheduler.running_jobs = [(job, Device("3"), clock.now), (other, Device("1"), clock.now)]
    clock.now += 20
    display.tick()
    lines = out.getvalue().splitlines()
    # 4 done in 20 s: 5 s a job, 6 to go -> 30 s. One of the 2 in flight holds a slot.
    assert lines[0] == (
        "[runner] grid lr: running, 4/10 done, 1 running, 1 queued, 1 failed, "
        "elapsed 20.0s, ETA 30.0s"
    )
    assert lines[1] == "[runner]   lr=0.1 seed=1 on device 3 for 20.0s"
    assert lines[2] == "[runner]   x on device 1 for 20.0s"

    out.truncate(0), out.seek(0)
    clock.now += 5
    display.tick()
    assert out.getvalue() == ""  # no change, the interval has not passed: quiet
    clock.now += 10
    display.tick()
    assert out.getvalue().count("\n") == 3  # periodic: the search and its two jobs

    out.truncate(0), out.seek(0)
    status.state, status.ended, status.finished, status.submitted = "done", clock.now, 10, 10
    scheduler.running_jobs = []
    display.close()
    display.close()  # idempotent
    assert out.getvalue() == (
        "[runner] grid lr: done, 10/10 done, 0 running, 0 queued, 1 failed, elapsed 35.0s\n"
        # Then, once: where the results are and how to look at them.
        "[runner] grid lr: results in /runs/lr\n"
        "[runner]   runner status /runs/lr   (a table per search; a grid's mean +- std per point)\n"
        "[runner]   runner plot /runs/lr     (PNG plots)\n"
    )


def test_plain_line_per_binary_search_round() -> None:
    clock, out = FakeClock(), io.StringIO()
    status = SearchStatus(kind="binary_search", name="B", base_dir="/runs/width", interval=(1, 100))
    display = ProgressDisplay([status], None, mode="plain", stream=out, interval=1e9, clock=clock)
    status.state, status.started, status.rounds, status.expected_jobs = "running", clock.now, 1, 12
    display.tick()
    status.interval, status.rounds = (1, 50), 2
    display.tick()
    display.tick()  # nothing new
    status.interval, status.rounds = (25, 50), 3
    display.tick()
    lines = out.getvalue().splitlines()
    assert [line.split("interval ")[1].split(")")[0] + ")" for line in lines] == [
        "(1, 100)",
        "(1, 50)",
        "(25, 50)",
    ]
    assert all("/~12 done" in line for line in lines)  # a binary search's total is an estimate


def test_live_render_shows_searches_and_running_jobs() -> None:
    from rich.console import Console

    clock, scheduler = FakeClock(), FakeScheduler()
    status = SearchStatus(
        kind="binary_search", name="B", base_dir="/runs/[red]w", interval=(41, 45)
    )
    status.state, status.started, status.rounds, status.expected_jobs = (
        "running",
        clock.now - 65,
        3,
        8,
    )
    status.submitted, status.finished = 4, 2
    job = Job(run_fn=len, config=[], base_dir="/runs/[red]w/width=43", point={"width": 43})
    scheduler.running_jobs = [(job, Device("GPU-abc"), clock.now - 3)]
    display = ProgressDisplay([status], scheduler, mode="live", clock=clock)  # type: ignore[arg-type]
    console = Console(file=io.StringIO(), width=150, color_system=None)
    console.print(display.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "bisect [red]w" in text  # user text is not rich markup
    assert "(41, 45) r3" in text and "1m05s" in text
    assert "width=43" in text and "GPU-abc" in text and "3.0s" in text


def test_live_mode_writes_the_final_table_and_stops() -> None:
    out = io.StringIO()
    status = _grid_status("/runs/final")
    status.state, status.started, status.ended = "done", 0.0, 12.0
    status.submitted = status.finished = 10
    display = ProgressDisplay([status], None, mode="live", stream=out)
    display.tick()
    display.close()
    assert "grid final" in out.getvalue() and "12.0s" in out.getvalue()
    assert display._live is None


def test_a_failing_display_logs_once_and_never_fails_the_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("boom")

    async def work() -> str:
        await asyncio.sleep(0)
        return "done"

    async def main() -> str:
        return await watch(work(), [Broken()], None, progress=True)  # type: ignore[list-item]

    with caplog.at_level(logging.WARNING, logger="runner"):
        assert asyncio.run(main()) == "done"
    warnings = [r for r in caplog.records if "progress display failed" in r.getMessage()]
    assert len(warnings) == 1 and "boom" in warnings[0].getMessage()


def test_cancelling_the_work_stops_the_display(capsys: pytest.CaptureFixture[str]) -> None:
    status = _grid_status("/runs/cancel")

    async def main() -> None:
        started = asyncio.Event()

        async def work() -> None:
            status.state, status.started = "running", 0.0
            started.set()
            await asyncio.Event().wait()  # forever, until cancelled

        task = asyncio.ensure_future(watch(work(), [status], None, progress=True))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no display task left

    asyncio.run(main())
    assert "[runner] grid cancel: running" in capsys.readouterr().err


def test_format_duration() -> None:
    assert format_duration(None) == "?"
    assert format_duration(59.94) == "59.9s"
    assert format_duration(3600) == "1h00m"


def test_grid_search_prints_plain_lines_when_stdout_is_not_a_terminal(
    train_target: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RUNNER_PROGRESS", raising=False)
    script = load_function(train_target)
    grid = build_grid_search(script, ["seed=[1,2,3]"], base_dir=str(tmp_path / "plain"))
    [results] = run_grid_searches([grid], 2, 2)  # progress=None: stdout is captured, not a tty
    assert [r.result["acc"] for r in results] == pytest.approx(
        [10 / 52 + s / 1000 for s in (1, 2, 3)]
    )
    captured = capsys.readouterr()
    assert captured.out == ""  # plain lines go to stderr, stdout stays the program's
    lines = [line for line in captured.err.splitlines() if line.startswith("[runner]")]
    assert lines[-4].startswith(
        "[runner] grid plain: done, 3/3 done, 0 running, 0 queued, 0 failed"
    )
    assert lines[-3] == f"[runner] grid plain: results in {tmp_path / 'plain'}"
    assert lines[-2:] == [
        f"[runner]   runner status {tmp_path / 'plain'}   (a table per search; "
        "a grid's mean +- std per point)",
        f"[runner]   runner plot {tmp_path / 'plain'}     (PNG plots)",
    ]

    again = build_grid_search(script, ["seed=[1]"], base_dir=str(tmp_path / "quiet"))
    run_grid_searches([again], 2, 2, progress=False)
    assert "[runner]" not in capsys.readouterr().err


def test_binary_search_progress_reports_its_rounds(
    train_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.binary_search import run_binary_searches

    script = load_function(train_target)
    search = build_binary_search(
        script,
        ["width=10:100", "seed=0"],
        base_dir=str(tmp_path / "bis"),
        precision=1,
        success='result["acc"] >= 0.5',
        parallel_points=3,
    )
    [outcome] = run_binary_searches([search], 4, 1, progress=True)
    assert outcome.achieved_results[0] == 42
    lines = [
        ln
        for ln in capsys.readouterr().err.splitlines()
        if ln.startswith("[runner] bisect") and "results in" not in ln
    ]
    # The display samples the counters twice a second: a search this quick may be
    # seen only once it has finished, so the first line is "running" or "done".
    assert lines[0].startswith(("[runner] bisect bis: running", "[runner] bisect bis: done"))
    assert "interval (41, 42)" in lines[-1] and ": done," in lines[-1]
    assert f"round {outcome.rounds}," in lines[-1]
