"""A store limited to some key prefixes: a listing that never leaves them.

DataJoint embeds the schema in every managed key (``_hash/<schema>/…``,
``_schema/<schema>/…``), so a run over some schemas must list only their
subtrees: never another schema's, never the user's own files elsewhere in the
store. :class:`ScopedStore` wraps any store and lists the union of its
``include`` prefixes, in byte order, by listing each prefix in turn: once
prefixes that lie under another are dropped, no prefix is a prefix of another,
so every key under an earlier prefix sorts before every key under a later one
and the concatenation *is* the ordered listing. ``skip``, ``start_after`` and
``end_before`` are passed to each prefix's listing unchanged (a range is a
range of keys, whichever prefix they sit under), and a prefix wholly outside
the range is not listed at all.

Everything else (``stat``, ``move``, ``delete``, ``close``) goes to the wrapped
store unchanged: the scope decides what can become a candidate, not which
journaled key can be restored. Optional capabilities are delegated explicitly,
never by attribute passthrough, so that ``isinstance`` tells the truth:
:func:`scoped` returns a :class:`VersionedScopedStore` or a
:class:`PartitionableScopedStore` (or both at once) exactly when the wrapped
store is a :class:`~reclaim.stores.VersionedStore` or a
:class:`~reclaim.stores.PartitionableStore`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence

from reclaim.stores._delegate import StoreDelegate, VersionedDelegate
from reclaim.stores._walk import check_listing_args
from reclaim.stores.base import ObjectInfo, PartitionableStore, Store, VersionedStore

__all__ = [
    "PartitionableScopedStore",
    "ScopedStore",
    "VersionedPartitionableScopedStore",
    "VersionedScopedStore",
    "disjoint_prefixes",
    "scoped",
]


def disjoint_prefixes(prefixes: Sequence[str]) -> list[str]:
    """``prefixes`` sorted, without those that lie under another one (their keys are listed already)."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if kept and prefix.startswith(kept[-1]):
            continue
        kept.append(prefix)
    return kept


def scoped(store: Store, include: Sequence[str]) -> ScopedStore:
    """``store`` seen through ``include``, with the optional capabilities ``store`` has and no others.

    Raises ``ValueError`` when ``include`` is empty or holds an invalid prefix.
    """
    if isinstance(store, VersionedStore) and isinstance(store, PartitionableStore):
        return VersionedPartitionableScopedStore(store, include)
    if isinstance(store, VersionedStore):
        return VersionedScopedStore(store, include)
    if isinstance(store, PartitionableStore):
        return PartitionableScopedStore(store, include)
    return ScopedStore(store, include)


class ScopedStore(StoreDelegate):
    """``store`` seen through ``include``: only keys under those prefixes are ever listed.

    A plain scoped store has no optional capability even if ``store`` has
    some; :func:`scoped` picks the subclass that carries them.
    """

    def __init__(self, store: Store, include: Sequence[str]) -> None:
        if not include:
            raise ValueError("a scoped store needs at least one prefix")
        check_listing_args("", list(include), None, None)  # the same rules as a listing's prefixes
        self._store = store
        self.include = disjoint_prefixes(include)
        self.name = store.name
        self.url = store.url
        self.atomic_move = store.atomic_move

    @property
    def wrapped(self) -> Store:
        """The store the scope applies to."""
        return self._store

    def list(
        self,
        prefix: str = "",
        *,
        skip: Sequence[str] = (),
        start_after: str | None = None,
        end_before: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """Every object under both ``prefix`` and one of the scope's prefixes, in byte order.

        The arguments mean what they mean for any store (and are validated at
        once, ``ValueError``); each scope prefix is listed by the wrapped store
        with them, lazily, one after the other.
        """
        check_listing_args(prefix, skip, start_after, end_before)
        parts: list[str] = []
        for scope in self.include:
            if scope.startswith(prefix):
                part = scope
            elif prefix.startswith(scope):
                part = prefix
            else:
                continue  # disjoint: nothing is under both
            if end_before is not None and part >= end_before:
                continue  # every key under part is >= part >= end_before
            if start_after is not None and start_after > part and not start_after.startswith(part):
                continue  # start_after sorts after every key under part
            parts.append(part)
        return self._chain(parts, skip, start_after, end_before)

    def _chain(
        self, parts: builtins.list[str], skip: Sequence[str], start_after: str | None, end_before: str | None
    ) -> Iterator[ObjectInfo]:
        for part in parts:
            yield from self._store.list(part, skip=skip, start_after=start_after, end_before=end_before)

    def close(self) -> None:
        """Close the wrapped store (the scope holds nothing of its own)."""
        self._store.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store!r}, include={self.include!r})"


class VersionedScopedStore(VersionedDelegate, ScopedStore):
    """A scoped view of a :class:`~reclaim.stores.VersionedStore`: purged objects can come back."""

    def __init__(self, store: VersionedStore, include: Sequence[str]) -> None:
        super().__init__(store, include)
        self._versioned = store


class PartitionableScopedStore(ScopedStore):
    """A scoped view of a :class:`~reclaim.stores.PartitionableStore`.

    ``first_level`` answers as the wrapped store: its entries only choose the
    boundaries of key ranges, and every range is then listed through the
    scope, so an entry outside the scope never becomes a listed key.
    """

    def __init__(self, store: PartitionableStore, include: Sequence[str]) -> None:
        super().__init__(store, include)
        self._partitionable = store

    @property
    def max_keys(self) -> int:
        """As the wrapped store."""
        return self._partitionable.max_keys

    def first_level(self, prefix: str = "") -> builtins.list[str]:
        """As the wrapped store (boundaries only; see the class docstring)."""
        return self._partitionable.first_level(prefix)


class VersionedPartitionableScopedStore(VersionedDelegate, PartitionableScopedStore):
    """A scoped view of a store that is both versioned and partitionable (S3)."""

    def __init__(self, store: Store, include: Sequence[str]) -> None:
        if not (isinstance(store, VersionedStore) and isinstance(store, PartitionableStore)):
            raise TypeError(f"{store!r} is not both a versioned and a partitionable store")
        super().__init__(store, include)
        self._versioned = store
