"""The command line: overrides, coercion, --help, --show, --config, --eval, exit codes, run()."""

from __future__ import annotations

import enum
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

import pytest

from configs import REQUIRED, InvalidConfigurationError, apply_overrides, main, pydraclass, run
from configs.cli import parse_value


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@pydraclass
class Optimizer:
    name: Literal["adam", "sgd"] = "adam"  # which optimizer
    lr: float = 1e-3  # learning rate
    betas: tuple[float, float] = (0.9, 0.999)


@pydraclass
class Model:
    optimizer: Optimizer = Optimizer()
    """The optimizer of the model."""
    hidden: int = 128


@pydraclass
class Train:
    """Train a model."""

    model: Model = Model()
    layers: list[int] = [64, 64]
    """Sizes of the hidden layers."""
    # The random seed; None picks one.
    seed: int | None = None
    flag: bool = False
    name: str = "run"
    range: tuple = (10, 100)
    sweep_props: dict = {}
    mode: Mode = Mode.FAST
    sub: Optimizer | None = None
    anything: Any = None
    out: str = REQUIRED  # where results go
    #: Shown in --help: a Sphinx-style comment above the field.
    label: str = ""

    def custom_finalize(self) -> None:
        self.label = f"{self.name}-{self.model.optimizer.name}"


def apply(*overrides: str, allow_eval: bool = False) -> Train:
    return apply_overrides(Train(), list(overrides), allow_eval=allow_eval)


@pytest.mark.parametrize(
    ("override", "path", "expected"),
    [
        ("model.optimizer.lr=1e-3", "model.optimizer.lr", 1e-3),
        ("model.optimizer.lr=1", "model.optimizer.lr", 1.0),
        ("model.hidden=1e3", "model.hidden", 1000),
        ("model.optimizer.lr=inf", "model.optimizer.lr", float("inf")),
        ("layers=[64,128]", "layers", [64, 128]),
        ("layers.1=32", "layers", [64, 32]),
        ("layers.-1=7", "layers", [64, 7]),
        ("name=foo", "name", "foo"),
        ("name=007", "name", "007"),
        ("name=1e3", "name", "1e3"),
        ("name='quoted'", "name", "quoted"),
        ("name=", "name", ""),
        ("flag=true", "flag", True),
        ("flag=True", "flag", True),
        ("flag=1", "flag", True),
        ("flag=no", "flag", False),
        ("seed=none", "seed", None),
        ("seed=None", "seed", None),
        ("seed=null", "seed", None),
        ("seed=3", "seed", 3),
        ("range=[1,5]", "range", (1, 5)),
        ("range=(1, 5)", "range", (1, 5)),
        ("range.0=3", "range", (3, 100)),
        ("sweep_props={'seed': [1, 2]}", "sweep_props", {"seed": [1, 2]}),
        ("sweep_props.seed=[1,2]", "sweep_props", {"seed": [1, 2]}),
        ("model.optimizer.name=sgd", "model.optimizer.name", "sgd"),
        ("model.optimizer.betas=[0.5,0.6]", "model.optimizer.betas", (0.5, 0.6)),
        ("mode=SLOW", "mode", Mode.SLOW),
        ("mode=slow", "mode", Mode.SLOW),
        ("sub.lr=0.5", "sub.lr", 0.5),
        ("anything=hello", "anything", "hello"),
        ("anything=[1, 'a']", "anything", [1, "a"]),
        ("model={'hidden': 3}", "model.hidden", 3),
    ],
)
def test_overrides_are_parsed_and_coerced(override: str, path: str, expected: Any) -> None:
    value: Any = apply(override)
    for part in path.split("."):
        value = getattr(value, part)
    assert value == expected and type(value) is type(expected)


def test_overrides_apply_in_order_and_return_the_config() -> None:
    config = Train()
    assert apply_overrides(config, ["seed=1", "seed=2"]) is config
    assert config.seed == 2


