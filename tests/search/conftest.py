from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def four_fake_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches run on four fake devices; each job reports the one it saw."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
