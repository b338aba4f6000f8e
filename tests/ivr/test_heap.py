"""Start-up objects are frozen out of the garbage collector's full collections
(ivr.infra.heap); what is made after is still collected."""

from __future__ import annotations

import gc
import weakref

import pytest

from ivr.infra.heap import freeze_startup_objects


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()  # the test process goes back to collecting everything


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_start_up_objects_leave_the_collected_generations(unfrozen):
    made = [{"n": i} for i in range(20_000)]  # what start-up keeps for the process's life
    frozen = freeze_startup_objects()
    assert frozen >= len(made)
    tracked = {id(o) for o in gc.get_objects()}  # the generations collections walk
    assert not [o for o in made if id(o) in tracked]


def test_start_up_garbage_is_collected_not_frozen(unfrozen):
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle only the collector can free
    gone = weakref.ref(a)
    del a, b
    freeze_startup_objects()
    assert gone() is None


def test_what_is_made_after_is_still_collected(unfrozen):
    freeze_startup_objects()
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None