def test_an_override_marks_the_config_changed() -> None:
    config = Train(out="x")
    config.finalize()
    apply_overrides(config, ["layers.0=1"])  # an item of a list: the field is reassigned
    assert not config.is_finalized


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seeed=1", "Train has no field 'seeed'; did you mean 'seed'?"),
        ("hidden=3", "Train has no field 'hidden'; did you mean 'model.hidden'?"),
        (
            "model.optimizer.lrr=3",
            "Optimizer (at model.optimizer) has no field 'lrr'; did you mean 'lr'?",
        ),
        ("model.zzz.lr=3", "Model (at model) has no field 'zzz'; valid fields: hidden, optimizer"),
        ("seed=abc", "seed: cannot use 'abc' as int | None"),
        ("flag=maybe", "flag: cannot use 'maybe' as bool"),
        ("model.hidden=1.5", "model.hidden: cannot use '1.5' as int"),
        (
            "model.optimizer.name=rmsprop",
            "model.optimizer.name: cannot use 'rmsprop' as Literal['adam', 'sgd']",
        ),
        ("layers.5=1", "cannot set layers.5: index 5 is out of range for a list of length 2"),
        ("layers.x=1", "cannot set layers.x: 'x' is not an index into a list of length 2"),
        ("name.x=1", "cannot set name.x: name is 'run' (str), which has no parts to set"),
        ("sweep_props.a.b=1", "the dict at sweep_props has no key 'a'"),
        ("noequals", "expected key=value, got 'noequals'"),
        ("=3", "expected key=value, got '=3'"),
        (
            "model.optimizer.betas=[1]",
            "model.optimizer.betas: cannot use '[1]' as tuple[float, float]",
        ),
    ],
)
def test_bad_overrides_raise_with_a_clear_message(override: str, message: str) -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        apply(override)
    assert message in str(info.value)


def test_values_never_reach_eval() -> None:
    config = apply("name=__import__('os').getcwd()", "anything=open('x')")
    assert config.name == "__import__('os').getcwd()" and config.anything == "open('x')"
    # Arithmetic on literals is computed by the tree walker, without --eval.
    assert apply("model.hidden=2**8").model.hidden == 256


def test_eval_opt_in_computes_arithmetic_too() -> None:
    assert apply("model.hidden=2**8", allow_eval=True).model.hidden == 256
    assert apply("layers=[2**5, 2**6]", allow_eval=True).layers == [32, 64]
    # A str field keeps the text as typed when the expression is not a string.
    assert apply("name=__import__('os')", allow_eval=True).name == "__import__('os')"


def test_parse_value() -> None:
    assert parse_value("1e-3") == 1e-3 and parse_value("foo bar") == "foo bar"
    assert parse_value("2**8") == "2**8" and parse_value("2**8", allow_eval=True) == 256


@main(Train)
def entry(config: Train) -> Train:
    return config


def test_main_parses_argv_finalizes_and_calls_fn() -> None:
    config = entry(argv=["out=/tmp/x", "model.optimizer.name=sgd", "name=exp"])
    assert config.is_finalized and config.label == "exp-sgd"


def test_main_reads_sys_argv_when_called_without_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "out=o", "seed=5"])
    assert entry().seed == 5


def test_main_with_a_config_calls_fn_directly() -> None:
    config = Train(seed=9)
    assert entry(config) is config and not config.is_finalized


