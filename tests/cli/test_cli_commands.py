"""The ``runner`` command's help, argument errors, ``gpus`` and ``status`` on live and dead sweeps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli_env, run_cli

from runner.cli import main

COMMANDS = ["status", "show", "plot", "logs", "gpus", "grid", "bisect"]


def test_console_script_help_lists_every_command() -> None:
    result = run_cli(["--help"], console_script=True)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: runner {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["frobnicate"], "invalid choice"),
        (["status"], "the following arguments are required: DIR"),
        (["status", "/nonexistent/dir"], "is not a folder"),
        (["show", "/nonexistent/file.pkl"], "is not a file"),
        (["plot", "/nonexistent/dir"], "does not exist"),
        (["logs", "/nonexistent/dir", "job"], "is not a folder"),
        (["gpus", "--max-gpus", "-1"], "must be >= 0"),
        (["gpus", "--max-gpus", "two"], "invalid int value"),
        (["grid", "nofile.py:train", "seed=[1]"], "does not exist"),
        (["grid", "train_no_colon"], "is not SCRIPT.py:FUNCTION"),
        (["status", "/tmp", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["sed=[1,2]"], "did you mean 'seed'"),
        (["seed=[1,2]", "width=wide"], "width: cannot use 'wide' as int"),
        (["seed=[]"], "empty list"),
    ],
)
def test_grid_config_errors_exit_2_before_running(
    train_target: str,
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["grid", train_target, *extra, "--base-dir", str(tmp_path / "g")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "g").exists()  # nothing started


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--success", "__import__('os').system('true')"], "may be called"),
        (["--success", "reslt > 1"], "did you mean 'result'"),
        (["--success", "result.__class__"], "private names"),
        (["--success", "result >"], "not a valid expression"),
        (["--seeds", "1,2", "--seed-key", "sead"], "did you mean 'seed'"),
        (["--precision", "0"], "must be > 0"),
    ],
)
def test_bisect_argument_errors_exit_2(
    train_target: str,
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bisect", train_target, "width=10:100", "--precision", "1", *extra]
    code = main([*argv, "--base-dir", str(tmp_path / "b")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_bisect_needs_a_range(train_target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bisect", train_target, "width=10", "--precision", "1"]) == 2
    assert "no range to search" in capsys.readouterr().err


def test_script_function_errors(script_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = script_dir / "train_script.py"
    assert main(["grid", f"{script}:trian", "seed=[1]"]) == 2
    assert "did you mean 'train'" in capsys.readouterr().err
    assert main(["grid", f"{script}:no_config", "seed=[1]"]) == 2
    assert "must be a @pydraclass class" in capsys.readouterr().err


def test_gpus_reports_the_source_and_that_busy_is_unknown_without_nvml() -> None:
    result = run_cli(["gpus", "--json"], console_script=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["source"] == "CUDA_VISIBLE_DEVICES"
    assert data["devices"] == ["0", "1", "2", "3"]
    # No NVML on the test machine: each device's busy state is unknown, and it says so.
    if all(d["busy"] is None for d in data["device_status"]):
        assert "can't tell" in data["busy_check"]

    human = run_cli(["gpus", "--max-gpus", "2"])
    assert "source:  CUDA_VISIBLE_DEVICES" in human.stdout
    assert "devices: 0, 1" in human.stdout
    assert "max_gpus=2" in human.stdout


def test_gpus_without_any_gpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert "source:  CUDA_VISIBLE_DEVICES" in out and "CPU slots" in out


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_status_after_a_crash_shows_lost_jobs(tmp_path: Path) -> None:
    job = tmp_path / "sweep" / "seed=1"
    job.mkdir(parents=True)
    (job / "job.json").write_text(
        json.dumps(
            {
                "status": "running",
                "host": socket.gethostname(),
                "pid": _dead_pid(),
                "device": "2",
                "start_time": time.time() - 5,
                "point": {"seed": 1},
            }
        )
    )
    (tmp_path / "sweep" / "summary.json").write_text(
        json.dumps({"kind": "grid_search", "status": "running", "num_jobs": 2, "started": 0})
    )
    (job / "result.pkl").write_bytes(b"not a pickle: status must never read it")
    result = run_cli(["status", str(tmp_path), "--json"])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [j["status"] for j in data["jobs"]] == ["lost"]
    assert data["jobs"][0]["device"] == "2"
    assert [s["status"] for s in data["searches"]] == ["lost"]


def test_status_while_a_search_runs(train_target: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    base = tmp_path / "live"
    sweep = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner.cli",
            "grid",
            train_target,
            "seed=[1,2]",
            f"gate={gate}",
            "--base-dir",
            str(base),
            "--gpus",
            "2",
            "--no-progress",
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait on the condition itself: both jobs' job.json say running with a live pid.
        deadline = time.monotonic() + 30
        while True:
            records = [
                json.loads(p.read_text()) for p in base.glob("*/job.json") if p.stat().st_size
            ]
            if len(records) == 2 and all(r.get("pid") for r in records):
                break
            assert time.monotonic() < deadline, "the jobs never started"
            assert sweep.poll() is None, sweep.communicate()
            time.sleep(0.05)
        result = run_cli(["status", str(tmp_path), "--json"])
        data = json.loads(result.stdout)
        assert {j["status"] for j in data["jobs"]} == {"running"}
        assert {j["device"] for j in data["jobs"]} == {"0", "1"}
        assert [s["status"] for s in data["searches"]] == ["running"]
        assert data["searches"][0]["jobs"] == "0/2"
    finally:
        gate.touch()
        out, err = sweep.communicate(timeout=30)
    assert sweep.returncode == 0, err
    assert "[runner]" not in err  # --no-progress
    done = json.loads(run_cli(["status", str(tmp_path), "--json"]).stdout)
    assert {j["status"] for j in done["jobs"]} == {"ok"}


def test_python_dash_m_and_grid_job_failure_exit_1(tmp_path: Path) -> None:
    script = tmp_path / "flaky.py"
    script.write_text(
        "from configs import pydraclass\n\n"
        "@pydraclass\nclass C:\n    x: int = 0\n\n"
        "def run(c: C) -> int:\n"
        "    if c.x == 2:\n        raise ValueError('x=2 diverged')\n"
        "    return c.x * 10\n"
    )
    result = run_cli(
        ["grid", f"{script}:run", "x=[1,2]", "--base-dir", str(tmp_path / "out"), "--gpus", "0"],
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "ValueError: x=2 diverged" in result.stdout
    assert "1 failed" in result.stdout
    assert os.path.isdir(tmp_path / "out" / "x=1") and os.path.isdir(tmp_path / "out" / "x=2")
