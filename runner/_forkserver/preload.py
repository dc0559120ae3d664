"""What the fork server imports for its children, and only where a job would import the same.

A job's ``sys.path`` is the driver's (``runner._worker`` restores it); the server's is
a fresh interpreter's in the driver's first working directory. Where they disagree (a
project with a package of the same name, a path added at run time) the job must get
what a fresh interpreter on the driver's path would, so the server imports nothing of
it, and a child whose job's path moved since forgets what it shadows.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import runner
from runner import _worker

#: What the server preloaded: each top-level name, with the modules that came in under
#: it or under ``runner``.
Preloaded = dict[str, tuple[str, ...]]


def origin_on_path(name: str) -> str | None:
    """Where ``import name`` would load from now, ignoring what is already imported."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(name, None)
        except Exception:
            return None
        if spec is not None:
            return spec.origin
    return None


def same_file(a: str | None, b: str | None) -> bool:
    """Whether two paths name one existing file (False when either is unknown)."""
    if not a or not b:
        return False
    try:
        return a == b or os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def job_path() -> list[str]:
    """The driver's sys.path, as sent in the server's environment (else this process's)."""
    raw = os.environ.get(_worker.SYS_PATH_ENV)
    return json.loads(raw) if raw else list(sys.path)


def resolves_alike(name: str, path: list[str], expected: str | None = None) -> bool:
    """Whether ``import name`` finds the same file here as in a job on ``path``.

    ``expected``: the file it must also be.
    """
    saved = sys.path[:]
    here = origin_on_path(name)
    sys.path[:] = path + [p for p in saved if p not in path]
    try:
        there = origin_on_path(name)
    finally:
        sys.path[:] = saved
    return same_file(here, there) and (expected is None or same_file(here, expected))


def import_for_children(name: str, *modules: str) -> tuple[str, ...]:
    """Import ``modules``; return the modules that came in under ``name`` or ``runner``."""
    before = set(sys.modules)
    for module in modules:
        importlib.import_module(module)
    return tuple(
        key
        for key in sys.modules
        if key not in before and (key == name or key.startswith((name + ".", "runner.")))
    )


def preload_runner() -> Preloaded:
    """Import, once, what every job imports, where a job would import the very same files.

    Runner's job side always (it is how the server itself runs). cloudpickle, and
    Runner's config library (the top-level ``configs`` that the spec names), only where
    the driver's ``sys.path`` finds the same files: a project with a ``configs`` package
    of its own gets its own in its jobs, as under ``spawn``, and none of its code ever
    runs in the server.
    """
    from runner import job_folder  # noqa: F401  (pre-imported for the children)

    path = job_path()
    preloaded: Preloaded = {}
    if resolves_alike("cloudpickle", path):
        preloaded["cloudpickle"] = import_for_children("cloudpickle", "cloudpickle")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(runner.__file__)))
    runner_configs = os.path.join(package_root, "configs", "__init__.py")
    if resolves_alike("configs", path, expected=runner_configs):
        # Every search job unpickles its search config (its run function is a bound
        # method of it) and, mostly, an experiment config built on BaseExperimentConfig:
        # Runner's own config library, pure Python, nothing that touches a device.
        preloaded["configs"] = import_for_children(
            "configs",
            "runner.configs.base_experiment_config",
            "runner.configs.search_configs",
        )
    return preloaded


def forget_shadowed_preloads(preloaded: Preloaded) -> None:
    """In a child whose job's sys.path or working directory changed since the server
    started: forget a preloaded package that the job's path would now find elsewhere
    (a project's own ``configs``), so that the job imports its own, as under ``spawn``.
    """
    for name, modules in preloaded.items():
        loaded = getattr(getattr(sys.modules.get(name), "__spec__", None), "origin", None)
        if same_file(origin_on_path(name), loaded):
            continue
        # What came in with it, and what of it was imported since (a lazy submodule).
        stale = [k for k in sys.modules if k == name or k.startswith(name + ".")]
        for key in dict.fromkeys([*modules, *stale]):
            sys.modules.pop(key, None)
            parent, _, child = key.rpartition(".")
            if parent in sys.modules:
                # ``from runner.configs import search_configs`` would take the attribute.
                sys.modules[parent].__dict__.pop(child, None)
