"""The object journal: every quarantine, purge and restore, recorded before it happens.

One row of ``objects`` is one episode in the life of a key (DESIGN.md, "The
object lifecycle")::

    QUARANTINING -> QUARANTINED (moved or marked) | RESTORED (rolled back) | PURGED (found gone)
    QUARANTINED  -> PURGING (due) | RESTORING (restore, claim)
    PURGING      -> PURGED (deleted) | RESTORING (referenced again) | QUARANTINED (rolled back)
                    | RESTORED (changed since quarantine)
    RESTORING    -> RESTORED (moved back) | QUARANTINED (rolled back) | PURGED (trash copy gone)

(:data:`TRANSITIONS` is the same table; PURGED and RESTORED are final.)

Two rules make it safe with several actors (a collector, writers calling
``reclaim.ensure``, an operator restoring) and crashes at any instant:

- **One active episode per key.** While an entry is active (QUARANTINING,
  QUARANTINED, PURGING, RESTORING) its ``active_hash`` is the key's hash, and a
  UNIQUE index on ``(store, active_hash)`` makes the database refuse a second
  one; :meth:`Journal.record_intent` then returns ``None``. Terminal entries
  (PURGED, RESTORED) have ``active_hash`` NULL and stay as history.
- **Every state change is a compare-and-set.** :meth:`Journal.transition` is one
  ``UPDATE ... WHERE id = ? AND state = ? AND version = ?`` in a transaction of
  its own. When a purge and a claim race for one entry, the database applies
  exactly one; the other gets ``None`` and must re-read. This holds at READ
  COMMITTED (PostgreSQL re-checks the WHERE clause on the newest row version,
  InnoDB's UPDATE reads the latest committed row, SQLite serialises writers).

:meth:`Journal.record_intents` and :meth:`Journal.transition_many` keep both
rules for many entries per transaction (see :mod:`reclaim.catalog._batch`):
what a collection uses, because a synchronous commit per object and step made
the journal its bottleneck.

Keys are found through ``key_hash`` (an index MariaDB can hold) and then
compared byte for byte, so keys differing in case or trailing spaces are
different objects. Times are timezone-aware UTC. Database errors surface as
:class:`~reclaim.errors.CatalogError`; a deadlock, which leaves nothing behind,
is retried a few times first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

import sqlalchemy as sa

from reclaim.catalog import _batch, _totals
from reclaim.catalog._batch import Intent
from reclaim.catalog._entry import (
    ACTIVE,
    IN_FLIGHT,
    TERMINAL,
    TRANSITIONS,
    Entry,
    JournalSummary,
    Mode,
    State,
    check_intent,
    check_limit,
    chunks,
    entry_from_row,
    mtime_columns,
    replaced,
    summary_from_rows,
    utc,
)
from reclaim.catalog._first import first_value
from reclaim.catalog._retry import write_retrying
from reclaim.catalog.tables import sha256_hex

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog
    from reclaim.catalog.fence import Fence

__all__ = [
    "ACTIVE",
    "IN_FLIGHT",
    "TERMINAL",
    "TRANSITIONS",
    "Entry",
    "Intent",
    "Journal",
    "JournalSummary",
    "Mode",
    "State",
]

#: keys per ``IN (...)`` list when selecting by keys
_KEYS_PER_QUERY: Final = 500
#: terminal entries deleted per transaction by :meth:`Journal.expire`
_EXPIRE_BATCH: Final = 5000
#: states of an archived row that may still be restored (``reclaim.catalog.archive.RESTORABLE``)
_RESTORABLE_ROWS: Final = ("ARCHIVING", "ARCHIVED", "RESTORING")

_T = TypeVar("_T")


class _Counted(NamedTuple):
    """One state's totals, shaped as :func:`summary_from_rows` reads a row."""

    entries: int
    bytes: int
    oldest: datetime | None
    next_due: datetime | None


