"""The exception tree of reclaim.

Every error reclaim raises on purpose derives from :class:`ReclaimError` and
carries the thing it is about (a config field, a store and key, a reference
source), so that the message alone tells an operator where to look::

    ReclaimError
     +-- ConfigError(field, value, path)     bad or missing configuration
     +-- SourceError(source)                 a reference source failed or misbehaved
     |    +-- UnorderedSource(source)        a stream was not in key order
     +-- StoreError(store, key)              listing or touching a store failed
     +-- CollectionError(collection)         a row collection's table could not be read or changed
     +-- RowConflict(collection, pk)         a restore found the row's primary key taken again
     +-- CatalogError                        the catalog could not be opened or migrated
     +-- UnsafeToProceed(reason)             a guard refused to continue (fail closed)
     +-- LockHeld(holder)                    another collector holds the lease
     +-- LeaseLost(holder)                   this collector's lease expired or was broken

Each class has an ``exit_code``; the CLI maps errors to those codes (see the
README's exit code table). Messages never contain secrets: URLs are masked
before they are put into an error.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CollectionError",
    "ConfigError",
    "LeaseLost",
    "LockHeld",
    "ReclaimError",
    "RowConflict",
    "SourceError",
    "StoreError",
    "UnorderedSource",
    "UnsafeToProceed",
]


class ReclaimError(Exception):
    """Root of every error reclaim raises on purpose."""

    exit_code = 1


class ConfigError(ReclaimError):
    """The configuration is invalid; names the file, the field and the bad value."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        path: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.path = path
        where = ""
        if path:
            where += f"{path}: "
        if field:
            where += f"{field}: "
        super().__init__(f"{where}{message}")


class SourceError(ReclaimError):
    """A reference source could not be read, or returned something unusable."""

    exit_code = 3

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"reference source {source!r}: {message}")


class UnorderedSource(SourceError):
    """A reference stream (or a listing) was not in non-decreasing key order."""


class StoreError(ReclaimError):
    """Listing, reading or changing a store failed."""

    exit_code = 4

    def __init__(self, store: str, message: str, *, key: str | None = None) -> None:
        self.store = store
        self.key = key
        about = f"store {store!r}"
        if key is not None:
            about += f", key {key!r}"
        super().__init__(f"{about}: {message}")


class CollectionError(ReclaimError):
    """Reading or changing the table of a row collection failed."""

    exit_code = 3

    def __init__(self, collection: str, message: str) -> None:
        self.collection = collection
        super().__init__(f"collection {collection!r}: {message}")


class RowConflict(ReclaimError):
    """Restoring an archived row would overwrite a row that now holds its primary key."""

    exit_code = 9

    def __init__(self, collection: str, pk: str, message: str | None = None) -> None:
        self.collection = collection
        self.pk = pk
        super().__init__(
            f"collection {collection!r}, primary key {pk}: "
            + (message or "a row with this primary key exists again; it is not overwritten")
        )


class CatalogError(ReclaimError):
    """The catalog database could not be opened, created or upgraded."""

    exit_code = 6


class UnsafeToProceed(ReclaimError):
    """A safety guard refused to go on; nothing was changed."""

    exit_code = 7

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class LockHeld(ReclaimError):
    """Another collector holds the catalog lease."""

    exit_code = 11

    def __init__(self, holder: str, message: str | None = None) -> None:
        self.holder = holder
        super().__init__(message or f"the lease is held by {holder}")


class LeaseLost(ReclaimError):
    """The lease this collector held expired or was broken; the run stops before its next side effect.

    Another collector may hold the lease now, so going on could race it. What
    the run already did is in the journal, and the next run (or ``reclaim
    recover``) finishes or rolls back anything left in flight.
    """

    exit_code = 12

    def __init__(self, holder: str, message: str | None = None) -> None:
        self.holder = holder
        super().__init__(message or f"the lease held by {holder} was lost")
