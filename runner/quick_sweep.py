"""Sweeps without a search class: ``runner grid`` and ``runner bisect`` on a script's function.

The script defines a ``@pydraclass`` config and a function taking it (the config
class is read from the function's first parameter annotation, as ``configs.run``
does). Command-line tokens then say what to sweep:

* ``key=value``: a fixed value, set through the config system's strict overrides
  (a typo gets "did you mean").
* ``key=[v1,v2]``: a grid axis (for a list-typed field, a list of lists).
* ``key=lo:hi``: the searched range of ``runner bisect``.

The script is loaded by path under a private module name and registered with
cloudpickle to be pickled by value, so the job processes never need to import
it (they could not: it is not on their import path under that name).

Each job's folder is ``<base_dir>/<key>=<value>,...`` for its swept values.

Aggregation across seeds for ``runner bisect`` (``--agg``), jobs that failed
(raised, crashed) being left out as they are not a verdict on the value:

* ``all`` (default): success iff the success expression holds for every seed's
  result; the strict reading of "works at this value".
* ``any``: iff it holds for at least one seed (the README's "best seed" rule).
* ``mean``: iff it holds for the mean result (numbers, or dicts averaged key by key).

When every job of a value failed, the value is inconclusive: it runs once more,
then the search stops with an error (see ``BinarySearchConfig.agg_results``).

With ``--method probabilistic`` each job is judged on its own: the success
expression on that job's result, whatever ``--agg`` says (``--agg`` then only
shapes the result reported at the answer's two ends). The seeds are the pool of
repetitions, a value tested again taking the next unused one; with no ``--seeds``
the pool is :data:`DEFAULT_SEED_POOL`.

Example:
    >>> # run_quick_grid("train.py:train", ["seed=[1,2]", "lr=[1e-3,1e-4]"], base_dir="runs/g")
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import importlib.util
import os
import re
import statistics
import sys
import time
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

import cloudpickle

from configs import pydraclass
from configs.cli import parse_value
from runner._expr import ExpressionError, compile_expression
from runner.configs.search_configs import BinarySearchConfig, GridSearchConfig
from runner.errors import SearchConfigError
from runner.searches.margin import comparison_margin, seeds_margin

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_SEED_POOL",
    "METHODS",
    "ScriptBinarySearch",
    "ScriptFunction",
    "ScriptGridSearch",
    "SweepArgs",
    "build_binary_search",
    "build_grid_search",
    "folder_name",
    "load_function",
    "parse_sweep_args",
]

AGGREGATIONS = ("all", "any", "mean")
METHODS = ("bisection", "probabilistic")
#: The seeds of a probabilistic ``runner bisect`` given no ``--seeds``: enough
#: repetitions for any value the posterior keeps testing.
DEFAULT_SEED_POOL = tuple(range(64))
_MAX_FOLDER_CHARS = 120


@dataclasses.dataclass
class ScriptFunction:
    """A function loaded from a script, with the config class it takes."""

    fn: Callable[[Any], Any]
    config_class: type
    path: str
    module_name: str


def load_function(target: str) -> ScriptFunction:
    """Load ``"path/to/script.py:function"``; the script runs once, in this process.

    Raises:
        SearchConfigError: The target is malformed, the file or function does not exist,
            or the function's first parameter is not annotated with a pydraclass.

    Example:
        >>> # load_function("examples/dummy_experiment.py:run_experiment").config_class
    """
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise SearchConfigError(
            f"{target!r} is not SCRIPT.py:FUNCTION; e.g. train.py:train names the function "
            "train in the file train.py"
        )
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise SearchConfigError(f"script {path!r} does not exist (from {target!r})")
    digest = hashlib.sha1(path.encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module_name = f"_runner_script_{stem}_{digest}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise SearchConfigError(f"cannot load {path!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        # The script's own imports of its neighbours must work here and in the jobs
        # (the worker starts with this process's sys.path).
        script_dir = os.path.dirname(path)
        if script_dir not in sys.path:
            sys.path.insert(0, script_dir)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        # By value: the jobs unpickle the function and config class without importing the script.
        cloudpickle.register_pickle_by_value(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        import difflib

        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (callables: {', '.join(names)})"
        raise SearchConfigError(f"{path} has no function {name!r}{hint}")
    from configs.cli import config_class_of

    try:
        config_class = config_class_of(fn)
    except TypeError as exc:
        raise SearchConfigError(str(exc).replace("run()", "runner grid/bisect")) from None
    return ScriptFunction(fn, config_class, path, module_name)


@dataclasses.dataclass
class SweepArgs:
    """The command line's tokens, sorted and checked against the config class."""

    #: The experiment config with every fixed value applied (not finalized).
    base_config: Any
    #: Grid axes, each value already coerced to its field's type.
    sweep: dict[str, list[Any]]
    #: ``runner bisect``'s ``key=lo:hi``: (key, lo, hi), else None.
    searched: tuple[str, Any, Any] | None = None


