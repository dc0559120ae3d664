"""to_dict/from_dict, YAML, JSON, pickle, repr, equality, deepcopy, cloudpickle."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal, Optional

import cloudpickle
import pytest
import yaml

from configs import InvalidConfigurationError, pydraclass


@pydraclass
class Optimizer:
    name: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@pydraclass
class AdamW(Optimizer):
    weight_decay: float = 0.01


@pydraclass
class Train:
    optimizer: Optimizer = Optimizer()
    schedule: list[Optimizer] = [Optimizer(), Optimizer(name="sgd", lr=0.1)]
    by_stage: dict[str, Optimizer] = {"warmup": Optimizer(lr=1e-5)}
    layers: list[int] = [64, 64]
    range: tuple = (10, 100)
    seed: Optional[int] = None  # noqa: UP045 - Optional itself is under test
    anything: Any = None
    name: str = "run"


def changed() -> Train:
    config = Train(seed=3, name="changed", anything=Optimizer(lr=0.5))
    config.optimizer = AdamW(lr=0.2)  # a subclass where the annotation says the base
    config.schedule[1].betas = (0.5, 0.6)
    return config


def test_to_dict_is_nested_plain_data() -> None:
    data = Train().to_dict()
    assert data["optimizer"] == {"name": "adam", "lr": 1e-3, "betas": (0.9, 0.999)}
    assert data["schedule"][1] == {"name": "sgd", "lr": 0.1, "betas": (0.9, 0.999)}
    assert data["by_stage"] == {"warmup": {"name": "adam", "lr": 1e-5, "betas": (0.9, 0.999)}}
    assert data["range"] == (10, 100) and data["seed"] is None


def test_dict_round_trip_with_nested_configs_in_lists_and_dicts() -> None:
    config = changed()
    again = Train.from_dict(config.to_dict())
    assert again == config
    assert type(again.optimizer) is AdamW and type(again.anything) is Optimizer
    assert type(again.schedule[1]) is Optimizer and type(again.by_stage["warmup"]) is Optimizer


def test_classes_the_annotation_does_not_pin_are_tagged() -> None:
    data = changed().to_dict()
    assert data["optimizer"]["_type"].endswith(":AdamW")
    assert data["anything"]["_type"].endswith(":Optimizer")
    assert "_type" not in data["schedule"][0]


def test_from_dict_coerces_lists_to_tuples_and_ints_to_floats() -> None:
    config = Train.from_dict({"range": [1, 2], "optimizer": {"betas": [0.1, 0.2], "lr": 1}})
    assert config.range == (1, 2) and config.optimizer.betas == (0.1, 0.2)
    assert config.optimizer.lr == 1.0 and isinstance(config.optimizer.lr, float)


def test_yaml_float_written_without_a_dot_loads_as_a_float(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("optimizer:\n  lr: 1e-3\n")
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["optimizer"]["lr"] == "1e-3"
    assert Train.load_yaml(tmp_path / "c.yaml").optimizer.lr == 1e-3


def test_from_dict_unknown_key_suggests() -> None:
    with pytest.raises(
        InvalidConfigurationError, match=r"Optimizer has no field 'lrr'; did you mean 'lr'\?"
    ):
        Train.from_dict({"optimizer": {"lrr": 0.1}})


def test_from_dict_bad_value_names_field_and_types() -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        Train.from_dict({"layers": ["a"]})
    assert str(info.value) == "Train.layers: expected list[int], got ['a'] (list)"


def test_from_dict_needs_a_mapping() -> None:
    with pytest.raises(InvalidConfigurationError, match="needs a mapping"):
        Train.from_dict([1, 2])


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = changed()
    path = tmp_path / "deep" / "config.yaml"
    config.save_yaml(path)
    text = path.read_text()
    assert yaml.safe_load(text)["layers"] == [64, 64]  # plain YAML, no Python tags
    assert "!!python" not in text
    assert Train.load_yaml(path) == config


def test_json_round_trip(tmp_path: Path) -> None:
    config = changed()
    config.save_json(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["range"] == [10, 100]
    assert Train.load_json(tmp_path / "config.json") == config


def test_yaml_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InvalidConfigurationError, match="expected a mapping of Train fields"):
        Train.load_yaml(tmp_path / "bad.yaml")


def test_unsaveable_value_is_named(tmp_path: Path) -> None:
    config = Train(anything=object())
    with pytest.raises(InvalidConfigurationError, match=r"cannot save Train\.anything: a object"):
        config.save_yaml(tmp_path / "x.yaml")


def test_save_pickle(tmp_path: Path) -> None:
    config = changed()
    config.save_pickle(tmp_path / "c.pkl")
    with open(tmp_path / "c.pkl", "rb") as fh:
        assert pickle.load(fh) == config


def test_equality_is_by_value() -> None:
    assert Train() == Train()
    assert Train(seed=1) != Train(seed=2)
    assert Optimizer() != AdamW()  # a different class is a different config


def test_deepcopy_pickle_cloudpickle_keep_value_and_strictness() -> None:
    config = changed()
    config.finalize()
    for clone in (
        copy.deepcopy(config),
        pickle.loads(pickle.dumps(config)),
        cloudpickle.loads(cloudpickle.dumps(config)),
    ):
        assert clone == config and clone is not config
        assert clone.optimizer is not config.optimizer
        assert clone.is_finalized
        with pytest.raises(InvalidConfigurationError, match="did you mean 'seed'"):
            clone.sed = 1


def test_repr_is_readable_nested_and_plain() -> None:
    text = repr(Train())
    assert text.startswith(
        "Train(\n    optimizer=Optimizer(name='adam', lr=0.001, betas=(0.9, 0.999)),\n"
    )
    assert "    schedule=[\n        Optimizer(name='adam'" in text
    assert "\x1b" not in text
    assert repr(Optimizer()) == "Optimizer(name='adam', lr=0.001, betas=(0.9, 0.999))"


def test_repr_of_a_cycle_terminates() -> None:
    @pydraclass
    class Node:
        child: Any = None

    node = Node()
    node.child = node
    assert repr(node) == "Node(child=Node(...))"


def test_cloudpickle_of_a_class_defined_in_main(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            from __future__ import annotations
            import sys
            import cloudpickle
            from configs import pydraclass

            @pydraclass
            class Inner:
                lr: float = 0.1

            @pydraclass
            class MainConfig:
                inner: Inner = Inner()
                layers: list[int] = [1, 2]

                def describe(self) -> str:
                    return f"{self.inner.lr}/{self.layers}"

            config = MainConfig(layers=[3])
            config.finalize()
            with open(sys.argv[1], "wb") as fh:
                cloudpickle.dump(config, fh)
            """
        )
    )
    out = tmp_path / "config.pkl"
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=60)
    # This process has no MainConfig: cloudpickle carried the class by value.
    with open(out, "rb") as fh:
        config = pickle.load(fh)
    assert type(config).__name__ == "MainConfig" and type(config).__module__ == "__main__"
    assert config.describe() == "0.1/[3]" and config.is_finalized
    with pytest.raises(InvalidConfigurationError, match="did you mean 'layers'"):
        config.layer = [1]
    config.inner.lr = 0.5
    config.finalize()
    assert config.is_finalized
