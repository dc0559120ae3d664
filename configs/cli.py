"""The command line of a config: ``key=value`` overrides, ``--help``, ``--show``, ``--config``.

Grammar, one token each::

    key=value            a field of the config
    nested.key=value     a field of a nested config (any depth)
    items.0=value        an item of a list or tuple field; dict.key=value for a dict field
    --config FILE        a YAML (or JSON) file loaded first; the overrides apply on top
    --show               print the final config as YAML and exit without running
    --help, -h           list every field with its type, default and description
    --eval               also accept arithmetic such as 2**8 (trusted input only)

A value is read with ``ast.literal_eval`` (``1e-3``, ``[64, 128]``, ``None``), falling
back to the bare text (``name=foo``), then coerced to the field's annotation
(``flag=true``, ``range=[1,5]`` for a tuple). Command-line text never reaches
``eval`` or ``exec``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from configs._core import REQUIRED, is_config, is_config_class, pydra_classes_named
from configs._docs import field_docs
from configs._hints import field_hints
from configs._safe_eval import eval_arithmetic
from configs._serialize import dump_yaml, item_type
from configs._types import CoercionError, coerce, describe, is_union, short_repr, strip_annotation
from configs.errors import InvalidConfigurationError, unknown_name_message

__all__ = ["apply_overrides", "config_class_of", "help_text", "main", "parse_value", "run"]

C = TypeVar("C")
R = TypeVar("R")

_OPTIONS = ("--help", "-h", "--show", "--eval", "--config")
_USAGE = "usage: {prog} [--help] [--show] [--eval] [--config FILE] [key=value ...]"


def parse_value(text: str, *, allow_eval: bool = False) -> Any:
    """The Python value of command-line text: a literal if it is one, else the text itself.

    Example:
        >>> parse_value("1e-3"), parse_value("[64,128]"), parse_value("foo"), parse_value("2**8")
        (0.001, [64, 128], 'foo', '2**8')
        >>> parse_value("2**8", allow_eval=True)
        256
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    if allow_eval:
        try:
            return eval_arithmetic(text)
        except ValueError:
            pass  # not arithmetic either: a bare string such as name=foo
    return text


def apply_overrides(config: C, overrides: Sequence[str], *, allow_eval: bool = False) -> C:
    """Apply ``key=value`` overrides to ``config`` in order, and return it.

    Args:
        config: A pydraclass instance; it is changed in place.
        overrides: Tokens such as ``"lr=1e-3"``, ``"optimizer.name=sgd"``, ``"layers.0=32"``.
        allow_eval: Also evaluate arithmetic (``"batch=2**8"``); trusted input only.

    Returns:
        The same ``config``.

    Raises:
        InvalidConfigurationError: an unknown key (with "did you mean") or a bad value.

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class Train:
        ...     lr: float = 0.1
        ...     layers: list[int] = [64, 64]
        >>> apply_overrides(Train(), ["lr=1e-3", "layers.1=128"])
        Train(lr=0.001, layers=[64, 128])
    """
    if not is_config(config):
        raise TypeError(f"apply_overrides() takes a pydraclass instance, got {config!r}")
    for token in overrides:
        key, sep, text = token.partition("=")
        if not sep or not key.strip():
            raise InvalidConfigurationError(f"expected key=value, got {token!r}")
        parts = key.strip().split(".")
        _assign(config, Any, parts, text, allow_eval, [])
    return config


