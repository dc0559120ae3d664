"""``runner bisect --method probabilistic`` and what every ``runner bisect`` says at its
end (issue 16): the estimate and its interval, the jobs run, the margin, a threshold
outside the range, contradicting verdicts; the flags that only the probabilistic
method takes, refused otherwise.

The user's script draws each job's outcome from its seed and value (a logistic chance
of success through ``threshold``, scale ``noise``): noisy, and the same on every run.
``--parallel-points`` fixes the jobs a round, so a search's path is too.
"""

from __future__ import annotations

import doctest
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli

import runner._cli_bisect
from runner.cli import main
from runner.job_result import GPUJobResult
from runner.quick_sweep import DEFAULT_SEED_POOL, build_binary_search, load_function
from runner.searches.summary import SearchSummary

RULE_SCRIPT = textwrap.dedent(
    """
    from __future__ import annotations

    import math
    import random

    from configs import pydraclass


    @pydraclass
    class RuleConfig:
        width: int = 10
        seed: int = 0
        threshold: int = 20
        noise: float = 0.0
        dip: int = -1
        crash_seed: int = -1


    def rule(config: RuleConfig) -> dict:
        if config.seed == config.crash_seed:
            raise RuntimeError("diverged")
        if config.noise > 0:
            z = (config.width - config.threshold + 0.5) / config.noise
            chance = 1 / (1 + math.exp(-z))
        else:
            chance = 1.0 if config.width >= config.threshold else 0.0
        draw = random.Random(config.seed * 100003 + config.width).random()
        passed = draw < chance or (config.width == config.dip and config.seed == 0)
        return {"label": "pass" if passed else "fail", "score": float(passed)}


    def label_only(config: RuleConfig) -> dict:
        # No number in the result: --agg mean has nothing to average.
        return {"label": rule(config)["label"]}


    @pydraclass
    class PlainConfig:
        width: int = 10


    def plain(config: PlainConfig) -> bool:
        return config.width >= 20
    """
)
SCORE = 'result["score"] >= 0.5'
LABEL = 'result["label"] == "pass"'


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rule_script")
    (folder / "rule_script.py").write_text(RULE_SCRIPT)
    return folder / "rule_script.py"


def _bisect(
    script: Path, base_dir: Path, *args: str, success: str = SCORE, fn: str = "rule"
) -> Any:
    argv = [*args, "--success", success, "--no-progress", "--base-dir", str(base_dir)]
    result = run_cli(["bisect", f"{script}:{fn}", *argv])
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _probabilistic(script: Path, base_dir: Path, *args: str, success: str = SCORE) -> Any:
    """A probabilistic search, four jobs a round (so its path is the same on every run)."""
    more = ["--method", "probabilistic", "--parallel-points", "4"]
    return _bisect(script, base_dir, *args, *more, success=success)


