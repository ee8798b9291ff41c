"""The outputs of a gate run: terminal table, gate JUnit XML, summary.json."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a report is built.

    A report of 50,000 results creates a few hundred thousand containers and no reference
    cycles; each collection of the oldest generation would walk every object of the run,
    which makes building a report grow faster than its size (measured: 3.5 s -> 1.4 s for
    the JUnit of 50,000 results). Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
