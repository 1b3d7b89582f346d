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

Keys are found through ``key_hash`` (an index MariaDB can hold) and then
compared byte for byte, so keys differing in case or trailing spaces are
different objects. Times are timezone-aware UTC. Database errors surface as
:class:`~reclaim.errors.CatalogError`; a deadlock, which leaves nothing behind,
is retried a few times first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import sqlalchemy as sa

from reclaim.catalog.tables import KEY_LENGTH, sha256_hex

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog

__all__ = [
    "ACTIVE",
    "IN_FLIGHT",
    "TERMINAL",
    "TRANSITIONS",
    "Entry",
    "Journal",
    "JournalSummary",
    "Mode",
    "State",
]


class State(StrEnum):
    """Where an object is in its lifecycle; stored as the member's name."""

    QUARANTINING = "QUARANTINING"
    QUARANTINED = "QUARANTINED"
    PURGING = "PURGING"
    PURGED = "PURGED"
    RESTORING = "RESTORING"
    RESTORED = "RESTORED"


#: states in which an entry holds its key (at most one such entry per store and key)
ACTIVE: Final = frozenset({State.QUARANTINING, State.QUARANTINED, State.PURGING, State.RESTORING})
#: states in which a step was started and may not have finished (what recovery looks at)
IN_FLIGHT: Final = frozenset({State.QUARANTINING, State.PURGING, State.RESTORING})
#: states an entry never leaves
TERMINAL: Final = frozenset({State.PURGED, State.RESTORED})
#: every transition the lifecycle allows; anything else is a bug and raises ``ValueError``
TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.QUARANTINING: frozenset({State.QUARANTINED, State.RESTORED, State.PURGED}),
    State.QUARANTINED: frozenset({State.PURGING, State.RESTORING}),
    State.PURGING: frozenset({State.PURGED, State.RESTORING, State.QUARANTINED, State.RESTORED}),
    # RESTORING -> PURGED: the trash copy was found gone (deleted by hand) while restoring
    State.RESTORING: frozenset({State.RESTORED, State.QUARANTINED, State.PURGED}),
    State.PURGED: frozenset(),
    State.RESTORED: frozenset(),
}

Mode = Literal["move", "mark"]
_MODES: Final = frozenset({"move", "mark"})
#: keys per ``IN (...)`` list when selecting by keys
_KEYS_PER_QUERY: Final = 500
#: terminal entries deleted per transaction by :meth:`Journal.expire`
_EXPIRE_BATCH: Final = 5000
#: attempts of a write that the database aborted as a deadlock
_DEADLOCK_ATTEMPTS: Final = 5
# PostgreSQL: deadlock_detected, serialization_failure; MariaDB/MySQL: ER_LOCK_DEADLOCK
_PG_RETRY: Final = frozenset({"40P01", "40001"})
_MYSQL_RETRY: Final = frozenset({1213})

_T = TypeVar("_T")


@dataclass(frozen=True)
class Entry:
    """One episode of a key in the journal, as read at one moment.

    ``version`` grows by one with every transition; pass the entry back to
    :meth:`Journal.transition` and the change applies only if nobody moved it
    since. ``mtime`` is seconds since the epoch exactly as the store reported it.
    """

    id: int
    store: str
    key: str
    state: State
    version: int
    mode: str
    trash_key: str | None
    size: int | None
    mtime: float | None
    etag: str | None
    run_id: int | None
    updated_run_id: int | None
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    note: str | None
    version_id: str | None = None

    @property
    def active(self) -> bool:
        """Whether this entry still holds its key (not PURGED or RESTORED)."""
        return self.state in ACTIVE


@dataclass(frozen=True)
class JournalSummary:
    """What the journal holds for one store: for ``reclaim status``.

    ``quarantined`` counts QUARANTINED entries and ``quarantined_bytes`` their
    known sizes; ``oldest`` is when the oldest of them was recorded and
    ``next_due`` the earliest end of grace among them; ``in_flight`` counts
    QUARANTINING, PURGING and RESTORING entries; ``purged``/``purged_bytes`` and
    ``restored`` count the history not yet expired.
    """

    store: str
    quarantined: int
    quarantined_bytes: int
    oldest: datetime | None
    next_due: datetime | None
    in_flight: int
    purged: int
    purged_bytes: int
    restored: int


class _Duplicate(Exception):
    """An active entry for the key exists already (raised to roll the insert back)."""


class _Deadlock(Exception):
    """The database aborted the transaction to break a deadlock; nothing was written."""


