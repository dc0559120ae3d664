"""Defaults are per instance; REQUIRED; inheritance, methods and overridden defaults."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Literal

import pytest

from configs import REQUIRED, ConfigMeta, InvalidConfigurationError, field, pydraclass


@pydraclass
class Optimizer:
    name: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3


@pydraclass
class Encoder:
    optimizer: Optimizer = Optimizer()
    layers: list = [64, 64]


@pydraclass
class Experiment:
    encoder: Encoder = Encoder()
    sweep_props: dict = {}
    tags: list[str] = field(default_factory=lambda: ["base"])
    range: tuple = (10, 100)
    seed: int | None = None
    anything: Any = Optimizer()


def test_mutable_defaults_are_copied_per_instance() -> None:
    a, b = Experiment(), Experiment()
    a.sweep_props["seed"] = [1, 2]
    a.encoder.layers.append(3)
    a.encoder.optimizer.lr = 0.5
    a.tags.append("x")
    assert b.sweep_props == {} and b.encoder.layers == [64, 64]
    assert b.encoder.optimizer.lr == 1e-3 and b.tags == ["base"]
    assert a.encoder is not b.encoder and a.anything is not b.anything
    # ... and the class-level default itself was not touched
    assert Experiment().encoder.layers == [64, 64]


def test_default_factory_still_works() -> None:
    assert Experiment().tags == ["base"]
    assert Experiment().tags is not Experiment().tags


def test_three_levels_deep() -> None:
    config = Experiment()
    assert config.encoder.optimizer.name == "adam"


def test_required_field_must_be_set_before_finalize() -> None:
    @pydraclass
    class Data:
        path: str = REQUIRED
        name: str = REQUIRED
        size: int = 1

    data = Data()
    assert data.path is REQUIRED and repr(REQUIRED) == "REQUIRED"
    with pytest.raises(InvalidConfigurationError) as info:
        data.finalize()
    assert str(info.value) == (
        "Data: required field(s) not set: Data.path, Data.name; set them before finalize()"
    )
    data.path, data.name = "/data", "x"
    data.finalize()
    assert data.is_finalized


def test_required_in_a_nested_config_is_named_with_its_path() -> None:
    @pydraclass
    class Leaf:
        value: int = REQUIRED

    @pydraclass
    class Root:
        leaf: Leaf = Leaf()

    with pytest.raises(InvalidConfigurationError, match=r"Root\.leaf\.value \(in Leaf\)"):
        Root().finalize()


def test_a_field_without_default_is_required() -> None:
    @pydraclass
    class Run:
        base_dir: str
        seed: int = 0

    run = Run(seed=1)
    assert run.base_dir is REQUIRED
    with pytest.raises(InvalidConfigurationError, match="Run.base_dir"):
        run.finalize()
    assert Run(base_dir="x").base_dir == "x"


def test_required_survives_copy_and_pickle_as_itself() -> None:
    import pickle

    assert copy.deepcopy(REQUIRED) is REQUIRED
    assert pickle.loads(pickle.dumps(REQUIRED)) is REQUIRED


@pydraclass
class BaseSearch:
    base_dir: str = REQUIRED
    range: tuple = (10, 100)
    precision: float = 1.0

    def describe(self) -> str:
        return f"{self.base_dir}:{self.range}"


@pydraclass
class MethodsOnly(BaseSearch):
    def get_experiment_config_and_base_dir(self, seed: int) -> tuple[str, str]:
        return f"config{seed}", f"{self.base_dir}/seed_{seed}"

    def run_experiment_config(self, config: str) -> str:
        return config.upper()

    def agg_results(self, results: list[int]) -> tuple[bool, Any]:
        return bool(results), max(results, default=None)


@pydraclass
class MoreFields(BaseSearch):
    extra: int = REQUIRED  # a field with no real default after ones with defaults
    range: tuple = (1, 5)  # overridden default, annotation repeated


@pydraclass
class OverrideWithoutAnnotation(BaseSearch):
    precision = 0.01  # overridden default, annotation not repeated


def test_subclass_adding_only_methods() -> None:
    search = MethodsOnly(base_dir="out")
    assert search.get_experiment_config_and_base_dir(3) == ("config3", "out/seed_3")
    assert search.run_experiment_config("a") == "A"
    assert search.agg_results([1, 5]) == (True, 5)
    assert search.describe() == "out:(10, 100)"
    assert [f.name for f in dataclasses.fields(search)] == ["base_dir", "range", "precision"]


def test_subclass_adding_fields_and_overriding_a_default() -> None:
    search = MoreFields(base_dir="x", extra=2)
    assert search.range == (1, 5) and search.extra == 2 and search.precision == 1.0
    with pytest.raises(InvalidConfigurationError, match="MoreFields has no field"):
        MoreFields(extr=1)


def test_subclass_overriding_a_default_without_annotation() -> None:
    assert OverrideWithoutAnnotation().precision == 0.01
    assert BaseSearch().precision == 1.0
    with pytest.raises(InvalidConfigurationError, match="expected float"):
        OverrideWithoutAnnotation(precision="high")


def test_every_pydraclass_is_a_config_meta() -> None:
    assert isinstance(MethodsOnly(), ConfigMeta) and issubclass(Optimizer, ConfigMeta)
    assert not isinstance(object(), ConfigMeta)


def test_explicit_config_meta_base_works() -> None:
    @pydraclass
    class Typed(ConfigMeta):
        x: int = 1

    assert Typed(x=2).to_dict() == {"x": 2}


def test_zero_argument_super_works_in_a_rebuilt_class() -> None:
    class Mixin:
        def hello(self) -> str:
            return "mixin"

    @pydraclass
    class WithSuper(Mixin):
        x: int = 1

        def hello(self) -> str:
            return "child+" + super().hello()

    assert WithSuper().hello() == "child+mixin"
