"""What one job is, and how it is identified.

A job is anything with ``run()`` and ``get_out_file()`` (the spec's contract);
:class:`Job` is the one the searches build: a run function applied to an
experiment config, in the experiment's own folder.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import math
import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Job",
    "JobLike",
    "OUT_FILE_NAME",
    "config_to_dict",
    "config_hash",
    "dict_hash",
    "expand_sweep",
    "job_dir_of",
]

#: The name the spec gives each job's log.
OUT_FILE_NAME = "experiment_output.log"


@runtime_checkable
class JobLike(Protocol):
    """The duck type the scheduler runs: ``run()`` does the work, its log goes to ``get_out_file()``."""

    def run(self) -> Any: ...

    def get_out_file(self) -> str: ...


@dataclasses.dataclass
class Job:
    """One experiment run: ``run_fn(config)`` executed in its own process, logging to ``base_dir``.

    Example:
        >>> job = Job(run_fn=len, config=[1, 2, 3], base_dir="/tmp/runner-doc-job")
        >>> job.run(), job.get_out_file()
        (3, '/tmp/runner-doc-job/experiment_output.log')
    """

    run_fn: Callable[[Any], Any]
    config: Any
    base_dir: str
    #: Seconds before the job's process group is terminated; ``None`` waits forever.
    timeout: float | None = None
    #: Extra attempts for crashes that are not the job's own exception (signals, OOM kills).
    retries: int = 0
    #: The sweep point that produced this job, e.g. ``{"num_parameters": 55, "seed": 42}``.
    point: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: What this job shares with the other jobs of its search (a
    #: :class:`runner.job_pickle.SharedObject`): its job.pkl references it instead of
    #: holding a copy. Not part of the job's identity.
    shared: Any = dataclasses.field(default=None, compare=False, repr=False)

    def run(self) -> Any:
        return self.run_fn(self.config)

    def get_out_file(self) -> str:
        return os.path.join(self.base_dir, OUT_FILE_NAME)

    def config_dict(self) -> Any:
        return config_to_dict(self.config)

    def config_hash(self) -> str:
        return config_hash(self.config)


def job_dir_of(job: JobLike) -> str:
    """The folder that holds a job's files: the folder of its out file."""
    return os.path.dirname(os.path.abspath(job.get_out_file()))


def config_to_dict(config: Any) -> Any:
    """A JSON-able, deterministic view of a config: pydraclasses, dataclasses, containers, scalars.

    Values with no faithful JSON form fall back to ``repr`` so the result is always
    serialisable; two configs that differ only in such a value may then look equal
    to :func:`config_hash` if their reprs are equal, which is the best that can be done.
    """
    to_dict = getattr(config, "to_dict", None)
    if callable(to_dict) and not isinstance(config, type):
        return config_to_dict(to_dict())
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, dict):
        return {str(k): config_to_dict(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, (set, frozenset)):
        return sorted((config_to_dict(v) for v in config), key=repr)
    if isinstance(config, enum.Enum):
        return config_to_dict(config.value)
    if isinstance(config, float) and not math.isfinite(config):
        return repr(config)
    if config is None or isinstance(config, (bool, int, float, str)):
        return config
    if hasattr(config, "item") and callable(config.item) and getattr(config, "ndim", 0) == 0:
        try:  # numpy and torch scalars
            return config_to_dict(config.item())
        except (TypeError, ValueError):
            pass
    if hasattr(config, "tobytes") and hasattr(config, "shape") and hasattr(config, "dtype"):
        # Arrays: their repr elides the middle of large ones, so hash the bytes instead.
        import hashlib  # here: the job processes import this module, only the driver hashes

        digest = hashlib.sha256(config.tobytes()).hexdigest()[:16]
        return {
            "array": {"dtype": str(config.dtype), "shape": list(config.shape), "sha256": digest}
        }
    if isinstance(config, type) or callable(config) and hasattr(config, "__qualname__"):
        # Functions and classes by name: their repr holds an address that changes every run.
        return f"{getattr(config, '__module__', '?')}.{config.__qualname__}"
    if hasattr(config, "__dict__") and type(config).__repr__ is object.__repr__:
        # A plain object's default repr is its address; its attributes say what it is.
        return {type(config).__qualname__: config_to_dict(vars(config))}
    return repr(config)


def config_hash(config: Any) -> str:
    """A stable hash of a config's content, the key that lets a resumed search reuse a job.

    Example:
        >>> config_hash({"lr": 0.1, "seed": 1}) == config_hash({"seed": 1, "lr": 0.1})
        True
    """
    return dict_hash(config_to_dict(config))


def dict_hash(config_dict: Any) -> str:
    """:func:`config_hash` of a config already turned into a dict by :func:`config_to_dict`."""
    import hashlib  # here: the job processes import this module, only the driver hashes

    canonical = json.dumps(config_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def expand_sweep(sweep_props: dict[str, Any]) -> list[dict[str, Any]]:
    """The cross product of ``sweep_props``, in order: the last key varies fastest.

    Example:
        >>> expand_sweep({"lr": [0.1, 0.01], "seed": [1, 2]})
        [{'lr': 0.1, 'seed': 1}, {'lr': 0.1, 'seed': 2}, {'lr': 0.01, 'seed': 1}, {'lr': 0.01, 'seed': 2}]
        >>> expand_sweep({})
        [{}]
    """
    keys = list(sweep_props)
    return [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*sweep_props.values())
    ]
