"""What a researcher sees of a threshold search (issue 16, point 4): the plot, ``runner
status`` and ``runner show``, on summaries written by real binary searches: bisection
with an untested range end, bisection with contradicting verdicts re-tested, the
probabilistic method under noise, a log-scale search, ``runner bisect`` with a success
rule, and a search still running."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "search"))
from cli_helpers import run_cli  # noqa: E402
from search_fixtures import FloatBisect, MajorityBisect, ToyBisect, ToyConfig  # noqa: E402

from runner.binary_search import run_binary_searches  # noqa: E402
from runner.errors import ReportError  # noqa: E402
from runner.plots import plot_threshold, write_plots  # noqa: E402
from runner.searches.summary import SearchSummary, read_summary  # noqa: E402
from runner.threshold_view import parse_rule, threshold_view  # noqa: E402

pytest.importorskip("matplotlib")

#: Seeds whose verdict flips near the threshold of 40: noisy jobs, deterministically.
NOISE = "36:1,38:2,39:0,41:3,43:1,45:0,37:4,44:5"


def _bisect(root: Path, name: str, cls: Any = ToyBisect, **overrides: Any) -> Any:
    config = ToyConfig(threshold=overrides.pop("threshold", 42), flips=overrides.pop("flips", ""))
    options: dict[str, Any] = dict(
        base_dir=str(root / name),
        prop="width",
        range=(10, 100),
        precision=1,
        sweep_props={"seed": [0]},
        base_experiment_config=config,
    )
    options.update(overrides)
    return cls(**options)


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("thresholds")
    os.environ["CUDA_VISIBLE_DEVICES"] = "0,1,2,3"
    configs = [
        _bisect(root, "below", threshold=5, test_range_ends=True, parallel_points=1),
        _bisect(
            root,
            "contra",
            cls=MajorityBisect,
            threshold=60,
            flips="32:0",
            sweep_props={"seed": [0, 1, 2]},
            repetitions=1,
            parallel_points=3,
            test_range_ends=False,
        ),
        _bisect(
            root,
            "noisy",
            cls=MajorityBisect,
            method="probabilistic",
            threshold=40,
            flips=NOISE,
            sweep_props={"seed": list(range(32))},
            max_jobs=80,
            range=(1, 128),
        ),
        FloatBisect(
            base_dir=str(root / "lr"),
            prop="lr",
            range=(1e-5, 1e-1),
            precision=1e-5,
            scale="log",
            success_direction_lower=False,
            sweep_props={"seed": [0]},
            base_experiment_config=ToyConfig(),
            parallel_points=1,
        ),
    ]
    run_binary_searches(configs, max_gpus=4, simultaneous_jobs_per_gpu=2)
    return root


def _summary(root: Path, name: str) -> SearchSummary:
    summary = read_summary(str(root / name))
    assert summary is not None
    return summary


def _axes(figure: Any) -> dict[str, Any]:
    return {ax.get_label(): ax for ax in figure.axes}


def _by_label(ax: Any) -> dict[str, Any]:
    return {artist.get_label(): artist for artist in [*ax.collections, *ax.lines, *ax.patches]}


def _figure_text(figure: Any) -> str:
    return "\n".join(t.get_text() for t in figure.texts)


def _vertical_at(artist: Any) -> float:
    return float(artist.get_xdata()[0])


def test_bisection_with_a_contradiction_draws_jobs_verdicts_bracket_and_the_pair(
    searches: Path, tmp_path: Path
) -> None:
    summary = _summary(searches, "contra")
    figure = plot_threshold(summary)
    axes = _axes(figure)
    assert set(axes) == {
        "metric",
        "fraction",
        "rounds",
        "metric zoom",
        "fraction zoom",
        "rounds zoom",
    }
    metric = _by_label(axes["metric"])
    ok_jobs = sum(j.success for t in summary.points for j in t.jobs)
    [jobs] = [a for label, a in metric.items() if label.startswith("jobs (")]
    assert len(jobs.get_offsets()) == ok_jobs == 12
    # Jobs return dicts, the aggregate is a fraction of passing seeds: the value's mark
    # is the mean of its jobs' metric (the first numeric key), and says so.
    assert axes["metric"].get_ylabel() == "score" and "mean of jobs" in metric
    assert _vertical_at(metric["answer width=60"]) == 60
    assert _vertical_at(metric["failing neighbour width=59"]) == 59
    assert "interval (59, 60)" in metric
    rings = _by_label(axes["fraction"])["inconsistent pair"]
    assert sorted(x for x, _ in rings.get_offsets().tolist()) == [32, 55]
    assert "contradiction (resolved)" in [t.get_text() for t in axes["fraction"].texts]
    # Re-tested: 32 had a success then a failure, so half its verdicts succeeded.
    verdicts = dict(map(tuple, _by_label(axes["fraction"])["success fraction"].get_offsets()))
    assert verdicts[32] == 0.5 and verdicts[60] == 1 and verdicts[59] == 0
    # The bracket shrinks round by round around the answer.
    brackets = threshold_view(summary).brackets
    assert brackets[-1][1:] == (59, 60) and [r for r, _, _ in brackets] == [1, 2, 3, 4]
    # The zoom holds the interval and its neighbours, not the contradiction far off.
    lo, hi = axes["metric zoom"].get_xlim()
    assert lo < 59 and hi > 60 and hi - lo < 30
    header = _figure_text(figure)
    assert "achieved 60, failed 59, interval (59, 60)" in header
    assert "width=32 succeeded but width=55 failed (resolved by re-testing)" in header
    assert "margin to the target: +0.5 at width=60, -0.5 at width=59" in header
    figure.savefig(tmp_path / "contra.png")
    assert (tmp_path / "contra.png").stat().st_size > 20_000


def test_untested_range_end_is_marked_where_the_threshold_may_lie(searches: Path) -> None:
    figure = plot_threshold(_summary(searches, "below"))
    metric = _by_label(_axes(figure)["metric"])
    assert _vertical_at(metric["threshold may lie below 10"]) == 10
    assert "outside range: every tested value succeeded; the threshold may lie below 10" in (
        _figure_text(figure)
    )


def test_probabilistic_search_draws_the_posterior_counts_and_credible_interval(
    searches: Path,
) -> None:
    summary = _summary(searches, "noisy")
    assert summary.method == "probabilistic" and summary.estimate is not None
    figure = plot_threshold(summary)
    axes = _axes(figure)
    assert {"posterior", "posterior zoom", "fraction zoom"} <= set(axes)
    [bars] = [c for c in axes["posterior"].collections if c.get_label() == "posterior"]
    heights = [seg[1][1] for seg in bars.get_segments()]
    assert sum(heights) == pytest.approx(1, abs=0.01)
    metric = _by_label(axes["metric"])
    assert _vertical_at(metric[f"estimate width={summary.estimate:g}"]) == summary.estimate
    lo, hi = summary.interval or (None, None)
    assert f"95% credible interval ({lo:g}, {hi:g})" in metric
    # Each value's count: jobs judged a success out of those judged, over its rounds.
    counts = {t.get_text() for t in axes["fraction zoom"].texts}
    view = threshold_view(summary)
    assert view.counted == "jobs"
    near = [v for v in view.values if lo - 2 <= v.value <= hi + 2]
    assert {f"{v.successes}/{v.judged}" for v in near} <= counts
    assert sum(v.judged or 0 for v in view.values) == summary.num_jobs
    assert any(0 < (v.fraction or 0) < 1 for v in view.values)  # the noise shows
    header = _figure_text(figure)
    assert f"estimate {summary.estimate:g}, 95% interval ({lo:g}, {hi:g})" in header
    # How noisy it found the outcomes, in the prop's own units.
    assert re.search(r"noise: the success rate climbs over about \+-[\d.]+ width around", header)
    # The counts are written where they overlap no other, in every fraction panel.
    renderer = figure.canvas.get_renderer()
    for name in ("fraction", "fraction zoom"):
        boxes = [t.get_window_extent(renderer) for t in axes[name].texts]
        assert boxes and not [
            (a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)
        ]


def test_values_spanning_decades_get_a_log_axis(searches: Path) -> None:
    figure = plot_threshold(_summary(searches, "lr"))
    axes = _axes(figure)
    assert axes["metric"].get_xscale() == "log" and axes["fraction"].get_xscale() == "log"
    assert axes["rounds"].get_xlabel() == "lr (log scale)"


def test_write_plots_writes_a_png_per_search(searches: Path, tmp_path: Path) -> None:
    written = write_plots(str(searches), out=str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == [
        f"{name}_binary_search.png" for name in ("below", "contra", "lr", "noisy")
    ]
    import matplotlib.image

    for path in written:
        height, width = matplotlib.image.imread(path).shape[:2]
        assert width >= 850 and height >= 600


def test_status_shows_the_interval_estimate_and_counts(searches: Path) -> None:
    result = run_cli(["status", str(searches)])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "width: achieved 60, failed 59, interval (59, 60), 4 round(s)" in out
    assert "1 inconsistent pair (resolved)" in out
    assert "threshold may lie below 10" in out
    noisy = _summary(searches, "noisy")
    lo, hi = noisy.interval or (None, None)
    assert f"estimate {noisy.estimate:g}, 95% interval ({lo:g}, {hi:g})" in out
    data = json.loads(run_cli(["status", str(searches), "--json"]).stdout)
    facts = {os.path.basename(s["base_dir"]): s["threshold"] for s in data["searches"]}
    assert facts["contra"]["inconsistencies"] == 1 and facts["contra"]["unresolved"] == 0
    assert facts["below"]["outside_range"] == "below"
    assert facts["noisy"]["estimate"] == noisy.estimate and facts["noisy"]["confidence"] == 0.95


def test_show_puts_the_answer_and_what_it_cannot_say_first(searches: Path) -> None:
    out = run_cli(["show", str(searches / "contra" / "summary.json")]).stdout
    assert out.startswith("threshold:\n  answer: achieved 60, failed 59, interval (59, 60)\n")
    assert "  - width=32 succeeded but width=55 failed (resolved by re-testing)\n" in out
    assert "  margin: +0.5 at width=60, -0.5 at width=59\n" in out
    out = run_cli(["show", str(searches / "below" / "summary.json")]).stdout
    assert "  outside_range: every tested value succeeded; the threshold may lie below 10" in out
    out = run_cli(["show", str(searches / "noisy" / "summary.json")]).stdout
    assert "  posterior:\n    width=" in out
    assert "  noise: the success rate climbs over about +-" in out
    [pkl] = glob.glob(str(searches / "contra" / "binary_search_results_*.pkl"))
    out = run_cli(["show", pkl]).stdout
    assert "  - width=32 succeeded but width=55 failed (resolved by re-testing)\n" in out
    assert "margin: not in this file (summary.json beside it has it)" in out
    raw = json.loads(run_cli(["show", str(searches / "contra" / "summary.json"), "--json"]).stdout)
    assert "threshold" not in raw and raw["margin"] == {"achieved": 0.5, "failed": -0.5}


def test_runner_bisect_then_plot_with_its_success_rule(tmp_path: Path, train_target: str) -> None:
    run = run_cli(
        [
            "bisect",
            train_target,
            "width=1:1000",
            "--success",
            'result["acc"] >= 0.5',
            "--seeds",
            "0,1,2",
            "--agg",
            "mean",
            "--base-dir",
            str(tmp_path / "size"),
        ]
    )
    assert run.returncode == 0, run.stderr
    rule = 'result["acc"] >= 0.5'
    plotted = run_cli(["plot", str(tmp_path / "size"), "--success", rule])
    assert plotted.returncode == 0, plotted.stderr
    assert plotted.stdout.strip() == str(tmp_path / "size" / "binary_search.png")
    figure = plot_threshold(_summary(tmp_path, "size"), success=rule)
    axes = _axes(figure)
    metric = _by_label(axes["metric"])
    target = metric['target: result["acc"] >= 0.5']
    assert list(target.get_ydata()) == [0.5, 0.5]
    assert "aggregate" in metric  # --agg mean: the mean result, of the jobs' shape
    view = threshold_view(_summary(tmp_path, "size"), success=rule)
    assert view.counted == "rule" and view.zoom is not None
    at = {v.value: v for v in view.values}
    assert (at[42].successes, at[42].judged) == (3, 3) and at[41].successes == 0
    # Without the rule, the margins runner bisect reports (acc - 0.5) still place the target.
    plain = _by_label(_axes(plot_threshold(_summary(tmp_path, "size")))["metric"])
    assert [label for label in plain if label.startswith("target")] == [
        "target: acc >= 0.5 (from the margins)"
    ]


@contextlib.contextmanager
def _live_search(folder: Path, block_width: int, slots: int) -> Iterator[threading.Thread]:
    """A search of ``slots`` values a round on as many slots, whose job at ``block_width``
    waits until the block ends (then the search runs to its end)."""
    gate = folder.parent / f"{folder.name}.gate"
    config = ToyConfig(threshold=42, mode="block", gate=str(gate), block_width=block_width)
    search = _bisect(folder.parent, folder.name, parallel_points=slots, test_range_ends=False)
    search.base_experiment_config = config
    driver = threading.Thread(
        target=run_binary_searches, args=([search],), kwargs={"max_gpus": slots}, daemon=True
    )
    driver.start()
    try:
        yield driver
    finally:
        gate.touch()
        driver.join(timeout=60)
    assert not driver.is_alive()


def test_a_running_search_shows_its_interval_and_plots_what_it_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = tmp_path / "live"
    with _live_search(live, block_width=32, slots=1) as driver:  # round 1: 55; round 2: 32
        summary = _await_summary(live, driver)
        assert summary.status == "running" and summary.interval == (10, 55)
        out = run_cli(["status", str(live)]).stdout
        assert "width: achieved 55, failed none, interval (10, 55), 1 round(s)" in out, out
        assert "running" in out and "threshold may lie" not in out  # said at the end
        figure = plot_threshold(summary, base_dir=str(live))
        assert "(running)" in _figure_text(figure)
        assert [ax.get_label() for ax in figure.axes][:2] == ["metric", "fraction"]
        # The job at 55 is judged (in the summary): not drawn again as one to be judged,
        # however its folder is named.
        monkeypatch.chdir(tmp_path)
        for base_dir in (str(live), "live"):
            metric = _axes(plot_threshold(summary, base_dir=base_dir))["metric"]
            assert "ended, not judged yet" not in _by_label(metric)
    done = _summary(tmp_path, "live")
    assert done.status == "done" and done.interval == (41, 42)


def test_a_round_in_progress_shows_the_jobs_it_has_not_judged_yet(tmp_path: Path) -> None:
    live = tmp_path / "live"
    with _live_search(live, block_width=40, slots=2) as driver:  # round 1: 40 (waits), 70
        ended = _await_ended_job(live, driver)
        summary = _summary(tmp_path, "live")
        assert summary.status == "running" and summary.points == []
        figure = plot_threshold(summary, base_dir=str(live))
        pending = _by_label(_axes(figure)["metric"])["ended, not judged yet"]
        assert pending.get_offsets().tolist() == [[ended["width"], ended["width"] * 10]]
        data = json.loads(run_cli(["status", str(live), "--json"]).stdout)
        [row] = data["searches"]
        # Its summary was written before the round's jobs: they count, and no ETA is made up.
        assert (row["status"], row["jobs"], row["eta"]) == ("running", "1/2", None)


def _await_ended_job(folder: Path, driver: threading.Thread) -> dict[str, Any]:
    """The point of the first job under ``folder`` whose job.json says it ended ok."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and driver.is_alive():
        for path in folder.glob("*/job.json"):
            try:
                record = json.loads(path.read_text())
            except ValueError:  # being replaced
                continue
            if record.get("status") == "ok":
                return dict(record["point"])
        time.sleep(0.02)  # polling the job records the driver writes
    raise AssertionError("no job of the first round ended")