class Journal:
    """The object journal of one catalog; safe to share between threads."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._objects = catalog.tables.objects
        self._active_index = f"{catalog.tables.prefix}objects_active"

    def __repr__(self) -> str:
        return f"Journal({self._catalog!r})"

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
        if mode not in _MODES:
            raise ValueError(f"mode must be 'move' or 'mark', not {mode!r}")
        _check_key(key)
        if trash_key is not None:
            _check_key(trash_key)
        if mode == "move" and trash_key is None:
            raise ValueError(f"key {key!r}: mode 'move' needs a trash key")
        now = datetime.now(UTC)
        key_hash = sha256_hex(key)
        values: dict[str, Any] = {
            "store": store,
            "key": key,
            "key_hash": key_hash,
            "active_hash": key_hash,
            "state": State.QUARANTINING.value,
            "version": 1,
            "mode": mode,
            "trash_key": trash_key,
            "size": size,
            **_mtime_columns(mtime),
            "etag": etag,
            "version_id": version_id,
            "run_id": run_id,
            "updated_run_id": run_id,
            "created_at": now,
            "updated_at": now,
            "due_at": None,
            "note": None,
        }

        def insert(connection: sa.Connection) -> int:
            try:
                result = connection.execute(self._objects.insert().values(**values))
            except sa.exc.IntegrityError as exc:
                if self._is_active_conflict(exc):
                    raise _Duplicate from None
                raise
            (entry_id,) = result.inserted_primary_key or (None,)
            if entry_id is None:  # pragma: no cover - every supported dialect returns the key
                raise RuntimeError("the database returned no id for the new journal entry")
            return int(entry_id)

        try:
            entry_id = self._write(insert)
        except _Duplicate:
            return None
        return _entry(values | {"id": entry_id})

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
    ) -> Entry | None:
        """Move ``entry`` to state ``to`` if nobody moved it since it was read; return the new entry.

        A compare-and-set on (id, state, version): returns ``None`` when the
        entry changed in between (another actor won; re-read it with
        :meth:`get`). ``due_at``, ``note``, ``etag`` and ``mtime`` are changed
        only when given. Reaching PURGED or RESTORED releases the key, so a new
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
            changes["due_at"] = _utc(due_at, "due_at")
        if note is not None:
            changes["note"] = note
        if etag is not None:
            changes["etag"] = etag
        if mtime is not None:
            changes |= _mtime_columns(mtime)
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
        rowcount = self._write(lambda connection: connection.execute(statement).rowcount)
        if rowcount != 1:
            return None
        return _replace(entry, changes, mtime)

    def expire(self, before: datetime, *, store: str | None = None) -> int:
        """Delete PURGED and RESTORED entries (of ``store``, or all) older than ``before``; return how many.

        Active entries are never deleted, whatever their age. Deletes in batches,
        each in a transaction of its own. Raises :class:`~reclaim.errors.CatalogError`.
        """
        before = _utc(before, "before")
        objects = self._objects
        terminal = [state.value for state in TERMINAL]
        deleted = 0
        while True:

            def batch(connection: sa.Connection) -> int:
                query = sa.select(objects.c.id).where(
                    objects.c.state.in_(terminal), objects.c.updated_at < before
                )
                if store is not None:
                    query = query.where(objects.c.store == store)
                ids = connection.execute(query.order_by(objects.c.id).limit(_EXPIRE_BATCH)).scalars().all()
                if not ids:
                    return 0
                statement = objects.delete().where(objects.c.id.in_(ids), objects.c.state.in_(terminal))
                return int(connection.execute(statement).rowcount)

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

        Page through them by passing the last id seen as ``after_id``.
        """
        _check_limit(limit)
        now = _utc(now, "now")
        objects = self._objects
        query = (
            sa.select(objects)
            .where(
                objects.c.store == store,
                objects.c.state == State.QUARANTINED.value,
                objects.c.due_at <= now,
                objects.c.id > after_id,
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
        _check_limit(limit)
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
            query = query.where(objects.c.created_at >= _utc(since, "since"))
        query = query.order_by(objects.c.id).limit(limit)
        if keys is None:
            return self._all(query)
        # the first `limit` ids overall are among the first `limit` ids of each chunk
        found: list[Entry] = []
        for chunk in _chunks(sorted(set(keys)), _KEYS_PER_QUERY):
            hashes = [sha256_hex(key) for key in chunk]
            found += self._all(query.where(objects.c.key_hash.in_(hashes), objects.c.key.in_(chunk)))
        return sorted(found, key=lambda entry: entry.id)[:limit]

    def summary(self, store: str) -> JournalSummary:
        """Counts and bytes of ``store``'s entries by state, the oldest quarantined item and the next due."""
        objects = self._objects
        query = (
            sa.select(
                objects.c.state,
                sa.func.count().label("entries"),
                sa.func.sum(objects.c.size).label("bytes"),
                sa.func.min(objects.c.created_at).label("oldest"),
                sa.func.min(objects.c.due_at).label("next_due"),
            )
            .where(objects.c.store == store)
            .group_by(objects.c.state)
        )
        with self._catalog.begin() as connection:
            rows = {row.state: row for row in connection.execute(query)}

        def count(state: State) -> int:
            row = rows.get(state.value)
            return 0 if row is None else int(row.entries)

        def size(state: State) -> int:
            row = rows.get(state.value)
            return 0 if row is None or row.bytes is None else int(row.bytes)

        quarantined = rows.get(State.QUARANTINED.value)
        return JournalSummary(
            store=store,
            quarantined=count(State.QUARANTINED),
            quarantined_bytes=size(State.QUARANTINED),
            oldest=None if quarantined is None else quarantined.oldest,
            next_due=None if quarantined is None else quarantined.next_due,
            in_flight=sum(count(state) for state in IN_FLIGHT),
            purged=count(State.PURGED),
            purged_bytes=size(State.PURGED),
            restored=count(State.RESTORED),
        )

    # -- plumbing ------------------------------------------------------------------------

    def _first(self, query: sa.Select[Any]) -> Entry | None:
        with self._catalog.begin() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _entry(row)

    def _all(self, query: sa.Select[Any]) -> list[Entry]:
        with self._catalog.begin() as connection:
            return [_entry(row) for row in connection.execute(query).mappings()]

    def _write(self, work: Callable[[sa.Connection], _T]) -> _T:
        """Run ``work`` in a transaction of its own, again when the database broke a deadlock with it."""
        for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
            try:
                with self._catalog.begin() as connection, _deadlocks(attempt < _DEADLOCK_ATTEMPTS):
                    return work(connection)
            except _Deadlock:
                # retrying is safe: the aborted transaction changed nothing
                continue
        raise AssertionError("unreachable")  # pragma: no cover

    def _is_active_conflict(self, exc: sa.exc.IntegrityError) -> bool:
        """Whether ``exc`` is the unique index on (store, active_hash) refusing a second active entry."""
        text = str(exc.orig)
        return self._active_index in text or "active_hash" in text


