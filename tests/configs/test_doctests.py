"""The examples in the docstrings of the configs modules run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import configs

MODULES = sorted(
    name for _, name, _ in pkgutil.iter_modules(configs.__path__, prefix="configs.")
) + ["configs"]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
