"""Resolving a pydraclass's annotations to real types, lazily and without guessing.

Annotations are often strings (``from __future__ import annotations``), and may name
classes defined later in the module or inside a function. They are resolved on first
use, not at decoration, so forward references work; whatever still cannot be resolved
becomes :data:`UNCHECKED` and its values are not type checked.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import types
import typing
import weakref
from typing import Any

from configs._core import pydra_classes_named

__all__ = ["UNCHECKED", "field_hints", "remember_locals"]

logger = logging.getLogger("configs")


class _Unchecked:
    """The hint of a field whose annotation could not be resolved: any value passes."""

    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Any = _Unchecked()

_HINTS: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()
_LOCALS: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()


def remember_locals(cls: type, depth: int) -> None:
    """Keep the classes visible where ``cls`` is defined, when that is not its module's top level.

    A class defined in a function can name its sibling classes in string annotations;
    those names live only in the function's frame, which is gone by the first use.
    The same holds for code run with ``exec`` in a namespace of its own (doctests).
    """
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:  # pragma: no cover - a shallower stack than expected
        return
    module = sys.modules.get(cls.__module__)
    if frame.f_locals is frame.f_globals and module is not None and vars(module) is frame.f_globals:
        return  # module level: get_type_hints finds these in the module itself
    _LOCALS[cls] = {k: v for k, v in frame.f_locals.items() if isinstance(v, type)}


def _localns(cls: type) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        names.update(_LOCALS.get(klass, {}))
    return names


def _declaring_class(cls: type, name: str) -> type:
    for klass in cls.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            return klass
    return cls


def _resolve_one(cls: type, name: str, annotation: Any, localns: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    owner = _declaring_class(cls, name)
    module = sys.modules.get(owner.__module__)
    globalns = dict(vars(module)) if module is not None else {}
    scopes = [dict(localns, **{owner.__name__: owner})]
    # Last resort: a pydraclass defined anywhere under that exact name, if unambiguous.
    for candidate in _candidate_names(annotation):
        found = pydra_classes_named(candidate)
        if len(found) == 1:
            scopes[0].setdefault(candidate, found[0])

    def probe() -> None: ...

    probe.__annotations__ = {"value": annotation}
    for scope in scopes:
        try:
            return typing.get_type_hints(probe, globalns=globalns, localns=scope)["value"]
        except Exception as exc:  # any failure means "cannot know": do not check
            logger.debug("cannot resolve %s.%s: %r (%s)", cls.__qualname__, name, annotation, exc)
    return UNCHECKED


def _candidate_names(annotation: str) -> list[str]:
    word = ""
    names = []
    for ch in annotation + " ":
        if ch.isalnum() or ch == "_":
            word += ch
        else:
            if word and word[0].isupper():
                names.append(word)
            word = ""
    return names


def field_hints(cls: type) -> dict[str, Any]:
    """The resolved type of every dataclass field of ``cls`` (``UNCHECKED`` where unknown).

    Example:
        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class Point:
        ...     x: int = 0
        ...     y: "float | None" = None
        >>> field_hints(Point)
        {'x': <class 'int'>, 'y': float | None}
    """
    cached = _HINTS.get(cls)
    if cached is not None:
        return cached
    fields = dataclasses.fields(cls)
    localns = _localns(cls)
    try:
        resolved = typing.get_type_hints(cls, localns=localns or None)
        hints = {f.name: resolved.get(f.name, UNCHECKED) for f in fields}
    except Exception:
        # One bad annotation must not cost the checks of all the others.
        hints = {f.name: _resolve_one(cls, f.name, f.type, localns) for f in fields}
    for name in _none_defaults(cls):
        hints[name] = _optional(hints[name])
    _HINTS[cls] = hints
    return hints


def _none_defaults(cls: type) -> set[str]:
    """The fields whose default is ``None`` in ``cls`` or in a class it inherits them from.

    ``seed: int = None`` is the most common way ML code spells "optional"; the
    ``None`` default says so as plainly as ``int | None`` would. A subclass that gives
    such a field another default keeps it optional.
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        own = klass.__dict__.get("__dataclass_fields__", {})
        names.update(n for n, f in own.items() if f.default is None)
    return names & {f.name for f in dataclasses.fields(cls)}


def _optional(hint: Any) -> Any:
    """``hint | None``; unchanged where ``None`` (or any value) passes already."""
    if hint is UNCHECKED or hint is Any or hint is object or hint is None:
        return hint
    is_union = typing.get_origin(hint) is typing.Union or isinstance(hint, types.UnionType)
    if hint is type(None) or (is_union and type(None) in typing.get_args(hint)):
        return hint
    try:
        return hint | None
    except TypeError:  # a hint without `|` (a ForwardRef, a string)
        try:
            return typing.Optional[hint]  # noqa: UP045 - the spelling that takes any hint
        except TypeError:  # something Optional cannot wrap either: leave it as written
            return hint


def resolve_now(cls: type, name: str) -> Any:
    """The resolved annotation of field ``name`` of ``cls`` if it resolves now, else the raw one.

    Used when a subclass overrides a parent's default without repeating the annotation:
    the parent's type is borrowed, resolved where the parent was written.
    """
    raw = {f.name: f.type for f in dataclasses.fields(cls)}[name]
    try:
        return typing.get_type_hints(cls, localns=_localns(cls) or None)[name]
    except Exception:
        return raw
