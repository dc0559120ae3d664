"""``@main``'s entry point and ``run`` called from code: ``app(["x=1"])``, ``args=[...]``.

Given a list, the entry point is a function call: bad input raises, ``--show`` and
``--help`` print and return ``None``. Read from ``sys.argv`` (or ``argv=``) it is a
script: it exits. Both spellings are what code written for pydrafig calls.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from configs import InvalidConfigurationError, main, pydraclass, run
from configs.errors import OverrideSyntaxError


@pydraclass
class Job:
    val: int = 0
    name: str = "job"


calls: list[Job] = []


@main(Job)
def app(config: Job) -> int:
    calls.append(config)
    return config.val


def task(config: Job) -> int:
    return config.val * 2


@pytest.fixture(autouse=True)
def _no_calls() -> None:
    calls.clear()


def test_a_list_of_overrides_positionally() -> None:
    assert app(["val=100"]) == 100
    assert app(("val=5", "name=x")) == 5
    assert calls[-1] == Job(val=5, name="x") and calls[-1].is_finalized


def test_args_keyword() -> None:
    assert app(args=["val=7"]) == 7


def test_argv_keyword_and_a_config_still_work() -> None:
    assert app(argv=["val=3"]) == 3
    assert app(Job(val=4)) == 4


def test_run_takes_args_positionally_or_by_keyword_and_argv() -> None:
    assert run(task, args=["val=21"]) == 42
    assert run(task, ["val=2"]) == 4
    assert run(task, argv=["val=3"]) == 6


def test_show_with_a_list_prints_the_config_and_returns_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert app(["val=99", "--show"]) is None
    assert capsys.readouterr().out == "val: 99\nname: job\n"
    assert calls == []
    assert run(task, args=["--show", "name=shown"]) is None
    assert "name: shown\n" in capsys.readouterr().out


def test_help_with_a_list_prints_and_returns_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert app(["--help"]) is None
    assert "val: int = 0" in capsys.readouterr().out
    assert calls == []


def test_show_from_argv_still_exits_like_a_script(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        app(argv=["--show", "val=1"])
    assert info.value.code == 0 and "val: 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["vall=1"], InvalidConfigurationError, "Job has no field 'vall'; did you mean 'val'?"),
        (["val=x"], InvalidConfigurationError, "val: cannot use 'x' as int"),
        (["--shw"], InvalidConfigurationError, "did you mean '--show'?"),
        (["--config"], InvalidConfigurationError, "--config needs a file"),
        (["--config", "missing.yaml"], InvalidConfigurationError, "cannot read --config"),
        (["val"], OverrideSyntaxError, "expected key=value, got 'val'"),
    ],
)
def test_bad_input_in_a_list_raises_instead_of_exiting(
    overrides: list[str],
    error: type[Exception],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as info:
        app(overrides)
    assert message in str(info.value)
    assert calls == []


def test_malformed_override_is_also_a_syntax_error() -> None:
    with pytest.raises(SyntaxError):
        app(["not an override"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: app("val=1"), "got str 'val=1'"),
        (lambda: app({"val": 1}), "expected a config or a list of overrides"),
        (lambda: app(["val=1"], args=["val=2"]), "give the overrides once"),
        (lambda: app(["val=1"], argv=["val=2"]), "give either args"),
        (lambda: app(Job(), args=["val=2"]), "apply them first"),
        (lambda: run(task, ["val=1"], argv=["val=2"]), "give either args"),
    ],
)
def test_ambiguous_calls_are_refused(call: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()  # type: ignore[operator]


SCRIPT = textwrap.dedent(
    """
    from configs import main, pydraclass

    @pydraclass
    class Config:
        val: int = 0

    @main(Config)
    def app(config):
        print("ran", config.val)
        return config.val

    if __name__ == "__main__":
        print("returned", app(["val=2", "--show"]))
        print("returned", app(["val=3"]))
    """
)


def test_show_in_a_list_does_not_end_the_script(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "val: 2\nreturned None\nran 3\nreturned 3\n"
