"""The narrow interface every store backend implements.

A store is one storage location named by a URL; objects in it are named by
*keys*: ``/``-separated paths relative to the store root, never starting with
``/`` and never containing ``.`` or ``..`` segments (so nothing outside the
root can ever be named, invariant 8).

Error contract, for every backend:

- a missing key raises :class:`FileNotFoundError` (from ``stat``, ``move``,
  ``read``); ``delete`` of a missing key is not an error (deletes are
  idempotent, so a retried batch is safe), and ``stat_many`` leaves missing
  keys out of its answer;
- ``move`` onto an existing destination raises :class:`FileExistsError`;
- anything else the backend raises is wrapped in
  :class:`~reclaim.errors.StoreError` naming the store and the key. A listing
  that fails halfway raises ``StoreError``: a listing is either complete or an
  error, never silently short.

Lifetime: a store may hold clients and sessions (S3 holds an HTTP session);
:meth:`Store.close` releases them, may be called any number of times, and the
owner of the store (a command's session) calls it when it is done.

Optional capabilities are protocols of their own, tested with ``isinstance``
(never by probing for a method):

- :class:`VersionedStore`: brings a purged object back from a version the
  bucket kept (``restore --purged``); S3.
- :class:`PartitionableStore`: lists the first level under a prefix in one
  request, so a listing can be split into key ranges listed concurrently
  (:mod:`reclaim.stores.partitioned`); S3.
- :class:`SnapshotStore`: lists from a snapshot taken earlier (an S3
  Inventory report), not from the storage now; the scan then verifies every
  unreferenced key against the live store and counts age from the snapshot's
  instant (:mod:`reclaim.stores.inventory`).
"""

from __future__ import annotations