def _await_summary(folder: Path, driver: threading.Thread) -> SearchSummary:
    """The running search's summary once its first round is in (the second blocks)."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and driver.is_alive():
        summary = read_summary(str(folder))
        if summary is not None and summary.status == "running" and summary.points:
            return summary
        time.sleep(0.02)  # polling the file the driver rewrites between rounds
    raise AssertionError("the search wrote no running summary with a tested value")


def test_nothing_tested_yet_is_said_not_drawn() -> None:
    summary = SearchSummary(kind="binary_search", search="S", base_dir="/r", status="running")
    with pytest.raises(ReportError, match="no value of value has been tested yet"):
        threshold_view(summary)


def test_a_summary_with_wrong_types_is_drawn_from_what_it_holds(tmp_path: Path) -> None:
    # Written by hand or by another program: ends, pairs and values of the wrong type
    # are left out, not raised on.
    data = {
        "kind": "binary_search",
        "status": "done",
        "prop": "w",
        "range": ["low", 100],
        "interval": [0, "x"],
        "failed": {"value": "?"},
        "inconsistencies": [{"success": "a", "failure": 3}],
        "posterior": [[1, 0.5], ["x", "y"], [None, 0.5]],
        "method": "probabilistic",
        "estimate": "soon",
        "points": [
            {"value": 1, "round": 1, "success": True, "result": 2.0},
            {"value": "two", "round": 2, "success": False, "result": 1.0},
            {"value": 3, "round": "3", "success": None, "result": {"deep": [1]}},
        ],
    }
    (tmp_path / "summary.json").write_text(json.dumps(data))
    [path] = write_plots(str(tmp_path))
    assert os.path.getsize(path) > 10_000
    view = threshold_view(SearchSummary.from_json(data))
    assert [v.value for v in view.values] == [1, 3] and view.beyond == 0.5


@pytest.mark.parametrize(
    "text, expected",
    [
        ("result >= 0.5", ("result", ">=", 0.5)),
        ('result["acc"] > 0.9', ('result["acc"]', ">", 0.9)),
        ("-1 < result.loss", ("result.loss", ">", -1.0)),
        ("result['loss'] <= 2", ("result['loss']", "<=", 2.0)),
        ("0.1 < result < 2", None),
        ("result == 1", None),
        ("bool(result)", None),
        ("x >= 1", None),
        ("result >= (", None),
    ],
)
def test_a_rule_is_read_only_when_it_is_one_comparison(text: str, expected: Any) -> None:
    rule = parse_rule(text)
    assert (None if rule is None else (rule.metric, rule.op, rule.target)) == expected


def test_the_margins_imply_a_target_only_when_they_agree(searches: Path) -> None:
    # The margins are the aggregate's distance to 0.45: both ends say so, a line is drawn.
    data = _summary(searches, "contra").to_json()
    data["margin"] = {"achieved": 0.55, "failed": -0.45}
    for point in data["points"]:
        point["jobs"] = [dict(j, result=j["result"]["passed"] * 1.0) for j in point["jobs"]]
    view = threshold_view(SearchSummary.from_json(data))
    assert view.aggregate == "aggregate" and view.target is not None
    assert view.target.value == pytest.approx(0.45)
    assert (view.target.op, view.target.source) == (">=", "margin")
    data["margin"] = {"achieved": 0.55, "failed": -0.2}  # not a distance to one target
    assert threshold_view(SearchSummary.from_json(data)).target is None


def test_why_a_probabilistic_search_stopped_short_is_said() -> None:
    from runner.threshold_words import label_threshold, status_detail

    data = {
        "kind": "binary_search",
        "search": "B",
        "base_dir": "/r",
        "status": "done",
        "prop": "w",
        "range": [1, 40],
        "interval": [20, 24],
        "achieved": {"value": 23},
        "method": "probabilistic",
        "estimate": 23,
        "confidence": 0.95,
        "stopped": "repetitions",
    }
    block = label_threshold(data)["threshold"]
    assert block["stopped"].startswith("the repetitions ran out at the values that decide")
    assert status_detail(SearchSummary.from_json(data))[0].endswith("; repetitions used up")
    resolved = label_threshold({**data, "stopped": "resolved"})["threshold"]
    assert "stopped" not in resolved


def test_a_log_scales_noise_is_a_factor_and_an_older_summary_says_none() -> None:
    from runner.threshold_words import noise_text

    base = {
        "kind": "binary_search",
        "search": "B",
        "base_dir": "/r",
        "status": "done",
        "prop": "lr",
        "method": "probabilistic",
        "noise": [[2.0, 0.5], [4.0, 0.5]],
    }
    factor = noise_text(SearchSummary.from_json({**base, "noise_factor": [[1.5, 0.5], [3.0, 0.5]]}))
    assert factor is not None and "a factor 1.5 either side of the threshold" in factor
    # Written before the scale was kept in the prop's terms: grid steps only, no line.
    assert noise_text(SearchSummary.from_json(base)) is None


def test_a_zoomed_log_axis_gets_a_few_ticks_whose_labels_do_not_run_together() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from runner.threshold_plot import _plain_ticks

    figure = Figure(figsize=(5, 2))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.set_xscale("log")
    ax.set_xlim(8.076e-5, 5.932e-4)  # within a decade: the locator alone gives none
    _plain_ticks(ax)
    figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if 8.076e-5 <= t <= 5.932e-4]
    assert len(ticks) == 3
    # Evenly spaced on the log axis: about equal ratios between neighbours.
    assert ticks[1] / ticks[0] == pytest.approx(ticks[2] / ticks[1], rel=0.1)
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [label.get_window_extent(renderer) for label in ax.get_xticklabels() if label.get_text()]
    assert len(boxes) == 3
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
