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
    # Pre-imported for the children: what every job imports to load itself.
    from runner import job_folder, job_pickle, jobs  # noqa: F401

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


# -- warm starts: the third-party modules a search's jobs import ------------------------

#: Top-level packages that are never preloaded, and why: importing them (or what they
#: pull in) starts what a fork does not carry over. A preload that brings one in anyway
#: (a dependency's import) is refused by :func:`fork_safety_problem`.
UNSAFE_TO_PRELOAD: dict[str, str] = {
    "tensorflow": "TensorFlow starts its runtime's threads when it loads",
    "jax": "JAX's runtime is multithreaded, and JAX warns that a fork of it can deadlock",
    "jaxlib": "JAX's runtime is multithreaded, and JAX warns that a fork of it can deadlock",
    "pycuda": "pycuda.autoinit initialises CUDA when it is imported",
    "mpi4py": "mpi4py initialises MPI when it is imported",
    "horovod": "Horovod initialises MPI and its background thread",
    "ray": "Ray runs threads connected to its cluster",
    "grpc": "gRPC's core is not fork-safe unless configured for it",
}

#: What the server preloads anyway (:func:`preload_runner`), never asked for again.
_ALWAYS_PRELOADED = frozenset({"runner", "configs", "cloudpickle"})


def is_installed_file(path: str | None) -> bool:
    """Whether ``path`` lies in an installed distribution (a site-packages folder).

    A project's own code (the job's module, an editable install) is never preloaded: it
    changes between runs, and importing it in the server would run it there.
    """
    if not path:
        return False
    parts = os.path.normpath(path).split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def choose_preloads(report: dict[str, object], *, extra: tuple[str, ...] = ()) -> list[str]:
    """The modules to preload, in import order: a job's installed third-party ones, then ``extra``.

    ``report``: what :func:`runner._worker.report_imports` wrote for a job. Private
    submodules (a part starting with ``_``) come in with their public parents, and are
    left out to keep the list short.

    Example:
        >>> report = {
        ...     "modules": ["numpy", "numpy._core", "myproject", "numpy.linalg", "jax"],
        ...     "files": {
        ...         "numpy": "/venv/lib/python3.11/site-packages/numpy/__init__.py",
        ...         "myproject": "/home/me/myproject/__init__.py",
        ...         "jax": "/venv/lib/python3.11/site-packages/jax/__init__.py",
        ...     },
        ... }
        >>> choose_preloads(report, extra=("mylib",))
        ['numpy', 'numpy.linalg', 'mylib']
    """
    modules = report.get("modules")
    files = report.get("files")
    if not isinstance(modules, list) or not isinstance(files, dict):
        return list(extra)
    chosen: list[str] = []
    for name in modules:
        if not isinstance(name, str):
            continue
        top, *rest = name.split(".")
        if top in _ALWAYS_PRELOADED or top in UNSAFE_TO_PRELOAD:
            continue
        if any(part.startswith("_") for part in rest) or not is_installed_file(files.get(top)):
            continue
        chosen.append(name)
    return chosen + [name for name in extra if name not in chosen]


def preload_modules(names: list[str]) -> tuple[list[str], str | None]:
    """In the server: import ``names`` for its children, then check that forking is still safe.

    Imported on the jobs' ``sys.path`` (the driver's), so each is the very file a job
    would import. Returns the top-level packages imported, and None when the server may
    fork, else why not: an import that failed, or what :func:`fork_safety_problem` found.
    """
    path = job_path()
    saved = sys.path[:]
    sys.path[:] = path + [p for p in saved if p not in path]
    imported: list[str] = []
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except BaseException as exc:  # SystemExit too: the server must live to say so
                return imported, f"importing {name} failed ({type(exc).__name__}: {exc})"
            top = name.partition(".")[0]
            if top not in imported:
                imported.append(top)
    finally:
        sys.path[:] = saved
    return imported, fork_safety_problem()


def fork_safety_problem() -> str | None:
    """Why forking this process would hand its children a broken state, or None.

    Checked after a preload: a module known to be unsafe (:data:`UNSAFE_TO_PRELOAD`), a
    Python thread started (a forked child has only the thread that forked it, so a
    lock that thread held stays locked for ever), CUDA initialised (torch's
    ``torch.cuda.is_initialized()``: CUDA can't be used in a forked child). Native pools
    that reinitialise after a fork (OpenBLAS's, OpenMP's) are fine.
    """
    loaded = sorted({name.partition(".")[0] for name in sys.modules} & UNSAFE_TO_PRELOAD.keys())
    if loaded:
        return f"{loaded[0]} was imported, and {UNSAFE_TO_PRELOAD[loaded[0]]}"
    threading = sys.modules.get("threading")
    if threading is not None:
        main = threading.main_thread()
        others = [t.name for t in threading.enumerate() if t is not main]
        if others:
            return f"the import started a thread ({', '.join(others)}), which a forked job would lack"
    import _thread

    count = getattr(_thread, "_count", lambda: 0)()
    if count:
        return f"the import started {count} thread(s), which a forked job would lack"
    torch = sys.modules.get("torch")
    is_initialized = getattr(getattr(torch, "cuda", None), "is_initialized", None)
    if callable(is_initialized):
        try:
            initialized = bool(is_initialized())
        except Exception as exc:
            return f"could not tell whether torch initialised CUDA ({type(exc).__name__}: {exc})"
        if initialized:
            return "torch initialised CUDA (torch.cuda.is_initialized() is True), and a forked job can't use it"
    return None
