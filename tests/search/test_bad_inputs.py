"""Bad search inputs that used to pass silently are refused before any job, naming the fix."""

from __future__ import annotations

import os

import pytest
from search_fixtures import ToyConfig, ToyGrid

from runner.errors import SearchConfigError
from runner.grid_search import run_grid_searches


def test_a_generator_in_sweep_props_is_refused(tmp_path) -> None:
    grid = ToyGrid(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": (w for w in [1, 2]), "seed": [0]},
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(SearchConfigError, match=r"sweep_props\['width'\] is a generator.*list"):
        run_grid_searches([grid], max_gpus=1)
    assert not os.path.exists(tmp_path / "g")  # before any job


@pytest.mark.parametrize(
    ("values", "shown"), [([1, 2, 1], "1"), ([[1], [2], [1]], "[1]"), ([0.5, 0.5], "0.5")]
)
def test_a_duplicate_sweep_value_is_named(tmp_path, values, shown) -> None:
    grid = ToyGrid(
        base_dir=str(tmp_path / "g"),
        sweep_props={"width": values, "seed": [0]},
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(SearchConfigError) as info:
        run_grid_searches([grid], max_gpus=1)
    assert f"sweep_props['width'] lists {shown} more than once" in str(info.value)


@pytest.mark.parametrize(
    ("bounds", "precision", "needle"),
    [
        ((10, 100), 90, "precision=90 is not below the range's width (90"),
        ((10, 50), 45, "precision=45 is not below the range's width (40"),
        ((10, 11), 1, "has no integer strictly between its ends"),
    ],
)
def test_a_precision_as_wide_as_the_range_is_refused(tmp_path, bounds, precision, needle) -> None:
    from search_fixtures import ToyBisect

    from runner.binary_search import run_binary_searches

    search = ToyBisect(
        base_dir=str(tmp_path / "b"),
        prop="width",
        range=bounds,
        precision=precision,
        sweep_props={"seed": [0]},
        base_experiment_config=ToyConfig(),
    )
    with pytest.raises(SearchConfigError) as info:
        run_binary_searches([search], max_gpus=1)
    assert needle in str(info.value) and (
        "precision=" in str(info.value) or "widen" in str(info.value)
    )


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"confidence": 0.9}, "confidence=0.9 applies to method='probabilistic' only"),
        ({"max_jobs": 40}, "max_jobs=40 applies to method='probabilistic' only"),
        ({"target_rate": 0.8}, "target_rate=0.8 applies to method='probabilistic' only"),
        (
            {"method": "probabilistic", "repetitions": 2},
            "repetitions=2 applies to method='bisection' only",
        ),
        (
            {"method": "probabilistic", "test_range_ends": True},
            "test_range_ends=True applies to method='bisection' only",
        ),
    ],
)
def test_an_option_of_the_other_method_is_refused_not_ignored(tmp_path, options, needle) -> None:
    from search_fixtures import ToyBisect

    from runner.binary_search import run_binary_searches

    search = ToyBisect(
        base_dir=str(tmp_path / "b"),
        prop="width",
        range=(1, 64),
        precision=1,
        sweep_props={"seed": [0, 1]},
        base_experiment_config=ToyConfig(),
        **options,
    )
    with pytest.raises(SearchConfigError) as info:
        run_binary_searches([search], max_gpus=1)
    assert needle in str(info.value) and "leave" in str(info.value)
    assert not os.path.exists(tmp_path / "b")  # before any job