def _line(stdout: str, prefix: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, stdout
    return lines[0]


def _summary(base_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((base_dir / "summary.json").read_text())
    return data


# -- the probabilistic method ------------------------------------------------------------


def test_probabilistic_search_of_a_noisy_rule_prints_estimate_interval_and_jobs(
    script: Path, tmp_path: Path
) -> None:
    run = _probabilistic(
        script,
        tmp_path / "noisy",
        *"width=1:40 threshold=20 noise=1 --max-jobs 48".split(),
    )
    assert run.returncode == 0, run.stderr
    # No --seeds: the default pool, said once.
    assert run.stderr.count("seed 0..63 are the pool of repetitions") == 1
    line = _line(run.stdout, "estimate: ")
    found = re.fullmatch(
        r"estimate: width=(\d+), 95% interval \((\d+), (\d+)\] after (\d+) job\(s\) in \d+ "
        r"round\(s\).*",
        line,
    )
    assert found, line
    estimate, lo, hi, jobs = map(int, found.groups())
    assert abs(estimate - 20) <= 2 and lo <= estimate <= hi
    assert lo <= 20 <= hi  # the interval holds the true threshold
    assert jobs <= 48
    summary = _summary(tmp_path / "noisy")
    assert summary["method"] == "probabilistic" and summary["estimate"] == estimate
    assert summary["num_jobs"] == jobs and summary["confidence"] == 0.95
    # A value tested again took the next unused seed of the pool, and every job was
    # judged on its own: the tallies are the jobs' own outcomes.
    seeds_at: dict[int, list[int]] = {}
    for point in summary["points"]:
        for job in point["jobs"]:
            seeds_at.setdefault(point["value"], []).append(job["point"]["seed"])
        assert point["successes"] == sum(j["result"]["score"] == 1.0 for j in point["jobs"])
    for seeds in seeds_at.values():
        assert seeds == list(range(len(seeds)))
    assert max(len(s) for s in seeds_at.values()) > 1  # the search did re-test values
    # The answer's two ends, each with its tally.
    achieved = _line(run.stdout, "achieved: ")
    assert re.fullmatch(r"achieved: width=\d+  \d+/\d+ job\(s\) succeeded", achieved)
    assert _line(run.stdout, "margin to the target: ")
    noise = _line(run.stdout, "noise: ")
    found_noise = re.fullmatch(
        r"noise: the success rate climbs over about \+-([\d.]+) width .*", noise
    )
    assert found_noise, noise
    assert 0.2 < float(found_noise[1]) < 10, noise  # the rule's noise=1 (in width units)


def test_the_interval_is_printed_half_open_as_it_reads_in_either_direction(
    script: Path, tmp_path: Path
) -> None:
    # Successes below the threshold (--direction higher): the largest succeeding width is
    # 22, and the threshold lies at or after 22, before 23.
    higher = _probabilistic(
        script,
        tmp_path / "higher",
        *"width=1:40 threshold=23 --seeds 5,6,7,8,9,10,11,12 --direction higher".split(),
        success='result["score"] < 0.5',
    )
    assert higher.returncode == 0, higher.stderr
    line = _line(higher.stdout, "estimate: ")
    assert line.startswith("estimate: width=22, 95% interval [22, 23) after "), line


def test_probabilistic_search_of_a_deterministic_rule_gets_the_exact_answer(
    script: Path, tmp_path: Path
) -> None:
    exact = _probabilistic(
        script,
        tmp_path / "exact",
        *"width=1:40 threshold=23 --seeds 5,6,7,8,9,10,11,12".split(),
    )
    assert exact.returncode == 0, exact.stderr
    assert "pool of repetitions" not in exact.stderr  # --seeds given: no default to say
    line = _line(exact.stdout, "estimate: ")
    assert line.startswith("estimate: width=23, 95% interval (22, 23] after "), line
    assert "wider than --precision" not in line
    assert (
        _line(exact.stdout, "noise: ") == "noise: none seen (the outcomes fit a deterministic rule)"
    )
    assert _line(exact.stdout, "achieved: ").startswith("achieved: width=23  ")
    assert _line(exact.stdout, "failed: ").startswith("failed: width=22  ")
    seeds = {j["point"]["seed"] for p in _summary(tmp_path / "exact")["points"] for j in p["jobs"]}
    assert seeds <= set(range(5, 13))
    # Bisection agrees.
    classic = _bisect(script, tmp_path / "classic", "width=1:40", "threshold=23")
    assert classic.returncode == 0, classic.stderr
    assert re.fullmatch(
        r"interval: \(22, 23\] after \d+ round\(s\), \d+ job\(s\)",
        _line(classic.stdout, "interval: "),
    )


def test_one_seed_per_value_stops_after_about_bisections_path_with_the_exact_answer(
    script: Path, tmp_path: Path
) -> None:
    # A pool of one repetition: no value can be tested twice, so the values next to the
    # threshold can't be confirmed; the search stops once they are used up (it tested
    # every value of the range before) and says the seeds ran out, not the jobs.
    run = _probabilistic(script, tmp_path / "one", *"width=1:40 threshold=23 --seeds 7".split())
    assert run.returncode == 0, run.stderr
    line = _line(run.stdout, "estimate: ")
    found = re.fullmatch(
        r"estimate: width=23, 95% interval \((\d+), (\d+)\] after (\d+) job.*", line
    )
    assert found, line
    lo, hi, jobs = map(int, found.groups())
    assert lo < 23 <= hi
    assert jobs <= 20  # bisection's path on 1..40 is 6 values; 4 a round here
    if (lo, hi) != (22, 23):  # not narrowed to one value: the seeds are what ran out
        assert "the --seeds ran out at the values that decide it (add --seeds" in line
        assert "are used up at the values that decide the answer" in run.stderr
    assert _summary(tmp_path / "one")["stopped"] in ("resolved", "repetitions")


def test_each_job_is_judged_by_the_success_expression_on_its_own_result(
    script: Path, tmp_path: Path
) -> None:
    # --agg mean averages the numeric keys only; a rule on a text key still judges each
    # job, because each job is judged on its own result, not on a mean of one.
    run = _probabilistic(
        script,
        tmp_path / "label",
        *"width=1:40 threshold=20 noise=1 --agg mean --max-jobs 24".split(),
        success=LABEL,
    )
    assert run.returncode == 0, run.stderr
    points = _summary(tmp_path / "label")["points"]
    assert sum(p["judged"] for p in points) == 24
    for point in points:
        labels = [job["result"]["label"] for job in point["jobs"]]
        assert point["successes"] == labels.count("pass")
    # The ends report the mean result (--agg mean) beside the tally.
    assert 'mean result {"score": ' in _line(run.stdout, "achieved: ")


def test_jobs_that_error_are_not_counted_and_the_answer_stays_exact(
    script: Path, tmp_path: Path
) -> None:
    run = _probabilistic(script, tmp_path / "crash", "width=1:40", "threshold=23", "crash_seed=1")
    assert run.returncode == 0, run.stderr
    assert _line(run.stdout, "estimate: ").startswith("estimate: width=23, 95% interval (22, 23]")
    achieved = _line(run.stdout, "achieved: ")
    assert re.fullmatch(
        r"achieved: width=23  (\d+)/\1 job\(s\) succeeded \(1 more errored, not counted\)", achieved
    ), achieved
    assert "first failure: " in run.stdout and "RuntimeError: diverged" in run.stdout


def test_job_success_of_the_script_search(script: Path, tmp_path: Path) -> None:
    def search(agg: str) -> Any:
        return build_binary_search(
            load_function(f"{script}:rule"),
            ["width=1:40"],
            base_dir=str(tmp_path / "s"),
            precision=1,
            success=LABEL,
            agg=agg,
            method="probabilistic",
        )

    passed = GPUJobResult(success=True, result={"label": "pass", "score": 1.0})
    failed = GPUJobResult(success=True, result={"label": "fail", "score": 0.0})
    crashed = GPUJobResult(success=False, error="Traceback ...")
    for agg in ("all", "any", "mean"):
        config = search(agg)
        assert config.job_success(passed) is True
        assert config.job_success(failed) is False
        assert config.job_success(crashed) is None  # not counted
    config = search("mean")
    # A value's verdict: its share of successes against target_rate; the mean reported.
    assert config.agg_results([passed, failed, crashed]) == (True, {"score": 0.5})
    assert config.agg_results([failed, failed, passed])[0] is False
    assert config.sweep_props == {"seed": list(DEFAULT_SEED_POOL)}


# -- what the end says, for both methods --------------------------------------------------


def test_every_value_succeeding_says_the_untested_end_and_widen_the_range(
    script: Path, tmp_path: Path
) -> None:
    below = _bisect(script, tmp_path / "below", "width=5:40", "threshold=0")
    assert below.returncode == 0, below.stderr
    assert _line(below.stdout, "outside range: ") == (
        "outside range: every tested value succeeded, so the threshold may lie at or below "
        "width=5 (width=5 was not tested); widen the range, e.g. width=0:40, or "
        "--test-range-ends yes"
    )
    ends = _bisect(
        script, tmp_path / "ends", "width=5:40", "threshold=0", "--test-range-ends", "yes"
    )
    assert ends.returncode == 0, ends.stderr
    assert _line(ends.stdout, "outside range: ").endswith(
        "at or below width=5 (width=5 succeeded too); widen the range, e.g. width=0:40"
    )
    above = _bisect(script, tmp_path / "above", "width=5:40", "threshold=99")
    assert above.returncode == 0, above.stderr
    assert _line(above.stdout, "outside range: ") == (
        "outside range: every tested value failed, so the threshold may lie at or above "
        "width=40 (width=40 was not tested); widen the range, e.g. width=5:75, or "
        "--test-range-ends yes"
    )
    assert _line(above.stdout, "achieved: ") == "achieved: none"
    # The library's own warning, logged above the table, names the CLI's spellings too.
    assert "e.g. width=5:75, or set --test-range-ends yes" in above.stderr, above.stderr
    assert "range=(" not in above.stderr and "test_range_ends" not in above.stderr
    noisy = _probabilistic(script, tmp_path / "prob", "width=5:40", "threshold=0")
    assert noisy.returncode == 0, noisy.stderr
    assert _line(noisy.stdout, "outside range: ").endswith("widen the range, e.g. width=0:40")
    assert "interval (below 5, " in _line(noisy.stdout, "estimate: ")


def test_contradicting_verdicts_are_counted_and_said_unresolved(
    script: Path, tmp_path: Path
) -> None:
    # Round one tests 13, 22 and 31: 13 succeeds (the dip) below 22, which fails.
    run = _bisect(
        script,
        tmp_path / "dip",
        *"width=5:40 threshold=30 dip=13 --parallel-points 3".split(),
    )
    assert run.returncode == 0, run.stderr
    line = _line(run.stdout, "contradictions: ")
    assert line.startswith(
        "contradictions: 1 pair of verdicts no monotone rule gives, unresolved: "
        "width=13 succeeded but width=22 failed"
    ), line
    assert "--repetitions below the number of --seeds" in line
    assert "Add repetitions to --seeds and set --repetitions K" in run.stderr, run.stderr
    assert "sweep_props" not in run.stderr
    # A pool to re-test from: width=13 succeeds with seed 0 only, so two more seeds
    # there turn its mean into a failure, and the pair is resolved.
    retested = _bisect(
        script,
        tmp_path / "retest",
        *"width=5:40 threshold=30 dip=13 --parallel-points 3".split(),
        *"--seeds 0,1,2 --repetitions 1 --agg mean".split(),
    )
    assert retested.returncode == 0, retested.stderr
    assert _line(retested.stdout, "contradictions: ") == (
        "contradictions: 1 pair of verdicts no monotone rule gives, resolved by re-testing: "
        "width=13 succeeded but width=22 failed"
    )
    assert _line(retested.stdout, "achieved: ").startswith("achieved: width=30  ")
    seeds_at_13 = [
        job["point"]["seed"]
        for point in _summary(tmp_path / "retest")["points"]
        if point["value"] == 13
        for job in point["jobs"]
    ]
    assert seeds_at_13 == [0, 1, 2]
    clean = _bisect(
        script, tmp_path / "clean", "width=5:40", "threshold=30", "--parallel-points", "3"
    )
    assert clean.returncode == 0, clean.stderr
    assert "contradictions:" not in clean.stdout and "outside range:" not in clean.stdout
    assert _line(clean.stdout, "margin to the target: ") == (
        "margin to the target: +0.5 at width=30, -0.5 at width=29"
    )


def test_json_of_a_probabilistic_search_carries_the_estimate(script: Path, tmp_path: Path) -> None:
    run = run_cli(
        [
            "bisect",
            f"{script}:rule",
            "width=1:40",
            "threshold=23",
            "--success",
            SCORE,
            "--method",
            "probabilistic",
            "--confidence",
            "0.9",
            "--parallel-points",
            "4",
            "--json",
            "--base-dir",
            str(tmp_path / "j"),
        ]
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert (data["estimate"], data["confidence"], data["interval"]) == (23, 0.9, [22, 23])


def test_a_rule_that_does_not_fit_the_results_is_one_line_naming_success(
    script: Path, tmp_path: Path
) -> None:
    # Bisection's --agg mean applies the rule to the mean, which has no text key.
    run = _bisect(
        script,
        tmp_path / "bad",
        *"width=1:40 --agg mean --seeds 1,2".split(),
        success=LABEL,
    )
    assert run.returncode == 2
    assert 'runner bisect: error: --success \'result["label"] == "pass"\' failed on' in run.stderr
    assert "fix --success (or --agg)" in run.stderr


def test_probabilistic_agg_mean_over_text_results_shows_them_as_they_are(
    script: Path, tmp_path: Path
) -> None:
    # Each job is judged by the rule on its own result; --agg mean only shapes what is
    # shown at the answer, and results with no number to average are shown as they are.
    run = _bisect(
        script,
        tmp_path / "text",
        *"width=1:40 threshold=23 --agg mean --seeds 1,2".split(),
        *"--method probabilistic --parallel-points 4".split(),
        success=LABEL,
        fn="label_only",
    )
    assert run.returncode == 0, run.stderr
    assert _line(run.stdout, "estimate: ").startswith("estimate: width=23, ")
    assert _summary(tmp_path / "text")["status"] == "done"


# -- flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--confidence", "0.9"], "--confidence 0.9 applies to --method probabilistic only"),
        (["--max-jobs", "10"], "--max-jobs 10 applies to --method probabilistic only"),
        (["--target-rate", "0.3"], "add --method probabilistic, or drop --target-rate"),
        (["--method", "probabilistic", "--confidence", "1.5"], "--confidence 1.5 must lie"),
        (["--method", "probabilistic", "--confidence", "0"], "strictly between 0 and 1"),
        (["--method", "probabilistic", "--target-rate", "1"], "--target-rate 1.0 must lie"),
        (["--method", "probabilistic", "--max-jobs", "0"], "--max-jobs 0 must be >= 1"),
        (["--method", "probabilistic", "seed=3"], "seed=3 fixes the seed"),
        (["--method", "probabilistic", "--seed-key", "rng"], "--seed-key 'rng' is no field"),
        (["--method", "probabilistic", "--repetitions", "1"], "--method bisection only"),
        (["--method", "probabilistic", "--test-range-ends", "no"], "drop --test-range-ends"),
        (["--repetitions", "0"], "--repetitions 0 must be >= 1"),
        (["--repetitions", "3", "--seeds", "1,2"], "--repetitions 3 is more than the 2 seed"),
    ],
)
def test_misused_probabilistic_flags_exit_2_naming_the_flag(
    script: Path,
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bisect", f"{script}:rule", "width=1:40", *extra, "--base-dir", str(tmp_path / "b")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()  # nothing started


def test_a_config_without_a_seed_field_names_seed_key_and_seeds(
    script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bisect", f"{script}:plain", "width=1:40", "--method", "probabilistic"]
    assert main([*argv, "--base-dir", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "--seed-key 'seed' is no field of PlainConfig" in err
    assert "--seed-key KEY" in err and "--seeds" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse: not a method
        main(["bisect", f"{script}:rule", "width=1:40", "--method", "bayes"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'bayes'" in capsys.readouterr().err


def test_help_names_the_method_flags_and_a_probabilistic_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["bisect", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag in ("--method {bisection,probabilistic}", "--confidence P", "--max-jobs N"):
        assert flag in out
    assert "--target-rate R" in out and "default there: 0,1,...,63" in out
    assert "--method probabilistic --confidence 0.9 --max-jobs 60" in out


def test_the_end_lines_docstring_example_runs_as_written() -> None:
    assert doctest.testmod(runner._cli_bisect).failed == 0


def test_a_log_range_from_one_suggests_no_range_it_would_refuse(
    script: Path, tmp_path: Path
) -> None:
    run = _bisect(script, tmp_path / "log", *"width=1:40 threshold=0 --scale log".split())
    assert run.returncode == 0, run.stderr
    line = _line(run.stdout, "outside range: ")
    assert "width=0:" not in line and "width=0:" not in run.stderr  # log needs lo > 0
    assert "a log range can't reach beyond width=1" in line
    assert "a range on this scale can't reach beyond width=1" in run.stderr


def _end_summary(**fields: Any) -> SearchSummary:
    base: dict[str, Any] = dict(
        kind="binary_search",
        search="B",
        base_dir="/r",
        status="done",
        prop="lr",
        range=(0.0, 1.0),
        precision=1e-4,
        method="probabilistic",
        confidence=0.95,
        num_jobs=32,
        rounds=8,
    )
    return SearchSummary.from_json({**base, **fields})


def test_the_end_says_why_the_interval_is_wider_than_asked() -> None:
    bisect_end_lines = runner._cli_bisect.bisect_end_lines

    def estimate_line(**fields: Any) -> str:
        return next(x for x in bisect_end_lines(_end_summary(**fields)) if x.startswith("estimate"))

    coarse = estimate_line(estimate=0.3, interval=[0.2998, 0.3008], stopped="resolved")
    assert "as narrow as the candidate values allow" in coarse and "narrow the range" in coarse
    assert "--max-jobs" not in coarse  # more jobs would not help
    spent = estimate_line(estimate=0.3, interval=[0.25, 0.35], stopped="max_jobs")
    assert "the jobs ran out before it narrowed (raise --max-jobs" in spent
    seeds = estimate_line(estimate=0.3, interval=[0.25, 0.35], stopped="repetitions")
    assert "the --seeds ran out at the values that decide it" in seeds


def test_no_estimate_inside_the_range_names_the_open_side() -> None:
    bisect_end_lines = runner._cli_bisect.bisect_end_lines

    lines = bisect_end_lines(_end_summary(estimate=None, interval=[None, 0.06]))
    assert "none inside the range (it may lie below lr=0)" in "\n".join(lines)
    lines = bisect_end_lines(_end_summary(estimate=None, interval=[0.94, None]))
    assert "none inside the range (it may lie above lr=1)" in "\n".join(lines)


def test_an_interval_end_beyond_the_range_reads_as_such_beside_the_outside_range_line() -> None:
    # A bracket ending at an untested range end must not say the threshold lies past it
    # while the next line says it may lie beyond it.
    lines = runner._cli_bisect.bisect_end_lines
    below = lines(
        _end_summary(method=None, interval=[0.0, 0.1], outside_range="below", estimate=None)
    )
    assert next(x for x in below if x.startswith("interval: ")).startswith(
        "interval: (below 0, 0.1] after"
    )
    assert any(x.startswith("outside range: every tested value succeeded") for x in below)
    # Successes below the threshold: every value succeeding puts it above the range.
    above = lines(
        _end_summary(
            method=None,
            interval=[0.9, 1.0],
            outside_range="above",
            success_direction_lower=False,
            estimate=None,
        )
    )
    assert next(x for x in above if x.startswith("interval: ")).startswith(
        "interval: [0.9, above 1) after"
    )
    assert any(x.startswith("outside range: every tested value succeeded") for x in above)


def test_a_search_that_judged_no_job_prints_no_estimate_and_no_noise() -> None:
    lines = runner._cli_bisect.bisect_end_lines(
        _end_summary(
            estimate=None,
            interval=[None, None],
            noise=None,
            points=[{"value": 0.5, "round": 1, "success": None, "successes": 0, "judged": 0}],
        )
    )
    assert "estimate: none, no job was judged after 32 job(s) in 8 round(s)" in lines
    assert not any(x.startswith(("noise", "outside range")) for x in lines)


def test_results_that_could_not_be_saved_are_said_so_with_the_way_back(
    script: Path, tmp_path: Path
) -> None:
    import io

    from runner.binary_search import run_binary_searches

    search = build_binary_search(
        load_function(f"{script}:rule"),
        ["width=1:40", "threshold=23"],
        base_dir=str(tmp_path / "s"),
        precision=1,
        success=SCORE,
    )
    [outcome] = run_binary_searches([search], max_gpus=0, progress=False)
    assert outcome.summary is not None
    outcome.results_file = ""  # what the driver returns when the disk was full at the end
    out = io.StringIO()
    runner._cli_bisect.print_bisect_end(
        runner._cli_bisect.console(out), "rule", outcome, outcome.summary, str(tmp_path / "s")
    )
    assert "results: not saved (see the error above): free space, then rerun with --resume" in (
        out.getvalue()
    )
