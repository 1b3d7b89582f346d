"""Collecting rows: scan, archive-and-delete in batches, and recovery of a killed run.

One batch of a collection, in one transaction on the collection's database
(READ COMMITTED on PostgreSQL and MariaDB/MySQL; SQLite serialises writers):

1. ``SELECT ... WHERE <predicate> ORDER BY pk LIMIT n FOR UPDATE SKIP LOCKED``
   locks candidate rows. A row a writer is referencing right now (its foreign
   key check holds a lock on the row) is skipped; a writer that comes later
   waits for the lock and then fails its foreign key check instead of
   referencing a deleted row.
2. Rows an archived, still restorable row references are left alone
   (invariant 6: the archive's ``row_refs``).
3. ``DELETE ... WHERE pk IN (...) AND <predicate>`` re-evaluates the predicate
   in a fresh statement snapshot, so a referencing row committed after step 1
   makes the delete skip its row; ``RETURNING`` (PostgreSQL, SQLite, MariaDB)
   or a re-select (MySQL) tells which rows went.
4. The deleted rows are archived (with, for ``objects = "follow"``, the
   objects each one owns, pending: :mod:`reclaim.lifecycle.follow`
   quarantines them once the rows are gone):

   - catalog in the same database: in this very transaction (state ARCHIVED);
   - otherwise: archived *before* the delete, committed (state ARCHIVING), then
     confirmed (ARCHIVED) once the delete committed, and dropped for rows the
     delete skipped. A run killed in between leaves ARCHIVING records;
     :func:`recover_rows` confirms those whose row is gone and drops those
     whose row is still there. Either way every row is live or archived.

A batch whose delete fails (a foreign key violation from a concurrent writer,
a deadlock, a serialisation failure) is rolled back and retried; after
:data:`_ATTEMPTS` failures its rows are tried one at a time, and a row that
still fails is skipped for this run. Nothing cascades: a foreign key with an
ON DELETE action must be declared (:mod:`reclaim.rows.table`), so the
predicate has proved no referencing row exists when the row is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from reclaim.catalog import LeaseCheck, NewRow, RowArchive, RowState, pk_text
from reclaim.errors import CatalogError, CollectionError, UnsafeToProceed
from reclaim.lifecycle.datasize import DataSizer
from reclaim.lifecycle.faults import fault
from reclaim.lifecycle.progress import ProgressLike, as_progress
from reclaim.lifecycle.unreferenced import Watch
from reclaim.rows import CollectionTable, encode_ref, encode_row

__all__ = [
    "CollectionResult",
    "CollectionScan",
    "RowRecovery",
    "collect_collection",
    "held_keys",
    "recover_rows",
    "same_database",
    "scan_collection",
]

_ATTEMPTS: Final = 3
_SCAN_CHUNK: Final = 500
#: the label of the age condition selected beside a row when the watch decides the rest
_OLD: Final = "_reclaim_old_enough"


@dataclass
class CollectionScan:
    """What a scan of one collection found (nothing is changed)."""

    collection: str
    table: str
    action: str
    rows: int = 0
    """Rows in the table."""
    candidates: int = 0
    row_bytes: int = 0
    """Size of the candidates as archived JSON."""
    data_bytes: int | None = None
    """Bytes of the data the candidates stand for (the objects they reference, or their
    ``size_column``); ``None``: not measured (nothing to measure it by)."""
    held: int = 0
    """Rows the predicate selects that archived rows still reference (kept)."""
    age: str = "own"
    unreferenced: int = 0
    """With ``age = "unreferenced"``: rows seen unreferenced now (candidates or not yet)."""
    samples: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """``row_bytes`` (the name before data sizes were measured)."""
        return self.row_bytes

    @property
    def fraction(self) -> float:
        """Candidates as a share of the table."""
        return self.candidates / self.rows if self.rows else 0.0


@dataclass
class CollectionResult:
    """What collecting one collection did."""

    collection: str
    table: str
    archived: int = 0
    row_bytes: int = 0
    """Size of the archived rows as JSON."""
    data_bytes: int | None = None
    """Bytes of the data the archived rows stand for; ``None``: not measured."""
    held: int = 0
    skipped: int = 0
    """Rows locked by a writer, or whose delete kept failing: left for the next run."""
    retries: int = 0
    samples: list[str] = field(default_factory=list)
    objects: int = 0
    """``objects = "follow"``: objects of the archived rows quarantined with them (this run)."""
    objects_bytes: int | None = 0
    objects_kept: int = 0
    """``objects = "follow"``: objects left live (another row references them, or they changed)."""

    @property
    def bytes(self) -> int:
        """``row_bytes`` (the name before data sizes were measured)."""
        return self.row_bytes


@dataclass
class RowRecovery:
    """What :func:`recover_rows` settled."""

    confirmed: int = 0
    discarded: int = 0
    restored: int = 0
    rolled_back: int = 0

    @property
    def total(self) -> int:
        """Records settled."""
        return self.confirmed + self.discarded + self.restored + self.rolled_back


def same_database(catalog_url: str, database_url: str) -> bool:
    """Whether the catalog and a collection's table live in one database (one transaction can hold both)."""
    a, b = sa.make_url(catalog_url), sa.make_url(database_url)
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        if not a.database or not b.database or ":memory:" in (a.database, b.database):
            return False
        return Path(a.database).resolve() == Path(b.database).resolve()
    return (a.host or "localhost", a.port, a.database, a.username) == (
        b.host or "localhost",
        b.port,
        b.database,
        b.username,
    )


