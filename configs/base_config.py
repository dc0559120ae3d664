"""The ``@pydraclass`` decorator and :class:`ConfigMeta`, the base every config class gets.

A pydraclass is a keyword-only dataclass that refuses unknown names, checks value
types against its annotations, copies mutable defaults per instance, finalizes
nested configs bottom-up and (de)serialises itself. See ``configs/README.md``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, get_origin

from configs import _serialize
from configs._core import MARKER, REQUIRED, CopyDefault, is_config_class, register_class
from configs._finalize import FINALIZED_KEY, finalize_tree, in_finalize, in_hook, is_finalized
from configs._hints import field_hints, remember_locals, resolve_now
from configs._replace import replace_field
from configs._repr import config_repr
from configs._types import describe, matches, short_repr
from configs.errors import InvalidConfigurationError, UnknownArgumentError, unknown_name_message

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
elif sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10 without typing_extensions: the marker is only for type checkers

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda fn: fn


__all__ = ["REQUIRED", "ConfigMeta", "pydraclass"]

T = TypeVar("T")
_C = TypeVar("_C", bound="ConfigMeta")
_PathLike = _serialize.PathLike

#: Methods and properties of every config; a field may not take one of these names.
RESERVED_NAMES = frozenset(
    {
        "finalize",
        "custom_finalize",
        "is_finalized",
        "to_dict",
        "from_dict",
        "save_yaml",
        "load_yaml",
        "save_json",
        "load_json",
        "save_pickle",
        "save_dill",
        "load_dill",
    }
)


class ConfigMeta:
    """The base of every ``@pydraclass``: strictness, finalization and (de)serialisation.

    ``@pydraclass`` adds it as a base class when the class does not have it yet, so
    ``isinstance(obj, ConfigMeta)`` tells whether ``obj`` is a config. Subclass it
    explicitly (``class Train(ConfigMeta)``) when a static type checker should see
    these methods on your class.

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class Train:
        ...     lr: float = 1e-3
        >>> isinstance(Train(), ConfigMeta), Train(lr=0.1)
        (True, Train(lr=0.1))
    """

    __pydra_fields__: ClassVar[frozenset[str]] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        # Names starting with "_" are private bookkeeping (ours or the user's): never fields,
        # never checked. Everything else must be a field or a settable property.
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        cls = type(self)
        if name in cls.__pydra_fields__:
            hint = field_hints(cls).get(name)
            if not matches(value, hint):
                raise InvalidConfigurationError(_type_error(cls.__name__, name, hint, value))
            object.__setattr__(self, name, value)
            if not in_finalize() and vars(self).get(FINALIZED_KEY):
                # Changed after finalize: the next finalize() re-runs the hooks that depend on it.
                vars(self)[FINALIZED_KEY] = False
            return
        static = inspect.getattr_static(cls, name, None)
        if hasattr(type(static), "__set__"):  # a property with a setter, or another descriptor
            object.__setattr__(self, name, value)
            return
        message = unknown_name_message(cls.__name__, name, cls.__pydra_fields__)
        if static is not None:
            message = f"{message} ({name!r} is a {type(static).__name__} of the class, not a field)"
        raise InvalidConfigurationError(message)

    def __repr__(self) -> str:
        return config_repr(self)

    def finalize(self) -> None:
        """Finalize nested configs (bottom-up), then this config's own hook, once.

        The hook is ``custom_finalize(self)``, or a ``finalize(self)`` written in the
        class: ``@pydraclass`` wraps the latter so that both behave the same. Calling
        ``finalize()`` again does nothing unless a field was assigned since.

        Raises:
            InvalidConfigurationError: a ``REQUIRED`` field is unset, or configs form a cycle.
        """
        if in_hook(self):
            # Reached from the pass (or from a subclass's `super().finalize()`): run the hook.
            hook = getattr(self, "custom_finalize", None)
            if callable(hook):
                hook()
            return
        finalize_tree(self)

    @property
    def is_finalized(self) -> bool:
        """Whether ``finalize()`` ran and no field was assigned since."""
        return is_finalized(self)

    def to_dict(self, yaml_compatible: bool = False) -> dict[str, Any]:
        """The fields as a dict; nested configs become dicts (round trip with ``from_dict``).

        Args:
            yaml_compatible: Plain data only (tuples and sets as lists, enums as names,
                paths as strings, other objects as their ``repr``), ready for
                ``yaml.safe_dump``, ``json.dumps`` or an experiment tracker.
        """
        return _serialize.to_dict(self, yaml_compatible=yaml_compatible)

    @classmethod
    def from_dict(cls: type[_C], data: Any) -> _C:
        """Build a config from a dict, coercing values to the annotations (nested dicts too)."""
        return _serialize.from_dict(cls, data)

    def save_yaml(self, path: _PathLike) -> None:
        """Write the config as YAML; ``load_yaml`` reads it back."""
        _serialize.save_yaml(self, path)

    @classmethod
    def load_yaml(cls: type[_C], path: _PathLike) -> _C:
        """Read a config from a YAML file (``yaml.safe_load``; no code runs)."""
        return _serialize.load_yaml(cls, path)

    def save_json(self, path: _PathLike) -> None:
        """Write the config as JSON; ``load_json`` reads it back."""
        _serialize.save_json(self, path)

    @classmethod
    def load_json(cls: type[_C], path: _PathLike) -> _C:
        """Read a config from a JSON file."""
        return _serialize.load_json(cls, path)

    def save_pickle(self, path: _PathLike) -> None:
        """Write the config with cloudpickle (``pickle.load`` reads it; trusted files only)."""
        _serialize.save_pickle(self, path)

    def save_dill(self, path: _PathLike) -> None:
        """Write the config with dill, an optional dependency (``pip install dill``)."""
        _serialize.save_dill(self, path)

    @classmethod
    def load_dill(cls: type[_C], path: _PathLike) -> _C:
        """Read a config written by ``save_dill`` (this unpickles: trusted files only)."""
        return _serialize.load_dill(cls, path)

    def replace(self, name: str, new: Any, /, **kwargs: Any) -> Any:
        """Put a new nested config in field ``name``: a class named by ``new``, or ``new`` itself.

        ``new`` is a class name (``"SGDConfig"``), a class, or a config instance. A
        name must be one of the config classes the field's annotation allows (a union
        member, or a subclass of one); ``kwargs`` go to its constructor. The new value is
        type checked like any assignment. Returns the new nested config.

        Raises:
            InvalidConfigurationError: an unknown field or class name (with "did you
                mean"), a class the annotation does not allow, or a bad keyword
                (that one is also a ``TypeError``).

        Example:
            >>> from configs import pydraclass
            >>> @pydraclass
            ... class Adam:
            ...     lr: float = 1e-3
            >>> @pydraclass
            ... class SGD:
            ...     lr: float = 0.1
            ...     momentum: float = 0.9
            >>> @pydraclass
            ... class Train:
            ...     optimizer: Adam | SGD = Adam()
            >>> config = Train()
            >>> config.replace("optimizer", "SGD", momentum=0.5)
            SGD(lr=0.1, momentum=0.5)
            >>> config.replace("optimizer", "Adamw")
            Traceback (most recent call last):
            ...
            configs.errors.InvalidConfigurationError: Train.replace('optimizer', 'Adamw'): 'Adamw' is not an allowed type for Train.optimizer (Adam | SGD); did you mean 'Adam'?
        """
        return replace_field(self, name, new, kwargs)


def _type_error(owner: str, name: str, hint: Any, value: Any) -> str:
    message = (
        f"{owner}.{name}: expected {describe(hint)}, "
        f"got {short_repr(value)} ({type(value).__name__})"
    )
    if isinstance(value, bool):
        message += "; a bool is not accepted as a number, write 1 or 0"
    return message


_CLASSVAR_TEXT = re.compile(r"^\s*(?:typing\.|t\.)?(ClassVar|InitVar)\b")


def _is_classvar_or_initvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return bool(_CLASSVAR_TEXT.match(annotation))
    return (
        annotation is ClassVar
        or get_origin(annotation) is ClassVar
        or isinstance(annotation, dataclasses.InitVar)
    )


def _own_field_annotations(cls: type) -> dict[str, Any]:
    annotations = cls.__dict__.get("__annotations__", {})
    return {n: a for n, a in annotations.items() if not _is_classvar_or_initvar(a)}


def _is_immutable(value: Any) -> bool:
    if value is None or value is REQUIRED or isinstance(value, (enum.Enum, type)):
        return True
    if isinstance(value, (int, float, complex, str, bytes, range)):
        return True
    if type(value) in (tuple, frozenset):
        return all(_is_immutable(item) for item in value)
    # Functions are shared by design (a `Callable` default is the same function everywhere).
    return isinstance(value, (types.FunctionType, types.BuiltinFunctionType, functools.partial))


def _check_class(cls: type) -> None:
    for name in _own_field_annotations(cls):
        if name.startswith("_"):
            raise TypeError(
                f"{cls.__name__}.{name}: field names may not start with '_'; such names are "
                "private state, not fields (assign them in __post_init__ or a hook instead)"
            )
        if name in RESERVED_NAMES:
            raise TypeError(
                f"{cls.__name__}.{name}: {name!r} is a method of every config; "
                "choose another field name"
            )
    if "finalize" in cls.__dict__ and "custom_finalize" in cls.__dict__:
        raise TypeError(
            f"{cls.__name__} defines both finalize() and custom_finalize(); they are two "
            "spellings of the same hook, define one"
        )


def _rebuild_with_base(cls: type) -> type:
    """A copy of ``cls`` with :class:`ConfigMeta` among its bases.

    A class's bases cannot be changed in place when its base is ``object``; the copy
    gets every attribute, and the ``__class__`` cells behind zero-argument ``super()``
    are pointed at it.
    """
    bases = tuple(b for b in cls.__bases__ if b is not object) + (ConfigMeta,)
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    namespace["__qualname__"] = cls.__qualname__
    new_cls: type = type(cls)(cls.__name__, bases, namespace)
    for value in namespace.values():
        for fn in _functions_in(value):
            for cell in fn.__closure__ or ():
                try:
                    if cell.cell_contents is cls:
                        cell.cell_contents = new_cls
                except ValueError:  # an empty cell
                    continue
    return new_cls


def _functions_in(value: Any) -> list[types.FunctionType]:
    found: list[types.FunctionType] = []
    candidates = [value, getattr(value, "__func__", None), getattr(value, "func", None)]
    if isinstance(value, property):
        candidates += [value.fget, value.fset, value.fdel]
    for candidate in candidates:
        while candidate is not None:
            if isinstance(candidate, types.FunctionType):
                found.append(candidate)
            candidate = getattr(candidate, "__wrapped__", None)
    return found


def _borrow_overridden_defaults(cls: type) -> None:
    """``lr = 0.1`` in a subclass, without the annotation, overrides the parent's default.

    Plain dataclasses would silently keep the parent's default for ``__init__``.
    """
    inherited: dict[str, type] = {}
    for base in cls.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            for f in dataclasses.fields(base):
                inherited.setdefault(f.name, base)
    own = cls.__dict__.get("__annotations__", {})
    for name, value in list(cls.__dict__.items()):
        if name in inherited and name not in own:
            if isinstance(value, (property, classmethod, staticmethod)):
                continue
            if "__annotations__" not in cls.__dict__:
                cls.__annotations__ = {}
            cls.__dict__["__annotations__"][name] = resolve_now(inherited[name], name)


def _make_defaults_safe(cls: type) -> None:
    for name in _own_field_annotations(cls):
        value = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(value, dataclasses.Field):
            if value.default is not dataclasses.MISSING and not _is_immutable(value.default):
                value.default_factory = CopyDefault(value.default)
                value.default = dataclasses.MISSING
        elif value is not dataclasses.MISSING and not _is_immutable(value):
            setattr(cls, name, dataclasses.field(default_factory=CopyDefault(value)))


def _wrap_user_finalize(cls: type) -> None:
    user_fn = cls.__dict__.get("finalize")
    if user_fn is None or getattr(user_fn, "__pydra_user_finalize__", None) is not None:
        return
    if not isinstance(user_fn, types.FunctionType):
        raise TypeError(f"{cls.__name__}.finalize must be a plain method finalize(self)")

    @functools.wraps(user_fn)
    def finalize(self: Any) -> None:
        if in_hook(self):
            user_fn(self)
        else:
            finalize_tree(self)

    finalize.__pydra_user_finalize__ = user_fn  # type: ignore[attr-defined]
    cls.finalize = finalize  # type: ignore[attr-defined]


def _wrap_init(cls: type) -> None:
    original = cls.__dict__["__init__"]
    fields = dataclasses.fields(cls)
    init_names = frozenset(f.name for f in fields if f.init)
    all_names = tuple(f.name for f in fields)
    # A field with no default at all is REQUIRED: the object can be built and filled in
    # (on the command line, from a file), and finalize() insists it was set.
    no_default = tuple(
        f.name
        for f in fields
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kind = type(self)
        if kind is not cls and MARKER not in kind.__dict__ and _own_field_annotations(kind):
            raise TypeError(
                f"{kind.__name__} declares fields but is not decorated with @pydraclass"
            )
        if args:
            raise TypeError(
                f"{kind.__name__} takes keyword arguments only, got {len(args)} positional "
                f"(write {kind.__name__}({', '.join(f'{n}=...' for n in all_names[:2])}))"
            )
        for key in kwargs:
            if key not in init_names:
                message = unknown_name_message(kind.__name__, key, all_names)
                if key in all_names:
                    message = f"{kind.__name__}.{key} is not set in __init__ (init=False)"
                raise UnknownArgumentError(message)
        for name in no_default:
            kwargs.setdefault(name, REQUIRED)
        original(self, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]


@dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def pydraclass(cls: type[T]) -> type[T]:
    """Turn an annotated class into a strict, keyword-only config dataclass.

    Annotated class attributes are fields; methods and unannotated attributes are not.
    Mutable defaults (``layers: list = [64, 64]``, a nested config instance) are
    deep-copied for every instance. A field set to :data:`REQUIRED`, or with no default,
    must be given before ``finalize()``.

    Args:
        cls: The class to decorate; a subclass of another pydraclass works too.

    Returns:
        The config class (a new class object when ``ConfigMeta`` had to be added as a base).

    Raises:
        TypeError: a field name starts with ``_`` or is a config method name, or the
            class defines both ``finalize`` and ``custom_finalize``.

    Example:
        >>> @pydraclass
        ... class Optimizer:
        ...     name: str = "adam"
        ...     lr: float = 1e-3
        >>> @pydraclass
        ... class Train:
        ...     optimizer: Optimizer = Optimizer()
        ...     layers: list[int] = [64, 64]
        >>> a, b = Train(), Train(layers=[32])
        >>> a.optimizer is b.optimizer, a
        (False, Train(optimizer=Optimizer(name='adam', lr=0.001), layers=[64, 64]))
        >>> a.optimzer = None
        Traceback (most recent call last):
        ...
        configs.errors.InvalidConfigurationError: Train has no field 'optimzer'; did you mean 'optimizer'?
    """
    if not isinstance(cls, type):
        raise TypeError(f"@pydraclass decorates a class, got {cls!r}")
    if MARKER in cls.__dict__:
        return cls
    _check_class(cls)
    if not issubclass(cls, ConfigMeta):
        cls = _rebuild_with_base(cls)
    _borrow_overridden_defaults(cls)
    _make_defaults_safe(cls)
    _wrap_user_finalize(cls)
    dataclasses.dataclass(cls, kw_only=True, repr=False, eq=True)
    _wrap_init(cls)
    cls.__pydra_fields__ = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[attr-defined, arg-type]
    setattr(cls, MARKER, True)
    register_class(cls)
    remember_locals(cls, depth=1)
    assert is_config_class(cls)
    return cls