def _assign(
    target: Any, tp: Any, parts: list[str], text: str, allow_eval: bool, done: list[str]
) -> Any:
    """Set the value at ``parts`` under ``target``; return ``target`` or its changed copy.

    Lists, tuples and dicts are copied, never changed in place, so that the config that
    holds them sees an assignment: its type check and its "changed since finalize" run.
    """
    head, rest = parts[0], parts[1:]
    here = ".".join([*done, head])
    if is_config(target):
        cls = type(target)
        if head not in cls.__pydra_fields__:
            raise InvalidConfigurationError(_unknown_key(target, head, done))
        hint = field_hints(cls).get(head, Any)
        if rest:
            child = getattr(target, head)
            if child is None:
                child = _empty_config_for(hint, here)
            value = _assign(child, hint, rest, text, allow_eval, [*done, head])
        else:
            value = _convert(text, hint, allow_eval, here)
        setattr(target, head, value)
        return target
    if isinstance(target, (list, tuple)):
        index = _index(head, len(target), here, type(target).__name__)
        element_tp = item_type(tp, index)
        value = (
            _assign(target[index], element_tp, rest, text, allow_eval, [*done, head])
            if rest
            else _convert(text, element_tp, allow_eval, here)
        )
        items = list(target)
        items[index] = value
        return items if isinstance(target, list) else tuple(items)
    if isinstance(target, dict):
        key: Any = head
        if head not in target:
            parsed = parse_value(head)
            if parsed in target:
                key = parsed
        updated = dict(target)
        if rest:
            if key not in updated:
                owner = f"the dict at {'.'.join(done)}"
                raise InvalidConfigurationError(
                    unknown_name_message(owner, head, map(str, target), kind="key")
                )
            updated[key] = _assign(
                target[key], item_type(tp, 0), rest, text, allow_eval, here.split(".")
            )
        else:
            updated[key] = _convert(text, item_type(tp, 0), allow_eval, here)
        return updated
    raise InvalidConfigurationError(
        f"cannot set {here}: {'.'.join(done)} is {short_repr(target)} "
        f"({type(target).__name__}), which has no parts to set"
    )


def _unknown_key(config: Any, head: str, done: list[str]) -> str:
    cls = type(config)
    owner = cls.__name__ if not done else f"{cls.__name__} (at {'.'.join(done)})"
    message = unknown_name_message(owner, head, cls.__pydra_fields__)
    if "did you mean" not in message:
        # `lr=...` for a field that lives one level down: point at its full name.
        deeper = [path for path in _dotted_names(config, "", set()) if path.endswith(f".{head}")]
        if deeper:
            prefix = f"{'.'.join(done)}." if done else ""
            options = " or ".join(repr(prefix + path) for path in deeper[:3])
            message = f"{owner} has no field {head!r}; did you mean {options}?"
    return message


def _dotted_names(config: Any, prefix: str, seen: set[int]) -> list[str]:
    names: list[str] = []
    seen.add(id(config))
    for f in dataclasses.fields(config):
        names.append(prefix + f.name)
        value = getattr(config, f.name)
        if is_config(value) and id(value) not in seen:
            names += _dotted_names(value, f"{prefix}{f.name}.", seen)
    return names


def _index(text: str, length: int, here: str, kind: str) -> int:
    try:
        index = int(text)
    except ValueError:
        raise InvalidConfigurationError(
            f"cannot set {here}: {text!r} is not an index into a {kind} of length {length}"
        ) from None
    if not -length <= index < length:
        raise InvalidConfigurationError(
            f"cannot set {here}: index {index} is out of range for a {kind} of length {length}"
        )
    return index % length


def _empty_config_for(hint: Any, here: str) -> Any:
    """For ``sub.x=1`` when ``sub`` is None: a fresh config, if the annotation names one class."""
    hint = strip_annotation(hint)
    members = typing.get_args(hint) if is_union(hint) else (hint,)
    classes = [m for m in members if is_config_class(m)]
    if len(classes) != 1:
        raise InvalidConfigurationError(f"cannot set {here}: the field above it is None")
    return classes[0]()


def _convert(text: str, hint: Any, allow_eval: bool, here: str) -> Any:
    value = parse_value(text, allow_eval=allow_eval)
    try:
        return coerce(value, hint, raw=text)
    except CoercionError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise InvalidConfigurationError(
            f"{here}: cannot use {text!r} as {describe(hint)}{detail}"
        ) from None


