"""``to_dict(yaml_compatible=True)``, ``save_dill``/``load_dill`` and dill as an optional dependency."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import InvalidConfigurationError, pydraclass


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@pydraclass
class Data:
    root: Path = Path("/data/set")
    splits: tuple[float, float] = (0.9, 0.1)


@pydraclass
class Run:
    data: Data = Data()
    mode: Mode = Mode.FAST
    tags: set[str] = {"a"}
    by_pair: dict = {(1, 2): "pair"}
    seed: int = None  # type: ignore[assignment]
    transform: Any = len
    history: list[tuple[int, int]] = [(1, 2)]


def test_yaml_compatible_dict_is_plain_data() -> None:
    data = Run().to_dict(yaml_compatible=True)
    assert data == {
        "data": {"root": "/data/set", "splits": [0.9, 0.1]},
        "mode": "FAST",
        "tags": ["a"],
        "by_pair": {"(1, 2)": "pair"},
        "seed": None,
        "transform": "<built-in function len>",
        "history": [[1, 2]],
    }
    # Both safe dumpers take it as it is.
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    assert json.loads(json.dumps(data)) == data


def test_default_to_dict_keeps_python_values() -> None:
    data = Run().to_dict()
    assert data["mode"] is Mode.FAST and data["data"]["splits"] == (0.9, 0.1)
    assert Run().to_dict(False) == data  # positional, as pydrafig's signature allows


def test_yaml_compatible_values_load_back_through_the_annotations() -> None:
    config = Run(seed=3, mode=Mode.SLOW, transform=None)
    data = config.to_dict(yaml_compatible=True)
    del data["by_pair"]  # its key was turned into text on the way
    loaded = Run.from_dict(data)
    assert (loaded.mode, loaded.data, loaded.tags, loaded.seed) == (
        Mode.SLOW,
        Data(),
        {"a"},
        3,
    )


def test_to_dict_of_a_cycle_is_a_clear_error() -> None:
    @pydraclass
    class Node:
        child: Node = None  # type: ignore[assignment]

    a, b = Node(), Node()
    a.child, b.child = b, a
    with pytest.raises(
        InvalidConfigurationError, match="reference cycle, Node.child.child is Node"
    ):
        a.to_dict()


def test_save_dill_and_load_back(tmp_path: Path) -> None:
    dill = pytest.importorskip("dill")
    config = Run(seed=5, transform=lambda x: x + 1)  # a lambda: dill's reason to exist
    config.save_dill(tmp_path / "sub" / "run.dill")
    loaded = Run.load_dill(tmp_path / "sub" / "run.dill")
    assert isinstance(loaded, Run) and loaded.seed == 5 and loaded.transform(1) == 2
    with open(tmp_path / "sub" / "run.dill", "rb") as fh:
        assert dill.load(fh).seed == 5  # plain dill.load reads it too


def test_load_dill_checks_the_class(tmp_path: Path) -> None:
    pytest.importorskip("dill")
    Data().save_dill(tmp_path / "data.dill")
    with pytest.raises(InvalidConfigurationError, match="holds a Data, not a Run"):
        Run.load_dill(tmp_path / "data.dill")


NO_DILL = textwrap.dedent(
    """
    import sys
    sys.modules["dill"] = None  # what an environment without dill looks like to import

    from configs import pydraclass

    @pydraclass
    class C:
        x: int = 1

    for call in (lambda: C().save_dill("c.dill"), lambda: C.load_dill("c.dill")):
        try:
            call()
        except ImportError as exc:
            print("ImportError:", exc)
    """
)


def test_without_dill_a_clear_import_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_DILL],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("ImportError: save_dill/load_dill need the optional package 'dill'")
        assert "pip install dill" in line
    assert not (tmp_path / "c.dill").exists()