def parse_sweep_args(
    config_class: type, tokens: Sequence[str], *, allow_range: bool = False
) -> SweepArgs:
    """Split ``key=value`` tokens into fixed values, grid axes and (bisect) the searched range.

    Raises:
        configs.InvalidConfigurationError: An unknown key (with did-you-mean) or a bad value.
        SearchConfigError: A malformed token, an empty list, or a misplaced range.

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class C:
        ...     lr: float = 0.1
        ...     seed: int = 0
        >>> args = parse_sweep_args(C, ["seed=[1,2]", "lr=1e-3"])
        >>> args.sweep, args.base_config.lr
        ({'seed': [1, 2]}, 0.001)
    """
    from configs import apply_overrides

    base = config_class()
    sweep: dict[str, list[Any]] = {}
    searched: tuple[str, Any, Any] | None = None
    fixed: list[str] = []
    for token in tokens:
        key, sep, text = token.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SearchConfigError(f"expected key=value, got {token!r}")
        if key in sweep or (searched is not None and searched[0] == key):
            raise SearchConfigError(f"{key!r} is given twice on the command line")
        values = _as_sweep(base, key, text)
        if values is not None:
            if not values:
                raise SearchConfigError(f"{key}={text} is an empty list: nothing to run")
            sweep[key] = [_coerced(base, key, repr(v)) for v in values]
            continue
        bounds = _as_range(text) if allow_range else None
        if bounds is not None:
            if searched is not None:
                raise SearchConfigError(
                    f"two ranges ({searched[0]} and {key}): bisect searches one property"
                )
            lo, hi = (_coerced(base, key, part) for part in bounds)
            searched = (key, lo, hi)
            continue
        fixed.append(f"{key}={text}")
    apply_overrides(base, fixed)
    return SweepArgs(base, sweep, searched)


