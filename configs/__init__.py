"""Strict, validated config classes with command-line overrides.

Example:
    >>> from configs import pydraclass
    >>> @pydraclass
    ... class Train:
    ...     lr: float = 1e-3
    ...     epochs: int = 10
    >>> Train(lr=0.1)
    Train(lr=0.1, epochs=10)
"""

from __future__ import annotations

from dataclasses import field

from configs.base_config import REQUIRED, ConfigMeta, pydraclass
from configs.cli import apply_overrides, main, run
from configs.errors import InvalidConfigurationError

__all__ = [
    "REQUIRED",
    "ConfigMeta",
    "InvalidConfigurationError",
    "apply_overrides",
    "field",
    "main",
    "pydraclass",
    "run",
]
