"""The docstring examples of the command-line, progress and report modules run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["runner._expr", "runner.cli", "runner.progress", "runner.quick_sweep", "runner.report"]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name: str) -> None:
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
