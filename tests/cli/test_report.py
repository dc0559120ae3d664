"""Report functions: the numbers plotted match the results, the PNGs decode, and what is read."""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from runner.errors import MissingDependencyError
from runner.plots import grid_data, plot_grid, plot_threshold, write_plots
from runner.report import ReportError, job_rows, to_jsonable
from runner.scheduler import GPUJobResult


def _grid_summary() -> dict:
    jobs = []
    for lr in (0.1, 0.01):
        for width in (8, 16, 32):
            for seed in (1, 2):
                ok = not (lr == 0.01 and width == 32)  # one point failed entirely
                jobs.append(
                    {
                        "point": {"lr": lr, "width": width, "seed": seed},
                        "success": ok,
                        "result": {"acc": width * lr + seed, "tag": "x"} if ok else None,
                    }
                )
    return {
        "kind": "grid_search",
        "sweep_props": {"lr": [0.1, 0.01], "width": [8, 16, 32], "seed": [1, 2]},
        "jobs": jobs,
    }


def _bisect_summary() -> dict:
    return {
        "kind": "binary_search",
        "prop": "width",
        "range": [10, 100],
        "interval": [41, 42],
        "achieved": {"value": 42, "result": 0.5},
        "points": [
            {"value": 55, "round": 1, "success": True},
            {"value": 32, "round": 2, "success": False},
            {"value": 43, "round": 3, "success": True},
            {"value": 37, "round": 4, "success": False},
            {"value": 40, "round": 5, "success": False},
            {"value": 41, "round": 6, "success": False},
            {"value": 42, "round": 7, "success": True},
        ],
    }


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_grid_data_averages_over_seeds_and_skips_failures() -> None:
    data = grid_data(_grid_summary())
    assert data.props == ["lr", "width"] and data.metric == "acc"  # first numeric key
    assert data.averaged_over == ["seed"]
    expected = [[w * lr + 1.5 for lr in (0.1, 0.01)] for w in (8, 16, 32)]
    expected[2][1] = math.nan
    np.testing.assert_allclose(np.array(data.means, dtype=float), expected)


def test_grid_data_one_prop_and_metric_expression() -> None:
    data = grid_data(_grid_summary(), props=["width"], metric='result["acc"] * 10')
    assert data.metric == 'result["acc"] * 10'
    # the mean over lr and seed of 10 * (width * lr + seed), failures left out
    assert data.means == pytest.approx(
        [
            10 * np.mean([8 * lr + s for lr in (0.1, 0.01) for s in (1, 2)]),
            10 * np.mean([16 * lr + s for lr in (0.1, 0.01) for s in (1, 2)]),
            10 * np.mean([32 * 0.1 + s for s in (1, 2)]),
        ]
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"props": ["widht"]}, "did you mean 'width'"),
        ({"metric": "tag"}, "no job result has a numeric 'tag'"),
        ({"metric": "acc2"}, "did you mean 'acc'"),
        ({"metric": "result.__dict__"}, "private names"),
    ],
)
def test_grid_data_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        grid_data(_grid_summary(), **kwargs)


def test_grid_heatmap_and_lines_plot_the_means(tmp_path: Path) -> None:
    data = grid_data(_grid_summary())
    figure = plot_grid(data)
    image = figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(
        np.ma.filled(image.astype(float), np.nan), np.array(data.means, dtype=float)
    )
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0.1", "0.01"]
    assert figure.axes[0].get_ylabel() == "width"

    lines = plot_grid(grid_data(_grid_summary(), props=["width"]))
    ax = lines.axes[0]
    [mean_line] = [line for line in ax.get_lines() if line.get_label() == "mean"]
    assert list(mean_line.get_xdata()) == [8, 16, 32]
    assert list(mean_line.get_ydata()) == pytest.approx(
        grid_data(_grid_summary(), props=["width"]).means
    )
    [jobs] = [c for c in ax.collections if c.get_label() == "jobs"]
    assert len(jobs.get_offsets()) == 10  # every successful job is a dot

    path = tmp_path / "grid.png"
    figure.savefig(path)
    assert _png_size(str(path)) == (700, 450)


