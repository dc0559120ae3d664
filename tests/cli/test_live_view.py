"""What a researcher sees in a terminal: one live table, log lines scrolling above it, the
running jobs' last output, and where the results are at the end.

The live display writes into a terminal-like buffer (rich with a forced terminal) and
a small emulator (terminal_screen.py) replays the bytes into the screen a person
would see; a real run of ``runner grid`` in a pseudo-terminal is checked the same way.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli_env
from rich.console import Console
from terminal_screen import Screen, TtyBuffer

from runner._live_terminal import LogsAbove, TailReader, last_line
from runner.devices import Device
from runner.jobs import Job
from runner.progress import Failure, ProgressDisplay, end_message
from runner.scheduler import GPUJobResult
from runner.search_common import SearchStatus


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeScheduler:
    def __init__(self) -> None:
        self.running_jobs: list[tuple[Any, Device, float]] = []


@pytest.fixture
def runner_logs_to() -> Iterator[Any]:
    """Attach a handler to the "runner" logger (as logging.basicConfig would to the root)."""
    logger = logging.getLogger("runner")
    added: list[logging.Handler] = []
    level, before = logger.level, logger.handlers[:]
    for handler in before:  # e.g. the runner command's, left by a test that called main()
        logger.removeHandler(handler)

    def attach(stream: Any) -> logging.StreamHandler[Any]:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        added.append(handler)
        return handler

    yield attach
    for handler in added:
        logger.removeHandler(handler)
    for handler in before:
        logger.addHandler(handler)
    logger.setLevel(level)


def _terminal(width: int = 110) -> tuple[TtyBuffer, Console]:
    out = TtyBuffer()
    console = Console(
        file=out, force_terminal=True, width=width, height=60, color_system=None, emoji=False
    )
    return out, console


def _problems(lines: list[str], logs: list[str]) -> list[str]:
    """What is wrong with a screen that should hold the logs, then one table."""
    problems = []
    titles = [i for i, line in enumerate(lines) if line == "runner"]
    headers = [i for i, line in enumerate(lines) if line.startswith("┃ search")]
    if len(titles) != 1:
        problems.append(f"{len(titles)} table titles")
    if len(headers) != 1:
        problems.append(f"{len(headers)} table headers")
    shown = [line for line in lines if line.startswith("INFO ")]
    if shown != logs:
        problems.append(f"log lines {shown} != {logs}")
    if titles and any(i > titles[0] for i, line in enumerate(lines) if line in logs):
        problems.append("a log line below the table")
    return problems


def _drive(display: ProgressDisplay, status: SearchStatus, clock: FakeClock) -> list[str]:
    logger = logging.getLogger("runner")
    logs = []
    display.tick()
    for i in range(6):
        message = f"round {i}: tested width={40 + i} -> failure"
        logger.info(message)
        logs.append(f"INFO {message}")
        status.finished += 1
        clock.now += 1
        display.tick()
    status.state, status.ended = "done", clock.now
    display.close()
    return logs


def _running(tmp_path: Path) -> tuple[SearchStatus, FakeScheduler, FakeClock]:
    clock, scheduler = FakeClock(), FakeScheduler()
    status = SearchStatus(kind="binary_search", name="B", base_dir=str(tmp_path / "bis"))
    status.state, status.started, status.expected_jobs = "running", clock.now, 12
    status.submitted, status.interval, status.rounds = 8, (10, 100), 1
    job = Job(run_fn=len, config=[], base_dir=str(tmp_path / "bis" / "w=43"), point={"w": 43})
    scheduler.running_jobs = [(job, Device("0"), clock.now)]
    return status, scheduler, clock


def test_log_records_scroll_above_one_live_table(tmp_path: Path, runner_logs_to: Any) -> None:
    out, console = _terminal()
    handler = runner_logs_to(out)  # the terminal the table is drawn on
    status, scheduler, clock = _running(tmp_path)
    display = ProgressDisplay([status], scheduler, mode="live", console=console, clock=clock)  # type: ignore[arg-type]
    logs = _drive(display, status, clock)

    lines = Screen().feed(out.getvalue()).lines()
    assert _problems(lines, logs) == [], "\n".join(lines)
    assert handler.stream is out  # the handler writes where it did once the display is gone
    title = lines.index("runner")
    assert lines[:title] == logs  # the logs, in order, above the table; nothing else
    assert any("bisect bis" in line and "done" in line for line in lines)  # the final table
    assert lines[-3:] == [
        f"bisect bis: results in {tmp_path / 'bis'}",
        f"  runner status {tmp_path / 'bis'}   (a table per search; a grid's mean +- std per point)",
        f"  runner plot {tmp_path / 'bis'}     (PNG plots)",
    ]


def test_the_screen_check_sees_logs_that_bypass_the_display(
    tmp_path: Path, runner_logs_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check above is not vacuous: written straight to the terminal, the same
    # records tear the table as they did before the display routed them.
    monkeypatch.setattr(LogsAbove, "divert", lambda self: None)
    out, console = _terminal()
    runner_logs_to(out)
    status, scheduler, clock = _running(tmp_path)
    display = ProgressDisplay([status], scheduler, mode="live", console=console, clock=clock)  # type: ignore[arg-type]
    logs = _drive(display, status, clock)
    assert _problems(Screen().feed(out.getvalue()).lines(), logs) != []


def test_a_handler_writing_to_a_file_is_left_alone(tmp_path: Path, runner_logs_to: Any) -> None:
    out, console = _terminal()
    log_file = io.StringIO()  # not a terminal: a log file keeps every record
    handler = runner_logs_to(log_file)
    status, scheduler, clock = _running(tmp_path)
    display = ProgressDisplay([status], scheduler, mode="live", console=console, clock=clock)  # type: ignore[arg-type]
    logs = _drive(display, status, clock)
    assert log_file.getvalue().splitlines() == logs
    assert handler.stream is log_file
    assert not any(line.startswith("INFO ") for line in Screen().feed(out.getvalue()).lines())


def test_running_jobs_table_has_its_top_border_and_each_jobs_last_output(tmp_path: Path) -> None:
    status, scheduler, clock = _running(tmp_path)
    log = tmp_path / "bis" / "w=43" / "experiment_output.log"
    log.parent.mkdir(parents=True)
    log.write_text("epoch 1 loss=0.9\nepoch 2 loss=0.7\r\x1b[32mepoch 3 loss=0.5\x1b[0m\n")
    _, console = _terminal(width=120)
    display = ProgressDisplay(
        [status], scheduler, mode="live", console=console, clock=clock, end_message=False
    )  # type: ignore[arg-type]
    display.tick()  # starts the display and the reader of the jobs' logs
    assert display._tails is not None and display._tails.refreshed.wait(10)
    wide = Console(file=io.StringIO(), width=120, color_system=None)
    wide.print(display.render(120))
    text = wide.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert sum(line.startswith("┏") for line in text) == 2  # both tables have a top border
    row = next(line for line in text if "w=43" in line)
    assert "epoch 3 loss=0.5" in row and "0.7" not in row
    narrow = Console(file=io.StringIO(), width=80, color_system=None)
    narrow.print(display.render(80))
    assert "last output" not in narrow.file.getvalue()  # type: ignore[attr-defined]
    display.close()
    assert display._tails._stopped


def test_last_line_reads_what_the_terminal_would_show(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    assert last_line(str(log)) == ""  # not written yet
    log.write_bytes(b"x" * 10_000 + b"\nstep 10/100\rstep 20/100\r\n\n  \n")
    assert last_line(str(log)) == "step 20/100"
    log.write_bytes("caf\xc3\xa9 \xff\n".encode("latin-1"))
    assert last_line(str(log)).startswith("caf")


def test_tail_reader_follows_the_paths_it_is_given(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text("a1\na2\n")
    second.write_text("b1\n")
    reader = TailReader(interval=60)
    try:
        reader.want([str(first)])
        assert reader.refreshed.wait(10)
        assert reader.lines == {str(first): "a2"}
        reader.refreshed.clear()
        reader.want([str(second)])  # a new set of paths wakes the reader at once
        assert reader.refreshed.wait(10)
        assert reader.lines == {str(second): "b1"}
    finally:
        reader.stop()


def test_a_search_waiting_for_slots_shows_queued_and_times_from_its_first_job() -> None:
    clock, scheduler = FakeClock(), FakeScheduler()
    first = SearchStatus(kind="grid_search", name="A", base_dir="/runs/a", expected_jobs=4)
    second = SearchStatus(kind="grid_search", name="B", base_dir="/runs/b", expected_jobs=4)
    for status in (first, second):
        status.state, status.started, status.submitted = "running", clock.now, 4
    out = io.StringIO()
    display = ProgressDisplay(
        [first, second], scheduler, mode="plain", stream=out, interval=1e9, clock=clock
    )  # type: ignore[arg-type]
    job_a = Job(run_fn=len, config=[], base_dir="/runs/a/x=1", point={"x": 1})
    scheduler.running_jobs = [(job_a, Device("0"), clock.now)]
    display.tick()
    lines = out.getvalue().splitlines()
    assert lines[1] == "[runner] grid b: queued, 0/4 done, 0 running, 4 queued, 0 failed, ETA ?"

    clock.now += 600  # A's jobs ran for 10 minutes; B waited all that time
    first.finished = first.submitted = 4
    first.state, first.ended = "done", clock.now
    job_b = Job(run_fn=len, config=[], base_dir="/runs/b/x=1", point={"x": 1})
    scheduler.running_jobs = [(job_b, Device("0"), clock.now)]
    display.tick()
    clock.now += 10
    second.finished = 1
    out.truncate(0), out.seek(0)
    display._last_periodic = None  # the next tick writes its periodic lines
    display.tick()
    line = next(ln for ln in out.getvalue().splitlines() if ln.startswith("[runner] grid b"))
    # 1 job in 10 s since its first job started (not 610 s since the search began).
    assert line == (
        "[runner] grid b: running, 1/4 done, 1 running, 2 queued, 0 failed, elapsed 10.0s, "
        "ETA 30.0s"
    )


def test_the_end_message_names_the_first_failure_and_its_log(tmp_path: Path) -> None:
    status = SearchStatus(kind="grid_search", name="G", base_dir=str(tmp_path / "g"))
    status.state, status.started, status.ended = "done", 0.0, 5.0
    job = Job(run_fn=len, config=[], base_dir=str(tmp_path / "g" / "lr=0.1"), point={"lr": 0.1})
    failure = GPUJobResult(
        success=False,
        error="Traceback (most recent call last):\n  File ...\nValueError: loss is nan\n",
        out_file=job.get_out_file(),
        job=job,
    )
    status.submitted = 2
    status.record(GPUJobResult(success=True, result=1.0))
    status.record(failure)  # the search records each result as it comes
    assert status.first_failure is failure
    out = io.StringIO()
    ProgressDisplay([status], None, mode="plain", stream=out).close()
    assert out.getvalue().splitlines()[-2:] == [
        "[runner]   first failure: lr=0.1: ValueError: loss is nan",
        f"[runner]     log: {job.get_out_file()}",
    ]
    crash = Failure(
        None, "The job's process was killed by SIGKILL (9). Last lines of x:\nep 3", None
    )
    assert end_message("g", "/r", crash)[-1] == (
        "  first failure: The job's process was killed by SIGKILL (9)."
    )


def _pty_run(args: list[str], cwd: Path, columns: int = 110) -> str:
    """Run ``args`` with stdout and stderr on a pseudo-terminal; return all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = cli_env()
    env.pop("COLUMNS", None)
    env["TERM"] = "xterm-256color"
    env["NO_COLOR"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    proc = subprocess.Popen(
        args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_runner_grid_in_a_terminal_shows_one_table_with_logs_above(
    train_target: str, tmp_path: Path
) -> None:
    raw = _pty_run(
        [
            sys.executable,
            "-m",
            "runner.cli",
            "-v",  # INFO logs while the table is live
            "grid",
            train_target,
            "width=1:6",
            "seed=range(2)",
            "--gpus",
            "0",
            "--cpu-slots",
            "3",
            "--base-dir",
            str(tmp_path / "g"),
        ],
        cwd=tmp_path,
    )
    lines = Screen().feed(raw).lines()
    text = "\n".join(lines)
    assert sum(line == "runner" for line in lines) == 1, text  # one live table, drawn in place
    assert sum(line.startswith("┃ search") for line in lines) == 1, text
    title = lines.index("runner")
    assert any(line.startswith("INFO ") for line in lines[:title]), text  # logs above it
    assert not any(line.startswith("INFO ") for line in lines[title:]), text
    assert "grid g" in lines[title + 4] and "done" in lines[title + 4] and "12" in lines[title + 4]
    assert any("mean +- std per point over seed" in line for line in lines), text
    assert lines[-3:] == [  # where the results are, relative to where the command ran
        "runner grid g: results in g",
        "  runner status g   (a table per search; a grid's mean +- std per point)",
        "  runner plot g     (PNG plots)",
    ]


def test_runner_grid_json_on_a_terminal_writes_only_json_to_stdout(
    train_target: str, tmp_path: Path
) -> None:
    master, slave = pty.openpty()
    env = cli_env()
    env.pop("COLUMNS", None)
    env["CUDA_VISIBLE_DEVICES"] = ""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "grid", train_target, "seed=[1,2]", "--json",
         "--gpus", "0", "--cpu-slots", "2", "--base-dir", str(tmp_path / "j")],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE, cwd=tmp_path, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's writer is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, stderr
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    json.loads(out)  # the JSON alone: no live table drawn before it
    assert "[runner] grid j" in stderr  # the progress went to stderr, as plain lines
