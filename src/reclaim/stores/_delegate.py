"""What a wrapper store passes unchanged to the store it wraps.

A wrapper (a scoped view, an inventory listing) changes what a store *lists*,
never which key is read, moved, hidden, restored or purged: those act on the
storage as it is. :class:`StoreDelegate` holds ``parallel_io`` and the
key-level methods of :class:`~reclaim.stores.Store` (everything but ``list``
and ``close``), each handing the call unchanged to ``_store``;
:class:`VersionedDelegate` holds those of
:class:`~reclaim.stores.VersionedStore`, handed to ``_versioned``.
A wrapper inherits them and sets the attributes to the store it wraps; a
wrapper of a store without the versioned capability must not inherit
:class:`VersionedDelegate`, so that ``isinstance`` tells the truth.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta

from reclaim.stores.base import ObjectInfo, Store, Version, VersionedStore

__all__ = ["StoreDelegate", "VersionedDelegate"]


class StoreDelegate:
    """The key-level :class:`~reclaim.stores.Store` methods, each as ``_store`` answers it."""

    _store: Store

    @property
    def parallel_io(self) -> bool:
        """As the wrapped store."""
        return self._store.parallel_io

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


class VersionedDelegate:
    """The :class:`~reclaim.stores.VersionedStore` methods, each as ``_versioned`` answers it."""

    _versioned: VersionedStore

    def restore_version(self, key: str) -> bool:
        """As the wrapped store: purged objects come back from the bucket's kept versions."""
        return self._versioned.restore_version(key)

    def versioning_status(self) -> str:
        """As the wrapped store."""
        return self._versioned.versioning_status()

    def noncurrent_expiry_problem(self, grace: timedelta, *, required: bool = True) -> str | None:
        """As the wrapped store."""
        return self._versioned.noncurrent_expiry_problem(grace, required=required)

    def hide(self, keys: Sequence[str]) -> dict[str, str]:
        """As the wrapped store: quarantine acts on the bucket, whatever the listing came from."""
        return self._versioned.hide(keys)

    def delete_versions(self, versions: Sequence[tuple[str, str]]) -> None:
        """As the wrapped store."""
        self._versioned.delete_versions(versions)

    def served_versions(self, keys: Sequence[str]) -> dict[str, Version]:
        """As the wrapped store (asked now, never a snapshot)."""
        return self._versioned.served_versions(keys)

    def versions(self, key: str) -> builtins.list[Version]:
        """As the wrapped store."""
        return self._versioned.versions(key)
