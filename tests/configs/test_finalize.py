"""finalize(): bottom-up, once, both hook spellings, re-finalize after changes, cycles."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from configs import InvalidConfigurationError, pydraclass

calls: list[str] = []


@pydraclass
class Leaf:
    name: str = "leaf"
    value: int = 1
    doubled: int = 0

    def custom_finalize(self) -> None:
        calls.append(self.name)
        self.doubled = self.value * 2


@pydraclass
class LeafOverride:
    """The same hook as Leaf, spelled as an overriding finalize()."""

    name: str = "leaf"
    value: int = 1
    doubled: int = 0

    def finalize(self) -> None:
        calls.append(self.name)
        self.doubled = self.value * 2


@pydraclass
class Tree:
    single: Leaf = Leaf(name="single")
    in_list: list[Leaf] = [Leaf(name="list0"), Leaf(name="list1")]
    in_tuple: tuple = (Leaf(name="tuple0"),)
    in_dict: dict[str, Leaf] = {"k": Leaf(name="dict")}
    total: int = 0

    def custom_finalize(self) -> None:
        calls.append("tree")
        # children are already final: their derived values are available
        self.total = self.single.doubled + sum(leaf.doubled for leaf in self.in_list)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


def test_nested_configs_are_finalized_first_everywhere() -> None:
    tree = Tree()
    tree.finalize()
    assert calls == ["single", "list0", "list1", "tuple0", "dict", "tree"]
    assert tree.total == 6
    assert tree.is_finalized and tree.in_dict["k"].is_finalized and tree.in_tuple[0].is_finalized


def test_finalize_is_idempotent() -> None:
    tree = Tree()
    tree.finalize()
    calls.clear()
    tree.finalize()
    tree.single.finalize()
    assert calls == []


@pytest.mark.parametrize("leaf_class", [Leaf, LeafOverride])
def test_both_hook_spellings_behave_the_same(leaf_class: type) -> None:
    @pydraclass
    class Holder:
        leaf: Any = None

        def finalize(self) -> None:
            calls.append("holder")

    holder = Holder(leaf=leaf_class(name="x", value=4))
    assert not holder.leaf.is_finalized
    holder.finalize()
    holder.finalize()
    assert calls == ["x", "holder"]
    assert holder.leaf.doubled == 8 and holder.leaf.is_finalized and holder.is_finalized
    calls.clear()
    holder.leaf.finalize()  # direct call on an already final config: nothing
    assert calls == []


def test_overriding_finalize_still_finalizes_children_first() -> None:
    @pydraclass
    class Parent:
        child: Leaf = Leaf(name="child")

        def finalize(self) -> None:
            assert self.child.is_finalized
            calls.append("parent")

    Parent().finalize()
    assert calls == ["child", "parent"]


def test_super_finalize_runs_the_parent_hook_once() -> None:
    @pydraclass
    class Base:
        x: int = 1

        def finalize(self) -> None:
            super().finalize()  # a root class: reaches ConfigMeta, which does nothing more
            calls.append("base")

    @pydraclass
    class Child(Base):
        def finalize(self) -> None:
            super().finalize()
            calls.append("child")

    Child().finalize()
    assert calls == ["base", "child"]


def test_defining_both_hooks_is_refused() -> None:
    with pytest.raises(TypeError, match="defines both finalize\\(\\) and custom_finalize\\(\\)"):

        @pydraclass
        class Both:
            def finalize(self) -> None: ...

            def custom_finalize(self) -> None: ...


def test_a_change_after_finalize_reruns_the_hook_and_its_parents_only() -> None:
    tree = Tree()
    tree.finalize()
    calls.clear()
    tree.in_list[1].value = 10
    assert not tree.in_list[1].is_finalized
    tree.finalize()
    assert calls == ["list1", "tree"]
    assert tree.total == 2 + 2 + 20


def test_deepcopy_then_change_then_finalize_updates_derived_values() -> None:
    # The spec's get_experiment_config_and_base_dir pattern.
    base = Leaf(name="base", value=1)
    base.finalize()
    config = copy.deepcopy(base)
    config.value = 5
    config.finalize()
    assert config.doubled == 10 and base.doubled == 2


def test_assignments_in_hooks_do_not_count_as_changes() -> None:
    @pydraclass
    class Parent:
        child: Leaf = Leaf(name="child")
        scale: int = 3

        def custom_finalize(self) -> None:
            calls.append("parent")
            self.child.value = self.scale  # a parent pushing a value down

    parent = Parent()
    parent.finalize()
    calls.clear()
    parent.finalize()
    assert calls == []
    assert parent.child.is_finalized


def test_configs_created_by_a_hook_are_finalized() -> None:
    @pydraclass
    class Parent:
        child: Any = None

        def custom_finalize(self) -> None:
            self.child = Leaf(name="made", value=7)

    parent = Parent()
    parent.finalize()
    assert parent.child.is_finalized and parent.child.doubled == 14


def test_shared_config_is_finalized_once() -> None:
    shared = Leaf(name="shared")

    @pydraclass
    class Parent:
        a: Any = None
        b: Any = None

    Parent(a=shared, b=[shared]).finalize()
    assert calls == ["shared"]


def test_reference_cycle_is_detected() -> None:
    @pydraclass
    class Node:
        child: Any = None

    a = Node()
    a.child = Node(child=[a])
    with pytest.raises(InvalidConfigurationError) as info:
        a.finalize()
    assert str(info.value) == (
        "reference cycle: Node.child.child[0] is Node again; a config cannot contain itself"
    )


def test_two_configs_pointing_at_each_other_name_the_cycle() -> None:
    @pydraclass
    class Node:
        child: Node = None  # type: ignore[assignment]

    first, second = Node(), Node()
    first.child = second
    second.child = first
    with pytest.raises(InvalidConfigurationError) as info:
        first.finalize()
    assert str(info.value) == (
        "reference cycle: Node.child.child is Node again; a config cannot contain itself"
    )
    assert not first.is_finalized and not second.is_finalized


def test_list_containing_itself_is_a_cycle() -> None:
    @pydraclass
    class Holder:
        items: list = []

    holder = Holder()
    holder.items.append(holder.items)
    with pytest.raises(InvalidConfigurationError, match="reference cycle"):
        holder.finalize()


def test_a_failing_hook_leaves_the_config_unfinalized() -> None:
    @pydraclass
    class Strict:
        lr: float = -1.0

        def custom_finalize(self) -> None:
            if self.lr <= 0:
                raise InvalidConfigurationError(f"lr must be positive, got {self.lr}")

    strict = Strict()
    with pytest.raises(InvalidConfigurationError, match="lr must be positive"):
        strict.finalize()
    assert not strict.is_finalized
    strict.lr = 0.1
    strict.finalize()
    assert strict.is_finalized