def _as_sweep(config: Any, key: str, text: str) -> list[Any] | None:
    """The values of a ``[a, b, c]`` token, or None if the token is a single value."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    value = parse_value(text)
    if not isinstance(value, list):  # [adam, sgd]: bare words
        value = [parse_value(part.strip()) for part in text[1:-1].split(",") if part.strip()]
    if _is_sequence_field(config, key):
        # A list-typed field takes a list as one value; a list of lists sweeps it.
        if not value or not all(isinstance(v, (list, tuple)) for v in value):
            return None
    return value


def _as_range(text: str) -> tuple[str, str] | None:
    lo, sep, hi = text.partition(":")
    if not sep or ":" in hi or not lo.strip() or not hi.strip():
        return None
    if not all(isinstance(parse_value(p.strip()), (int, float)) for p in (lo, hi)):
        return None
    return lo.strip(), hi.strip()


def _is_sequence_field(config: Any, key: str) -> bool:
    from configs._core import is_config
    from configs._hints import field_hints
    from configs._types import strip_annotation

    owner: Any = config
    *parents, last = key.split(".")
    for part in parents:
        owner = getattr(owner, part, None)
        if not is_config(owner):
            return False
    if not is_config(owner):
        return False
    hint = strip_annotation(field_hints(type(owner)).get(last, Any))
    # `list[int] | None` (a None default) is still a list field: look through the union.
    members = typing.get_args(hint) if _is_union(hint) else (hint,)
    for member in members:
        origin = typing.get_origin(member) or member
        if isinstance(origin, type) and issubclass(origin, (list, tuple, set, frozenset)):
            return True
    return False


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _coerced(config: Any, key: str, text: str) -> Any:
    """``text`` as the value ``key`` would get: strict and typed, through the config system."""
    from configs import apply_overrides

    probe = copy.deepcopy(config)
    apply_overrides(probe, [f"{key}={text}"])
    return _get_path(probe, key)


def _get_path(config: Any, key: str) -> Any:
    value = config
    for part in key.split("."):
        if isinstance(value, dict):
            value = value[part] if part in value else value[parse_value(part)]
        elif isinstance(value, (list, tuple)):
            value = value[int(part)]
        else:
            value = getattr(value, part)
    return value


def _set_path(config: Any, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    owner = config
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None or isinstance(owner, (dict, list, tuple)):
            # Containers are copied on assignment by the override grammar: go through it.
            from configs import apply_overrides

            apply_overrides(config, [f"{key}={value!r}"])
            return
    setattr(owner, last, value)


def folder_name(point: dict[str, Any]) -> str:
    """A job folder's name from its swept values: ``lr=0.001,seed=1``.

    Example:
        >>> folder_name({"lr": 0.001, "name": "a/b"})
        'lr=0.001,name=a_b'
    """
    if not point:
        return "run"
    text = ",".join(f"{k}={v}" for k, v in point.items())
    text = re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)
    if len(text) > _MAX_FOLDER_CHARS:  # file names are limited to 255 bytes
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        text = f"{text[: _MAX_FOLDER_CHARS - 11]}-{digest}"
    return text


class _ScriptSearchMixin:
    """Builds each job from the script's config and runs the script's function."""

    base_dir: str
    base_experiment_config: Any
    function: Any

    def get_experiment_config_and_base_dir(self, **props: Any) -> tuple[Any, str]:
        searched = getattr(self, "prop", None)
        if searched in props:  # the searched value first in the folder name: width=42,seed=1
            props = {searched: props[searched], **props}
        config = copy.deepcopy(self.base_experiment_config)
        for key, value in props.items():
            _set_path(config, key, value)
        folder = os.path.join(self.base_dir, folder_name(props))
        if "base_dir" in getattr(type(config), "__pydra_fields__", ()):
            config.base_dir = folder
        config.finalize()
        return config, folder

    def run_experiment_config(self, config: Any) -> Any:
        return self.function(config)


@pydraclass
class ScriptGridSearch(_ScriptSearchMixin, GridSearchConfig):
    """A grid search over a script's function (what ``runner grid`` runs)."""

    #: The script's function, ``fn(config) -> result``.
    function: Any = None


