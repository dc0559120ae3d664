"""The finalize pass: nested configs first, each config's own hook once, cycles refused.

One pass walks the tree depth first. A config's hook runs when the config is not
finalized yet, or when something beneath it ran its hook in this pass (a parent's
derived values depend on its children). Assigning a field outside a pass marks the
config as changed, so ``finalize()`` after an edit brings derived values up to date,
while ``finalize()`` twice in a row does nothing the second time.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

from configs._core import REQUIRED, is_config
from configs.errors import InvalidConfigurationError

__all__ = ["FINALIZED_KEY", "finalize_tree", "in_finalize", "in_hook", "is_finalized"]

#: Where an instance keeps its finalized flag (a private attribute, not a field).
FINALIZED_KEY = "_finalized"

_state = threading.local()


def _hooking() -> set[int]:
    hooking: set[int] | None = getattr(_state, "hooking", None)
    if hooking is None:
        hooking = _state.hooking = set()
    return hooking


def in_finalize() -> bool:
    """Whether a finalize pass is running in this thread (its assignments do not mark changes)."""
    return getattr(_state, "depth", 0) > 0


def in_hook(config: object) -> bool:
    """Whether ``config``'s own hook is running now: ``finalize()`` then means "run the hook"."""
    return id(config) in _hooking()


def is_finalized(config: object) -> bool:
    """Whether ``config`` was finalized and not changed since."""
    return bool(vars(config).get(FINALIZED_KEY, False))


def _field_values(config: Any) -> Iterator[tuple[str, Any]]:
    for f in dataclasses.fields(config):
        yield f.name, getattr(config, f.name)


def _missing_required(root: Any) -> list[str]:
    missing: list[str] = []
    seen: set[int] = set()

    def walk(obj: Any, path: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if is_config(obj):
            for name, value in _field_values(obj):
                if value is REQUIRED:
                    where = "" if obj is root else f" (in {type(obj).__name__})"
                    missing.append(f"{path}.{name}{where}")
                else:
                    walk(value, f"{path}.{name}")
        elif isinstance(obj, (list, tuple)):
            for i, item in enumerate(obj):
                walk(item, f"{path}[{i}]")
        elif isinstance(obj, dict):
            for key, item in obj.items():
                walk(item, f"{path}[{key!r}]")

    walk(root, type(root).__name__)
    return missing


def finalize_tree(root: Any) -> None:
    """Finalize ``root`` and every config beneath it, bottom-up; see the module docstring.

    Raises:
        InvalidConfigurationError: a ``REQUIRED`` field is unset, or the configs form a cycle.
    """
    missing = _missing_required(root)
    if missing:
        raise InvalidConfigurationError(
            f"{type(root).__name__}: required field(s) not set: {', '.join(missing)}; "
            "set them before finalize()"
        )
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        _visit(root, type(root).__name__, {}, {})
    finally:
        _state.depth -= 1


def _visit(obj: Any, path: str, stack: dict[int, str], done: dict[int, bool]) -> bool:
    """Finalize what needs it under ``obj``; return whether any hook ran there."""
    key = id(obj)
    if key in done:
        return done[key]
    if key in stack:
        raise InvalidConfigurationError(
            f"reference cycle: {path} is {stack[key]} again; a config cannot contain itself"
        )
    if not (is_config(obj) or isinstance(obj, (list, tuple, dict))):
        return False
    stack[key] = path
    changed = False
    for child_path, child in _children(obj, path):
        changed |= _visit(child, child_path, stack, done)
    if is_config(obj) and (changed or not is_finalized(obj)):
        _run_hook(obj, path)
        # The hook may have put new configs in place; they are finalized before we return.
        for child_path, child in _children(obj, path):
            _visit(child, child_path, stack, done)
        changed = True
    del stack[key]
    done[key] = changed
    return changed


def _children(obj: Any, path: str) -> list[tuple[str, Any]]:
    if is_config(obj):
        return [(f"{path}.{name}", value) for name, value in _field_values(obj)]
    if isinstance(obj, dict):
        return [(f"{path}[{key!r}]", value) for key, value in obj.items()]
    return [(f"{path}[{i}]", value) for i, value in enumerate(obj)]


def _run_hook(config: Any, path: str) -> None:
    missing = [n for n, v in _field_values(config) if v is REQUIRED]
    if missing:  # set back to REQUIRED by a parent's hook, or created unset by one
        raise InvalidConfigurationError(
            f"{path} ({type(config).__name__}): required field(s) not set: {', '.join(missing)}"
        )
    hooking = _hooking()
    hooking.add(id(config))
    try:
        # Dispatch through the MRO: a user `finalize` override (wrapped by @pydraclass) runs
        # its body; ConfigMeta.finalize runs `custom_finalize`. Both styles meet here.
        config.finalize()
    finally:
        hooking.discard(id(config))
    vars(config)[FINALIZED_KEY] = True
