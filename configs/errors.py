"""The one exception the config system raises for bad user input, and its messages.

Every message names the class, the offending name or value, and the fix, so that
a typo in a sweep script fails at once with a pointer to the right spelling.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "InvalidConfigurationError",
    "OverrideSyntaxError",
    "UnknownArgumentError",
    "suggest",
    "unknown_name_message",
]


class InvalidConfigurationError(ValueError):
    """A config was given an unknown field, a value of the wrong type, or is incomplete."""


class UnknownArgumentError(InvalidConfigurationError, TypeError):
    """A config's ``__init__`` got a keyword it does not take.

    Also a ``TypeError``, which is what Python raises for an unexpected keyword
    argument, so code written for plain dataclasses (or pydrafig) catches it as before.
    """


class OverrideSyntaxError(SyntaxError, InvalidConfigurationError):
    """A command-line override that is not ``key=value`` at all.

    Also a ``SyntaxError`` (SyntaxError first, so that ``str()`` gives the message):
    code written for pydrafig, which runs each override as a Python statement,
    expects one for a malformed override.
    """


def suggest(name: str, candidates: Iterable[str], *, limit: int = 3) -> list[str]:
    """The candidates closest to ``name``, best first (difflib's similarity ratio).

    Example:
        >>> suggest("learnig_rate", ["learning_rate", "seed", "layers"])
        ['learning_rate']
    """
    pool = sorted(set(candidates))
    import difflib  # only when a name is wrong: every job process imports configs

    close = difflib.get_close_matches(name, pool, n=limit, cutoff=0.6)
    if close:
        return close
    # difflib misses a prefix or case slip on short names ("LR" for "lr"), which are common.
    lowered = name.lower()
    return [
        c for c in pool if c.lower() == lowered or (len(lowered) > 2 and c.startswith(lowered))
    ][:limit]


def unknown_name_message(
    owner: str, name: str, valid: Iterable[str], *, kind: str = "field"
) -> str:
    """The message for an unknown name: the closest valid ones, or all of them when none is close.

    Example:
        >>> unknown_name_message("TrainConfig", "lr", ["learning_rate", "seed"])
        "TrainConfig has no field 'lr'; valid fields: learning_rate, seed"
    """
    valid = sorted(set(valid))
    message = f"{owner} has no {kind} {name!r}"
    close = suggest(name, valid)
    if close:
        options = " or ".join(repr(c) for c in close)
        return f"{message}; did you mean {options}?"
    if valid:
        return f"{message}; valid {kind}s: {', '.join(valid)}"
    return f"{message}; it has no {kind}s"
