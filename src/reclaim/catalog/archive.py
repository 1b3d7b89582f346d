"""The row archive: every row a collection deleted, as JSON, restorable until it expires.

One row of ``rows`` is one archived row of an application table::

    ARCHIVING -> ARCHIVED (deleted from its table) | discarded (still live: the record is dropped)
    ARCHIVED  -> RESTORING -> RESTORED (inserted again) | ARCHIVED (rolled back)

``ARCHIVING`` exists only when the catalog lives in another database than the
collected table: the row is archived (committed) before it is deleted, and
:mod:`reclaim.lifecycle.rows` settles the record once the delete committed or
after a crash, by looking whether the row is still in its table. When the
catalog shares the database, the row is archived as ``ARCHIVED`` in the
transaction that deletes it.

Beside each archived row, ``row_refs`` keeps the values it references (its
foreign keys, and what stores' reference sources read from it), under a
*selector* naming the column. While the row is restorable (ARCHIVING,
ARCHIVED, RESTORING) those values count as referenced (invariant 6):
:meth:`RowArchive.held` answers point lookups and :meth:`RowArchive.values`
streams them in byte order for the object scan.

Beside the archived rows of a ``follow`` collection, ``row_objects`` keeps the
objects each one owns (:mod:`reclaim.catalog.links`), recorded in the
transaction that archives the row; they go with the row when it is discarded
or restored, and a row that still owns an object never expires.

Every change of state is a compare-and-set on ``(id, state, version)``.
Database errors surface as :class:`~reclaim.errors.CatalogError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from reclaim.catalog import _totals
from reclaim.catalog._entry import CorruptRow
from reclaim.catalog._first import first_value
from reclaim.catalog.links import ObjectLinks
from reclaim.catalog.released import (
    ReleasedKey,
    add_released,
    consume_directories,
    consume_released,
    count_released,
    released_among,
    released_directories,
)
from reclaim.catalog.tables import sha256_hex

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog
    from reclaim.catalog.fence import Fence

__all__ = [
    "RESTORABLE",
    "ArchivedRow",
    "NewRow",
    "Releaser",
    "RowArchive",
    "RowState",
    "RowSummary",
    "archived_from_row",
    "pk_text",
]

_BATCH: Final = 500


class RowState(StrEnum):
    """Where an archived row is in its life."""

    ARCHIVING = "ARCHIVING"
    ARCHIVED = "ARCHIVED"
    RESTORING = "RESTORING"
    RESTORED = "RESTORED"


#: states in which an archived row may still come back, so its references count
RESTORABLE: Final = (RowState.ARCHIVING, RowState.ARCHIVED, RowState.RESTORING)

Releaser = Callable[[str, str, str, str], Iterable[ReleasedKey]]
"""``(collection, table_name, selector, value)`` of an expiring row's reference -> the store keys
it released (see :mod:`reclaim.catalog.released`)."""


def pk_text(values: Sequence[Any]) -> str:
    """How the archive spells a primary key: a JSON list of the values as text."""
    return json.dumps([str(v) for v in values])


@dataclass(frozen=True)
class NewRow:
    """A row about to be archived: its primary key, its JSON and what it references."""

    collection: str
    table_name: str
    pk: str
    row: str
    refs: Sequence[tuple[str, str]] = ()
    """``(selector, value)`` pairs."""
    objects: Sequence[tuple[str, str]] = ()
    """``(store, key)`` pairs the row owns (``objects = "follow"``): their quarantine is pending."""


@dataclass(frozen=True)
class ArchivedRow:
    """One record of the archive."""

    id: int
    collection: str
    table_name: str
    pk: str
    row: str
    run_id: int
    archived_at: datetime
    expires_at: datetime | None
    state: RowState
    version: int
    updated_at: datetime | None = None
    updated_run_id: int | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The archived row's JSON, decoded; :class:`CatalogError` naming the row when it is not an object."""
        try:
            value = json.loads(self.row)
        except (ValueError, TypeError) as exc:
            raise CorruptRow(
                f"archived row {self.id} (table rows, collection {self.collection!r}, "
                f"primary key {self.pk}): not JSON ({exc}); repair or delete that row"
            ) from None
        if not isinstance(value, dict):
            raise CorruptRow(
                f"archived row {self.id} (table rows, collection {self.collection!r}, "
                f"primary key {self.pk}): not a JSON object; repair or delete that row"
            )
        return value


