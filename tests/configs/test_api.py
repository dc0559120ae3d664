"""The public surface of ``configs``."""

from __future__ import annotations

import dataclasses

import configs
from configs import InvalidConfigurationError, field


def test_all_names_are_exported_explicitly() -> None:
    assert sorted(configs.__all__) == sorted(
        [
            "REQUIRED",
            "ConfigMeta",
            "InvalidConfigurationError",
            "apply_overrides",
            "field",
            "main",
            "pydraclass",
            "run",
        ]
    )
    for name in configs.__all__:
        assert getattr(configs, name) is not None


def test_error_is_a_value_error() -> None:
    assert issubclass(InvalidConfigurationError, ValueError)


def test_field_is_dataclasses_field() -> None:
    assert field is dataclasses.field


def test_public_entry_points_have_runnable_examples() -> None:
    for obj in (
        configs.pydraclass,
        configs.main,
        configs.run,
        configs.apply_overrides,
        configs.ConfigMeta,
    ):
        assert obj.__doc__ and ">>>" in obj.__doc__, obj
