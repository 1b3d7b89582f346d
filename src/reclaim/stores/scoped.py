"""A store limited to some key prefixes: a listing that never leaves them.

DataJoint embeds the schema in every managed key (``_hash/<schema>/…``,
``_schema/<schema>/…``), so a run over some schemas must list only their
subtrees: never another schema's, never the user's own files elsewhere in the
store. :class:`ScopedStore` wraps any store and lists the union of its
``include`` prefixes, in byte order, by listing each prefix in turn: once
prefixes that lie under another are dropped, no prefix is a prefix of another,
so every key under an earlier prefix sorts before every key under a later one
and the concatenation *is* the ordered listing.

Everything else (``stat``, ``move``, ``delete``, and any backend extra such as
a versioned bucket's calls) goes to the wrapped store unchanged: the scope
decides what can become a candidate, not which journaled key can be restored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from reclaim.stores.base import ObjectInfo, Store

__all__ = ["ScopedStore", "disjoint_prefixes"]


def disjoint_prefixes(prefixes: Sequence[str]) -> list[str]:
    """``prefixes`` sorted, without those that lie under another one (their keys are listed already)."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if kept and prefix.startswith(kept[-1]):
            continue
        kept.append(prefix)
    return kept


class ScopedStore:
    """``store`` seen through ``include``: only keys under those prefixes are ever listed."""

    def __init__(self, store: Store, include: Sequence[str]) -> None:
        if not include:
            raise ValueError("a scoped store needs at least one prefix")
        self._store = store
        self.include = disjoint_prefixes(include)
        self.name = store.name
        self.url = store.url
        self.atomic_move = store.atomic_move

    @property
    def parallel_io(self) -> bool:
        """As the wrapped store."""
        return self._store.parallel_io

    def list(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[ObjectInfo]:
        """Every object under both ``prefix`` and one of the scope's prefixes, in byte order."""
        for scope in self.include:
            if scope.startswith(prefix):
                yield from self._store.list(scope, skip=skip)
            elif prefix.startswith(scope):
                yield from self._store.list(prefix, skip=skip)

    def stat(self, key: str) -> ObjectInfo:
        """As the wrapped store."""
        return self._store.stat(key)

    def stat_many(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        """As the wrapped store."""
        return self._store.stat_many(keys)

    def exists(self, key: str) -> bool:
        """As the wrapped store."""
        return self._store.exists(key)

    def read(self, key: str) -> bytes:
        """As the wrapped store."""
        return self._store.read(key)

    def write(self, key: str, data: bytes) -> None:
        """As the wrapped store."""
        self._store.write(key, data)

    def move(self, src: str, dst: str) -> None:
        """As the wrapped store."""
        self._store.move(src, dst)

    def delete(self, keys: Sequence[str]) -> None:
        """As the wrapped store."""
        self._store.delete(keys)

    def __getattr__(self, name: str) -> Any:
        # backend extras (versioned buckets, first_level for partitioned listing) pass through
        return getattr(self._store, name)
