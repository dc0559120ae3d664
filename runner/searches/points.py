"""Turning a search config into jobs, after checking it: one place for both search kinds.

Validation happens before the first job starts (rule 3 of DESIGN.md): every
message names the value at fault, the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
from collections.abc import Iterable, Sequence
from typing import Any

from configs import REQUIRED, InvalidConfigurationError
from runner.errors import SearchConfigError
from runner.job_pickle import SharedObject
from runner.jobs import Job, expand_sweep, job_dir_of

__all__ = [
    "PointBuilder",
    "check_distinct_base_dirs",
    "check_job_dirs_distinct",
    "format_kwargs",
]

_USER_METHODS = ("get_experiment_config_and_base_dir", "run_experiment_config")


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _is_overridden(config: Any, name: str, base: type) -> bool:
    return getattr(type(config), name, None) is not getattr(base, name, None)


class PointBuilder:
    """Validates a search config and turns sweep points into :class:`Job` objects.

    ``searched`` names the property a binary search provides itself (``prop``);
    it is not a sweep key but must be accepted by the user's method.
    """

    def __init__(
        self,
        config: Any,
        *,
        base: type,
        required_methods: Sequence[str] = _USER_METHODS,
        searched: str | None = None,
    ) -> None:
        self.config = config
        self.name = f"{type(config).__name__}(base_dir={getattr(config, 'base_dir', None)!r})"
        self._check_methods(base, required_methods)
        self._check_required_fields()
        self.base_dir = self._check_base_dir()
        self.sweep = self._check_sweep(searched)
        self._check_signature(searched)
        self.points = expand_sweep(self.sweep)
        # The search config (whose method each job runs) is pickled once for all its jobs.
        self.shared = SharedObject(config, self.base_dir)

    # -- validation -----------------------------------------------------------------

    def _fail(self, message: str) -> SearchConfigError:
        return SearchConfigError(f"{self.name}: {message}")

    def _check_methods(self, base: type, required: Sequence[str]) -> None:
        missing = [m for m in required if not _is_overridden(self.config, m, base)]
        if missing:
            raise self._fail(
                f"method(s) {', '.join(missing)} not defined; subclass {base.__name__} and "
                "write them (see the README's quick start)"
            )

    def _check_required_fields(self) -> None:
        if not dataclasses.is_dataclass(self.config):
            return
        unset = [
            f.name
            for f in dataclasses.fields(self.config)
            if getattr(self.config, f.name, None) is REQUIRED
        ]
        if unset:
            raise self._fail(
                f"required field(s) {', '.join(unset)} not set; pass them when "
                f"creating {type(self.config).__name__}(...)"
            )

    def _check_base_dir(self) -> str:
        base_dir = self.config.base_dir
        if not isinstance(base_dir, (str, os.PathLike)) or not str(base_dir):
            raise self._fail(f"base_dir={base_dir!r} must be a non-empty path")
        return os.path.abspath(str(base_dir))

    def _check_sweep(self, searched: str | None) -> dict[str, list[Any]]:
        sweep = self.config.sweep_props
        if sweep is None:
            return {}
        if not isinstance(sweep, dict):
            raise self._fail(
                f"sweep_props={sweep!r} must be a dict of lists, e.g. {{'seed': [42, 43]}}"
            )
        checked: dict[str, list[Any]] = {}
        for key, values in sweep.items():
            if not isinstance(key, str):
                raise self._fail(f"sweep_props key {key!r} must be a property name (a str)")
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise self._fail(
                    f"sweep_props[{key!r}]={values!r} must be a list of values, "
                    f"e.g. {{{key!r}: [{values!r}]}}"
                )
            if iter(values) is values:  # a generator or iterator: read once, not picklable
                raise self._fail(
                    f"sweep_props[{key!r}] is a {type(values).__name__}, which can be read only "
                    "once and can't be sent to the jobs' processes; pass a list, e.g. "
                    f"{{{key!r}: list(...)}}"
                )
            values = list(values)
            duplicate = _first_duplicate(values)
            if duplicate is not None:
                raise self._fail(
                    f"sweep_props[{key!r}] lists {values[duplicate]!r} more than once; each value is one "
                    "point of the sweep (seeds of a point are another sweep key), so remove the "
                    "repeat"
                )
            if not values:
                raise self._fail(
                    f"sweep_props[{key!r}] is empty, so there is nothing to run; give it at "
                    "least one value or remove the key"
                )
            if key == searched:
                raise self._fail(
                    f"{key!r} is both the searched prop and a sweep_props key; remove it from "
                    "sweep_props (the search chooses its values)"
                )
            checked[key] = values
        return checked

    def _check_signature(self, searched: str | None) -> None:
        method = self.config.get_experiment_config_and_base_dir
        params = [
            p
            for p in inspect.signature(method).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL,)
        ]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
        named = {p.name: p for p in params if p.kind is not p.VAR_KEYWORD}
        provided = set(self.sweep) | ({searched} if searched else set())
        if not takes_any:
            for key in sorted(provided - set(named)):
                what = "prop" if key == searched else "sweep_props key"
                raise self._fail(
                    f"{what} {key!r} is not a parameter of get_experiment_config_and_base_dir"
                    f"({', '.join(named)}).{_did_you_mean(key, named)} Add a parameter "
                    f"{key!r} to the method or fix the name."
                )
        base = self.config.base_experiment_config
        for name, param in named.items():
            if name in provided or param.default is not param.empty:
                continue
            if not hasattr(base, name):
                raise self._fail(
                    f"parameter {name!r} of get_experiment_config_and_base_dir is given by no "
                    f"sweep_props key and is not an attribute of base_experiment_config "
                    f"({type(base).__name__}); add {name!r} to sweep_props, give the parameter "
                    "a default, or set it on the base experiment config"
                )
        self._params = named
        self._takes_any = takes_any

    # -- building jobs ----------------------------------------------------------------

    def kwargs_for(self, point: dict[str, Any]) -> dict[str, Any]:
        """The arguments for ``get_experiment_config_and_base_dir`` at one point.

        A parameter no sweep provides takes the base experiment config's attribute
        of the same name (the spec's grid snippet relies on this).
        """
        base = self.config.base_experiment_config
        kwargs = {
            name: getattr(base, name)
            for name, param in self._params.items()
            if name not in point and param.default is param.empty and hasattr(base, name)
        }
        kwargs.update(point)
        return kwargs

    def job_for(self, point: dict[str, Any]) -> Job:
        kwargs = self.kwargs_for(point)
        try:
            returned = self.config.get_experiment_config_and_base_dir(**kwargs)
        except InvalidConfigurationError as exc:
            if "'base_dir'" not in str(exc):
                raise
            # The spec's own quick start sets config.base_dir on a config without that field.
            raise self._fail(
                f"{exc}. Give the experiment config a base_dir field: subclass "
                "runner.BaseExperimentConfig (from runner.configs.base_experiment_config), or "
                "add `base_dir: str | None = None` to it"
            ) from exc
        if not (isinstance(returned, tuple) and len(returned) == 2):
            raise self._fail(
                f"get_experiment_config_and_base_dir({format_kwargs(kwargs)}) returned "
                f"{returned!r}; it must return (experiment_config, experiment_base_dir)"
            )
        experiment_config, experiment_dir = returned
        if not isinstance(experiment_dir, (str, os.PathLike)) or not str(experiment_dir):
            raise self._fail(
                f"get_experiment_config_and_base_dir({format_kwargs(kwargs)}) returned the "
                f"folder {experiment_dir!r}; it must be a non-empty path"
            )
        return Job(
            run_fn=self.config.run_experiment_config,
            config=experiment_config,
            base_dir=os.path.abspath(str(experiment_dir)),
            timeout=self.config.timeout,
            retries=self.config.retries,
            point=dict(kwargs),
            shared=self.shared,
        )

    def jobs_for(self, extra: dict[str, Any] | None = None) -> list[Job]:
        """One job per sweep point, in cross-product order, with ``extra`` props added."""
        return [self.job_for({**point, **(extra or {})}) for point in self.points]


def format_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def check_job_dirs_distinct(jobs: Sequence[Job], owner: str) -> None:
    """Two jobs writing to one folder would overwrite each other's results: refuse."""
    seen: dict[str, Job] = {}
    for job in jobs:
        folder = job_dir_of(job)
        if folder in seen:
            raise SearchConfigError(
                f"{owner}: the points {format_kwargs(seen[folder].point)} and "
                f"{format_kwargs(job.point)} both map to the experiment folder {folder!r}; "
                "make get_experiment_config_and_base_dir put every swept value in the folder name"
            )
        seen[folder] = job


def check_distinct_base_dirs(builders: Sequence[PointBuilder]) -> None:
    """Two searches in one call must not share a ``base_dir`` (their results would mix)."""
    seen: dict[str, PointBuilder] = {}
    for builder in builders:
        if builder.base_dir in seen:
            raise SearchConfigError(
                f"{seen[builder.base_dir].name} and {builder.name} share base_dir "
                f"{builder.base_dir!r}; give each search its own base_dir"
            )
        seen[builder.base_dir] = builder


def _first_duplicate(values: Sequence[Any]) -> int | None:
    """The index of the first value seen before (``1`` and ``1.0`` are one value), or None."""
    seen: set[Any] = set()
    unhashable: list[Any] = []
    for i, value in enumerate(values):
        try:
            if value in seen:
                return i
            seen.add(value)
        except TypeError:  # a list, dict or array value: compared by equality, rarely many
            if any(_equal(value, other) for other in unhashable):
                return i
            unhashable.append(value)
    return None


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays, whose == is elementwise: not a duplicate we can tell
        return False
