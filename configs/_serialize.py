"""Configs to plain data and back: dicts, YAML, JSON, pickle and dill files.

``to_dict`` keeps Python values (tuples stay tuples) so that ``from_dict(to_dict(c)) == c``;
the file formats then turn tuples into lists, enums into their names and paths into
strings, and ``from_dict`` turns them back using the annotations. A nested config
whose class the annotation does not pin down (a field typed ``Any``, a base class,
a union) is saved with a ``_type: "module:QualName"`` entry naming its class.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import numbers
import os
import pathlib
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin

from configs._core import class_path, is_config, lookup_class
from configs._hints import field_hints
from configs._types import (
    TYPE_KEY,
    CoercionError,
    coerce,
    describe,
    is_union,
    short_repr,
    strip_annotation,
)
from configs.errors import InvalidConfigurationError, unknown_name_message

__all__ = [
    "dump_yaml",
    "item_type",
    "from_dict",
    "load_dill",
    "load_json",
    "load_yaml",
    "save_dill",
    "save_json",
    "save_pickle",
    "save_yaml",
    "to_dict",
    "to_plain",
]

C = TypeVar("C")
PathLike = Union[str, "os.PathLike[str]"]


def to_dict(config: Any, *, yaml_compatible: bool = False) -> dict[str, Any]:
    """The fields of ``config`` as a dict, nested configs as dicts too.

    Python values are kept (tuples stay tuples) unless ``yaml_compatible``: then the
    result is plain data that ``yaml.safe_dump`` and ``json.dumps`` accept (tuples and
    sets become lists, enums their names, paths strings, and a value with no such form
    its ``repr``).

    Raises:
        InvalidConfigurationError: the configs form a reference cycle.
    """
    data = _config_data(config, type(config).__name__, {})
    if yaml_compatible:
        plain: dict[str, Any] = to_plain(data, path=type(config).__name__, lenient=True)
        return plain
    return data


def _config_data(config: Any, path: str, active: dict[int, str]) -> dict[str, Any]:
    if id(config) in active:
        raise InvalidConfigurationError(
            f"cannot convert {type(config).__name__} to a dict: reference cycle, {path} is "
            f"{active[id(config)]} again"
        )
    active[id(config)] = path
    hints = field_hints(type(config))
    try:
        return {
            f.name: _to_data(getattr(config, f.name), hints.get(f.name), f"{path}.{f.name}", active)
            for f in dataclasses.fields(config)
        }
    finally:
        del active[id(config)]


def _pins(tp: Any, cls: type) -> bool:
    """Whether annotation ``tp`` alone says a nested config is of class ``cls``."""
    tp = strip_annotation(tp)
    if is_union(tp):
        members = [a for a in get_args(tp) if a is not type(None)]
        return len(members) == 1 and members[0] is cls
    return tp is cls


def item_type(tp: Any, index: int) -> Any:
    """The annotation of item ``index`` of a container annotated ``tp`` (``Any`` if unknown)."""
    tp = strip_annotation(tp)
    origin = get_origin(tp)
    args = get_args(tp)
    if not args:
        return Any
    if origin in (list, set, frozenset):
        return args[0]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[index] if index < len(args) else Any
    if origin is dict:
        return args[1]
    return Any


def _to_data(value: Any, tp: Any, path: str, active: dict[int, str]) -> Any:
    if is_config(value):
        data = _config_data(value, path, active)
        if not _pins(tp, type(value)):
            data = {TYPE_KEY: class_path(type(value)), **data}
        return data
    if isinstance(value, list):
        return [_to_data(v, item_type(tp, i), f"{path}[{i}]", active) for i, v in enumerate(value)]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(
            _to_data(v, item_type(tp, i), f"{path}[{i}]", active) for i, v in enumerate(value)
        )
    if isinstance(value, dict):
        return {
            k: _to_data(v, item_type(tp, 0), f"{path}[{k!r}]", active) for k, v in value.items()
        }
    return value


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build a ``cls`` from a dict such as :func:`to_dict` returns, checking every key and value.

    Raises:
        InvalidConfigurationError: an unknown key (with suggestions) or a value that does not fit.
    """
    if not isinstance(data, Mapping):
        raise InvalidConfigurationError(
            f"{cls.__name__}.from_dict needs a mapping of field names to values, "
            f"got {short_repr(data)} ({type(data).__name__})"
        )
    values = dict(data)
    tag = values.pop(TYPE_KEY, None)
    if tag is not None and tag != class_path(cls):
        named = lookup_class(str(tag))
        if named is None or not issubclass(named, cls):
            raise InvalidConfigurationError(
                f"{cls.__name__}.from_dict: {TYPE_KEY}={tag!r} does not name a subclass of "
                f"{cls.__name__} defined in this process"
            )
        return from_dict(named, values)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = field_hints(cls)
    init_kwargs: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise InvalidConfigurationError(unknown_name_message(cls.__name__, str(key), fields))
        tp = hints.get(key)
        try:
            converted = coerce(value, tp)
        except CoercionError as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise InvalidConfigurationError(
                f"{cls.__name__}.{key}: expected {describe(tp)}, "
                f"got {short_repr(value)} ({type(value).__name__}){detail}"
            ) from None
        (init_kwargs if fields[key].init else later)[key] = converted
    config = cls(**init_kwargs)
    for key, value in later.items():
        setattr(config, key, value)
    return config


