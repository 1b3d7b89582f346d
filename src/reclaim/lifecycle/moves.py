"""Moves and deletes of one batch: through the store's batch mover or deleter where it has one.

A local directory (:meth:`reclaim.stores.local.LocalStore.moves` and
``deletes``) opens each directory of a batch once and creates each
destination directory once, so quarantine, purge and restore pay one rename
or unlink per object instead of a lookup of every path segment (and a
``mkdir``) per object. A store without one (S3, fsspec, memory) gets its own
:meth:`~reclaim.stores.Store.move` and ``delete``, unchanged, so no store
makes more requests than it did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from reclaim.stores import Store

__all__ = ["Delete", "Move", "batch_deleter", "batch_mover"]

Move = Callable[[str, str], None]
"""``move(src, dst)`` with the error contract of :meth:`~reclaim.stores.Store.move`."""
Delete = Callable[[Sequence[str]], None]
"""``delete(keys)`` with the error contract of :meth:`~reclaim.stores.Store.delete`."""


@contextlib.contextmanager
def batch_mover(store: Store) -> Iterator[Move]:
    """A ``move(src, dst)`` for one batch of ``store``'s moves (see the module docstring)."""
    moves: Callable[[], contextlib.AbstractContextManager[Any]] | None = getattr(store, "moves", None)
    if moves is None:
        yield store.move
        return
    with moves() as mover:
        yield mover.move


@contextlib.contextmanager
def batch_deleter(store: Store) -> Iterator[Delete]:
    """A ``delete(keys)`` for one batch of ``store``'s deletes (see the module docstring)."""
    deletes: Callable[[], contextlib.AbstractContextManager[Any]] | None = getattr(store, "deletes", None)
    if deletes is None:
        yield store.delete
        return
    with deletes() as deleter:
        yield deleter.delete
