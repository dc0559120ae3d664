"""``config.replace(field, class or name or instance, **kwargs)``: swap a nested config."""

from __future__ import annotations

from dataclasses import field
from typing import Any

import pytest

from configs import InvalidConfigurationError, pydraclass
from configs.errors import UnknownArgumentError


@pydraclass
class Adam:
    lr: float = 1e-3


@pydraclass
class SGD:
    lr: float = 0.01
    momentum: float = 0.9


@pydraclass
class Nesterov(SGD):
    dampening: float = 0.0


@pydraclass
class Train:
    optimizer: Adam | SGD = field(default_factory=Adam)
    fallback: SGD | None = None
    anything: Any = None
    epochs: int = 10


def test_replace_by_class_name_with_kwargs() -> None:
    config = Train()
    new = config.replace("optimizer", "SGD", lr=0.05, momentum=0.95)
    assert isinstance(config.optimizer, SGD) and config.optimizer is new
    assert (new.lr, new.momentum) == (0.05, 0.95)


def test_replace_by_class_or_instance() -> None:
    config = Train()
    config.replace("optimizer", SGD, lr=0.5)
    assert config.optimizer == SGD(lr=0.5)
    mine = Adam(lr=0.2)
    assert config.replace("optimizer", mine) is mine and config.optimizer is mine


def test_a_subclass_of_an_allowed_class_is_allowed_by_name() -> None:
    config = Train()
    config.replace("fallback", "Nesterov", dampening=0.1)
    assert type(config.fallback) is Nesterov and config.fallback.dampening == 0.1


def test_an_any_field_takes_any_pydraclass_by_name() -> None:
    config = Train()
    config.replace("anything", "Adam", lr=0.3)
    assert config.anything == Adam(lr=0.3)


def test_replace_marks_the_config_changed_for_finalize() -> None:
    config = Train()
    config.finalize()
    config.replace("optimizer", "SGD")
    assert not config.is_finalized


def test_unknown_field_gets_did_you_mean() -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        Train().replace("optimzer", "SGD")
    assert "Train has no field 'optimzer'; did you mean 'optimizer'?" in str(info.value)


def test_class_the_annotation_does_not_allow() -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        Train().replace("optimizer", "Adamw")
    assert str(info.value) == (
        "Train.replace('optimizer', 'Adamw'): 'Adamw' is not an allowed type for "
        "Train.optimizer (Adam | SGD); did you mean 'Adam'?"
    )
    with pytest.raises(ValueError, match="not an allowed type.*Adam, Nesterov, SGD"):
        Train().replace("optimizer", "Transformer")
    with pytest.raises(InvalidConfigurationError, match="Train is not an allowed type"):
        Train().replace("optimizer", Train)
    with pytest.raises(InvalidConfigurationError, match=r"\(Train\) is not allowed for Train.opt"):
        Train().replace("optimizer", Train())


def test_bad_keyword_is_a_type_error_and_an_invalid_configuration() -> None:
    with pytest.raises(UnknownArgumentError) as info:
        Train().replace("optimizer", "SGD", momentun=0.5)
    assert isinstance(info.value, TypeError) and isinstance(info.value, InvalidConfigurationError)
    assert "cannot build SGD: SGD has no field 'momentun'; did you mean 'momentum'?" in str(
        info.value
    )
    with pytest.raises(InvalidConfigurationError, match="SGD.lr: expected float"):
        Train().replace("optimizer", "SGD", lr="fast")


def test_kwargs_with_an_instance_are_refused() -> None:
    with pytest.raises(TypeError, match="keyword arguments"):
        Train().replace("optimizer", Adam(), lr=0.1)


def test_a_field_named_replace_is_allowed_and_hides_the_method() -> None:
    @pydraclass
    class Sampling:
        replace: bool = False

    sampling = Sampling(replace=True)
    assert sampling.replace is True


def _twin_in(module: str) -> type:
    namespace = {"__module__": module, "__annotations__": {"x": int}, "x": 1}
    return pydraclass(type("Twin", (), namespace))


def test_a_name_defined_in_two_other_modules_must_be_spelled_in_full() -> None:
    first, second = _twin_in("lab_a.configs"), _twin_in("lab_b.configs")
    config = Train()
    with pytest.raises(InvalidConfigurationError, match="more than one class is named 'Twin'"):
        config.replace("anything", "Twin")
    assert type(config.replace("anything", "lab_b.configs:Twin", x=2)) is second
    assert type(config.replace("anything", first)) is first


def test_a_field_whose_annotation_names_no_class() -> None:
    @pydraclass
    class Holder:
        items: list[Adam] = []

    with pytest.raises(InvalidConfigurationError, match="names no class to build"):
        Holder().replace("items", "Adam")


def test_kwargs_may_use_any_field_name_even_name_and_new() -> None:
    @pydraclass
    class Named:
        name: str = "a"
        new: bool = False

    @pydraclass
    class Owner:
        part: Named | None = None

    part = Owner().replace("part", "Named", name="b", new=True)
    assert part == Named(name="b", new=True)