@pydraclass
class ScriptBinarySearch(_ScriptSearchMixin, BinarySearchConfig):
    """A binary search over a script's function (what ``runner bisect`` runs)."""

    #: The script's function, ``fn(config) -> result``.
    function: Any = None
    #: The success expression over ``result`` (see :mod:`runner._expr`).
    success: str = "bool(result)"
    #: How the seeds' verdicts combine: "all", "any" or "mean" (see the module docstring).
    agg: Literal["all", "any", "mean"] = "all"

    def agg_results(self, results: list[Any]) -> tuple[bool | None, Any]:
        """A value's ``(success, result)`` over its jobs that ran (see the module docstring)."""
        ok = [r for r in results if r.success]
        if not ok:
            return None, None
        values = [r.result for r in ok]
        if self.method == "probabilistic":
            # The jobs were judged one by one: the value's verdict is their share of
            # successes against target_rate; --agg only shapes the result reported.
            verdicts = [self._passes(v) for v in values]
            shown: Any = values[0] if len(values) == 1 else values
            if self.agg == "mean":
                # Only what is shown: results with no number to average stay as they are.
                with contextlib.suppress(ExpressionError):
                    shown = mean_result(values)
            return sum(verdicts) >= self.target_rate * len(verdicts), shown
        if self.agg == "mean":
            mean = mean_result(values)
            return self._passes(mean), mean
        verdicts = [self._passes(v) for v in values]
        success = all(verdicts) if self.agg == "all" else any(verdicts)
        return success, values[0] if len(values) == 1 else values

    def job_success(self, result: Any) -> bool | None:
        """One job's verdict (``--method probabilistic``): the success expression on its
        own result, whatever ``--agg`` says; None for a job that failed (not counted)."""
        return self._passes(result.result) if result.success else None

    def _passes(self, result: Any) -> bool:
        """The success expression on one result (a job's, or the mean of a value's)."""
        return bool(compile_expression(self.success).evaluate({"result": result}))

    def margin(self, result: Any) -> float | None:
        if self.method == "probabilistic" and self.agg != "mean" and isinstance(result, list):
            # Each job was judged alone: the margin that says something is the mean's.
            try:
                result = mean_result(result)
            except ExpressionError:
                return None
            return comparison_margin(self.success, result)
        return seeds_margin(self.success, result, self.agg)


