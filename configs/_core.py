"""Small shared pieces: the ``REQUIRED`` sentinel, how a pydraclass is recognised, copied defaults.

Kept apart from ``base_config`` so that the type checker, the serialiser and the
finaliser can recognise configs without importing the decorator (no import cycles).
"""

from __future__ import annotations

import copy
import weakref
from typing import Any, Final

__all__ = [
    "MARKER",
    "REQUIRED",
    "CopyDefault",
    "class_path",
    "is_config",
    "is_config_class",
    "lookup_class",
    "pydra_classes_named",
    "register_class",
    "registered_classes",
]

#: The class attribute that marks a class decorated by ``@pydraclass``.
MARKER: Final = "__pydraclass__"


class _Required:
    """The type of :data:`REQUIRED`; one instance, which survives copy and pickle as itself."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        # Pickled by name, so unpickling (and deepcopy) gives back the very same sentinel.
        return "REQUIRED"

    def __copy__(self) -> _Required:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Required:
        return self

    def __bool__(self) -> bool:
        # A missing value must not pass for a truthy setting in `if config.flag:`.
        return False


#: A field default meaning "must be set before ``finalize()``". Typed ``Any`` so that
#: ``name: str = REQUIRED`` passes a static type checker.
REQUIRED: Any = _Required()


def is_config(obj: object) -> bool:
    """Whether ``obj`` is an instance of a ``@pydraclass`` class."""
    return getattr(type(obj), MARKER, False) is True


def is_config_class(tp: object) -> bool:
    """Whether ``tp`` is a class decorated by ``@pydraclass`` (or a subclass of one)."""
    return isinstance(tp, type) and getattr(tp, MARKER, False) is True


class CopyDefault:
    """A ``default_factory`` that gives every instance its own deep copy of a class-level default.

    A class, not a lambda, so that it pickles by reference and ``--help`` can show ``value``.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return copy.deepcopy(self.value)

    def __repr__(self) -> str:
        return f"CopyDefault({self.value!r})"


# Every pydraclass by "module:qualname", so that a saved file can name a nested config's
# class (see _serialize) without importing anything. Weak: test-local classes may go away.
_REGISTRY: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()


def class_path(cls: type) -> str:
    """The name a saved config uses for a class: ``"module:qualname"``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def register_class(cls: type) -> None:
    """Remember a pydraclass under its :func:`class_path` (the latest definition wins)."""
    _REGISTRY[class_path(cls)] = cls


def lookup_class(path: str) -> type | None:
    """The pydraclass a :func:`class_path` names, if it is defined in this process.

    Only classes already defined are found: a config file never makes Python import a module.
    """
    found = _REGISTRY.get(path)
    if found is not None:
        return found
    import sys

    module_name, _, qualname = path.partition(":")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if is_config_class(obj) else None


def registered_classes() -> list[type]:
    """Every pydraclass defined in this process (and still alive)."""
    return list(_REGISTRY.values())


def pydra_classes_named(name: str) -> list[type]:
    """Every registered pydraclass whose plain ``__name__`` is ``name``."""
    return [cls for cls in list(_REGISTRY.values()) if cls.__name__ == name]