@dataclasses.dataclass
class _CommandLine:
    help: bool = False
    show: bool = False
    allow_eval: bool = False
    config_file: str | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)


def _parse_argv(argv: Sequence[str], fail: Callable[[str], NoReturn]) -> _CommandLine:
    line = _CommandLine()
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("-h", "--help"):
            line.help = True
        elif token == "--show":
            line.show = True
        elif token == "--eval":
            line.allow_eval = True
        elif token == "--config" or token.startswith("--config="):
            if token == "--config":
                if i + 1 >= len(tokens):
                    fail("--config needs a file: --config FILE")
                i += 1
                line.config_file = tokens[i]
            else:
                line.config_file = token.partition("=")[2]
        elif token.startswith("-"):
            name = token.split("=", 1)[0]
            if "=" in token:
                fail(f"unknown option {name!r}; set fields as key=value, without dashes")
            fail(unknown_name_message("the command line", token, _OPTIONS, kind="option"))
        elif "=" in token:
            line.overrides.append(token)
        else:
            fail(f"expected key=value, got {token!r}")
        i += 1
    return line


def _fail(prog: str) -> Callable[[str], NoReturn]:
    def fail(message: str) -> NoReturn:
        # Bad input is the user's, not a bug: one clear line and exit code 2, no traceback.
        print(f"{prog}: error: {message}", file=sys.stderr)
        print(f"run '{prog} --help' to list the fields", file=sys.stderr)
        raise SystemExit(2)

    return fail


def _config_from_argv(cls: type[C], argv: Sequence[str], prog: str) -> C:
    fail = _fail(prog)
    line = _parse_argv(argv, fail)
    if line.help:
        print(help_text(cls, prog=prog))
        raise SystemExit(0)
    import yaml  # only the command line reads YAML: jobs import configs without it

    try:
        if line.config_file is not None:
            config: Any = cls.load_yaml(line.config_file)  # type: ignore[attr-defined]
        else:
            config = cls()
        apply_overrides(config, line.overrides, allow_eval=line.allow_eval)
        config.finalize()
    except InvalidConfigurationError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read --config {line.config_file}: {exc.strerror or exc}")
    except yaml.YAMLError as exc:
        fail(f"--config {line.config_file} is not valid YAML: {exc}")
    if line.show:
        print(dump_yaml(config, lenient=True), end="")
        raise SystemExit(0)
    return typing.cast(C, config)


def _prog() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"


def main(config_cls: type[C]) -> Callable[[Callable[[C], R]], Callable[..., R]]:
    """Make ``fn(config)`` a command-line entry point for the pydraclass ``config_cls``.

    The wrapped function, called with no arguments, builds a ``config_cls`` from
    ``sys.argv[1:]`` (see the module docstring for the grammar), finalizes it and calls
    ``fn(config)``. Called with a config, it calls ``fn`` with it directly. Tests pass
    ``argv=[...]`` instead of touching ``sys.argv``. Bad input prints a message to
    stderr and exits with code 2; ``--help`` and ``--show`` exit with code 0.

    Args:
        config_cls: The ``@pydraclass`` class of the config.

    Returns:
        A decorator for ``fn``.

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class Train:
        ...     lr: float = 0.1  # learning rate
        >>> @main(Train)
        ... def train(config: Train) -> float:
        ...     return config.lr * 2
        >>> train(argv=["lr=0.25"]), train(Train(lr=1.0))
        (0.5, 2.0)
    """
    if not is_config_class(config_cls):
        raise TypeError(f"main() takes a @pydraclass class, got {config_cls!r}")

    def decorate(fn: Callable[[C], R]) -> Callable[..., R]:
        @functools.wraps(fn)
        def entry_point(config: C | None = None, *, argv: Sequence[str] | None = None) -> R:
            if config is not None:
                return fn(config)
            args = sys.argv[1:] if argv is None else argv
            return fn(_config_from_argv(config_cls, args, _prog()))

        return entry_point

    return decorate