def test_main_needs_a_pydraclass() -> None:
    with pytest.raises(TypeError, match="main\\(\\) takes a @pydraclass class"):
        main(dict)  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["out=o", "seeed=1"], "error: Train has no field 'seeed'; did you mean 'seed'?"),
        (["out=o", "seed=x"], "error: seed: cannot use 'x' as int | None"),
        ([], "error: Train: required field(s) not set: Train.out"),
        (["out=o", "--bogus"], "error: the command line has no option '--bogus'"),
        (["out=o", "--shw"], "did you mean '--show'?"),
        (["out=o", "--seed=3"], "unknown option '--seed'; set fields as key=value, without dashes"),
        (["out=o", "seed"], "expected key=value, got 'seed'"),
        (["--config"], "--config needs a file"),
        (["--config", "missing.yaml"], "cannot read --config missing.yaml"),
    ],
)
def test_bad_command_line_exits_2_with_a_message(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        entry(argv=argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_invalid_configuration_raised_by_a_hook_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    @pydraclass
    class Checked:
        lr: float = 1.0

        def custom_finalize(self) -> None:
            if self.lr <= 0:
                raise InvalidConfigurationError(f"lr must be positive, got {self.lr}")

    with pytest.raises(SystemExit) as info:
        main(Checked)(lambda c: c)(argv=["lr=-1"])
    assert info.value.code == 2
    assert "lr must be positive, got -1.0" in capsys.readouterr().err


def test_show_prints_the_final_config_as_yaml_and_does_not_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = []

    @main(Train)
    def fn(config: Train) -> None:
        ran.append(config)

    with pytest.raises(SystemExit) as info:
        fn(argv=["--show", "out=o", "model.optimizer.lr=0.5", "range=[1,2]"])
    assert info.value.code == 0 and ran == []
    out = capsys.readouterr().out
    assert "model:\n  optimizer:\n    name: adam\n    lr: 0.5\n" in out
    assert "range:\n- 1\n- 2\n" in out
    assert "label: run-adam\n" in out  # finalized before it is shown
    assert "mode: FAST\n" in out


def test_help_lists_every_field_with_type_default_and_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        entry(argv=["seed=bad", "--help"])  # --help wins over everything else
    assert info.value.code == 0
    out = capsys.readouterr().out
    raw = out.splitlines()
    lines = [line.strip() for line in raw]
    assert out.startswith("usage: ")
    assert "Train a model." in lines

    def row(prefix: str) -> str:
        """A field's row; a long one continues on the next, more indented line."""
        i = next(i for i, line in enumerate(raw) if line.startswith(f"  {prefix}"))
        text = raw[i]
        if i + 1 < len(raw) and raw[i + 1].startswith("    "):
            text += raw[i + 1]
        return " ".join(text.split())

    assert row("model.optimizer.lr:") == "model.optimizer.lr: float = 0.001 learning rate"
    assert (
        row("model.optimizer.name:")
        == "model.optimizer.name: Literal['adam', 'sgd'] = 'adam' which optimizer"
    )
    assert row("model:") == "model: Model"
    assert row("model.optimizer:") == "model.optimizer: Optimizer The optimizer of the model."
    assert row("layers:") == "layers: list[int] = [64, 64] Sizes of the hidden layers."
    assert row("seed:") == "seed: int | None = None The random seed; None picks one."
    assert row("out:") == "out: str = REQUIRED where results go"
    assert row("model.hidden:") == "model.hidden: int = 128"
    assert (
        row("label:") == "label: str = '' Shown in --help: a Sphinx-style comment above the field."
    )
    assert "--config FILE" in out and "--show" in out and "--eval" in out


def test_config_file_is_loaded_first_then_overrides(tmp_path: Path) -> None:
    base = Train(out="from-file", seed=1, layers=[1, 2, 3])
    base.save_yaml(tmp_path / "base.yaml")
    config = entry(argv=["--config", str(tmp_path / "base.yaml"), "seed=2"])
    assert (config.out, config.seed, config.layers) == ("from-file", 2, [1, 2, 3])
    config = entry(argv=[f"--config={tmp_path / 'base.yaml'}"])
    assert config.seed == 1


def test_bad_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("out: o\nsed: 1\n")
    with pytest.raises(SystemExit) as info:
        entry(argv=["--config", str(tmp_path / "bad.yaml")])
    assert info.value.code == 2
    assert "Train has no field 'sed'; did you mean 'seed'?" in capsys.readouterr().err


def test_eval_flag_on_the_command_line() -> None:
    assert entry(argv=["--eval", "out=o", "model.hidden=2**8"]).model.hidden == 256


def train_fn(config: Train) -> int:
    return config.model.hidden


def test_run_infers_the_config_class_from_a_string_annotation() -> None:
    assert isinstance(train_fn.__annotations__["config"], str)  # from __future__ import annotations
    assert run(train_fn, argv=["out=o", "model.hidden=7"]) == 7


def test_run_needs_an_annotated_first_parameter() -> None:
    def untyped(config):  # type: ignore[no-untyped-def]
        return config

    with pytest.raises(TypeError, match="must be a @pydraclass class"):
        run(untyped, argv=[])


SCRIPT = textwrap.dedent(
    """
    from __future__ import annotations
    from configs import pydraclass, main

    @pydraclass
    class Config:
        learning_rate: float = 0.1  # step size
        epochs: int = 1

    @main(Config)
    def train(config: Config) -> None:
        print("ran", config.learning_rate * config.epochs)

    if __name__ == "__main__":
        train()
    """
)


@pytest.mark.parametrize(
    ("args", "code", "stdout", "stderr"),
    [
        (["epochs=3"], 0, "ran 0.30000000000000004", ""),
        (
            ["learnig_rate=1"],
            2,
            "",
            "error: Config has no field 'learnig_rate'; did you mean 'learning_rate'?",
        ),
        (["epochs=abc"], 2, "", "error: epochs: cannot use 'abc' as int"),
        (["--show", "epochs=4"], 0, "learning_rate: 0.1\nepochs: 4\n", ""),
        (["--help"], 0, "learning_rate: float = 0.1  step size", ""),
    ],
)
def test_exit_codes_of_a_real_script(
    tmp_path: Path, args: list[str], code: int, stdout: str, stderr: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == code, result.stderr
    # An empty expectation means nothing at all was written to that stream.
    assert (stdout in result.stdout) if stdout else result.stdout == ""
    assert (stderr in result.stderr) if stderr else result.stderr == ""
    assert "Traceback" not in result.stderr
