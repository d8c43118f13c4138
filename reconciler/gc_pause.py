"""Pausing Python's cyclic garbage collector around bulk work.

Planning builds hundreds of thousands of small acyclic objects (YAML nodes, dicts, models,
records). The collector would run full passes over all of them again and again as they pile
up, which costs up to 40% of a large plan; none of them form cycles, so pausing it is safe.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, restoring its previous setting after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Run the block with every object that exists now out of the collector's sight.

    For a long block that allocates as it goes (apply's calls) over a large heap that lives
    until the end (the state, the plan): the collector's full passes would walk that heap again
    and again, a cost that grows with the number of leads. New objects are collected as usual;
    the frozen ones go back to the collector after the block.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
