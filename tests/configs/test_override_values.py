"""Override values: arithmetic on literals by default; names, calls, attributes only with --eval."""

from __future__ import annotations

import pytest

from configs import InvalidConfigurationError, apply_overrides, main, pydraclass
from configs.cli import parse_value


@pydraclass
class Net:
    x: int = 0
    lr: float = 0.1
    hidden: int = 64
    sizes: list[int] = [1]
    name: str = "net"
    scale: float = 1.0


def apply(*overrides: str, allow_eval: bool = False) -> Net:
    return apply_overrides(Net(), list(overrides), allow_eval=allow_eval)


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("x=2+2", "x", 4),
        ("lr=1e-3*4", "lr", 0.004),
        ("hidden=2**8", "hidden", 256),
        ("hidden=-(3 - 10) // 2", "hidden", 3),
        ("lr=2**-3", "lr", 0.125),
        ("sizes=[2**5, 2**6]", "sizes", [32, 64]),
        ("lr=(1 + 1) / 4", "lr", 0.5),
    ],
)
def test_arithmetic_on_literals_needs_no_flag(override: str, field: str, expected: object) -> None:
    assert getattr(apply(override), field) == expected


def test_a_str_field_keeps_the_text_as_typed() -> None:
    assert apply("name=2+2").name == "2+2"
    assert apply("name=2024-1-5").name == "2024-1-5"


@pytest.mark.parametrize(
    "override",
    [
        "hidden=math.floor(2.5)",  # attribute and call
        "hidden=abs(-3)",  # call
        "lr=x * 2",  # name
        "hidden=(1).real",  # attribute on a literal
        "hidden=[1, 2][0]",  # subscript
    ],
)
def test_names_calls_and_attributes_are_refused_without_eval(override: str) -> None:
    with pytest.raises(InvalidConfigurationError, match="only with --eval") as info:
        apply(override)
    key = override.partition("=")[0]
    assert str(info.value).startswith(f"{key}: cannot use ")


def test_text_that_would_run_code_stays_text_without_eval() -> None:
    # The string is never evaluated: a str field takes it as typed.
    config = apply("name=__import__('os').getcwd()")
    assert config.name == "__import__('os').getcwd()"


def test_runaway_or_broken_arithmetic_names_the_reason() -> None:
    with pytest.raises(InvalidConfigurationError, match="too large"):
        apply("hidden=9**9**9")
    with pytest.raises(InvalidConfigurationError, match="division by zero"):
        apply("hidden=1//0")


def test_eval_evaluates_python_expressions_with_math_and_the_fields() -> None:
    config = apply(
        "hidden=math.floor(2.5)", "lr=hidden * 0.5", "x=abs(-3)", "scale=config.lr", allow_eval=True
    )
    # Each expression sees the fields as the overrides before it left them.
    assert (config.hidden, config.lr, config.x, config.scale) == (2, 1.0, 3, 1.0)


def test_eval_keeps_bare_words_as_text_and_reports_errors() -> None:
    assert apply("name=adam", allow_eval=True).name == "adam"
    with pytest.raises(InvalidConfigurationError, match="name 'mth' is not defined"):
        apply("hidden=mth.pi", allow_eval=True)
    with pytest.raises(InvalidConfigurationError, match="hidden: --eval of 'math.nope' failed"):
        apply("hidden=math.nope", allow_eval=True)


def test_eval_names_numpy_when_installed() -> None:
    pytest.importorskip("numpy")
    assert apply("lr=float(np.sqrt(4.0))", allow_eval=True).lr == 2.0
    assert apply("lr=float(numpy.pi) / float(numpy.pi)", allow_eval=True).lr == 1.0


def test_eval_flag_on_the_command_line() -> None:
    @main(Net)
    def entry(config: Net) -> Net:
        return config

    assert entry(argv=["--eval", "lr=math.pi / math.pi"]).lr == 1.0
    assert entry(argv=["lr=1e-3*4"]).lr == 0.004
    with pytest.raises(InvalidConfigurationError, match="only with --eval"):
        entry(["lr=math.pi"])


def test_parse_value_levels() -> None:
    assert parse_value("2**8") == "2**8"  # literal only: what runner's sweep tokens use
    assert parse_value("2**8", arithmetic=True) == 256
    assert parse_value("math.floor(2.5)", arithmetic=True) == "math.floor(2.5)"
    assert parse_value("math.floor(2.5)", allow_eval=True) == 2


def test_spaces_around_the_equals_sign_are_layout() -> None:
    config = apply("name = foo", "x = 2+2", "lr =0.5")
    assert (config.name, config.x, config.lr) == ("foo", 4, 0.5)
    assert apply("name= foo").name == " foo"  # only a key written "x = " marks the style


def test_apply_overrides_can_finalize() -> None:
    @pydraclass
    class Derived:
        width: int = 2
        area: int = 0

        def custom_finalize(self) -> None:
            self.area = self.width**2

    assert apply_overrides(Derived(), ["width=3"], finalize=True).area == 9
    unfinalized = apply_overrides(Derived(), ["width=3"])
    assert unfinalized.area == 0 and not unfinalized.is_finalized


def test_an_option_given_to_apply_overrides_is_explained() -> None:
    with pytest.raises(SyntaxError, match="belong to the entry point"):
        apply("--show", "x=1")
