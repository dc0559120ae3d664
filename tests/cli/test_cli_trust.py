"""The CLI trusts no file it reads: escapes control characters, skips a malformed or hostile
file with one line and goes on, and a job never writes its log through a planted link."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from cli_helpers import run_cli

from runner.devices import CPU_DEVICE
from runner.executors.local import LocalExecutor
from runner.jobs import Job

ESC = "\x1b"


def _job_folder(path: Any, **record: Any) -> None:
    os.makedirs(path, exist_ok=True)
    data = {"schema_version": 2, "status": "ok", "point": {"seed": 1}, "device": None}
    data.update(record)
    (path / "job.json").write_text(json.dumps(data))


def test_status_escapes_what_folders_and_records_hold(tmp_path: Any) -> None:
    hostile = tmp_path / f"seed=1{ESC}]0;owned\a"
    _job_folder(hostile, result_summary=f"{ESC}[2J cleared")
    _job_folder(tmp_path / "plain", status="error", error_summary=f"boom{ESC}[31m red")
    done = run_cli(["status", str(tmp_path), "--all"])
    assert done.returncode == 0, done.stderr
    assert ESC not in done.stdout and "\a" not in done.stdout
    assert "\\x1b]0;owned\\x07" in done.stdout and "\\x1b[2J cleared" in done.stdout
    assert "boom\\x1b[31m red" in done.stdout
    as_json = run_cli(["status", str(tmp_path), "--json"])
    assert ESC not in as_json.stdout  # JSON escapes them its own way (\u001b)


def test_one_hostile_or_damaged_file_does_not_break_the_view(tmp_path: Any) -> None:
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    _job_folder(tmp_path / "broken")
    (tmp_path / "broken" / "job.json").write_text('{"status": ')
    _job_folder(tmp_path / "wrong_types", status=["not", "a", "status"], duration="long")
    _job_folder(tmp_path / "good", result_summary=0.5)
    for args in (["status", str(tmp_path)], ["status", str(tmp_path), "--json"]):
        done = run_cli(args)
        assert done.returncode == 0, done.stderr
        assert "good" in done.stdout
        skipped = [line for line in done.stderr.splitlines() if "skipping" in line]
        assert any("deep" in line and "RecursionError" in line for line in skipped), done.stderr
        assert any("broken" in line for line in skipped), done.stderr
        assert "Traceback" not in done.stderr
    shown = run_cli(["show", str(deep / "summary.json")])
    assert shown.returncode != 0 and "Traceback" not in shown.stderr
    assert "not a JSON object" in shown.stderr
    plotted = run_cli(["plot", str(tmp_path), "-o", str(tmp_path / "plots")])
    assert "Traceback" not in plotted.stderr


def test_a_planted_log_link_is_never_written_through(tmp_path: Any) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    os.symlink(victim, job_dir / "experiment_output.log")
    result = asyncio.run(
        LocalExecutor(grace_period=0.5).execute(
            Job(run_fn=print, config="written?", base_dir=str(job_dir)), CPU_DEVICE
        )
    )
    assert not result.success and result.status == "error"
    assert "is a symbolic link" in (result.error or "")
    assert victim.read_text() == "precious\n"


def test_a_second_driver_on_a_folder_gets_one_line_not_a_traceback(
    train_target: str, tmp_path: Any
) -> None:
    from runner.search_lock import SearchLock

    base = tmp_path / "g"
    with SearchLock(str(base)):  # this test process is the driver running the folder
        done = run_cli(["grid", train_target, "seed=[1]", "--base-dir", str(base)])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"is already being run by pid {os.getpid()}" in done.stderr
    assert not (base / "seed=1").exists()  # refused before any job