def run(fn: Callable[[C], R], *, argv: Sequence[str] | None = None) -> R:
    """Run ``fn`` from the command line, its config class read from its first parameter's annotation.

    ``run(train)`` is ``main(TrainConfig)(train)()`` for ``def train(config: TrainConfig)``.
    String annotations (``from __future__ import annotations``) work.

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class Train:
        ...     epochs: int = 1
        >>> def train(config: Train) -> int:
        ...     return config.epochs
        >>> run(train, argv=["epochs=3"])
        3
    """
    return main(config_class_of(fn))(fn)(argv=argv)


def config_class_of(fn: Callable[..., Any]) -> type[Any]:
    """The pydraclass of ``fn``'s first parameter, from its annotation (``run`` uses it)."""
    parameters = list(inspect.signature(fn).parameters.values())
    if not parameters:
        raise TypeError(f"run() needs a function that takes a config, {fn.__name__}() takes none")
    first = parameters[0]
    annotation: Any = first.annotation
    try:
        annotation = typing.get_type_hints(fn).get(first.name, annotation)
    except Exception:  # a name the function's module cannot resolve: try the pydraclasses
        if isinstance(annotation, str):
            found = pydra_classes_named(annotation.strip("'\" "))
            annotation = found[0] if len(found) == 1 else annotation
    if not is_config_class(annotation):
        raise TypeError(
            f"run() reads the config class from the annotation of {fn.__name__}'s first "
            f"parameter {first.name!r}, which must be a @pydraclass class, got {annotation!r}"
        )
    return typing.cast("type[Any]", annotation)


def help_text(cls: type, *, prog: str | None = None) -> str:
    """The ``--help`` text: usage, then every field (nested ones dotted) with type, default, description."""
    prog = prog or _prog()
    lines = [_USAGE.format(prog=prog), ""]
    doc = inspect.getdoc(cls)
    if doc and not doc.startswith(f"{cls.__name__}("):  # not dataclass's generated signature
        lines += [doc.splitlines()[0], ""]
    lines.append(f"fields of {cls.__name__} (set with key=value, nested.key=value):")
    try:
        example = cls()
    except Exception:  # wrong defaults: show the fields anyway, without values
        example = None
    rows = _help_rows(cls, example, "", set())
    width = min(max((len(left) for left, _ in rows), default=0), 48)
    for left, description in rows:
        if not description:
            lines.append(f"  {left}")
        elif len(left) <= width:
            lines.append(f"  {left.ljust(width)}  {description}")
        else:
            lines.append(f"  {left}\n  {' ' * width}  {description}")
    lines += [
        "",
        "options:",
        "  --config FILE   load a YAML/JSON config first; key=value overrides apply on top",
        "  --show          print the final config as YAML and exit",
        "  --eval          evaluate arithmetic values such as 2**8 (trusted input only)",
        "  --help, -h      show this message and exit",
    ]
    return "\n".join(lines)


def _help_rows(cls: type, config: Any, prefix: str, seen: set[int]) -> list[tuple[str, str]]:
    hints = field_hints(cls)
    docs = field_docs(cls)
    rows: list[tuple[str, str]] = []
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        type_name = describe(hints.get(f.name, Any))
        description = docs.get(f.name, "")
        if config is None:
            rows.append((f"{name}: {type_name}", description))
            continue
        value = getattr(config, f.name)
        if is_config(value) and id(value) not in seen:
            rows.append((f"{name}: {type(value).__name__}", description))
            rows += _help_rows(type(value), value, f"{name}.", seen | {id(value)})
            continue
        default = "REQUIRED" if value is REQUIRED else short_repr(value)
        rows.append((f"{name}: {type_name} = {default}", description))
    return rows
