"""Every ```python block of configs/README.md runs, in order, in one namespace."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "configs" / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_readme_has_examples() -> None:
    assert len(BLOCK.findall(README.read_text())) >= 10


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write files
    # A real module, so that pickling the README's classes works by reference.
    module = types.ModuleType("configs_readme_examples")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, block in enumerate(BLOCK.findall(README.read_text()), start=1):
        code = compile(block, f"{README}:block{number}", "exec")
        exec(code, module.__dict__)  # the README is ours: trusted code