def held_keys(
    ct: CollectionTable, archive: RowArchive | None, rows: Sequence[Mapping[str, Any]]
) -> set[tuple[Any, ...]]:
    """Primary keys of ``rows`` that restorable archived rows reference (invariant 6)."""
    if archive is None or not rows:
        return set()
    held: set[tuple[Any, ...]] = set()
    for ref in ct.inbound:
        if ref.table is None or not archive.has_refs(ref.qualified):
            continue
        values = {encode_ref([row[c] for c in ref.targets]): ct.pk_of(row) for row in rows}
        for value in archive.held(ref.qualified, ref.selector, values):
            held.add(values[value])
    return held


def scan_collection(
    ct: CollectionTable,
    archive: RowArchive | None,
    *,
    now: datetime,
    show: int = 0,
    progress: ProgressLike = None,
    watch: Watch | None = None,
    sizer: DataSizer | None = None,
) -> CollectionScan:
    """Count the candidates of ``ct`` (their archived size and data size); change nothing in the table.

    With ``watch`` (``age = "unreferenced"``) every row that is unreferenced
    (and matches ``where``) is read, handed to the watch a chunk at a time
    (a real run's watch records it), and counted a candidate only when its age
    column is old enough too; the watch is finished after the last chunk.
    ``sizer`` measures ``data_bytes``. Reports the rows read to ``progress``
    (phase ``scan``).
    """
    scan = CollectionScan(ct.name, ct.qualified, ct.config.action, age=ct.config.age)
    if sizer is not None:
        scan.data_bytes = 0
    step = as_progress(progress).step("scan", ct.name, kind="collection", unit="candidate rows")
    if watch is None:
        query = sa.select(ct.table).where(ct.predicate(now))
    else:
        query = sa.select(ct.table, ct.old_enough(now).label(_OLD)).where(ct.unreferenced())
    query = query.order_by(*ct.pk_columns())
    with _errors(ct):
        with ct.engine.connect() as conn:
            scan.rows = int(conn.execute(sa.select(sa.func.count()).select_from(ct.table)).scalar_one())
        for chunk in _chunks(ct, query, keyset=watch is not None and watch.records):
            step.advance(len(chunk))
            # a report rule that ignores references counts the rows archived rows hold too
            held = set() if ct.config.ignores_references else held_keys(ct, archive, chunk)
            scan.held += len(held)
            chunk = [row for row in chunk if ct.pk_of(row) not in held]
            if watch is not None:
                scan.unreferenced += len(chunk)
                old = watch.old_enough([pk_text(ct.pk_of(row)) for row in chunk])
                chunk = [row for row in chunk if bool(row.pop(_OLD)) and pk_text(ct.pk_of(row)) in old]
            for row in chunk:
                scan.candidates += 1
                scan.row_bytes += len(encode_row(row))
                if len(scan.samples) < show:
                    scan.samples.append(pk_text(ct.pk_of(row)))
            if sizer is not None and chunk:
                scan.data_bytes = (scan.data_bytes or 0) + sizer.measure(chunk)
    if watch is not None:
        watch.finish()  # every unreferenced row was read: the scan is complete
    step.done()
    return scan


