"""job.pkl holds a job's own part: its size does not grow with the sweep, a copied search
folder still runs, and a job.pkl of the previous layout still loads."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from typing import Any

import cloudpickle

from configs import pydraclass
from runner.configs.search_configs import GridSearchConfig
from runner.executors.attempt import Attempt
from runner.grid_search import run_grid_searches
from runner.job_pickle import SHARED_DIR, load_job
from runner.jobs import Job
from runner.searches.points import PointBuilder


def square(config: dict[str, int]) -> int:
    return config["i"] ** 2


@pydraclass
class SquareGrid(GridSearchConfig):
    def get_experiment_config_and_base_dir(self, i: int):  # type: ignore[override]
        return {"i": i}, f"{self.base_dir}/i={i}"

    def run_experiment_config(self, config: dict[str, int]) -> int:
        return square(config)

    def agg_results(self, results: list[Any]) -> list[Any]:
        return [r.result for r in results]


def _job_pkl_size(tmp_path: Any, n: int) -> int:
    grid = SquareGrid(
        base_dir=str(tmp_path / f"g{n:06d}"),
        sweep_props={"i": list(range(n))},
        base_experiment_config={},
    )
    job = PointBuilder(grid, base=GridSearchConfig).job_for({"i": 7})
    assert Attempt(job).prepare() is None
    return os.path.getsize(os.path.join(job.base_dir, "job.pkl"))


def test_job_pkl_does_not_grow_with_the_sweep(tmp_path: Any) -> None:
    small, large = _job_pkl_size(tmp_path, 10), _job_pkl_size(tmp_path, 20_000)
    assert small == large < 1024  # the sweep list is in the search's shared file, once
    [shared] = os.listdir(tmp_path / "g020000" / SHARED_DIR)
    assert os.path.getsize(tmp_path / "g020000" / SHARED_DIR / shared) > 20_000


def test_a_copied_search_folder_still_runs(tmp_path: Any) -> None:
    grid = SquareGrid(
        base_dir=str(tmp_path / "orig"), sweep_props={"i": [3]}, base_experiment_config={}
    )
    assert run_grid_searches([grid], max_gpus=0, cpu_slots=1, progress=False) == [[9]]
    shutil.copytree(tmp_path / "orig", tmp_path / "copy")
    shutil.rmtree(tmp_path / "orig")
    job_dir = tmp_path / "copy" / "i=3"
    os.unlink(job_dir / "result.pkl")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.getcwd()]))
    subprocess.run(
        [sys.executable, "-m", "runner._worker", str(job_dir)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(job_dir / "result.pkl", "rb") as f:
        assert pickle.load(f) == ("ok", 9)


def test_a_job_pkl_of_the_previous_layout_still_loads(tmp_path: Any) -> None:
    job = Job(run_fn=square, config={"i": 4}, base_dir=str(tmp_path))
    (tmp_path / "job.pkl").write_bytes(cloudpickle.dumps(job))  # the whole job, as before
    assert load_job(str(tmp_path)).run() == 16


def _undecorated(method: Any) -> Any:
    def wrapper(self: Any, config: Any) -> Any:  # no functools.wraps: named "wrapper"
        return method(self, config)

    return wrapper


@pydraclass
class DecoratedGrid(SquareGrid):
    @_undecorated
    def run_experiment_config(self, config: dict[str, int]) -> int:
        return square(config) + 1


def test_a_decorated_run_function_still_runs(tmp_path: Any) -> None:
    grid = DecoratedGrid(
        base_dir=str(tmp_path / "d"), sweep_props={"i": [2, 3]}, base_experiment_config={}
    )
    assert run_grid_searches([grid], max_gpus=0, cpu_slots=1, progress=False) == [[5, 10]]


def test_a_copied_job_keeps_its_shared_reference(tmp_path: Any) -> None:
    import copy

    grid = SquareGrid(
        base_dir=str(tmp_path / "c"),
        sweep_props={"i": list(range(5000))},
        base_experiment_config={},
    )
    job = copy.copy(PointBuilder(grid, base=GridSearchConfig).job_for({"i": 7}))
    assert Attempt(job).prepare() is None
    assert os.path.getsize(os.path.join(job.base_dir, "job.pkl")) < 1024
