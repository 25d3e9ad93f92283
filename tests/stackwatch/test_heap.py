"""The service freezes its long-lived heap so that full collections skip it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stackwatch.heap import freeze_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


def test_live_objects_are_frozen_and_garbage_cycles_are_collected_first(unfrozen: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    kept = Node()
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle that only the cyclic collector frees
    gc.collect()
    collected_before = gc.get_stats()[2]["collected"]
    del a, b

    frozen = freeze_heap("test")

    assert frozen == gc.get_freeze_count() > 0
    # The cycle was collected before freezing (it would otherwise stay for good).
    assert gc.get_stats()[2]["collected"] >= collected_before + 2
    assert not any(isinstance(o, Node) and o is not kept for o in gc.get_objects())
    # Frozen objects are out of the generations that collections traverse.
    assert all(o is not kept for o in gc.get_objects())
    assert gc.collect() == 0