def _chunks(ct: CollectionTable, query: sa.Select[Any], *, keyset: bool) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``query`` (ordered by primary key), :data:`_SCAN_CHUNK` at a time.

    Streamed from one server-side cursor; with ``keyset`` each chunk is its own
    short query (``pk > last``) instead, so that no cursor stays open while the
    caller writes the catalog between chunks (a catalog in the same SQLite file
    could not commit behind an open reader).
    """
    if not keyset:
        with ct.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=_SCAN_CHUNK).execute(query)
            try:
                for partition in result.mappings().partitions(_SCAN_CHUNK):
                    yield [dict(row) for row in partition]
            finally:
                result.close()
        return
    after: tuple[Any, ...] | None = None
    while True:
        page = query if after is None else query.where(ct.after(after))
        with ct.engine.connect() as conn:
            chunk = [dict(row) for row in conn.execute(page.limit(_SCAN_CHUNK)).mappings()]
        if not chunk:
            return
        after = ct.pk_of(chunk[-1])
        yield chunk
        if len(chunk) < _SCAN_CHUNK:
            return


def collect_collection(
    ct: CollectionTable,
    archive: RowArchive,
    *,
    run_id: int,
    now: datetime,
    shared: bool,
    check_lease: LeaseCheck,
    show: int = 0,
    progress: ProgressLike = None,
    watch: Watch | None = None,
    sizer: DataSizer | None = None,
) -> CollectionResult:
    """Archive and delete every candidate of ``ct`` in batches (see the module docstring).

    With ``watch`` (``age = "unreferenced"``, after the run's complete
    :func:`scan_collection` recorded the clock) a row the predicate selects
    is deleted only when the clock says it has been unreferenced for
    ``min_age``; the predicate is still evaluated in the DELETE, and archived
    rows are forgotten by the clock afterwards. ``sizer`` measures the
    archived rows' ``data_bytes`` (after each batch commits). Reports the
    candidate rows handled (archived, held or skipped) to ``progress`` (phase
    ``collect``); their total is known when a ``max_fraction`` guard counted them.
    """
    if ct.config.ignores_references or ct.config.action != "collect":
        # the config refuses this; a rule that ignores references must never delete a row
        raise UnsafeToProceed(
            f"collection {ct.name!r} is a report rule (action {ct.config.action!r}, references "
            f"{'ignored' if ct.config.ignores_references else 'respected'}): its rows are never deleted",
            collection=ct.name,
        )
    result = CollectionResult(ct.name, ct.qualified)
    if sizer is not None:
        result.data_bytes = 0
    total = None
    if ct.config.max_fraction is not None:
        total = _guard_fraction(ct, now)
    step = as_progress(progress).step("collect", ct.name, total, kind="collection", unit="rows")
    batch = _Batch(
        ct,
        archive,
        run_id=run_id,
        now=now,
        expires_at=now + ct.config.retention,
        shared=shared,
        watch=watch,
        sizer=sizer,
    )
    after: tuple[Any, ...] | None = None
    limit = ct.config.batch_size
    failures = singles = 0
    while True:
        check_lease()
        step.update(result.archived + result.held + result.skipped)
        try:
            last = batch.attempt(after, limit, result)
        except _Retry as retry:
            # nothing of the failed batch happened: shrink to single rows, then skip one that keeps failing
            result.retries += 1
            failures += 1
            if failures < _ATTEMPTS:
                continue
            failures = 0
            if limit > 1:
                limit, singles = 1, 0
            elif retry.first is not None:
                after = retry.first
                result.skipped += 1
            continue
        failures = 0
        if last is None:
            break
        after = last
        if limit == 1:
            singles += 1
            if singles >= ct.config.batch_size:
                limit = ct.config.batch_size
    result.samples = batch.deleted_pks[:show]
    step.update(result.archived + result.held + result.skipped)
    step.done()
    return result


def _guard_fraction(ct: CollectionTable, now: datetime) -> int:
    """Refuse (:class:`UnsafeToProceed`) when too large a share of the table are candidates; their count."""
    limit = ct.config.max_fraction
    assert limit is not None
    with _errors(ct), ct.engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(ct.table)).scalar_one())
        matching = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(ct.table).where(ct.predicate(now))
            ).scalar_one()
        )
    if total and matching / total > limit:
        raise UnsafeToProceed(
            f"collection {ct.name!r}: {matching} of {total} rows ({matching / total:.1%}) are candidates, "
            f"above max_fraction {limit:.0%}; nothing was deleted",
            collection=ct.name,
        )
    return matching


@dataclass
class _Batch:
    ct: CollectionTable
    archive: RowArchive
    run_id: int
    now: datetime
    expires_at: datetime
    shared: bool
    watch: Watch | None = None
    sizer: DataSizer | None = None
    deleted_pks: list[str] = field(default_factory=list)

    def attempt(
        self, after: tuple[Any, ...] | None, limit: int, result: CollectionResult
    ) -> tuple[Any, ...] | None:
        """Collect up to ``limit`` candidates after ``after`` in one transaction.

        Returns the last primary key looked at, ``None`` when no candidate is
        left; raises :class:`_Retry` (carrying the batch's first key) when the
        transaction failed and changed nothing.
        """
        ct = self.ct
        condition = ct.predicate(self.now)
        if after is not None:
            condition = sa.and_(condition, ct.after(after))
        query = (
            sa.select(ct.table)
            .where(condition)
            .order_by(*ct.pk_columns())
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        pending: dict[tuple[Any, ...], int] = {}
        first: tuple[Any, ...] | None = None
        try:
            with _errors(ct), _transaction(ct.engine) as conn:
                rows = [dict(row) for row in conn.execute(query).mappings()]
                if not rows:
                    return None
                first, last = ct.pk_of(rows[0]), ct.pk_of(rows[-1])
                held = held_keys(ct, self.archive, rows)
                result.held += len(held)
                new_rows = {ct.pk_of(row): _new_row(ct, row) for row in rows if ct.pk_of(row) not in held}
                if self.watch is not None:
                    # age = "unreferenced": only rows the clock has seen unreferenced for min_age
                    old = self.watch.still_old_enough([new.pk for new in new_rows.values()])
                    new_rows = {k: new for k, new in new_rows.items() if new.pk in old}
                fault("rows.after-select")
                if not new_rows:
                    return last
                if not self.shared:
                    ids = self.archive.add(
                        list(new_rows.values()),
                        run_id=self.run_id,
                        state=RowState.ARCHIVING,
                        expires_at=self.expires_at,
                    )
                    pending = dict(zip(new_rows, ids, strict=True))
                    fault("rows.after-archive")
                deleted = self._delete_in(conn, list(new_rows))
                if self.shared:
                    self.archive.add(
                        [new_rows[k] for k in new_rows if k in deleted],
                        run_id=self.run_id,
                        state=RowState.ARCHIVED,
                        expires_at=self.expires_at,
                        connection=conn,
                    )
        except _Retry as retry:
            retry.first = first
            if pending:
                self.archive.discard(list(pending.values()))  # rolled back: every row is still live
            raise
        except BaseException:
            if pending:
                self.archive.discard(list(pending.values()))
            raise
        fault("rows.after-delete")
        if pending:
            self.archive.confirm([pending[k] for k in pending if k in deleted], run_id=self.run_id)
            self.archive.discard([pending[k] for k in pending if k not in deleted])
        fault("rows.after-confirm")
        result.archived += len(deleted)
        result.skipped += len(new_rows) - len(deleted)
        result.row_bytes += sum(len(new_rows[k].row) for k in deleted)
        gone = [new_rows[k].pk for k in new_rows if k in deleted]
        self.deleted_pks += gone
        if self.watch is not None:
            self.watch.forget(gone)  # a restored row starts its clock again
        if self.sizer is not None and deleted:
            measured = self.sizer.measure([row for row in rows if ct.pk_of(row) in deleted])
            result.data_bytes = (result.data_bytes or 0) + measured
        return last

    def _delete_in(self, conn: sa.Connection, keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        ct = self.ct
        statement = ct.table.delete().where(ct.pk_match(keys), ct.predicate(self.now))
        if conn.dialect.delete_returning:
            return {tuple(r) for r in conn.execute(statement.returning(*ct.pk_columns()))}
        conn.execute(statement)
        survivors = {tuple(r) for r in conn.execute(sa.select(*ct.pk_columns()).where(ct.pk_match(keys)))}
        return set(keys) - survivors


def _new_row(ct: CollectionTable, row: Mapping[str, Any]) -> NewRow:
    """The archive record of ``row``: its JSON, references and, for ``follow``, the objects it owns."""
    refs = ct.refs(row)
    owned = ct.objects(refs) if ct.follows else []
    return NewRow(ct.name, ct.qualified, pk_text(ct.pk_of(row)), encode_row(row), refs, owned)


class _Retry(Exception):
    """A batch failed in a way that leaves nothing behind; try it again."""

    first: tuple[Any, ...] | None = None


@contextmanager
def _transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            yield conn


_RETRYABLE: Final = (
    "foreign key",  # a writer referenced the row after our lock
    "deadlock",
    "could not serialize",
    "lock wait timeout",
    "database is locked",
)


@contextmanager
def _errors(ct: CollectionTable) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        text = str(exc.orig).lower()
        if isinstance(exc, sa.exc.IntegrityError) or any(m in text for m in _RETRYABLE):
            raise _Retry(text) from None
        raise CollectionError(ct.name, _cause(exc)) from None
    except SQLAlchemyError as exc:
        raise CollectionError(ct.name, _cause(exc)) from None


def _cause(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None) or exc
    return " ".join(f"{type(orig).__name__}: {orig}".split())[:800]


def recover_rows(tables: Mapping[str, CollectionTable], archive: RowArchive, *, run_id: int) -> RowRecovery:
    """Settle the archive records a killed run left in flight, by looking at the table.

    ARCHIVING: the row is gone, so the delete committed (ARCHIVED); the row is
    there, so it did not (the record is dropped). RESTORING: the row is there,
    so the insert committed (RESTORED); it is not (back to ARCHIVED). A record
    of a collection no longer configured is left alone.
    """
    recovery = RowRecovery()
    for record in archive.in_flight():
        ct = tables.get(record.collection)
        if ct is None:
            continue
        present = row_exists(ct, record.pk)
        if record.state is RowState.ARCHIVING:
            if present:
                recovery.discarded += archive.discard([record.id])
            else:
                recovery.confirmed += archive.confirm([record.id], run_id=run_id)
        elif present:
            recovery.restored += archive.transition(record, RowState.RESTORED, run_id=run_id) is not None
        else:
            recovery.rolled_back += archive.transition(record, RowState.ARCHIVED, run_id=run_id) is not None
    return recovery


def archived_pk(ct: CollectionTable, pk: object) -> list[str]:
    """The primary key values of an archive record's ``pk``; :class:`CatalogError` when impossible."""
    try:
        texts = json.loads(pk) if isinstance(pk, str) else None
    except ValueError:
        texts = None
    if not isinstance(texts, list) or len(texts) != len(ct.pk) or not all(isinstance(t, str) for t in texts):
        shown = pk[:100] if isinstance(pk, str) else pk
        raise CatalogError(
            f"collection {ct.name!r}: an archived row's primary key {shown!r} (table rows) is not a JSON "
            f"list of {len(ct.pk)} values; repair or delete that row"
        )
    return texts


def row_exists(ct: CollectionTable, pk: str, connection: sa.Connection | None = None) -> bool:
    """Whether a row with the archived primary key ``pk`` is in the table now.

    Raises :class:`~reclaim.errors.CatalogError` when ``pk`` is not what the
    archive writes (a JSON list of one text per primary key column).
    """
    texts = archived_pk(ct, pk)
    condition = sa.and_(
        *(sa.cast(column, sa.String) == text for column, text in zip(ct.pk_columns(), texts, strict=True))
    )
    query = sa.select(sa.literal(1)).select_from(ct.table).where(condition).limit(1)
    if connection is not None:
        return connection.execute(query).first() is not None
    try:
        with ct.engine.connect() as conn:
            return conn.execute(query).first() is not None
    except SQLAlchemyError as exc:
        raise CollectionError(ct.name, _cause(exc)) from None