@contextmanager
def _deadlocks(retry: bool) -> Iterator[None]:
    """Turn a deadlock or serialization failure into :class:`_Deadlock` when it may be retried."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if retry and _is_deadlock(exc):
            raise _Deadlock from None
        raise


def _is_deadlock(exc: sa.exc.DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_RETRY:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_RETRY


def _check_key(key: str) -> None:
    if not key:
        raise ValueError("an object key must not be empty")
    if len(key) > KEY_LENGTH:
        raise ValueError(f"key {key[:40]!r}... is {len(key)} characters long; the journal holds {KEY_LENGTH}")


def _utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC; ``ValueError`` when it is naive (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not naive {moment!r}")
    return moment.astimezone(UTC)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def _mtime_columns(mtime: float | None) -> dict[str, Any]:
    """``mtime`` (readable, microseconds) and ``mtime_epoch`` (the exact float) for a store's mtime."""
    if mtime is None:
        return {"mtime": None, "mtime_epoch": None}
    if not math.isfinite(mtime):
        raise ValueError(f"mtime must be a finite number of seconds, not {mtime!r}")
    return {"mtime": datetime.fromtimestamp(mtime, UTC), "mtime_epoch": float(mtime)}


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _entry(row: Any) -> Entry:
    """An :class:`Entry` from a row mapping (or the values just written)."""
    epoch = row["mtime_epoch"]
    stamp: datetime | None = row["mtime"]
    if epoch is not None:
        mtime: float | None = float(epoch)
    else:
        # entries written before migration 0002 kept microseconds only
        mtime = None if stamp is None else stamp.timestamp()
    return Entry(
        id=int(row["id"]),
        store=row["store"],
        key=row["key"],
        state=State(row["state"]),
        version=int(row["version"]),
        mode=row["mode"],
        trash_key=row["trash_key"],
        size=None if row["size"] is None else int(row["size"]),
        mtime=mtime,
        etag=row["etag"],
        run_id=None if row["run_id"] is None else int(row["run_id"]),
        updated_run_id=None if row["updated_run_id"] is None else int(row["updated_run_id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        due_at=row["due_at"],
        note=row["note"],
        version_id=row["version_id"],
    )


def _replace(entry: Entry, changes: dict[str, Any], mtime: float | None) -> Entry:
    """``entry`` as :meth:`Journal.transition` left it in the database."""
    return Entry(
        id=entry.id,
        store=entry.store,
        key=entry.key,
        state=State(changes["state"]),
        version=changes["version"],
        mode=entry.mode,
        trash_key=entry.trash_key,
        size=entry.size,
        mtime=entry.mtime if mtime is None else float(mtime),
        etag=changes.get("etag", entry.etag),
        run_id=entry.run_id,
        updated_run_id=changes["updated_run_id"],
        created_at=entry.created_at,
        updated_at=changes["updated_at"],
        due_at=changes.get("due_at", entry.due_at),
        note=changes.get("note", entry.note),
        version_id=entry.version_id,
    )
