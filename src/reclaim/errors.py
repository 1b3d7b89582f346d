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
     +-- CatalogError(store, key, run)       the catalog could not be opened, migrated or trusted
     +-- UnknownItem(store, key, collection, run)  a restore or lookup named something unknown
     +-- UnsafeToProceed(reason, store, collection)  a guard refused to continue (fail closed)
     +-- PlanSpent                           a plan was carried out (or dropped) already
     +-- LockHeld(holder)                    another collector holds the lease
     +-- LeaseLost(holder)                   this collector's lease expired or was broken

Each class has an ``exit_code``; the CLI maps errors to those codes (see the
README's exit code table). Messages never contain secrets: URLs are masked
before they are put into an error.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "CatalogError",
    "CollectionError",
    "ConfigError",
    "LeaseLost",
    "LockHeld",
    "PlanSpent",
    "ReclaimError",
    "RowConflict",
    "SourceError",
    "StoreError",
    "UnknownItem",
    "UnorderedSource",
    "UnsafeToProceed",
    "use_redactor",
]

#: the attributes an error may carry about what it concerns, in the order they are reported
ABOUT = ("field", "path", "store", "key", "source", "collection", "pk", "run", "holder", "reason")


_redactor: Callable[[str], str] | None = None


def use_redactor(redact: Callable[[str], str]) -> None:
    """Pass every error message through ``redact`` (set once, by :mod:`reclaim.config.secrets`).

    This is the choke point for messages: whatever a driver or backend put into
    an error's text (a URL with its password, a credential), the message of a
    :class:`ReclaimError` never carries a secret. The attributes (``store``,
    ``key``...) are left as they are: keys and names are never altered.
    """
    global _redactor
    _redactor = redact


class ReclaimError(Exception):
    """Root of every error reclaim raises on purpose; its message passes through the redaction."""

    exit_code = 1

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str) and _redactor is not None:
            args = (_redactor(args[0]), *args[1:])
        super().__init__(*args)

    def about(self) -> dict[str, str]:
        """What the error concerns (store, key, source, collection, run, ...): the attributes that are set."""
        found = {name: getattr(self, name, None) for name in ABOUT}
        return {name: str(value) for name, value in found.items() if value is not None}


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
    """The catalog database could not be opened, created, upgraded, written or trusted.

    ``store``, ``key`` and ``run`` say which journal entry or run record it is
    about, where the error concerns one.
    """

    exit_code = 6

    def __init__(
        self, message: str, *, store: str | None = None, key: str | None = None, run: int | None = None
    ) -> None:
        self.store = store
        self.key = key
        self.run = run
        super().__init__(message)


class UnknownItem(ReclaimError):
    """A restore or lookup named a key, primary key, run or item the catalog does not know."""

    exit_code = 8

    def __init__(
        self,
        message: str,
        *,
        store: str | None = None,
        key: str | None = None,
        collection: str | None = None,
        pk: str | None = None,
        run: int | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.collection = collection
        self.pk = pk
        self.run = run
        super().__init__(message)


class UnsafeToProceed(ReclaimError):
    """A safety guard refused to go on; nothing was changed."""

    exit_code = 7

    def __init__(self, reason: str, *, store: str | None = None, collection: str | None = None) -> None:
        self.reason = reason
        self.store = store
        self.collection = collection
        super().__init__(reason)


class PlanSpent(ReclaimError):
    """A plan was asked to run a second time: each plan is carried out (or dropped) once.

    A plan holds concrete work worked out at one moment; running it again would
    act on what that moment saw. Plan again instead.
    """

    exit_code = 1


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