@dataclass
class RowSummary:
    """The archive of one collection at a glance."""

    archived: int = 0
    bytes: int = 0
    oldest: datetime | None = None
    next_expiry: datetime | None = None
    restored: int = 0
    in_flight: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


class RowArchive:
    """The archived rows of one catalog.

    Like the journal, an archive made with a ``lease`` (:meth:`fenced`) is a
    collector's: each of its write transactions is fenced by
    :meth:`~reclaim.catalog.lease.Lease.guard`, so it is refused once another
    collector took the lease over.
    """

    def __init__(self, catalog: Catalog, *, lease: Fence | None = None) -> None:
        self._catalog = catalog
        self._rows = catalog.tables.rows
        self._refs = catalog.tables.row_refs
        self._links = catalog.tables.row_objects
        self._totals = catalog.tables.totals
        self._released = catalog.tables.released
        self._lease = lease

    @property
    def links(self) -> ObjectLinks:
        """The objects archived rows own (``row_objects``), fenced like this archive."""
        return ObjectLinks(self._catalog, lease=self._lease)

    def fenced(self, lease: Fence) -> RowArchive:
        """This archive, with every write fenced by ``lease`` (or a worker's :class:`TokenFence`)."""
        return RowArchive(self._catalog, lease=lease)

    @contextmanager
    def _writing(self, connection: sa.Connection | None = None) -> Iterator[sa.Connection]:
        """A write transaction (``connection``'s, or a catalog one of its own), fenced first."""
        if connection is not None:
            self._guard(connection)
            yield connection
            return
        with self._catalog.begin() as own:
            self._guard(own)
            yield own

    def _guard(self, connection: sa.Connection) -> None:
        if self._lease is not None:
            self._lease.guard(connection)

    # -- writes --------------------------------------------------------------------------

    def add(
        self,
        rows: Sequence[NewRow],
        *,
        run_id: int,
        state: RowState,
        expires_at: datetime,
        connection: sa.Connection | None = None,
    ) -> list[int]:
        """Archive ``rows`` with their references; return their ids, in order.

        With ``connection`` the inserts join that transaction (the catalog
        shares the collected table's database); otherwise they commit in a
        catalog transaction of their own before this returns.
        """
        with self._writing(connection) as writing:
            return self._add(writing, rows, run_id, state, expires_at)

    def _add(
        self,
        connection: sa.Connection,
        rows: Sequence[NewRow],
        run_id: int,
        state: RowState,
        expires_at: datetime,
    ) -> list[int]:
        now = datetime.now(UTC)
        ids: list[int] = []
        refs: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        for row in rows:
            result = connection.execute(
                self._rows.insert().values(
                    collection=row.collection,
                    table_name=row.table_name,
                    pk=row.pk,
                    pk_hash=sha256_hex(row.pk),
                    row=row.row,
                    run_id=run_id,
                    archived_at=now,
                    expires_at=expires_at,
                    state=state.value,
                    version=1,
                )
            )
            inserted = result.inserted_primary_key
            assert inserted is not None
            row_id = int(inserted[0])
            ids.append(row_id)
            refs += [
                {
                    "row_id": row_id,
                    "table_name": row.table_name,
                    "selector": selector,
                    "value": value,
                    "value_hash": sha256_hex(value),
                }
                for selector, value in dict.fromkeys(row.refs)
            ]
            links += [
                {"row_id": row_id, "store": store, "key": key, "key_hash": sha256_hex(key), "entry_id": None}
                for store, key in dict.fromkeys(row.objects)
            ]
        for start in range(0, len(refs), _BATCH):
            connection.execute(self._refs.insert(), refs[start : start + _BATCH])
        for start in range(0, len(links), _BATCH):
            connection.execute(self._links.insert(), links[start : start + _BATCH])
        deltas: _totals.Deltas = {}
        for row in rows:
            _totals.add(deltas, row.collection, state.value, 1, len(row.row))
        _totals.bump(connection, self._totals, _totals.ARCHIVE, deltas)
        return ids

    def transition(
        self,
        row: ArchivedRow,
        state: RowState,
        *,
        run_id: int | None,
        connection: sa.Connection | None = None,
    ) -> ArchivedRow | None:
        """Compare-and-set ``row`` to ``state``; ``None`` when someone changed it first.

        Entering RESTORED drops the row's references and the objects it owned:
        the live row holds what it points at from then on.
        """
        now = datetime.now(UTC)
        statement = (
            self._rows.update()
            .where(
                self._rows.c.id == row.id,
                self._rows.c.state == row.state.value,
                self._rows.c.version == row.version,
            )
            .values(state=state.value, version=row.version + 1, updated_at=now, updated_run_id=run_id)
        )

        def work(conn: sa.Connection) -> bool:
            if conn.execute(statement).rowcount != 1:
                return False
            deltas: _totals.Deltas = {}
            _totals.add(deltas, row.collection, row.state.value, -1, -len(row.row))
            _totals.add(deltas, row.collection, state.value, 1, len(row.row))
            _totals.bump(conn, self._totals, _totals.ARCHIVE, deltas)
            if state is RowState.RESTORED:
                conn.execute(self._refs.delete().where(self._refs.c.row_id == row.id))
                conn.execute(self._links.delete().where(self._links.c.row_id == row.id))
            return True

        with self._writing(connection) as writing:
            done = work(writing)
        if not done:
            return None
        return ArchivedRow(
            **{
                **row.__dict__,
                "state": state,
                "version": row.version + 1,
                "updated_at": now,
                "updated_run_id": run_id,
            }
        )

    def discard(self, ids: Collection[int]) -> int:
        """Drop ARCHIVING records whose rows turned out not to be deleted; return how many."""
        dropped = 0
        ordered = sorted(ids)
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            with self._writing() as connection:
                locked = self._lock(connection, batch, [RowState.ARCHIVING.value])
                connection.execute(self._refs.delete().where(self._refs.c.row_id.in_(batch)))
                connection.execute(self._links.delete().where(self._links.c.row_id.in_(list(locked))))
                dropped += connection.execute(
                    self._rows.delete().where(
                        self._rows.c.id.in_(locked), self._rows.c.state == RowState.ARCHIVING.value
                    )
                ).rowcount
                self._count_out(connection, locked)
        return dropped

    def _lock(self, connection: sa.Connection, ids: Sequence[int], states: Sequence[str]) -> dict[int, Any]:
        """Lock the records of ``ids`` in ``states``; their collection, state and size, by id.

        What the totals count out is then exactly what the statement that follows changes.
        """
        rows = self._rows
        query = (
            sa.select(
                rows.c.id,
                rows.c.collection,
                rows.c.state,
                _totals.row_length(rows.c.row, connection.dialect.name).label("size"),
            )
            .where(rows.c.id.in_(ids), rows.c.state.in_(states))
            .order_by(rows.c.id)
            .with_for_update()
        )
        return {int(row.id): row for row in connection.execute(query)}

    def _count_out(self, connection: sa.Connection, locked: dict[int, Any], to: str | None = None) -> None:
        """Move the ``locked`` records' totals out of their states (and into ``to``, when given)."""
        deltas: _totals.Deltas = {}
        for row in locked.values():
            _totals.add(deltas, str(row.collection), str(row.state), -1, -_totals.size_of(row.size))
            if to is not None:
                _totals.add(deltas, str(row.collection), to, 1, row.size)
        _totals.bump(connection, self._totals, _totals.ARCHIVE, deltas)

    def confirm(self, ids: Collection[int], *, run_id: int) -> int:
        """ARCHIVING -> ARCHIVED for rows whose delete committed; return how many."""
        done = 0
        ordered = sorted(ids)
        now = datetime.now(UTC)
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            with self._writing() as connection:
                locked = self._lock(connection, batch, [RowState.ARCHIVING.value])
                self._count_out(connection, locked, RowState.ARCHIVED.value)
                done += connection.execute(
                    self._rows.update()
                    .where(self._rows.c.id.in_(locked), self._rows.c.state == RowState.ARCHIVING.value)
                    .values(
                        state=RowState.ARCHIVED.value,
                        version=self._rows.c.version + 1,
                        updated_at=now,
                        updated_run_id=run_id,
                    )
                ).rowcount
        return done

    def expirable(self, now: datetime, *, collection: str | None = None) -> int:
        """How many records :meth:`expire` would delete now (a dry run's count).

        Rows that still own objects count too: their expiry purges the objects first.
        """
        rows = self._rows
        settled = [RowState.ARCHIVED.value, RowState.RESTORED.value]
        query = sa.select(sa.func.count()).where(rows.c.state.in_(settled), rows.c.expires_at < now)
        if collection is not None:
            query = query.where(rows.c.collection == collection)
        with self._catalog.begin() as connection:
            return int(connection.execute(query).scalar_one())

    def expire(self, now: datetime, *, collection: str | None = None, release: Releaser | None = None) -> int:
        """Delete records (and their references) whose ``expires_at`` has passed; return how many.

        Records in flight (ARCHIVING, RESTORING) are left to recovery, whatever their age.
        With ``release``, the store keys an expiring row's references map to are
        recorded as released (:mod:`reclaim.catalog.released`) in the transaction
        that deletes the row, so a release is never lost nor recorded for a row
        that stays.
        A row that still owns an object (``row_objects``) is left too: its objects are
        purged first (:mod:`reclaim.lifecycle.follow`), and the row can be restored with
        them until then.
        """
        rows = self._rows
        settled = [RowState.ARCHIVED.value, RowState.RESTORED.value]
        owns = sa.exists().where(self._links.c.row_id == rows.c.id)
        deleted = 0
        while True:
            # a row gains no link after it was archived: one selected without any never has one
            query = sa.select(rows.c.id).where(rows.c.state.in_(settled), rows.c.expires_at < now, ~owns)
            if collection is not None:
                query = query.where(rows.c.collection == collection)
            with self._writing() as connection:
                ids = list(connection.execute(query.order_by(rows.c.id).limit(_BATCH)).scalars())
                if not ids:
                    return deleted
                locked = self._lock(connection, ids, settled)
                if release is not None and locked:
                    self._release(connection, locked, release)
                connection.execute(self._refs.delete().where(self._refs.c.row_id.in_(locked)))
                deleted += connection.execute(
                    rows.delete().where(rows.c.id.in_(locked), rows.c.state.in_(settled))
                ).rowcount
                self._count_out(connection, locked)

    def _release(self, connection: sa.Connection, locked: dict[int, Any], release: Releaser) -> None:
        """Record what the ``locked`` rows' references release in the stores, in this transaction."""
        refs = self._refs
        query = sa.select(refs.c.row_id, refs.c.table_name, refs.c.selector, refs.c.value).where(
            refs.c.row_id.in_(list(locked))
        )
        keys: list[ReleasedKey] = []
        for row_id, table_name, selector, value in connection.execute(query):
            collection = str(locked[int(row_id)].collection)
            keys += release(collection, str(table_name), str(selector), str(value))
        add_released(connection, self._released, keys)

    def released(self, store: str, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` of ``store`` that expired archived rows released (one query per batch)."""
        if not keys:
            return set()
        with self._catalog.begin() as connection:
            return released_among(connection, self._released, store, keys)

    def consume_released(self, store: str, keys: Collection[str], *, directories: bool = True) -> int:
        """Forget the releases of ``keys`` of ``store`` once they are quarantined; how many went.

        Without ``directories``, only their exact releases (see
        :func:`~reclaim.catalog.released.consume_released`).
        """
        if not keys:
            return 0
        with self._writing() as connection:
            return consume_released(connection, self._released, store, keys, directories=directories)

    def released_directories(self, store: str, keys: Collection[str]) -> set[str]:
        """The directories of ``store`` whose release releases one of ``keys``."""
        if not keys:
            return set()
        with self._catalog.begin() as connection:
            return released_directories(connection, self._released, store, keys)

    def consume_directories(self, store: str, directories: Collection[str]) -> int:
        """Forget the releases of ``directories`` of ``store`` (a distributed run's, once every range ran)."""
        if not directories:
            return 0
        with self._writing() as connection:
            return consume_directories(connection, self._released, store, directories)

    def released_count(self, store: str) -> int:
        """Releases of ``store`` whose key was not quarantined yet."""
        with self._catalog.begin() as connection:
            return count_released(connection, self._released, store)

    # -- queries -------------------------------------------------------------------------

    def held(self, table_name: str, selector: str, values: Collection[str]) -> set[str]:
        """The subset of ``values`` that restorable archived rows of ``table_name`` reference."""
        found: set[str] = set()
        ordered = sorted(set(values))
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            wanted = set(batch)
            hashes = [sha256_hex(v) for v in batch]
            query = (
                sa.select(self._refs.c.value)
                .join(self._rows, self._rows.c.id == self._refs.c.row_id)
                .where(
                    self._refs.c.table_name == table_name,
                    self._refs.c.selector == selector,
                    self._refs.c.value_hash.in_(hashes),
                    self._rows.c.state.in_([s.value for s in RESTORABLE]),
                )
            )
            with self._catalog.begin() as connection:
                found.update(v for v in connection.execute(query).scalars() if v in wanted)
        return found

    def holders(self, table_name: str, selector: str, values: Collection[str]) -> set[tuple[str, int]]:
        """``(value, row id)`` for each of ``values`` a restorable archived row of ``table_name`` holds."""
        found: set[tuple[str, int]] = set()
        ordered = sorted(set(values))
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            wanted = set(batch)
            query = (
                sa.select(self._refs.c.value, self._refs.c.row_id)
                .join(self._rows, self._rows.c.id == self._refs.c.row_id)
                .where(
                    self._refs.c.table_name == table_name,
                    self._refs.c.selector == selector,
                    self._refs.c.value_hash.in_([sha256_hex(v) for v in batch]),
                    self._rows.c.state.in_([s.value for s in RESTORABLE]),
                )
            )
            with self._catalog.begin() as connection:
                found.update((str(v), int(r)) for v, r in connection.execute(query) if v in wanted)
        return found

    def values(self, table_name: str, selector: str) -> Iterator[str]:
        """Values restorable archived rows of ``table_name`` reference under ``selector``, in byte order."""
        query = (
            sa.select(self._refs.c.value)
            .join(self._rows, self._rows.c.id == self._refs.c.row_id)
            .where(
                self._refs.c.table_name == table_name,
                self._refs.c.selector == selector,
                self._rows.c.state.in_([s.value for s in RESTORABLE]),
            )
            .order_by(self._refs.c.value)
        )
        with self._catalog.begin() as connection:
            result = connection.execution_options(stream_results=True, yield_per=_BATCH).execute(query)
            try:
                yield from result.scalars()
            finally:
                result.close()

    def has_refs(self, table_name: str) -> bool:
        """Whether any restorable archived row of ``table_name`` exists (skips empty lookups)."""
        query = (
            sa.select(self._rows.c.id)
            .where(
                self._rows.c.table_name == table_name,
                self._rows.c.state.in_([s.value for s in RESTORABLE]),
            )
            .limit(1)
        )
        with self._catalog.begin() as connection:
            return connection.execute(query).first() is not None

    def refs_of(self, row_id: int) -> list[tuple[str, str]]:
        """The ``(selector, value)`` pairs archived with row ``row_id``."""
        query = sa.select(self._refs.c.selector, self._refs.c.value).where(self._refs.c.row_id == row_id)
        with self._catalog.begin() as connection:
            return [(str(s), str(v)) for s, v in connection.execute(query)]

    def select(
        self,
        *,
        collection: str | None = None,
        table_name: str | None = None,
        run_id: int | None = None,
        pk: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        states: Sequence[RowState] = (RowState.ARCHIVED,),
        limit: int | None = None,
    ) -> list[ArchivedRow]:
        """Archived rows matching every given filter, oldest first."""
        rows = self._rows
        query = sa.select(rows).where(rows.c.state.in_([s.value for s in states]))
        if collection is not None:
            query = query.where(rows.c.collection == collection)
        if table_name is not None:
            query = query.where(rows.c.table_name == table_name)
        if run_id is not None:
            query = query.where(rows.c.run_id == run_id)
        if pk is not None:
            query = query.where(rows.c.pk_hash == sha256_hex(pk), rows.c.pk == pk)
        if since is not None:
            query = query.where(rows.c.archived_at >= since)
        if until is not None:
            query = query.where(rows.c.archived_at < until)
        query = query.order_by(rows.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._catalog.begin() as connection:
            return [_archived(row) for row in connection.execute(query).mappings()]

    def in_flight(self) -> list[ArchivedRow]:
        """Records a killed run left ARCHIVING or RESTORING."""
        return self.select(states=(RowState.ARCHIVING, RowState.RESTORING))

    def summary(self, collection: str) -> RowSummary:
        """Counts, bytes, the oldest archived row and the next expiry of ``collection``.

        The oldest and the next expiry are each the first ARCHIVED row of an
        index (``rows_summary``, ``rows_next_expiry``), one subquery each.
        """
        rows = self._rows
        where = (rows.c.collection == collection, rows.c.state == RowState.ARCHIVED.value)
        archived = sa.select(first_value(rows.c.archived_at, *where), first_value(rows.c.expires_at, *where))
        summary = RowSummary()
        with self._catalog.begin() as connection:
            # counts and bytes from the running totals: a few rows, whatever the archive's size
            totals = _totals.read(connection, self._totals, _totals.ARCHIVE, collection)
            oldest, expiry = connection.execute(archived).one()
        for state, (count, size) in sorted(totals.items()):
            if not count:
                continue
            summary.by_state[state] = count
            if state == RowState.ARCHIVED.value:
                summary.archived = count
                summary.bytes = size
                summary.oldest = _aware(oldest)
                summary.next_expiry = _aware(expiry)
            elif state == RowState.RESTORED.value:
                summary.restored = count
            else:
                summary.in_flight += count
        return summary


def _aware(moment: datetime | None) -> datetime | None:
    # aggregates skip the column type's result processing on some dialects
    if moment is None or (isinstance(moment, datetime) and moment.tzinfo is not None):
        return moment
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC)


def _archived(row: Any) -> ArchivedRow:
    """An :class:`ArchivedRow`; :class:`CatalogError` naming the row when a value is impossible."""
    try:
        archived = _decode(row)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CorruptRow(
            f"archived row {row['id']!r} (table rows) holds an impossible value: "
            f"{' '.join(str(exc).split())[:200]}; repair or delete that row"
        ) from None
    for name in ("collection", "table_name", "pk", "row"):
        if not isinstance(getattr(archived, name), str):
            raise CorruptRow(
                f"archived row {archived.id} (table rows): {name} is not text; repair or delete it"
            )
    if not isinstance(archived.archived_at, datetime):
        raise CorruptRow(f"archived row {archived.id} (table rows): archived_at is not a time")
    return archived


def archived_from_row(row: Any) -> ArchivedRow:
    """An :class:`ArchivedRow` from a row of ``rows``; :class:`CorruptRow` when a value is impossible."""
    return _archived(row)


def _decode(row: Any) -> ArchivedRow:
    return ArchivedRow(
        id=int(row["id"]),
        collection=row["collection"],
        table_name=row["table_name"],
        pk=row["pk"],
        row=row["row"],
        run_id=int(row["run_id"]),
        archived_at=row["archived_at"],
        expires_at=row["expires_at"],
        state=RowState(row["state"]),
        version=int(row["version"]),
        updated_at=row["updated_at"],
        updated_run_id=row["updated_run_id"],
    )
