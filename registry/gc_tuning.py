"""The cyclic garbage collector, tuned for a long-running server process.

CPython's collector now and then runs a full collection, which walks every tracked object: in a
registry process that is the ~150,000 objects of the app, its libraries and their caches, 70 to
110 ms on the 2-core reference machine, during which every request the process holds waits
(docs/performance.md). Almost all of those objects live as long as the process. So, once the
app has started, this collects once, freezes what survives (:func:`gc.freeze`: out of every
later collection's walk, as Instagram does for its Django servers) and raises the thresholds
that start a collection: a request's objects are freed by reference counting as it ends, and
the few cycles it leaves are collected a little later, in smaller walks.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

THRESHOLDS = (20_000, 20, 50)
"""Allocations (net of frees) before a young collection; young collections before a middle one;
middle ones before a full one. CPython's defaults are (700, 10, 10)."""


def tune() -> Callable[[], None]:
    """Collect, freeze the survivors and raise the thresholds; returns what undoes it (the
    app's shutdown calls it, so that an app made and closed in a longer process, such as a
    test, leaves the collector as it found it)."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)

    def undo() -> None:
        gc.set_threshold(*previous)
        gc.unfreeze()

    return undo
