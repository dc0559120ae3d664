"""Range tokens, job points as people type them, numeric sorting, and a grid's per-point
statistics: the pure pieces behind ``runner grid``, ``logs`` and ``status``."""

from __future__ import annotations

import statistics

import pytest

from runner._sweep_tokens import expand_ranges, parse_point, point_matches, range_values, sort_key
from runner.errors import ReportError, SearchConfigError
from runner.grid_points import point_stats, seed_keys


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1:128", list(range(1, 129))),
        ("range(1,129)", list(range(1, 129))),
        ("0:10:5", [0, 5, 10]),
        ("0:9:5", [0, 5]),
        ("5:1", [5, 4, 3, 2, 1]),
        ("-2:2:2", [-2, 0, 2]),
        (" range( 10 , 0 , -3 ) ", [10, 7, 4, 1]),
        ("3:3", [3]),
    ],
)
def test_range_forms(text: str, values: list[int]) -> None:
    assert range_values(text) == values


@pytest.mark.parametrize("text", ["0.1", "[1,2]", "adam", "a:b", "12", "1e-3", ""])
def test_values_that_are_not_ranges(text: str) -> None:
    assert range_values(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.1:0.5", "whole numbers lo:hi"),
        ("1:10:0", "step must not be 0"),
        ("1:5:-1", "empty range"),
        ("range(5,1)", "empty range"),
        ("range(1,2,3,4)", "range(start,stop,step)"),
        ("range(0,10,0)", "non-zero step"),
        ("range(1.5)", "whole numbers"),
        ("0:10000000", "over 1000000"),
    ],
)
def test_bad_ranges_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(SearchConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        range_values(text)


def test_expand_ranges_leaves_text_fields_and_other_tokens_alone() -> None:
    tokens = ["units=1:3", "time=12:30", "lr=[0.1,0.2]", "opt=adam", "nested.depth=range(2)"]
    assert expand_ranges(tokens, lambda key: key != "time") == [
        "units=[1, 2, 3]",
        "time=12:30",
        "lr=[0.1,0.2]",
        "opt=adam",
        "nested.depth=[0, 1]",
    ]


def test_points_are_read_in_every_printed_form() -> None:
    expected = {"lr": 0.001, "seed": 1, "opt": "adam"}
    for form in (
        "lr=0.001 seed=1 opt=adam",
        "lr=0.001,seed=1,opt=adam",
        ["lr=0.001", "seed=1", "opt=adam"],
        "lr=1e-3  seed=1, opt=adam/",
    ):
        assert parse_point(form) == expected
    with pytest.raises(SearchConfigError, match="not key=value"):
        parse_point("lr=0.001 seed")


def test_point_matching_compares_numbers_as_numbers_and_ignores_order() -> None:
    point = {"hidden_units": 16, "alpha": 0.0001, "seed": 0, "flag": True}
    assert point_matches(parse_point("seed=0 alpha=1e-4 hidden_units=16"), point)
    assert point_matches({"hidden_units": 16.0}, point)
    assert not point_matches({"hidden_units": 1}, point)
    assert not point_matches({"missing": 1}, point)
    assert point_matches({"flag": True}, point) and not point_matches({"flag": 1}, point)


def test_numeric_sort() -> None:
    values = [16, 32, 4, 6, 64, 0.5, "b", "a", None, True]
    assert sorted(values, key=sort_key) == [0.5, 4, 6, 16, 32, 64, True, "a", "b", None]


def test_point_stats_mean_std_and_best() -> None:
    jobs = []
    for units in (4, 16, 64):
        for seed in (0, 1, 2):
            jobs.append(({"units": units, "lr": 0.1, "seed": seed}, {"acc": units + seed}))
    table = point_stats(jobs, failed=[{"units": 64, "lr": 0.1, "seed": 3}])
    assert table.over == ["seed"] and table.metric == "acc"
    assert [p.point for p in table.points] == [{"units": u, "lr": 0.1} for u in (4, 16, 64)]
    assert [p.mean for p in table.points] == [5, 17, 65]
    assert table.points[0].std == pytest.approx(statistics.stdev([4, 5, 6]))
    assert [p.missing for p in table.points] == [0, 0, 1]
    assert table.best is table.points[2] and table.points[2].text() == "65 +- 1"
    lowest = point_stats(jobs, direction="min")
    assert lowest.best is not None and lowest.best.point["units"] == 4


def test_point_stats_without_seeds_and_with_unusable_results() -> None:
    single = point_stats([({"x": 1}, 0.5), ({"x": 2}, 0.25)])
    assert single.over == [] and [p.std for p in single.points] == [None, None]
    assert single.points[1].text() == "0.25"
    mixed = point_stats([({"x": 1}, 0.5), ({"x": 2}, None)], metric="result")
    assert mixed.points[1].mean is None and mixed.points[1].text() == "n/a"
    with pytest.raises(ReportError, match="not numbers"):
        point_stats([({"x": 1}, "text")])
    with pytest.raises(ReportError, match="did you mean 'acc'"):
        point_stats([({"x": 1}, {"acc": 1.0})], metric="accc")


def test_seed_keys() -> None:
    assert seed_keys(["seed", "data_seed", "SEEDS", "seedling", "lr"]) == [
        "seed",
        "data_seed",
        "SEEDS",
    ]