def test_threshold_plot_of_verdicts_only_marks_rounds_and_the_interval(tmp_path: Path) -> None:
    # A summary without results (older, or results that are not numbers): no metric
    # panel; the verdicts per value and the rounds, the tested value on x.
    figure = plot_threshold(_bisect_summary())
    assert [ax.get_label() for ax in figure.axes][:2] == ["fraction", "rounds"]
    rounds = figure.axes[1]
    by_label = {c.get_label(): c.get_offsets().tolist() for c in rounds.collections}
    assert by_label["success"] == [[55, 1], [43, 3], [42, 7]]
    assert by_label["failure"] == [[32, 2], [37, 4], [40, 5], [41, 6]]
    [band] = [p for p in figure.axes[0].patches if p.get_label().startswith("interval")]
    corners = band.get_transform().transform(band.get_path().vertices)
    data_x = figure.axes[0].transData.inverted().transform(corners)[:, 0]
    assert min(data_x) == pytest.approx(41) and max(data_x) == pytest.approx(42)
    assert "achieved 42, failed none, interval (41, 42)" in [t.get_text() for t in figure.texts][1]

    path = tmp_path / "trace.png"
    figure.savefig(path)
    import matplotlib.image

    assert matplotlib.image.imread(str(path)).shape[2] in (3, 4)


def test_write_plots_per_search_into_its_folder(tmp_path: Path) -> None:
    for name, summary in (("b", _bisect_summary()), ("g", _grid_summary())):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    written = write_plots(str(tmp_path))
    assert written == [
        str(tmp_path / "b" / "binary_search.png"),
        str(tmp_path / "g" / "grid_search.png"),
    ]
    assert _png_size(written[1]) == (700, 450)
    assert min(_png_size(written[0])) >= 400  # the threshold view: panels and a header
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no summary.json"):
        write_plots(str(tmp_path / "empty"))


def test_running_grid_is_plotted_from_job_json(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(
        json.dumps({"kind": "grid_search", "status": "running", "sweep_props": {}})
    )
    for x in (1, 2):
        folder = tmp_path / f"x={x}"
        folder.mkdir()
        (folder / "job.json").write_text(
            json.dumps({"status": "ok", "point": {"x": x, "seed": 0}, "result_summary": x * 3})
        )
    data = grid_data(json.loads((tmp_path / "summary.json").read_text()), base_dir=str(tmp_path))
    assert data.props == ["x"] and data.means == [3.0, 6.0]


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MissingDependencyError, match=r"runner\[plot\]"):
        plot_threshold(_bisect_summary())


def test_job_rows_read_json_only_and_spot_lost_jobs(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    records = {
        "ok": {"status": "ok", "result_summary": {"acc": 0.5}, "device": "1", "duration": 2.0},
        "err": {"status": "error", "error_summary": "ValueError: boom", "device": None},
        "lost": {"status": "running", "host": socket.gethostname(), "pid": proc.pid},
        "alive": {
            "status": "running",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "start_time": 0,
        },
        "remote": {"status": "running", "host": "another-host", "pid": proc.pid},
    }
    for name, record in records.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "job.json").write_text(json.dumps(record))
        (tmp_path / name / "result.pkl").write_bytes(b"garbage: never unpickled")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "job.json").write_text("{")  # being written: skipped, no crash
    rows = {os.path.basename(r.folder): r for r in job_rows(str(tmp_path))}
    assert set(rows) == set(records)
    assert rows["ok"].detail == '{"acc": 0.5}' and rows["ok"].device == "1"
    assert rows["err"].detail == "ValueError: boom" and rows["err"].device == "cpu"
    assert rows["lost"].status == "lost"
    assert rows["alive"].status == "running" and rows["alive"].duration > 0
    assert rows["remote"].status == "running"  # another host: can't tell


def test_to_jsonable() -> None:
    result = GPUJobResult(success=True, result=np.float64(0.5), gpu_id=2, duration=1.5)
    data = to_jsonable({"job_results": [result], "interval": (1, 2), "nan": float("nan")})
    assert data["job_results"][0]["result"] == 0.5
    assert data["job_results"][0]["device"] == 2
    assert data["interval"] == [1, 2] and data["nan"] == "nan"
    json.dumps(data)
