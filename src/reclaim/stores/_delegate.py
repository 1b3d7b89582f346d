"""The versioned capability of a wrapper store, passed to the store it wraps.

A wrapper (a scoped view, an inventory listing) changes what a store *lists*,
never which journaled key is hidden, restored or purged: those act on the
bucket as it is. :class:`VersionedDelegate` holds the methods of
:class:`~reclaim.stores.VersionedStore` once, each handing the call unchanged
to ``_versioned``; a wrapper that has the capability inherits it and sets
``_versioned`` to the store it wraps. A wrapper of a store without the
capability must not inherit it, so that ``isinstance`` tells the truth.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta

from reclaim.stores.base import Version, VersionedStore

__all__ = ["VersionedDelegate"]


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
