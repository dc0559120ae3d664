"""Every module's docstring examples run as written, and every example is found.

One test per module of ``runner`` and ``configs``. A module whose source holds a
``>>>`` example must have doctest attempt at least one (a test that finds nothing
to run could never fail); modules that run something at import (``__main__``) are
left out.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import configs
import runner


def _modules() -> list[str]:
    names = ["configs", "runner"]
    for package in (configs, runner):
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            names.append(info.name)
    return sorted(names)


MODULES = _modules()
#: Optional extras: their modules import the extra, which may be missing.
_NEEDS = {"runner.executors.ray": "ray", "runner.executors.slurm": "submitit"}


def _has_examples(module: object) -> bool:
    source = Path(str(getattr(module, "__file__", ""))).read_text(encoding="utf-8")
    return ">>> " in source


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    if module_name in _NEEDS:
        pytest.importorskip(_NEEDS[module_name])
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) of {module_name} failed"
    if _has_examples(module):
        assert result.attempted > 0, f"{module_name} has >>> examples that doctest never ran"


def test_the_modules_were_found() -> None:
    assert {"runner.scheduler", "runner.job_record", "configs._core"} <= set(MODULES)
