"""The collector helpers: paused around bulk work, and a frozen heap around apply's calls."""

from __future__ import annotations

import gc

from reconciler.gc_pause import gc_paused, heap_frozen


def test_the_heap_is_frozen_only_inside_the_block_and_new_objects_are_still_collected() -> None:
    before = gc.get_freeze_count()
    with heap_frozen():
        assert gc.get_freeze_count() > before
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # garbage made inside the block is still found
    assert gc.get_freeze_count() == 0


def test_the_collector_is_off_inside_a_pause_and_back_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
