"""Batched journal writes: many intents, or many compare-and-sets, in one transaction.

One transaction per object and step made the journal the bottleneck of a
collection (three synchronous commits per object). These functions keep the
journal's two rules (see :mod:`reclaim.catalog.journal`) while writing a
whole batch in one transaction, :data:`CHUNK` rows per statement:

- **One active episode per key.** :func:`record_intents` reads which of the
  keys already have an active entry and inserts the others, in one
  transaction. A concurrent writer may insert one of those keys in between:
  the database's unique index on ``(store, active_hash)`` then refuses the
  insert (PostgreSQL and InnoDB first wait for the other transaction to end),
  nothing of the batch is written, and the batch is tried again, when the key
  shows as taken. Keys are inserted in key order, so two batches never wait
  for each other in a cycle (and entry ids follow the keys, which keeps the
  later steps' directory accesses local). After a few such rounds the batch
  is recorded one key per transaction, exactly as
  :meth:`Journal.record_intent` does.
- **Every state change is a compare-and-set.** :func:`transition_many`
  updates the entries grouped by the (state, version) they were read with:
  ``UPDATE ... WHERE id IN (...) AND state = ? AND version = ? RETURNING
  id`` where the dialect returns rows from an UPDATE (PostgreSQL, SQLite),
  so exactly the rows still as read are moved and their ids come back. On
  MariaDB, which cannot, the rows are first locked (``SELECT ... FOR
  UPDATE`` in id order), those still as read kept, and exactly those updated.
  An entry another actor moved since it was read loses, as with
  :meth:`Journal.transition`.

Both return one result per input, in input order: the new entry, or ``None``.

On PostgreSQL a list of ids or hashes is one array parameter (``= ANY(...)``)
and the intents are inserted by the driver's ``executemany`` (psycopg's
pipeline: one short statement, parsed once), their ids read back by
``active_hash`` as on the other dialects. An expanded ``IN`` list of 500
values, or a 500-row ``VALUES`` list, is a statement psycopg parses anew for
every chunk (it caches only short ones), which cost more than the database
did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from reclaim.catalog import _totals
from reclaim.catalog._entry import (
    TERMINAL,
    TRANSITIONS,
    Entry,
    State,
    check_intent,
    chunks,
    entry_written,
    mtime_columns,
    replaced,
    utc,
)
from reclaim.catalog.tables import sha256_hex

__all__ = ["CHUNK", "Intent", "intent_row", "moved", "record_intents", "record_one", "transition_many"]

#: rows per statement (and keys per ``IN (...)`` list); a batch is one transaction of many
CHUNK: Final = 500
#: the values a 64-bit integer column holds
_INT64: Final = (-(2**63), 2**63 - 1)
#: rounds of a chunk of intents that lost keys to concurrent writers before going key by key
CONFLICT_ROUNDS: Final = 3

_T = TypeVar("_T")


class Write(Protocol):
    """Runs ``work`` in a transaction of its own (retrying deadlocks) and returns its result."""

    def __call__(self, work: Callable[[sa.Connection], _T], /) -> _T: ...


IsConflict = Callable[[sa.exc.IntegrityError], bool]
"""Whether an integrity error is the unique index refusing a second active entry."""


@dataclass(frozen=True)
class Intent:
    """One object about to be quarantined, as :meth:`Journal.record_intents` records it.

    ``size``, ``mtime`` and ``etag`` are what the scan saw (``mtime`` exactly as
    the store reported it); ``trash_key`` is where ``move`` mode puts the object,
    ``version_id`` the version ``versioned`` mode hides.
    """

    key: str
    size: int | None = None
    mtime: float | None = None
    etag: str | None = None
    trash_key: str | None = None
    version_id: str | None = None


def _one_of(
    connection: sa.Connection, column: sa.Column[Any], values: Sequence[Any]
) -> sa.ColumnElement[bool]:
    """``column IN (values)``: one array parameter on PostgreSQL (see the module docstring)."""
    if connection.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


class _Conflict(Exception):
    """A key of the chunk got an active entry after it was read as free (raised to roll back)."""


def record_intents(
    write: Write,
    objects: sa.Table,
    is_conflict: IsConflict,
    store: str,
    intents: Sequence[Intent],
    *,
    mode: str,
    run_id: int | None,
    totals: sa.Table,
) -> list[Entry | None]:
    """Record a QUARANTINING entry for each intent; ``None`` for keys that had an active entry.

    A key given twice is recorded once (its later intents get ``None``). See
    :meth:`reclaim.catalog.journal.Journal.record_intents`.
    """
    for intent in intents:
        check_intent(intent.key, mode, intent.trash_key)
        mtime_columns(intent.mtime)  # validates before anything is written
    first: dict[str, int] = {}
    for index, intent in enumerate(intents):
        first.setdefault(intent.key, index)
    # one order for every writer, so that two batches never wait for each other in a cycle
    order = sorted(first.values(), key=lambda index: intents[index].key)
    results: list[Entry | None] = [None] * len(intents)
    if not order:
        return results
    rows = [intent_row(store, intents[index], mode, run_id) for index in order]
    for index, row in zip(
        order, _record_batch(write, objects, is_conflict, store, rows, totals), strict=True
    ):
        results[index] = None if row is None else entry_written(row)
    return results


def intent_row(store: str, intent: Intent, mode: str, run_id: int | None) -> dict[str, Any]:
    """The column values of a new QUARANTINING entry, but for its id and timestamps."""
    key_hash = sha256_hex(intent.key)
    return {
        "store": store,
        "key": intent.key,
        "key_hash": key_hash,
        "active_hash": key_hash,
        "state": State.QUARANTINING.value,
        "version": 1,
        "mode": mode,
        "trash_key": intent.trash_key,
        "size": intent.size,
        **mtime_columns(intent.mtime),
        "etag": intent.etag,
        "version_id": intent.version_id,
        "marker_id": None,
        "run_id": run_id,
        "updated_run_id": run_id,
        "due_at": None,
        "note": None,
    }


def _record_batch(
    write: Write,
    objects: sa.Table,
    is_conflict: IsConflict,
    store: str,
    rows: list[dict[str, Any]],
    totals: sa.Table,
) -> list[dict[str, Any] | None]:
    """The rows as written (with ``id``), ``None`` for keys that had an active entry; one transaction."""
    active = objects.c.active_hash

    def insert_free(connection: sa.Connection) -> list[dict[str, Any] | None]:
        now = datetime.now(UTC)
        stamps = {"created_at": now, "updated_at": now}
        written: dict[str, dict[str, Any]] = {}
        deltas: _totals.Deltas = {}
        for chunk in chunks(rows, CHUNK):
            hashes = [row["active_hash"] for row in chunk]
            query = sa.select(active).where(objects.c.store == store, _one_of(connection, active, hashes))
            taken = set(connection.execute(query).scalars())
            free = [row | stamps for row in chunk if row["active_hash"] not in taken]
            if not free:
                continue
            for row in free:
                _totals.add(deltas, store, State.QUARANTINING.value, 1, row["size"])
            # one executemany, then one SELECT of the new ids: an ordered RETURNING is one INSERT
            # per row with SQLite's driver, and a VALUES list psycopg parses anew each time
            try:
                connection.execute(objects.insert(), free)
            except sa.exc.IntegrityError as exc:
                if is_conflict(exc):
                    raise _Conflict from None
                raise
            # the active entries of these keys are the ones just inserted: the unique index allows no other
            query = sa.select(active, objects.c.id).where(
                objects.c.store == store, _one_of(connection, active, [row["active_hash"] for row in free])
            )
            ids = {key_hash: int(entry_id) for key_hash, entry_id in connection.execute(query)}
            written.update((row["active_hash"], row | {"id": ids[row["active_hash"]]}) for row in free)
        _totals.bump(connection, totals, _totals.JOURNAL, deltas)
        return [written.get(row["active_hash"]) for row in rows]

    for _ in range(CONFLICT_ROUNDS):
        try:
            result = write(insert_free)
        except _Conflict:
            continue  # retrying is safe: the refused transaction wrote nothing
        return result
    # writers keep taking keys of this batch: one key per transaction, as record_intent does
    return [record_one(write, objects, is_conflict, row, totals) for row in rows]


def record_one(
    write: Write, objects: sa.Table, is_conflict: IsConflict, row: dict[str, Any], totals: sa.Table
) -> dict[str, Any] | None:
    """Insert one intent's ``row`` in a transaction of its own; ``None`` if its key has an active entry."""
    now = datetime.now(UTC)
    values = row | {"created_at": now, "updated_at": now}

    def insert(connection: sa.Connection) -> int:
        try:
            result = connection.execute(objects.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            if is_conflict(exc):
                raise _Conflict from None
            raise
        (entry_id,) = result.inserted_primary_key or (None,)
        if entry_id is None:  # pragma: no cover - every supported dialect returns the key
            raise RuntimeError("the database returned no id for the new journal entry")
        deltas: _totals.Deltas = {}
        _totals.add(deltas, row["store"], State.QUARANTINING.value, 1, row["size"])
        _totals.bump(connection, totals, _totals.JOURNAL, deltas)
        return int(entry_id)

    try:
        entry_id = write(insert)
    except _Conflict:
        return None
    return values | {"id": entry_id}


def transition_many(
    write: Write,
    objects: sa.Table,
    entries: Sequence[Entry],
    to: State,
    *,
    run_id: int | None = None,
    due_at: datetime | None = None,
    note: str | None = None,
    markers: Mapping[int, str] | None = None,
    totals: sa.Table,
) -> list[Entry | None]:
    """Compare-and-set each entry to ``to``; the new entry for those that won, ``None`` for the others.

    ``markers`` sets the ``marker_id`` of the entries it names (by id), in the
    same statement. See :meth:`reclaim.catalog.journal.Journal.transition_many`.
    """
    to = State(to)
    for entry in entries:
        if to not in TRANSITIONS[entry.state]:
            raise ValueError(
                f"journal entry {entry.id} ({entry.store!r}, key {entry.key!r}): "
                f"{entry.state} -> {to} is not a lifecycle transition"
            )
    positions: dict[int, int] = {}
    for index, entry in enumerate(entries):
        if positions.setdefault(entry.id, index) != index:
            raise ValueError(f"journal entry {entry.id} is given twice; each entry moves once")
    fixed: dict[str, Any] = {"state": to.value, "updated_run_id": run_id}
    if due_at is not None:
        fixed["due_at"] = utc(due_at, "due_at")
    if note is not None:
        fixed["note"] = note
    if to in TERMINAL:
        fixed["active_hash"] = None
    results: list[Entry | None] = [None] * len(entries)
    if not entries:
        return results
    # rows are taken in id order, so that two batches never wait for each other in a cycle
    ordered = sorted(entries, key=lambda entry: entry.id)
    now = datetime.now(UTC)

    def swap(connection: sa.Connection) -> set[int]:
        won = _swap(connection, objects, ordered, fixed, now, markers or {})
        moved(connection, totals, [entry for entry in ordered if entry.id in won], to)
        return won

    won = write(swap)
    changes = fixed | {"updated_at": now}
    for entry in ordered:
        if entry.id in won:
            change = changes | {"version": entry.version + 1}
            if markers and entry.id in markers:
                change["marker_id"] = markers[entry.id]
            results[positions[entry.id]] = replaced(entry, change)
    return results


def moved(connection: sa.Connection, totals: sa.Table, entries: Sequence[Entry], to: State) -> None:
    """Count ``entries`` (as they were read) out of their states and into ``to``, in ``connection``."""
    deltas: _totals.Deltas = {}
    for entry in entries:
        _totals.add(deltas, entry.store, entry.state.value, -1, -_totals.size_of(entry.size))
        _totals.add(deltas, entry.store, to.value, 1, entry.size)
    _totals.bump(connection, totals, _totals.JOURNAL, deltas)


def _swap(
    connection: sa.Connection,
    objects: sa.Table,
    entries: Sequence[Entry],
    fixed: dict[str, Any],
    now: datetime,
    markers: Mapping[int, str],
) -> set[int]:
    """Move the entries still as read (state and version) to ``fixed``; return their ids.

    ``markers`` (by entry id) become the ``marker_id`` of their rows, through one
    ``CASE`` on the id per statement.
    """
    values = fixed | {"version": objects.c.version + 1, "updated_at": now}
    won: set[int] = set()
    # a version no 64-bit column holds (a hand-edited row) can match no row: that entry loses
    entries = [entry for entry in entries if _INT64[0] <= entry.version <= _INT64[1]]
    if connection.dialect.update_returning:
        groups: dict[tuple[str, int], list[int]] = {}
        for entry in entries:
            groups.setdefault((entry.state.value, entry.version), []).append(entry.id)
        for (state, version), ids in groups.items():
            for chunk in chunks(ids, CHUNK):
                statement = (
                    objects.update()
                    .where(
                        _one_of(connection, objects.c.id, chunk),
                        objects.c.state == state,
                        objects.c.version == version,
                    )
                    .values(values | _marker_values(objects, chunk, markers))
                    .returning(objects.c.id)
                )
                won.update(int(entry_id) for entry_id in connection.execute(statement).scalars())
        return won
    for part in chunks(entries, CHUNK):
        marked = values | _marker_values(objects, [entry.id for entry in part], markers)
        won |= _lock_and_swap(connection, objects, part, marked)
    return won


def _marker_values(objects: sa.Table, ids: Sequence[int], markers: Mapping[int, str]) -> dict[str, Any]:
    """``{"marker_id": CASE id WHEN ... END}`` for the ids ``markers`` names; ``{}`` if none."""
    mine = {entry_id: markers[entry_id] for entry_id in ids if entry_id in markers}
    if not mine:
        return {}
    return {"marker_id": sa.case(mine, value=objects.c.id, else_=objects.c.marker_id)}


def _lock_and_swap(
    connection: sa.Connection, objects: sa.Table, chunk: Sequence[Entry], values: dict[str, Any]
) -> set[int]:
    """Lock the chunk's rows, move those still as read, return their ids (dialects without RETURNING)."""
    query = (
        sa.select(objects.c.id, objects.c.state, objects.c.version)
        .where(objects.c.id.in_([entry.id for entry in chunk]))
        .order_by(objects.c.id)
        .with_for_update()
    )
    now_in_db = {int(row.id): (row.state, int(row.version)) for row in connection.execute(query)}
    won = [entry for entry in chunk if now_in_db.get(entry.id) == (entry.state.value, entry.version)]
    if not won:
        return set()
    statement = (
        objects.update()
        .where(
            objects.c.id.in_([entry.id for entry in won]),
            objects.c.state.in_(sorted({entry.state.value for entry in won})),
        )
        .values(values)
    )
    updated = connection.execute(statement).rowcount
    if updated != len(won):  # pragma: no cover - the rows are locked since they were read
        raise RuntimeError(f"{updated} of {len(won)} locked journal entries were updated")
    return {entry.id for entry in won}
