"""Moves of one batch: through the store's batch mover where it has one, else one ``move`` each.

A local directory (:meth:`reclaim.stores.local.LocalStore.moves`) opens each
directory of a batch once and creates each destination directory once, so
quarantine, purge and restore pay one rename per object instead of a lookup
of every path segment and a ``mkdir`` per object. A store without one (S3,
fsspec, memory) gets its own :meth:`~reclaim.stores.Store.move`, unchanged,
so no store makes more requests than it did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from reclaim.stores import Store

__all__ = ["Move", "batch_mover"]

Move = Callable[[str, str], None]
"""``move(src, dst)`` with the error contract of :meth:`~reclaim.stores.Store.move`."""


@contextlib.contextmanager
def batch_mover(store: Store) -> Iterator[Move]:
    """A ``move(src, dst)`` for one batch of ``store``'s moves (see the module docstring)."""
    moves: Callable[[], contextlib.AbstractContextManager[Any]] | None = getattr(store, "moves", None)
    if moves is None:
        yield store.move
        return
    with moves() as mover:
        yield mover.move
