"""Unknown names fail at once, with the class, the name and the closest valid names."""

from __future__ import annotations

from typing import ClassVar

import pytest

from configs import InvalidConfigurationError, field, pydraclass


@pydraclass
class Optimizer:
    learning_rate: float = 1e-3
    momentum: float = 0.9


@pydraclass
class Model:
    optimizer: Optimizer = Optimizer()
    hidden: int = 128


@pydraclass
class Experiment:
    model: Model = Model()
    seed: int = 0
    registry: ClassVar[dict[str, int]] = {}

    @property
    def double_seed(self) -> int:
        return self.seed * 2

    @double_seed.setter
    def double_seed(self, value: int) -> None:
        self.seed = value // 2

    def run_experiment_config(self) -> str:
        return "ran"


def test_unknown_keyword_in_init_suggests_the_closest_field() -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        Optimizer(learnig_rate=0.1)
    assert str(info.value) == "Optimizer has no field 'learnig_rate'; did you mean 'learning_rate'?"


def test_unknown_assignment_suggests_the_closest_field() -> None:
    config = Optimizer()
    with pytest.raises(InvalidConfigurationError, match=r"did you mean 'momentum'\?"):
        config.momentun = 0.5
    assert not hasattr(config, "momentun")


def test_unknown_name_with_nothing_close_lists_the_fields() -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        Optimizer(zzz=1)
    assert str(info.value) == "Optimizer has no field 'zzz'; valid fields: learning_rate, momentum"


def test_strict_at_any_nesting_depth() -> None:
    config = Experiment()
    with pytest.raises(InvalidConfigurationError, match=r"^Optimizer has no field 'lr'"):
        config.model.optimizer.lr = 0.1


def test_the_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Model(hiden=3)


def test_methods_cannot_be_overwritten_by_assignment() -> None:
    config = Experiment()
    with pytest.raises(InvalidConfigurationError, match="is a function of the class, not a field"):
        config.run_experiment_config = None
    assert config.run_experiment_config() == "ran"


def test_settable_properties_work() -> None:
    config = Experiment()
    config.double_seed = 10
    assert config.seed == 5 and config.double_seed == 10


def test_classvar_is_not_a_field() -> None:
    assert "registry" not in Experiment().to_dict()
    with pytest.raises(InvalidConfigurationError):
        Experiment(registry={})


def test_underscore_attributes_are_private_state_not_fields() -> None:
    config = Experiment()
    config._cache = {"anything": 1}
    assert config._cache == {"anything": 1}
    assert "_cache" not in config.to_dict()
    assert config == Experiment()  # private state is not part of the value


def test_annotated_underscore_field_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="field names may not start with '_'"):

        @pydraclass
        class Bad:
            _secret: int = 0


def test_field_named_like_a_config_method_is_refused() -> None:
    with pytest.raises(TypeError, match="'to_dict' is a method of every config"):

        @pydraclass
        class Bad:
            to_dict: int = 0


def test_keyword_arguments_only() -> None:
    with pytest.raises(TypeError, match="takes keyword arguments only"):
        Optimizer(0.1)  # type: ignore[misc]


def test_undecorated_subclass_with_fields_is_refused() -> None:
    class Forgot(Optimizer):
        extra: int = 1

    with pytest.raises(
        TypeError, match="Forgot declares fields but is not decorated with @pydraclass"
    ):
        Forgot()


def test_decorating_twice_is_harmless() -> None:
    assert pydraclass(Optimizer) is Optimizer


def test_init_false_field_is_a_field_but_not_an_init_argument() -> None:
    @pydraclass
    class Derived:
        width: int = 2
        area: int = field(default=0, init=False)

        def custom_finalize(self) -> None:
            self._scratch = "private state set in a hook"
            self.area = self.width**2

    config = Derived()
    config.finalize()
    assert config.area == 4 and config._scratch.startswith("private")
    with pytest.raises(InvalidConfigurationError, match="Derived.area is not set in __init__"):
        Derived(area=3)
    assert Derived.from_dict({"width": 3, "area": 9}).area == 9
