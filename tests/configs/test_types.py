"""Values are checked against annotations where that is cheap and certain."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Literal, Optional

import pytest

from configs import InvalidConfigurationError, pydraclass


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Custom:
    pass


@pydraclass
class Inner:
    x: int = 0


@pydraclass
class Typed:
    i: int = 0
    f: float = 0.0
    s: str = ""
    b: bool = False
    opt_i: int | None = None
    optional_f: Optional[float] = None  # noqa: UP045 - Optional itself is under test
    lit: Literal["adam", "sgd"] = "adam"
    ints: list[int] = []
    mapping: dict[str, float] = {}
    pair: tuple[int, str] = (0, "")
    many: tuple[float, ...] = ()
    inner: Inner = Inner()
    maybe_inner: Inner | None = None
    anything: Any = None
    bare_list: list = []
    bare_dict: dict = {}
    bare_tuple: tuple = ()
    color: Color = Color.RED
    fn: Callable[[int], int] = abs
    custom: Custom | None = None
    unresolved: NoSuchName = None  # noqa: F821 - on purpose: an annotation that cannot be resolved


ACCEPTED = [
    ("i", 3),
    ("f", 3),  # an int is a fine float
    ("f", 2.5),
    ("s", "x"),
    ("b", True),
    ("opt_i", None),
    ("opt_i", 4),
    ("optional_f", 1.5),
    ("lit", "sgd"),
    ("ints", [1, 2]),
    ("mapping", {"a": 1.0, "b": 2}),
    ("pair", (1, "a")),
    ("many", (1.0, 2, 3.5)),
    ("many", ()),
    ("inner", Inner(x=1)),
    ("maybe_inner", None),
    ("maybe_inner", Inner()),
    ("anything", object()),
    ("anything", Inner()),
    ("bare_list", [1, "a"]),
    ("bare_dict", {1: "a"}),
    ("bare_tuple", (1, "a", None)),
    ("color", Color.BLUE),
    ("fn", "not checked: Callable is not certain"),
    ("custom", "not checked: a custom class"),
    ("unresolved", 42),
]

REJECTED = [
    ("i", 1.5, "Typed.i: expected int, got 1.5 (float)"),
    ("i", "3", "Typed.i: expected int, got '3' (str)"),
    (
        "i",
        True,
        "Typed.i: expected int, got True (bool); a bool is not accepted as a number, write 1 or 0",
    ),
    ("f", False, "Typed.f: expected float, got False (bool); a bool is not accepted as a number"),
    ("f", "fast", "Typed.f: expected float, got 'fast' (str)"),
    ("s", 3, "Typed.s: expected str, got 3 (int)"),
    ("b", 1, "Typed.b: expected bool, got 1 (int)"),
    ("opt_i", "x", "Typed.opt_i: expected int | None, got 'x' (str)"),
    ("optional_f", "x", "Typed.optional_f: expected float | None, got 'x' (str)"),
    ("lit", "rmsprop", "Typed.lit: expected Literal['adam', 'sgd'], got 'rmsprop' (str)"),
    ("ints", [1, "2"], "Typed.ints: expected list[int], got [1, '2'] (list)"),
    ("ints", (1, 2), "Typed.ints: expected list[int], got (1, 2) (tuple)"),
    ("mapping", {"a": "b"}, "Typed.mapping: expected dict[str, float], got {'a': 'b'} (dict)"),
    ("pair", (1, 2), "Typed.pair: expected tuple[int, str], got (1, 2) (tuple)"),
    ("pair", (1,), "Typed.pair: expected tuple[int, str], got (1,) (tuple)"),
    ("many", (1.0, "x"), "Typed.many: expected tuple[float, ...], got (1.0, 'x') (tuple)"),
    ("inner", {"x": 1}, "Typed.inner: expected Inner, got {'x': 1} (dict)"),
    ("maybe_inner", 3, "Typed.maybe_inner: expected Inner | None, got 3 (int)"),
    ("bare_list", (1,), "Typed.bare_list: expected list, got (1,) (tuple)"),
    ("bare_dict", [], "Typed.bare_dict: expected dict, got [] (list)"),
    ("bare_tuple", [1], "Typed.bare_tuple: expected tuple, got [1] (list)"),
    ("color", 1, "Typed.color: expected Color, got 1 (int)"),
]


@pytest.mark.parametrize(("name", "value"), ACCEPTED)
def test_accepted_on_assignment_and_in_init(name: str, value: Any) -> None:
    config = Typed()
    setattr(config, name, value)
    assert getattr(config, name) is value
    assert getattr(Typed(**{name: value}), name) is value


@pytest.mark.parametrize(("name", "value", "message"), REJECTED)
def test_rejected_on_assignment_and_in_init(name: str, value: Any, message: str) -> None:
    config = Typed()
    before = getattr(config, name)
    with pytest.raises(InvalidConfigurationError) as info:
        setattr(config, name, value)
    assert str(info.value).startswith(message)
    assert getattr(config, name) == before  # the bad value was not stored
    with pytest.raises(InvalidConfigurationError) as info:
        Typed(**{name: value})
    assert str(info.value).startswith(message)


def test_wrong_default_fails_at_construction() -> None:
    @pydraclass
    class BadDefault:
        epochs: int = "ten"  # type: ignore[assignment]

    with pytest.raises(
        InvalidConfigurationError, match="BadDefault.epochs: expected int, got 'ten'"
    ):
        BadDefault()


def test_numpy_like_integers_are_ints() -> None:
    import numbers

    class MyInt(int):
        pass

    assert isinstance(MyInt(3), numbers.Integral)
    assert Typed(i=MyInt(3)).i == 3
    np = pytest.importorskip("numpy")  # an Integral that is not an int subclass
    assert Typed(i=np.int64(3)).i == 3


def test_forward_references_to_later_classes_resolve() -> None:
    config = EarlyConfig()
    with pytest.raises(InvalidConfigurationError, match=r"expected LaterConfig \| None"):
        config.later = 3
    config.later = LaterConfig()


@pydraclass
class EarlyConfig:
    later: LaterConfig | None = None


@pydraclass
class LaterConfig:
    y: int = 0


def test_classes_local_to_a_function_resolve_their_string_annotations() -> None:
    @pydraclass
    class LocalInner:
        z: int = 0

    @pydraclass
    class LocalOuter:
        inner: LocalInner = LocalInner()
        items: list[LocalInner] = []

    with pytest.raises(InvalidConfigurationError, match="expected LocalInner"):
        LocalOuter(inner=3)
    with pytest.raises(InvalidConfigurationError, match=r"expected list\[LocalInner\]"):
        LocalOuter(items=[1])


def test_one_unresolvable_annotation_does_not_disable_the_others() -> None:
    with pytest.raises(InvalidConfigurationError, match="expected int"):
        Typed(unresolved="anything", i="x")
