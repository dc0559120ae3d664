"""The command line of a config: ``key=value`` overrides, ``--help``, ``--show``, ``--config``.

Grammar, one token each::

    key=value            a field of the config
    nested.key=value     a field of a nested config (any depth)
    items.0=value        an item of a list or tuple field; dict.key=value for a dict field
    --config FILE        a YAML (or JSON) file loaded first; the overrides apply on top
    --show               print the final config as YAML instead of running
    --help, -h           list every field with its type, default and description
    --eval               values are Python expressions: math.sqrt(2), np.pi (trusted input only)

A value is read with ``ast.literal_eval`` (``1e-3``, ``[64, 128]``, ``None``), then as
arithmetic on number literals (``2**8``, ``1e-3*4``, computed by walking the syntax
tree), falling back to the bare text (``name=foo``), then coerced to the field's
annotation (``flag=true``, ``range=[1,5]`` for a tuple). Without ``--eval``,
command-line text never reaches ``eval`` or ``exec``.

The entry point of ``@main`` reads ``sys.argv`` (or ``argv=[...]``) like a script
does: bad input exits with code 2, ``--help``/``--show`` with 0. Given a list
(``app(["lr=0.1"])`` or ``args=[...]``) it behaves like a function instead: bad
input raises, ``--help``/``--show`` print and return ``None``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol, TypeVar, overload

from configs._core import is_config, is_config_class, pydra_classes_named
from configs._help import help_text, prog_name
from configs._overrides import apply_overrides
from configs._serialize import dump_yaml
from configs._values import parse_value
from configs.errors import InvalidConfigurationError, OverrideSyntaxError, unknown_name_message

__all__ = [
    "EntryPoint",
    "apply_overrides",
    "config_class_of",
    "help_text",
    "main",
    "parse_value",
    "run",
]

C = TypeVar("C")
R = TypeVar("R")
C_contra = TypeVar("C_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

_OPTIONS = ("--help", "-h", "--show", "--eval", "--config")


@dataclasses.dataclass
class _CommandLine:
    help: bool = False
    show: bool = False
    allow_eval: bool = False
    config_file: str | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)


def _parse_argv(argv: Sequence[str]) -> _CommandLine:
    """Split the tokens into options and overrides; bad tokens raise, naming the fix."""
    if isinstance(argv, str):
        raise TypeError(f"expected a list of overrides such as ['lr=0.1'], got the string {argv!r}")
    line = _CommandLine()
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not isinstance(token, str):
            raise TypeError(f"expected override strings such as 'lr=0.1', got {token!r}")
        if token in ("-h", "--help"):
            line.help = True
        elif token == "--show":
            line.show = True
        elif token == "--eval":
            line.allow_eval = True
        elif token == "--config" or token.startswith("--config="):
            if token == "--config":
                if i + 1 >= len(tokens):
                    raise InvalidConfigurationError("--config needs a file: --config FILE")
                i += 1
                line.config_file = tokens[i]
            else:
                line.config_file = token.partition("=")[2]
        elif token.startswith("-"):
            name = token.split("=", 1)[0]
            if "=" in token:
                raise InvalidConfigurationError(
                    f"unknown option {name!r}; set fields as key=value, without dashes"
                )
            raise InvalidConfigurationError(
                unknown_name_message("the command line", token, _OPTIONS, kind="option")
            )
        elif "=" in token:
            line.overrides.append(token)
        else:
            raise OverrideSyntaxError(f"expected key=value, got {token!r}")
        i += 1
    return line


def _build(cls: type[C], line: _CommandLine) -> C:
    """The finalized config a parsed command line describes."""
    import yaml  # only the command line reads YAML: jobs import configs without it

    try:
        if line.config_file is not None:
            config: Any = cls.load_yaml(line.config_file)  # type: ignore[attr-defined]
        else:
            config = cls()
    except OSError as exc:
        raise InvalidConfigurationError(
            f"cannot read --config {line.config_file}: {exc.strerror or exc}"
        ) from exc
    except yaml.YAMLError as exc:
        raise InvalidConfigurationError(
            f"--config {line.config_file} is not valid YAML: {exc}"
        ) from exc
    apply_overrides(config, line.overrides, allow_eval=line.allow_eval)
    config.finalize()
    return typing.cast(C, config)


def _fail(prog: str, message: str) -> NoReturn:
    # Bad input is the user's, not a bug: one clear line and exit code 2, no traceback.
    print(f"{prog}: error: {message}", file=sys.stderr)
    print(f"run '{prog} --help' to list the fields", file=sys.stderr)
    raise SystemExit(2)


def _config_from_argv(cls: type[C], argv: Sequence[str], prog: str) -> C:
    """The config a script's command line describes; exits (2) on bad input, (0) after --help/--show."""
    try:
        line = _parse_argv(argv)
        if line.help:
            print(help_text(cls, prog=prog))
            raise SystemExit(0)
        config = _build(cls, line)
    except InvalidConfigurationError as exc:
        _fail(prog, str(exc))
    if line.show:
        print(dump_yaml(config, lenient=True), end="")
        raise SystemExit(0)
    return config