import builtins
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "ObjectInfo",
    "PartitionableStore",
    "SnapshotStore",
    "Store",
    "VersionedStore",
    "is_versioned",
    "stat_each",
    "validate_key",
]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object as a listing or a stat sees it.

    ``size``, ``mtime`` (seconds since the epoch, UTC) and ``etag`` are ``None``
    when the listing did not provide them for free; :meth:`Store.stat` fills them.
    """

    key: str
    size: int | None = None
    mtime: float | None = None
    etag: str | None = None


@runtime_checkable
class Store(Protocol):
    """What reclaim needs from a storage backend; see the module docstring for errors."""

    name: str
    """The store's name in the configuration (used in errors and reports)."""
    url: str
    """The store URL with any credentials masked."""
    atomic_move: bool
    """Whether :meth:`move` is an atomic rename (local directories) rather than copy + delete."""

    @property
    def parallel_io(self) -> bool:
        """Whether single-object calls (``stat``, ``move``) gain from running many at once.

        True where each call is a network round trip (object stores); false for
        a local directory or memory, where a call takes microseconds and threads
        would only contend with each other.
        """
        ...

    def list(
        self,
        prefix: str = "",
        *,
        skip: Sequence[str] = (),
        start_after: str | None = None,
        end_before: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix``, in byte order of the key.

        Keys under any prefix in ``skip`` are left out (pruned where the backend
        can). Byte order is the order of the keys' UTF-8 encodings, which equals
        the order of Python ``str`` comparison. ``start_after`` and
        ``end_before`` (both exclusive, ``None``: unbounded) restrict the
        listing to the keys ``k`` with ``start_after < k < end_before``, so that
        disjoint key ranges can be listed independently; a range with no key
        in it lists nothing. Raises ``ValueError`` at once for an invalid
        prefix, skip prefix or bound, ``StoreError`` while iterating.
        """
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size, mtime and (where the backend has one) ETag of ``key``."""
        ...

    def stat_many(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        """What :meth:`stat` says of each of ``keys`` that exists, by key; missing keys are left out.

        Every key is validated first (``ValueError``). Backends answer in as
        few requests as they can (S3 lists a dense key range instead of one
        ``HeadObject`` per key); the default, :func:`stat_each`, calls ``stat``
        once per key.
        """
        return stat_each(self, keys)

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        ...

    def read(self, key: str) -> bytes:
        """The content of ``key``."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key``, creating parent directories as needed."""
        ...

    def move(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``; ``dst`` must not exist."""
        ...

    def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` in as few requests as the backend allows; missing keys are ignored."""
        ...

    def close(self) -> None:
        """Release the clients and sessions the store holds; a second call does nothing.

        Where the backend holds none (a local directory, memory) this does
        nothing. A store used again after ``close`` opens what it needs anew.
        """
        ...


@runtime_checkable
class VersionedStore(Store, Protocol):
    """A store whose bucket can keep old versions of an object: purged objects can come back."""

    def restore_version(self, key: str) -> bool:
        """Copy the newest kept version of ``key`` back to ``key``; whether there was one.

        Returns ``False`` when no version is kept (versioning off, or the
        version expired). Raises ``FileExistsError`` if an object is stored at
        ``key`` (it is never overwritten), ``ValueError`` for an invalid key and
        ``StoreError`` on any other failure.
        """
        ...


@runtime_checkable
class PartitionableStore(Store, Protocol):
    """A store that can say cheaply where to split its key space for a partitioned listing."""

    max_keys: int
    """The most keys one listing request returns (the page size of a listing)."""

    def first_level(self, prefix: str = "") -> builtins.list[str]:
        """The keys and directory prefixes (ending in ``/``) one level under ``prefix``, sorted.

        Need not be complete (one request's worth is enough to choose
        boundaries). Raises ``ValueError`` for an invalid prefix and
        ``StoreError`` when the request fails.
        """
        ...


@runtime_checkable
class SnapshotStore(Store, Protocol):
    """A store whose listing is a snapshot taken earlier (an S3 Inventory report), not the storage now.

    Its listing's pages verify the keys the scan found unreferenced against
    the storage now (``KeyPage.verify``); every other call (``stat``,
    ``move``...) goes to the storage itself.
    """

    @property
    def live(self) -> Store:
        """The store as it is now, for what a snapshot cannot say (the trash, a dangling reference)."""
        ...

    def listed_as_of(self) -> datetime:
        """The instant the listing describes (when the snapshot was taken).

        The scan counts ages from it: an object is a candidate only if it was
        ``min_age`` old at this instant. Raises ``StoreError`` when no usable
        snapshot exists.
        """
        ...


def is_versioned(store: Store) -> bool:
    """Whether ``store`` can restore purged objects from kept versions (a :class:`VersionedStore`).

    It says what the backend can do, not whether the bucket has versioning on:
    in a bucket that keeps no versions, ``restore_version`` finds none and
    returns ``False``.
    """
    return isinstance(store, VersionedStore)


def stat_each(store: Store, keys: Sequence[str]) -> dict[str, ObjectInfo]:
    """:meth:`Store.stat_many` by one :meth:`Store.stat` per key (each key once): the default.

    Raises ``ValueError`` for an invalid key before any ``stat``, and what
    ``stat`` raises other than ``FileNotFoundError``.
    """
    wanted = list(dict.fromkeys(validate_key(key) for key in keys))
    found: dict[str, ObjectInfo] = {}
    for key in wanted:
        try:
            found[key] = store.stat(key)
        except FileNotFoundError:
            continue  # missing keys are left out of the answer
    return found


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid relative key, else raise ``ValueError``.

    Rejects absolute keys, empty segments and ``.``/``..`` segments, so no key
    can name anything outside the store root.
    """
    if not key or key.startswith("/") or "\x00" in key:
        raise ValueError(f"invalid key {key!r}: keys are relative, non-empty paths")
    parts = key.split("/")
    if any(part in {"", ".", ".."} for part in parts[:-1]) or parts[-1] in {".", ".."}:
        raise ValueError(f"invalid key {key!r}: empty, '.' or '..' segments are not allowed")
    if posixpath.normpath(key) != key.rstrip("/") and not key.endswith("/"):
        raise ValueError(f"invalid key {key!r}: not a normalized path")
    return key