def mean_result(values: Sequence[Any]) -> Any:
    """The mean of numbers, or of dicts key by key (numeric keys present in all of them).

    Example:
        >>> mean_result([1, 2]), mean_result([{"acc": 0.5, "tag": "a"}, {"acc": 0.7, "tag": "b"}])
        (1.5, {'acc': 0.6})
    """
    if all(_is_number(v) for v in values):
        return statistics.fmean(values)
    if all(isinstance(v, dict) for v in values):
        keys = [k for k in values[0] if all(k in v and _is_number(v[k]) for v in values)]
        if keys:
            return {k: statistics.fmean(v[k] for v in values) for k in keys}
    raise ExpressionError(
        f"--agg mean needs numeric results or dicts with numeric values, got {values[0]!r:.100}; "
        "use --agg all or --agg any"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def default_base_dir(script: ScriptFunction) -> str:
    """``results/<function>_<timestamp>``: a fresh folder per run unless ``--base-dir`` says otherwise."""
    return os.path.join("results", f"{script.fn.__name__}_{time.strftime('%Y%m%d_%H%M%S')}")


def build_grid_search(
    script: ScriptFunction,
    tokens: Sequence[str],
    *,
    base_dir: str,
    timeout: float | None = None,
    retries: int = 0,
) -> ScriptGridSearch:
    """The grid search the tokens describe (validated; nothing runs yet).

    Example:
        >>> # grid = build_grid_search(load_function("t.py:train"), ["seed=[1,2]"], base_dir="r")
    """
    args = parse_sweep_args(script.config_class, tokens)
    return ScriptGridSearch(
        base_dir=base_dir,
        sweep_props=args.sweep,
        base_experiment_config=args.base_config,
        function=script.fn,
        timeout=timeout,
        retries=retries,
    )


def build_binary_search(
    script: ScriptFunction,
    tokens: Sequence[str],
    *,
    base_dir: str,
    precision: float,
    success: str,
    seeds: Sequence[Any] = (),
    seed_key: str = "seed",
    agg: str = "all",
    lower: bool = True,
    scale: str = "linear",
    parallel_points: int | str = "auto",
    timeout: float | None = None,
    retries: int = 0,
    method: str = "bisection",
    **method_options: Any,
) -> ScriptBinarySearch:
    """The binary search the tokens describe (validated; nothing runs yet).

    ``method_options`` are the method's own fields of :class:`BinarySearchConfig`
    (``confidence``, ``max_jobs``, ``target_rate``; ``repetitions``,
    ``test_range_ends``); those left out keep the config's defaults.

    With ``method="probabilistic"`` and no ``seeds``, the seeds of
    :data:`DEFAULT_SEED_POOL` are the pool of repetitions (unless ``seed_key`` is
    swept on the command line, ``seed=[...]``, which is then the pool).

    Raises:
        SearchConfigError: No ``key=lo:hi`` token, a bad ``--agg`` or ``--method``, a
            probabilistic search with no seed field to draw repetitions from...
        ExpressionError: The success expression is not allowed.

    Example:
        >>> # build_binary_search(script, ["num_parameters=10:100"], base_dir="r",
        >>> #                     precision=1, success="result >= 0.5", seeds=[42, 43])
    """
    compile_expression(success)  # fail before anything runs
    if agg not in AGGREGATIONS:
        raise SearchConfigError(f"--agg {agg!r} must be one of {', '.join(AGGREGATIONS)}")
    args = parse_sweep_args(script.config_class, tokens, allow_range=True)
    if args.searched is None:
        raise SearchConfigError(
            "no range to search: give one key=lo:hi token, e.g. num_parameters=10:100"
        )
    if method not in METHODS:
        raise SearchConfigError(f"--method {method!r} must be one of {', '.join(METHODS)}")
    sweep = dict(args.sweep)
    if method == "probabilistic" and not seeds and seed_key not in sweep:
        seeds = _default_seed_pool(args.base_config, seed_key, tokens)
    if seeds:
        if seed_key in sweep:
            raise SearchConfigError(f"{seed_key} is given both as --seeds and as {seed_key}=[...]")
        sweep[seed_key] = [_coerced(args.base_config, seed_key, repr(s)) for s in seeds]
    prop, lo, hi = args.searched
    return ScriptBinarySearch(
        base_dir=base_dir,
        sweep_props=sweep,
        base_experiment_config=args.base_config,
        function=script.fn,
        prop=prop,
        range=(lo, hi),
        precision=precision,
        success_direction_lower=lower,
        scale=scale,  # type: ignore[arg-type]
        parallel_points=parallel_points,  # type: ignore[arg-type]
        success=success,
        agg=agg,  # type: ignore[arg-type]
        timeout=timeout,
        retries=retries,
        method=method,  # type: ignore[arg-type]
        **method_options,
    )


def _default_seed_pool(config: Any, seed_key: str, tokens: Sequence[str]) -> Sequence[Any]:
    """:data:`DEFAULT_SEED_POOL`, once ``seed_key`` is known to be a field the command
    line leaves free; else the error says how to give the pool."""
    fixed = [t for t in tokens if t.partition("=")[0].strip() == seed_key]
    if fixed:
        raise SearchConfigError(
            f"{fixed[0]} fixes the seed, but --method probabilistic runs each value again "
            f"with a new seed; drop {fixed[0]} (the default pool is seeds "
            f"{DEFAULT_SEED_POOL[0]}..{DEFAULT_SEED_POOL[-1]}) or give the pool, e.g. "
            f"--seeds 0,1,2,3"
        )
    try:
        _coerced(config, seed_key, repr(DEFAULT_SEED_POOL[0]))
    except Exception as exc:  # not a field, or not one an int seed fits
        raise SearchConfigError(
            f"--method probabilistic runs each value again with a new seed from a pool, but "
            f"--seed-key {seed_key!r} is no field of {type(config).__name__} that takes "
            f"seed {DEFAULT_SEED_POOL[0]} ({exc}); name the config's seed field with "
            f"--seed-key KEY (the pool is then seeds {DEFAULT_SEED_POOL[0]}.."
            f"{DEFAULT_SEED_POOL[-1]}, or the values --seeds lists, e.g. --seeds 0,1,2,3)"
        ) from None
    return DEFAULT_SEED_POOL