class Journal:
    """The object journal of one catalog; safe to share between threads.

    A journal made with a ``lease`` (:meth:`fenced`) is a collector's: each of
    its write transactions starts with :meth:`~reclaim.catalog.lease.Lease.guard`,
    so it is refused (:class:`~reclaim.errors.LeaseLost`) once the lease is no
    longer certainly this collector's. Writers' claims (``ensure``) and
    read-only commands use a journal without one.
    """

    def __init__(self, catalog: Catalog, *, lease: Fence | None = None) -> None:
        self._catalog = catalog
        self._objects = catalog.tables.objects
        self._totals = catalog.tables.totals
        self._active_index = f"{catalog.tables.prefix}objects_active"
        self._lease = lease

    def __repr__(self) -> str:
        fenced = "" if self._lease is None else f", fenced by {self._lease.describe()}"
        return f"Journal({self._catalog!r}{fenced})"

    def fenced(self, lease: Fence) -> Journal:
        """This journal, with every write fenced by ``lease`` (see the class docstring).

        ``lease`` is the collector's :class:`~reclaim.catalog.lease.Lease`, or, for a
        worker of a coordinator that holds it, a :class:`~reclaim.catalog.fence.TokenFence`.
        """
        return Journal(self._catalog, lease=lease)

    # -- changes ------------------------------------------------------------------------

    def record_intent(
        self,
        store: str,
        key: str,
        *,
        mode: str,
        trash_key: str | None,
        size: int | None,
        mtime: float | None,
        etag: str | None,
        run_id: int | None,
        version_id: str | None = None,
    ) -> Entry | None:
        """Record that ``key`` of ``store`` is about to be quarantined; return the QUARANTINING entry.

        Returns ``None`` (and changes nothing) when the key already has an active
        entry: it is being quarantined, is quarantined, or is being purged or
        restored by someone else. The database's unique index decides, so two
        concurrent intents for one key never both succeed.

        Raises ``ValueError`` for an unknown mode, an empty or over-long key or a
        non-finite mtime, and :class:`~reclaim.errors.CatalogError` on database errors.
        """
        check_intent(key, mode, trash_key)
        intent = Intent(key, size=size, mtime=mtime, etag=etag, trash_key=trash_key, version_id=version_id)
        row = _batch.intent_row(store, intent, mode, run_id)
        written = _batch.record_one(self._write, self._objects, self._is_active_conflict, row, self._totals)
        return None if written is None else entry_from_row(written)

    def transition(
        self,
        entry: Entry,
        to: State,
        *,
        run_id: int | None = None,
        due_at: datetime | None = None,
        note: str | None = None,
        etag: str | None = None,
        mtime: float | None = None,
        marker_id: str | None = None,
    ) -> Entry | None:
        """Move ``entry`` to state ``to`` if nobody moved it since it was read; return the new entry.

        A compare-and-set on (id, state, version): returns ``None`` when the
        entry changed in between (another actor won; re-read it with
        :meth:`get`). ``due_at``, ``note``, ``etag``, ``mtime`` and
        ``marker_id`` (``versioned`` mode's delete marker) are changed only
        when given. Reaching PURGED or RESTORED releases the key, so a new
        episode may start for it.

        Raises ``ValueError`` for a transition the lifecycle does not allow, and
        :class:`~reclaim.errors.CatalogError` on database errors.
        """
        to = State(to)
        if to not in TRANSITIONS[entry.state]:
            raise ValueError(
                f"journal entry {entry.id} ({entry.store!r}, key {entry.key!r}): "
                f"{entry.state} -> {to} is not a lifecycle transition"
            )
        objects = self._objects
        changes: dict[str, Any] = {
            "state": to.value,
            "version": entry.version + 1,
            "updated_at": datetime.now(UTC),
            "updated_run_id": run_id,
        }
        if due_at is not None:
            changes["due_at"] = utc(due_at, "due_at")
        if note is not None:
            changes["note"] = note
        if etag is not None:
            changes["etag"] = etag
        if marker_id is not None:
            changes["marker_id"] = marker_id
        if mtime is not None:
            changes |= mtime_columns(mtime)
        if to in TERMINAL:
            changes["active_hash"] = None
        statement = (
            objects.update()
            .where(
                objects.c.id == entry.id,
                objects.c.state == entry.state.value,
                objects.c.version == entry.version,
            )
            .values(**changes)
        )

        def swap(connection: sa.Connection) -> int:
            rowcount = int(connection.execute(statement).rowcount)
            if rowcount == 1:  # counted with the change, in its transaction
                _batch.moved(connection, self._totals, [entry], to)
            return rowcount

        rowcount = self._write(swap)
        if rowcount != 1:
            return None
        return replaced(entry, changes, mtime)

    def record_intents(
        self, store: str, intents: Sequence[Intent], *, mode: str, run_id: int | None
    ) -> list[Entry | None]:
        """Record that the objects of ``intents`` are about to be quarantined, up to 500 per transaction.

        Returns one result per intent, in order: its QUARANTINING entry, or
        ``None`` where the key already had an active entry (exactly as
        :meth:`record_intent` returns ``None``; a key given twice is recorded
        once). The unique index decides, so an intent racing another for the
        same key, in this process or another, never records a second active
        entry. Every intent is validated before anything is written.

        Raises ``ValueError`` as :meth:`record_intent` does, and
        :class:`~reclaim.errors.CatalogError` on database errors (chunks
        committed before the error stay recorded: in flight, for ``recover``).
        """
        return _batch.record_intents(
            self._write,
            self._objects,
            self._is_active_conflict,
            store,
            intents,
            mode=mode,
            run_id=run_id,
            totals=self._totals,
        )

    def transition_many(
        self,
        entries: Sequence[Entry],
        to: State,
        *,
        run_id: int | None = None,
        due_at: datetime | None = None,
        note: str | None = None,
        markers: Mapping[int, str] | None = None,
    ) -> list[Entry | None]:
        """Compare-and-set each of ``entries`` to state ``to``, up to 500 per transaction.

        Returns one result per entry, in order: the new entry where it won, and
        ``None`` where the entry changed since it was read (exactly as
        :meth:`transition` returns ``None``). ``run_id``, ``due_at`` and
        ``note`` apply to every entry that moves; ``markers`` gives some of
        them (by id) their ``marker_id`` (``versioned`` mode's delete markers).

        Raises ``ValueError`` for a transition the lifecycle does not allow or
        an entry given twice (before anything is written), and
        :class:`~reclaim.errors.CatalogError` on database errors (chunks
        committed before the error stay applied).
        """
        return _batch.transition_many(
            self._write,
            self._objects,
            entries,
            to,
            run_id=run_id,
            due_at=due_at,
            note=note,
            markers=markers,
            totals=self._totals,
        )

    def expirable(self, before: datetime, *, store: str | None = None) -> int:
        """How many entries :meth:`expire` would delete now (a dry run's count)."""
        before = utc(before, "before")
        objects = self._objects
        query = sa.select(sa.func.count()).where(
            objects.c.state.in_([state.value for state in TERMINAL]), objects.c.updated_at < before
        )
        if store is not None:
            query = query.where(objects.c.store == store)
        with self._catalog.begin() as connection:
            return int(connection.execute(query).scalar_one())

    def expire(self, before: datetime, *, store: str | None = None) -> int:
        """Delete PURGED and RESTORED entries (of ``store``, or all) older than ``before``; return how many.

        Active entries are never deleted, whatever their age. Deletes in batches,
        each in a transaction of its own. Raises :class:`~reclaim.errors.CatalogError`.
        """
        before = utc(before, "before")
        objects = self._objects
        terminal = [state.value for state in TERMINAL]
        deleted = 0
        while True:

            def batch(connection: sa.Connection) -> int:
                query = sa.select(objects.c.id, objects.c.store, objects.c.state, objects.c.size).where(
                    objects.c.state.in_(terminal), objects.c.updated_at < before
                )
                if store is not None:
                    query = query.where(objects.c.store == store)
                # locked, so that the entries counted out are exactly the ones deleted (a terminal
                # entry never changes; a concurrent expire waits, then finds them gone)
                query = query.order_by(objects.c.id).limit(_EXPIRE_BATCH).with_for_update()
                found = connection.execute(query).all()
                if not found:
                    return 0
                ids = [row.id for row in found]
                statement = objects.delete().where(objects.c.id.in_(ids), objects.c.state.in_(terminal))
                deleted = int(connection.execute(statement).rowcount)
                if deleted != len(found):  # pragma: no cover - the rows are locked since they were read
                    raise RuntimeError(f"{deleted} of {len(found)} locked journal entries were deleted")
                deltas: _totals.Deltas = {}
                for row in found:
                    _totals.add(deltas, str(row.store), str(row.state), -1, -_totals.size_of(row.size))
                _totals.bump(connection, self._totals, _totals.JOURNAL, deltas)
                return deleted

            count = self._write(batch)
            deleted += count
            if count == 0:
                return deleted

    # -- queries -------------------------------------------------------------------------

    def get(self, entry_id: int) -> Entry | None:
        """The entry with id ``entry_id`` as it is now, ``None`` when there is none."""
        return self._first(sa.select(self._objects).where(self._objects.c.id == entry_id))

    def active(self, store: str, key: str) -> Entry | None:
        """The active entry of ``key`` in ``store`` (at most one exists), or ``None``."""
        objects = self._objects
        query = sa.select(objects).where(
            objects.c.store == store,
            objects.c.active_hash == sha256_hex(key),
            objects.c.key == key,
        )
        return self._first(query)

    def latest(self, store: str, key: str) -> Entry | None:
        """The most recent entry of ``key`` in ``store``, in any state, or ``None``."""
        objects = self._objects
        query = (
            sa.select(objects)
            .where(objects.c.store == store, objects.c.key_hash == sha256_hex(key), objects.c.key == key)
            .order_by(objects.c.id.desc())
            .limit(1)
        )
        return self._first(query)

    def due(self, store: str, now: datetime, *, limit: int = 1000, after_id: int = 0) -> list[Entry]:
        """QUARANTINED entries of ``store`` whose grace ended by ``now``, by id, after ``after_id``.

        Page through them by passing the last id seen as ``after_id``. An object
        that a restorable archived row owns (``row_objects``, ``objects =
        "follow"``) is never due, whatever the store's grace: while the row can
        be restored, so can its objects (invariant 6); its expiry purges them.
        """
        check_limit(limit)
        now = utc(now, "now")
        objects = self._objects
        links, rows = self._catalog.tables.row_objects, self._catalog.tables.rows
        owned = (
            sa.exists()
            .where(
                links.c.store == objects.c.store,
                links.c.key_hash == objects.c.key_hash,
                links.c.key == objects.c.key,
                rows.c.id == links.c.row_id,
                rows.c.state.in_(_RESTORABLE_ROWS),
            )
            .correlate(objects)
        )
        query = (
            sa.select(objects)
            .where(
                objects.c.store == store,
                objects.c.state == State.QUARANTINED.value,
                objects.c.due_at <= now,
                objects.c.id > after_id,
                ~owned,
            )
            .order_by(objects.c.id)
            .limit(limit)
        )
        return self._all(query)

    def in_flight(self, store: str | None = None) -> list[Entry]:
        """Entries left QUARANTINING, PURGING or RESTORING (of ``store``, or of every store), by id."""
        objects = self._objects
        query = sa.select(objects).where(objects.c.state.in_([state.value for state in IN_FLIGHT]))
        if store is not None:
            query = query.where(objects.c.store == store)
        return self._all(query.order_by(objects.c.id))

    def select(
        self,
        *,
        store: str | None = None,
        states: Collection[State] = (State.QUARANTINED,),
        keys: Collection[str] | None = None,
        run_id: int | None = None,
        since: datetime | None = None,
        limit: int = 1000,
        after_id: int = 0,
    ) -> list[Entry]:
        """Entries in ``states`` matching every filter given, by id, at most ``limit`` after ``after_id``.

        The filters are what ``reclaim restore`` offers: a store, exact keys, the
        run that quarantined them (``run_id``), and entries created at or after
        ``since``. Raises ``ValueError`` when ``limit`` is below 1.
        """
        check_limit(limit)
        objects = self._objects
        if not states or (keys is not None and not keys):
            return []
        query = sa.select(objects).where(
            objects.c.state.in_([State(state).value for state in states]),
            objects.c.id > after_id,
        )
        if store is not None:
            query = query.where(objects.c.store == store)
        if run_id is not None:
            query = query.where(objects.c.run_id == run_id)
        if since is not None:
            query = query.where(objects.c.created_at >= utc(since, "since"))
        query = query.order_by(objects.c.id).limit(limit)
        if keys is None:
            return self._all(query)
        # the first `limit` ids overall are among the first `limit` ids of each chunk
        found: list[Entry] = []
        for chunk in chunks(sorted(set(keys)), _KEYS_PER_QUERY):
            hashes = [sha256_hex(key) for key in chunk]
            found += self._all(query.where(objects.c.key_hash.in_(hashes), objects.c.key.in_(chunk)))
        return sorted(found, key=lambda entry: entry.id)[:limit]

    def changed_by(
        self,
        store: str,
        run_id: int,
        states: Collection[State],
        *,
        since: datetime,
        limit: int = 1000,
        after_id: int = 0,
    ) -> list[Entry]:
        """Entries of ``store`` in ``states`` whose last change was run ``run_id``'s, at or after ``since``.

        By id, at most ``limit`` after ``after_id``. A distributed worker retried
        after its first attempt was killed counts with it what that attempt did
        in its range (the attempt's own report was lost with it).
        """
        check_limit(limit)
        if not states:
            return []
        objects = self._objects
        query = (
            sa.select(objects)
            .where(
                objects.c.store == store,
                objects.c.state.in_([State(state).value for state in states]),
                objects.c.updated_at >= utc(since, "since"),
                objects.c.updated_run_id == run_id,
                objects.c.id > after_id,
            )
            .order_by(objects.c.id)
            .limit(limit)
        )
        return self._all(query)

    def run_tally(self, run_id: int) -> dict[str, dict[str, dict[str, int]]]:
        """What run ``run_id`` left in the journal: entries it changed last, by store and state.

        ``{store: {state: {"count": n, "bytes": b}}}``, from the entries whose
        last change was this run's: the true record of a run that ended without
        reporting its counts (killed, interrupted, paused past its lease).
        """
        objects = self._objects
        query = (
            sa.select(
                objects.c.store,
                objects.c.state,
                sa.func.count().label("entries"),
                sa.func.sum(objects.c.size).label("bytes"),
            )
            .where(objects.c.updated_run_id == run_id)
            .group_by(objects.c.store, objects.c.state)
        )
        tally: dict[str, dict[str, dict[str, int]]] = {}
        with self._catalog.begin() as connection:
            for row in connection.execute(query):
                by_state = tally.setdefault(str(row.store), {})
                try:
                    size = int(row.bytes or 0)
                except (TypeError, ValueError, OverflowError):
                    size = 0  # a size no store reported (a hand-edited row): counted, not summed
                by_state[str(row.state)] = {"count": int(row.entries), "bytes": size}
        return tally

    def summary(self, store: str) -> JournalSummary:
        """Counts and bytes of ``store``'s entries by state, the oldest quarantined item and the next due.

        Counts and bytes are the running totals (:mod:`reclaim.catalog._totals`),
        a few rows whatever the journal's size; the oldest and the next due are
        each the first QUARANTINED entry of an index (``objects_oldest``,
        ``objects_due``; see :mod:`reclaim.catalog._first`).
        """
        objects = self._objects
        where = (objects.c.store == store, objects.c.state == State.QUARANTINED.value)
        quarantined = sa.select(
            first_value(objects.c.created_at, *where), first_value(objects.c.due_at, *where)
        )
        with self._catalog.begin() as connection:
            totals = _totals.read(connection, self._totals, _totals.JOURNAL, store)
            oldest, next_due = connection.execute(quarantined).one()
        rows = {
            state: _Counted(entries, size, oldest, next_due)
            for state, (entries, size) in totals.items()
            if entries
        }
        return summary_from_rows(store, rows)

    # -- plumbing ------------------------------------------------------------------------

    def _first(self, query: sa.Select[Any]) -> Entry | None:
        with self._catalog.begin() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else entry_from_row(row)

    def _all(self, query: sa.Select[Any]) -> list[Entry]:
        with self._catalog.begin() as connection:
            return [entry_from_row(row) for row in connection.execute(query).mappings()]

    def _write(self, work: Callable[[sa.Connection], _T]) -> _T:
        """Run ``work`` in a transaction of its own, again when the database broke a deadlock with it.

        Fenced first when this journal belongs to a lease holder: the guard and
        the write commit together, or neither happens.
        """
        lease = self._lease
        if lease is None:
            return write_retrying(self._catalog, work)

        def fenced(connection: sa.Connection) -> _T:
            lease.guard(connection)
            return work(connection)

        return write_retrying(self._catalog, fenced)

    def _is_active_conflict(self, exc: sa.exc.IntegrityError) -> bool:
        """Whether ``exc`` is the unique index on (store, active_hash) refusing a second active entry."""
        text = str(exc.orig)
        return self._active_index in text or "active_hash" in text
