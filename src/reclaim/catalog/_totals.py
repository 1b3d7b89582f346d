"""Running totals: counts and bytes per store (journal) or collection (archive) and state.

``status`` and the dashboard need, per store, how many entries are in each
state and their bytes; summing a million-entry journal for that took seconds.
Instead every write that adds, moves or deletes a journal entry or an
archived row calls :func:`bump` in *its own transaction*, so the totals commit
with the change they count, or not at all.

Exact under concurrent writers (threads, processes, several hosts): each
change is one upsert that adds a delta in the database (``entries = entries +
:d``), never a value read and written back from Python; PostgreSQL and InnoDB
lock the total's row until the transaction ends, SQLite serialises writers.
Deltas are applied in (name, state) order, so two transactions never wait for
each other in a cycle. :func:`recount` counts again from the rows themselves,
for ``check``-style verification and for catalogs filled in bulk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import sqlalchemy as sa

__all__ = [
    "ARCHIVE",
    "JOURNAL",
    "Deltas",
    "add",
    "bump",
    "counted",
    "kept",
    "read",
    "recount",
    "row_length",
    "size_of",
]

Kind = Literal["store", "collection"]
#: the totals of the object journal, by store
JOURNAL: Final[Kind] = "store"
#: the totals of the row archive, by collection
ARCHIVE: Final[Kind] = "collection"

Deltas = dict[tuple[str, str], list[int]]
"""``{(name, state): [entries, bytes]}``: what a transaction changes."""


def add(deltas: Deltas, name: str, state: str, entries: int, size: int | None) -> None:
    """Add ``entries`` entries of ``size`` bytes in all (``None``: unknown, counted as 0) to ``deltas``."""
    slot = deltas.setdefault((name, state), [0, 0])
    slot[0] += entries
    slot[1] += _int(size)


def bump(
    connection: sa.Connection, totals: sa.Table, kind: Kind, deltas: Mapping[tuple[str, str], list[int]]
) -> None:
    """Add ``deltas`` to the totals of ``kind``, in ``connection``'s transaction (one upsert each)."""
    for (name, state), (entries, size) in sorted(deltas.items()):
        if entries == 0 and size == 0:
            continue
        values = {"kind": kind, "name": name, "state": state, "entries": entries, "bytes": size}
        connection.execute(_upsert(connection.dialect.name, totals, values))


def _upsert(dialect: str, totals: sa.Table, values: dict[str, Any]) -> Any:
    grow = {"entries": totals.c.entries + values["entries"], "bytes": totals.c.bytes + values["bytes"]}
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Any = postgresql.insert(totals).values(**values)
        return statement.on_conflict_do_update(index_elements=["kind", "name", "state"], set_=grow)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(totals).values(**values)
        return statement.on_conflict_do_update(index_elements=["kind", "name", "state"], set_=grow)
    from sqlalchemy.dialects import mysql

    return mysql.insert(totals).values(**values).on_duplicate_key_update(**grow)


def read(connection: sa.Connection, totals: sa.Table, kind: Kind, name: str) -> dict[str, tuple[int, int]]:
    """The totals of one store or collection: ``{state: (entries, bytes)}`` (states never seen are absent)."""
    query = sa.select(totals.c.state, totals.c.entries, totals.c.bytes).where(
        totals.c.kind == kind, totals.c.name == name
    )
    return {str(state): (int(n), int(b)) for state, n, b in connection.execute(query)}


def row_length(column: Any, dialect: str) -> Any:
    """An archived row's size as the totals count it: its JSON's length in characters, on every dialect."""
    return sa.func.char_length(column) if dialect in ("mysql", "mariadb") else sa.func.length(column)


def counted(
    connection: sa.Connection, objects: sa.Table, rows: sa.Table
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """The totals as the rows themselves give them now: ``{(kind, name, state): (entries, bytes)}``."""
    found: dict[tuple[str, str, str], tuple[int, int]] = {}
    journal = sa.select(
        objects.c.store, objects.c.state, sa.func.count(), sa.func.sum(objects.c.size)
    ).group_by(objects.c.store, objects.c.state)
    for store, state, n, b in connection.execute(journal):
        found[(JOURNAL, str(store), str(state))] = (int(n), _int(b))
    length = row_length(rows.c.row, connection.dialect.name)
    archive = sa.select(rows.c.collection, rows.c.state, sa.func.count(), sa.func.sum(length)).group_by(
        rows.c.collection, rows.c.state
    )
    for collection, state, n, b in connection.execute(archive):
        found[(ARCHIVE, str(collection), str(state))] = (int(n), _int(b))
    return found


def kept(connection: sa.Connection, totals: sa.Table) -> dict[tuple[str, str, str], tuple[int, int]]:
    """The totals as kept, without the states that are back to nothing."""
    query = sa.select(totals.c.kind, totals.c.name, totals.c.state, totals.c.entries, totals.c.bytes)
    return {
        (str(k), str(n), str(s)): (int(e), int(b))
        for k, n, s, e, b in connection.execute(query)
        if (e, b) != (0, 0)
    }


def recount(connection: sa.Connection, objects: sa.Table, rows: sa.Table, totals: sa.Table) -> None:
    """Replace every total with a count of the rows (for a catalog filled in bulk, or repaired by hand)."""
    connection.execute(totals.delete())
    values = [
        {"kind": k, "name": n, "state": s, "entries": e, "bytes": b}
        for (k, n, s), (e, b) in sorted(counted(connection, objects, rows).items())
    ]
    if values:
        connection.execute(totals.insert(), values)


def size_of(size: Any) -> int:
    """A size as the totals count it: unknown (or impossible) sizes are 0."""
    return _int(size)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0  # a size no store reported (a hand-edited row): counted, not summed
