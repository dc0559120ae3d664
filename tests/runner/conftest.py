"""Fixtures for the scheduler, executor and job-folder tests (no GPU needed)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# The job classes live in sched_jobs.py; the worker gets the parent's sys.path, so it
# can import them too.
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Set ``CUDA_VISIBLE_DEVICES`` for the test (the scheduler reads it at construction)."""

    def set_devices(value: str) -> None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)

    set_devices("0,1,2,3")
    return set_devices