def to_plain(value: Any, *, path: str = "config", lenient: bool = False) -> Any:
    """``value`` as YAML/JSON-safe data: lists, string-keyed dicts, scalars.

    With ``lenient`` a value that has no such form becomes its ``repr`` (for display);
    otherwise it is an error that names where it sits.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if is_config(value):
        value = to_dict(value)
    if isinstance(value, dict):
        return {
            _plain_key(k, path, lenient): to_plain(v, path=f"{path}.{k}", lenient=lenient)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(v, path=f"{path}[{i}]", lenient=lenient) for i, v in enumerate(value)]
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if lenient:
        return repr(value)
    raise InvalidConfigurationError(
        f"cannot save {path}: a {type(value).__name__} has no YAML/JSON form "
        "(save_pickle keeps any value)"
    )


def _plain_key(key: Any, path: str, lenient: bool) -> Any:
    if isinstance(key, (str, int, float, bool)) or key is None:
        return key
    plain = to_plain(key, path=path, lenient=lenient)
    # A tuple key would become a list, which cannot be a key: its text is, "(1, 2)".
    return plain if isinstance(plain, (str, int, float, bool)) or plain is None else str(key)


def dump_yaml(config: Any, *, lenient: bool = False) -> str:
    """``config`` as a YAML document, fields in declaration order."""
    import yaml  # here, not at the top: every job process imports configs, few write YAML

    data = to_plain(to_dict(config), path=type(config).__name__, lenient=lenient)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _write(path: PathLike, text: str) -> None:
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def save_yaml(config: Any, path: PathLike) -> None:
    """Write ``config`` to ``path`` as YAML (parent folders are created)."""
    _write(path, dump_yaml(config))


def save_json(config: Any, path: PathLike) -> None:
    """Write ``config`` to ``path`` as indented JSON (parent folders are created)."""
    data = to_plain(to_dict(config), path=type(config).__name__)
    _write(path, json.dumps(data, indent=2) + "\n")


def save_pickle(config: Any, path: PathLike) -> None:
    """Write ``config`` to ``path`` with cloudpickle (classes defined in ``__main__`` included).

    The file loads with the standard ``pickle.load``. Only unpickle files you trust.
    """
    import cloudpickle

    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as fh:
        cloudpickle.dump(config, fh)


def _dill() -> Any:
    try:
        import dill
    except ImportError as exc:
        raise ImportError(
            "save_dill/load_dill need the optional package 'dill', which is not installed: "
            "pip install dill (or use save_pickle, which needs nothing extra)"
        ) from exc
    return dill


def save_dill(config: Any, path: PathLike) -> None:
    """Write ``config`` to ``path`` with dill (``dill.load`` reads it; trusted files only).

    Raises:
        ImportError: dill is not installed (it is an optional dependency).
    """
    dill = _dill()
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as fh:
        dill.dump(config, fh)


def load_dill(cls: type[C], path: PathLike) -> C:
    """Read a ``cls`` written by :func:`save_dill` (this unpickles: trusted files only).

    Raises:
        ImportError: dill is not installed.
        InvalidConfigurationError: the file holds something other than a ``cls``.
    """
    dill = _dill()
    with open(pathlib.Path(path), "rb") as fh:
        loaded = dill.load(fh)
    if not isinstance(loaded, cls):
        raise InvalidConfigurationError(
            f"{path} holds a {type(loaded).__name__}, not a {cls.__name__}; "
            f"load it with the class it was saved from"
        )
    return loaded


def _load_mapping(cls: type, path: PathLike, data: Any) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidConfigurationError(
            f"{path}: expected a mapping of {cls.__name__} fields, got a {type(data).__name__}"
        )
    return data


def load_yaml(cls: type[C], path: PathLike) -> C:
    """Read a ``cls`` from a YAML file (``yaml.safe_load``: no code runs)."""
    import yaml

    data = yaml.safe_load(pathlib.Path(path).read_text(encoding="utf-8"))
    return from_dict(cls, _load_mapping(cls, path, data))


def load_json(cls: type[C], path: PathLike) -> C:
    """Read a ``cls`` from a JSON file."""
    data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    return from_dict(cls, _load_mapping(cls, path, data))
