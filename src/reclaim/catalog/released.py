"""Keys released by row collections: what tells a released object from a stray.

When an archived row expires (its collection's ``retention`` passed), the
objects it kept referenced (``row_refs``, mapped to each store's keys through
the store's reference sources that read its table) stop being referenced.
Those keys are *released*: :func:`add_released` records them, in the
transaction that deletes the archive records, one row per key
(``kind = "exact"``, sidecar keys included) or per directory object
(``kind = "prefix"``: the prefix itself and every key under ``prefix/``).

A scan of a store with ``strays = "report"`` asks :func:`released_among` about
each page of its candidates (one set-based query per few hundred keys, never
the whole table): a candidate some row released is collected as usual, any
other one is a *stray* (no row ever referenced it, live or archived, as far as
reclaim saw), reported and never touched. A released row is consumed
(:func:`consume_released`) once its key is quarantined.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa

from reclaim.catalog.tables import sha256_hex

__all__ = ["ReleasedKey", "add_released", "consume_released", "count_released", "released_among"]

#: hashes per lookup query (well below every dialect's parameter limit)
_BATCH: Final = 500

EXACT: Final = "exact"
PREFIX: Final = "prefix"


@dataclass(frozen=True, slots=True)
class ReleasedKey:
    """A key (or, ``kind = "prefix"``, a directory object) a collection's expired rows released."""

    store: str
    key: str
    kind: str
    collection: str


def add_released(connection: sa.Connection, table: sa.Table, keys: Iterable[ReleasedKey]) -> int:
    """Record ``keys`` as released now, in ``connection``'s transaction; return how many rows were added."""
    now = datetime.now(UTC)
    rows = [
        {
            "store": k.store,
            "key": k.key,
            "key_hash": sha256_hex(k.key),
            "kind": k.kind,
            "collection": k.collection,
            "released_at": now,
        }
        for k in dict.fromkeys(keys)
    ]
    for start in range(0, len(rows), _BATCH):
        connection.execute(table.insert(), rows[start : start + _BATCH])
    return len(rows)


def _covering(key: str) -> list[str]:
    """``key`` and every directory above it (``a/b/c``: ``a/b/c``, ``a``, ``a/b``): what may release it."""
    parts = key.split("/")
    return [key, *("/".join(parts[:depth]) for depth in range(1, len(parts)))]


def _releases(kind: str, released: str, key: str) -> bool:
    if kind == PREFIX:
        return key == released or key.startswith(released + "/")
    return key == released


def _matching(
    connection: sa.Connection, table: sa.Table, store: str, keys: Collection[str]
) -> Iterable[tuple[int, str, str, str]]:
    """``(id, kind, released key, candidate key)`` for every released row that releases one of ``keys``.

    A store with no release at all (no row collection released any of its
    objects) is answered by one lookup of the index, in the same transaction,
    instead of one per key and directory above it.
    """
    anything = sa.select(table.c.id).where(table.c.store == store).limit(1)
    if connection.execute(anything).first() is None:
        return
    wanted: dict[str, list[str]] = {}
    for key in keys:
        for target in _covering(key):
            wanted.setdefault(target, []).append(key)
    hashes = {sha256_hex(target): target for target in wanted}
    ordered = sorted(hashes)
    for start in range(0, len(ordered), _BATCH):
        query = sa.select(table.c.id, table.c.kind, table.c.key).where(
            table.c.store == store, table.c.key_hash.in_(ordered[start : start + _BATCH])
        )
        for row_id, kind, released in connection.execute(query):
            for key in wanted.get(str(released), ()):
                if _releases(str(kind), str(released), key):
                    yield int(row_id), str(kind), str(released), key


def released_among(connection: sa.Connection, table: sa.Table, store: str, keys: Collection[str]) -> set[str]:
    """The subset of ``keys`` of ``store`` that a row collection released (set-based, batched)."""
    if not keys:
        return set()
    return {key for _id, _kind, _released, key in _matching(connection, table, store, keys)}


def consume_released(
    connection: sa.Connection,
    table: sa.Table,
    store: str,
    keys: Collection[str],
    *,
    directories: bool = True,
) -> int:
    """Forget the releases of ``keys`` (they were quarantined); return how many rows were deleted.

    A directory's release goes with the first of its keys quarantined: the
    rest of the directory was a candidate in the same scan. A key under it
    that was too young then is a stray later, reported and never touched
    (the safe side). Without ``directories`` only the keys' own (exact)
    releases go: a distributed run's range leaves a directory's release to
    the coordinator, which forgets it once every range was scanned
    (:func:`consume_directories`), since another range may still be scanning
    keys under it.
    """
    if not keys:
        return 0
    ids = sorted(
        {
            row_id
            for row_id, kind, _released, _key in _matching(connection, table, store, keys)
            if directories or kind != PREFIX
        }
    )
    deleted = 0
    for start in range(0, len(ids), _BATCH):
        deleted += connection.execute(
            table.delete().where(table.c.id.in_(ids[start : start + _BATCH]))
        ).rowcount
    return deleted


def released_directories(
    connection: sa.Connection, table: sa.Table, store: str, keys: Collection[str]
) -> set[str]:
    """The directories whose (prefix) release releases one of ``keys``."""
    if not keys:
        return set()
    return {
        released for _id, kind, released, _key in _matching(connection, table, store, keys) if kind == PREFIX
    }


def consume_directories(
    connection: sa.Connection, table: sa.Table, store: str, directories: Collection[str]
) -> int:
    """Forget the prefix releases of ``directories`` of ``store``; return how many rows were deleted."""
    ordered = sorted({sha256_hex(directory) for directory in directories})
    deleted = 0
    for start in range(0, len(ordered), _BATCH):
        deleted += connection.execute(
            table.delete().where(
                table.c.store == store,
                table.c.kind == PREFIX,
                table.c.key_hash.in_(ordered[start : start + _BATCH]),
            )
        ).rowcount
    return deleted


def count_released(connection: sa.Connection, table: sa.Table, store: str) -> int:
    """How many releases of ``store`` wait for their key to be quarantined."""
    query = sa.select(sa.func.count()).select_from(table).where(table.c.store == store)
    return int(connection.execute(query).scalar_one())