def _config_from_list(cls: type[C], args: Sequence[str], prog: str) -> C | None:
    """The config a list of overrides describes, as a function call: raises, never exits.

    ``None`` after ``--help`` or ``--show`` (the text is printed): nothing is to run.
    """
    line = _parse_argv(args)
    if line.help:
        print(help_text(cls, prog=prog))
        return None
    config = _build(cls, line)
    if line.show:
        print(dump_yaml(config, lenient=True), end="")
        return None
    return config


class EntryPoint(Protocol[C_contra, R_co]):
    """What ``@main(Config)`` makes of ``fn(config)``; see :func:`main` for the calls."""

    @overload
    def __call__(self, config: C_contra, /) -> R_co: ...

    @overload
    def __call__(self, *, argv: Sequence[str] | None = None) -> R_co: ...

    @overload
    def __call__(self, args: list[str] | tuple[str, ...], /) -> R_co | None: ...

    @overload
    def __call__(self, *, args: Sequence[str]) -> R_co | None: ...

    def __call__(self, *args: Any, **kwargs: Any) -> R_co | None: ...


def _overrides_given(config: Any, args: Sequence[str] | None, argv: Sequence[str] | None) -> Any:
    if config is not None and args is not None:
        raise TypeError("give the overrides once: as the first argument or as args=, not both")
    given = args if args is not None else config
    if given is not None and not isinstance(given, (list, tuple)):
        raise TypeError(
            f"expected a config or a list of overrides such as ['lr=0.1'], "
            f"got {type(given).__name__} {given!r}"
        )
    if given is not None and argv is not None:
        raise TypeError(
            "give either args (a list: a function call that raises and returns None after "
            "--show) or argv (a command line: exits like a script), not both"
        )
    return given


def main(config_cls: type[C]) -> Callable[[Callable[[C], R]], EntryPoint[C, R]]:
    """Make ``fn(config)`` a command-line entry point for the pydraclass ``config_cls``.

    The wrapped function can be called four ways:

    * ``train()``: reads ``sys.argv[1:]`` (see the module docstring for the grammar),
      builds and finalizes the config, calls ``fn(config)``. Bad input prints a message
      to stderr and exits with code 2; ``--help`` and ``--show`` exit with code 0.
    * ``train(argv=[...])``: the same with the given command line (handy in tests of
      the script's behaviour).
    * ``train(["lr=0.1"])`` or ``train(args=[...])``: a function call, as in pydrafig:
      bad input raises :class:`InvalidConfigurationError`, and ``--help``/``--show``
      print and return ``None`` without calling ``fn``.
    * ``train(config)``: calls ``fn(config)`` directly.

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
        >>> train(argv=["lr=0.25"]), train(["lr=2**-2"]), train(Train(lr=1.0))
        (0.5, 0.5, 2.0)
        >>> train(["--show", "lr=0.5"])
        lr: 0.5
    """
    if not is_config_class(config_cls):
        raise TypeError(f"main() takes a @pydraclass class, got {config_cls!r}")

    def decorate(fn: Callable[[C], R]) -> EntryPoint[C, R]:
        @functools.wraps(fn)
        def entry_point(
            config: Any = None,
            *,
            argv: Sequence[str] | None = None,
            args: Sequence[str] | None = None,
        ) -> R | None:
            if is_config(config):
                if args is not None or argv is not None:
                    raise TypeError(
                        f"{fn.__name__}(config) runs with that config as it is and takes no "
                        "overrides; apply them first: apply_overrides(config, [...])"
                    )
                return fn(config)
            overrides = _overrides_given(config, args, argv)
            if overrides is not None:
                built = _config_from_list(config_cls, overrides, prog_name())
                return None if built is None else fn(built)
            tokens = sys.argv[1:] if argv is None else argv
            return fn(_config_from_argv(config_cls, tokens, prog_name()))

        return typing.cast("EntryPoint[C, R]", entry_point)

    return decorate


def run(
    fn: Callable[[C], R], args: Sequence[str] | None = None, *, argv: Sequence[str] | None = None
) -> R | None:
    """Run ``fn`` from the command line, its config class read from its first parameter's annotation.

    ``run(train)`` is ``main(TrainConfig)(train)()`` for ``def train(config: TrainConfig)``;
    ``args`` and ``argv`` are those of :func:`main`'s entry point (``args``: a function
    call that raises and returns ``None`` after ``--show``; ``argv``: a command line).
    String annotations (``from __future__ import annotations``) work.

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class Train:
        ...     epochs: int = 1
        >>> def train(config: Train) -> int:
        ...     return config.epochs
        >>> run(train, argv=["epochs=3"]), run(train, args=["epochs=2*2"])
        (3, 4)
    """
    entry: Any = main(config_class_of(fn))(fn)
    return typing.cast("R | None", entry(args=args, argv=argv))


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
