"""``config.replace(name, new, **kwargs)``: swap a nested config for another class.

The classes a field may take come from its annotation: the members of a union,
and the pydraclasses that subclass one of them. A field typed ``Any`` (or whose
annotation could not be resolved) takes any pydraclass defined in this process.
"""

from __future__ import annotations

import typing
from typing import Any

from configs._core import MARKER, class_path, is_config, registered_classes
from configs._hints import UNCHECKED, field_hints
from configs._types import describe, is_union, matches, short_repr, strip_annotation
from configs.errors import InvalidConfigurationError, unknown_name_message

__all__ = ["allowed_classes", "replace_field"]


def replace_field(config: Any, name: str, new: Any, kwargs: dict[str, Any]) -> Any:
    """Set ``config.<name>`` to a new instance of the class ``new`` names, or to ``new``.

    See :meth:`configs.ConfigMeta.replace` for the rules; returns the new value.
    """
    cls = type(config)
    prefix = f"{cls.__name__}.replace({name!r}, {_describe_new(new)})"
    if name not in cls.__pydra_fields__:
        raise InvalidConfigurationError(
            f"{prefix}: {unknown_name_message(cls.__name__, name, cls.__pydra_fields__)}"
        )
    hint = field_hints(cls).get(name, UNCHECKED)
    where = f"{cls.__name__}.{name} ({describe(hint)})"
    if isinstance(new, type):
        target: type = new
    elif isinstance(new, str):
        target = _class_named(new, hint, cls.__module__, prefix, where)
    else:
        if kwargs:
            raise TypeError(
                f"{prefix}: keyword arguments ({', '.join(kwargs)}) build a new instance; "
                f"pass a class or its name with them, or set them on the instance you pass"
            )
        if not matches(new, hint):
            raise InvalidConfigurationError(
                f"{prefix}: {short_repr(new)} ({type(new).__name__}) is not allowed for {where}"
            )
        setattr(config, name, new)
        return new
    if not _allows_class(hint, target):
        raise InvalidConfigurationError(
            f"{prefix}: {target.__name__} is not an allowed type for {where}"
        )
    try:
        value = target(**kwargs)
    except InvalidConfigurationError as exc:
        # Same class (an unknown keyword stays a TypeError too), with where it came from.
        raise type(exc)(f"{prefix}: cannot build {target.__name__}: {exc}") from None
    if not matches(value, hint):  # a class the annotation allows, built with a bad value
        raise InvalidConfigurationError(
            f"{prefix}: {short_repr(value)} ({type(value).__name__}) is not allowed for {where}"
        )
    setattr(config, name, value)
    return value


def _describe_new(new: Any) -> str:
    if isinstance(new, type):
        return new.__name__
    if is_config(new):
        return f"{type(new).__name__}(...)"
    return short_repr(new)


def allowed_classes(hint: Any) -> list[type] | None:
    """The classes a field annotated ``hint`` may hold, or None when any pydraclass may."""
    hint = strip_annotation(hint)
    if hint is UNCHECKED or hint is Any or hint is object:
        return None
    members = typing.get_args(hint) if is_union(hint) else (hint,)
    found: list[type] = []
    for member in members:
        member = strip_annotation(member)
        # get_origin: list[int] passes for a class on Python 3.10, and is not one to build.
        if isinstance(member, type) and member is not type(None) and not typing.get_origin(member):
            for klass in [member, *_decorated_subclasses(member)]:
                if klass not in found:
                    found.append(klass)
    return found


def _decorated_subclasses(cls: type) -> list[type]:
    found: list[type] = []
    subclasses: list[type] = type.__subclasses__(cls)  # also for cls = type itself
    for sub in subclasses:
        if MARKER in vars(sub):
            found.append(sub)
        found += _decorated_subclasses(sub)
    return found


def _allows_class(hint: Any, target: type) -> bool:
    allowed = allowed_classes(hint)
    if allowed is None:
        return True
    return any(issubclass(target, klass) for klass in allowed)


def _class_named(text: str, hint: Any, module: str, prefix: str, where: str) -> type:
    allowed = allowed_classes(hint)
    pool = registered_classes() if allowed is None else allowed
    found = [k for k in pool if text in (k.__name__, k.__qualname__, class_path(k))]
    unique = list(dict.fromkeys(found))
    if len(unique) > 1:  # the same name in several modules: the config's own module first
        unique = [k for k in unique if k.__module__ == module] or unique
    if len(unique) == 1:
        return unique[0]
    if len(unique) > 1:
        paths = ", ".join(repr(class_path(k)) for k in unique)
        raise InvalidConfigurationError(
            f"{prefix}: more than one class is named {text!r} ({paths}); pass the class "
            f"itself or its full name"
        )
    names = sorted({k.__name__ for k in pool})
    if not names:
        raise InvalidConfigurationError(
            f"{prefix}: the annotation of {where} names no class to build; assign the value instead"
        )
    message = unknown_name_message(where, text, names, kind="type")
    # "<where> has no type 'X'; ..." reads oddly: say what went wrong in the words users search.
    detail = message.split("; ", 1)[1] if "; " in message else f"allowed types: {', '.join(names)}"
    if allowed is None:
        raise InvalidConfigurationError(
            f"{prefix}: no pydraclass named {text!r} is defined; {detail}"
        )
    raise InvalidConfigurationError(
        f"{prefix}: {text!r} is not an allowed type for {where}; {detail}"
    )
