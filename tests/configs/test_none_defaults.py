"""A ``None`` default makes a field optional: ``seed: int = None`` means ``int | None``."""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

import pytest

from configs import InvalidConfigurationError, apply_overrides, pydraclass
from configs.cli import help_text


@pydraclass
class Sub:
    depth: int = 1


@pydraclass
class Experiment:
    name: str = None  # type: ignore[assignment]
    seed: int = None  # type: ignore[assignment]
    optimizer: Literal["adam", "sgd"] = None  # type: ignore[assignment]
    sizes: list[int] = field(default=None)  # type: ignore[arg-type]
    sub: Sub = None  # type: ignore[assignment]
    lr: float = 0.1


def test_none_default_is_accepted_at_instantiation_and_kept() -> None:
    config = Experiment()
    assert (config.name, config.seed, config.optimizer, config.sizes, config.sub) == (
        None,
        None,
        None,
        None,
        None,
    )
    config.finalize()
    assert config.is_finalized


def test_the_field_still_checks_its_type_otherwise() -> None:
    config = Experiment(seed=3, name="run", optimizer="sgd", sizes=[1], sub=Sub())
    config.seed = None  # back to "not set" is fine
    with pytest.raises(InvalidConfigurationError, match=r"Experiment.seed: expected int \| None"):
        config.seed = "three"
    with pytest.raises(InvalidConfigurationError, match="expected Literal"):
        config.optimizer = "rmsprop"
    with pytest.raises(InvalidConfigurationError, match=r"expected list\[int\] \| None"):
        Experiment(sizes=["a"])


def test_a_field_with_another_default_stays_strict() -> None:
    with pytest.raises(InvalidConfigurationError, match=r"Experiment.lr: expected float, got None"):
        Experiment(lr=None)


def test_command_line_and_help_see_the_optional_type() -> None:
    config = apply_overrides(Experiment(), ["seed=7", "sub.depth=3", "name=x"])
    assert (config.seed, config.sub, config.name) == (7, Sub(depth=3), "x")
    apply_overrides(config, ["seed=None", "sub=None"])
    assert config.seed is None and config.sub is None
    assert "seed: int | None = None" in help_text(Experiment, prog="train.py")


def test_round_trip_through_yaml(tmp_path: Any) -> None:
    config = Experiment(seed=1)
    config.save_yaml(tmp_path / "c.yaml")
    assert Experiment.load_yaml(tmp_path / "c.yaml") == config


def test_subclass_that_changes_the_default_keeps_the_field_optional() -> None:
    @pydraclass
    class Seeded(Experiment):
        seed = 5

    config = Seeded()
    assert config.seed == 5
    config.seed = None  # the parent declared it optional
    assert config.seed is None


def test_forward_reference_to_the_class_itself() -> None:
    @pydraclass
    class Node:
        child: Node = None  # type: ignore[assignment]
        value: int = 0

    leaf = Node(value=2)
    root = Node(child=leaf)
    assert root.child is leaf and leaf.child is None
    with pytest.raises(InvalidConfigurationError, match=r"expected Node \| None"):
        root.child = 3
