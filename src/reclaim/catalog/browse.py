"""Read-only, paged queries over the catalog: what the dashboard's browsers and charts read.

Every query here is bounded: pages are keyset-paged on ``id`` (newest first,
``before`` the last id shown) and use the indexes of migration 0005, so a page
costs the same with a thousand journal entries or a million; the charts read
only the runs of the period they show (``runs_started``) and the recent
history counts read only the entries changed in it (``objects_changed``).
Nothing here writes.

Key and primary-key searches are shell globs (``blobs/*``, ``*.zarr/?``),
matched byte for byte as everywhere in the catalog: SQLite's ``GLOB``
directly; elsewhere a ``LIKE`` narrows the rows and :func:`fnmatch.fnmatchcase`
decides.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import sqlalchemy as sa

from reclaim.catalog import _run_days
from reclaim.catalog._entry import Entry, State, entry_from_row
from reclaim.catalog._first import first_value
from reclaim.catalog.archive import ArchivedRow, RowState, archived_from_row
from reclaim.catalog.observations import Observation, observation_from_row
from reclaim.catalog.runs import RunRecord, record_from_row
from reclaim.catalog.tables import RUN_DAY_FIGURES, sha256_hex

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog

__all__ = [
    "MAX_PAGE",
    "DayFigures",
    "RunFigures",
    "change_probe",
    "day_figures",
    "entry_history",
    "observations_since",
    "page_entries",
    "page_rows",
    "page_runs",
    "row_history",
    "run_figures",
    "run_totals",
    "runs_after",
    "runs_since",
]

#: the largest page any query returns
MAX_PAGE: Final = 500
#: rows read per round while a glob that LIKE cannot express exactly filters them
_ROUND: Final = 500

_T = TypeVar("_T")


@dataclass(frozen=True)
class RunFigures:
    """What one run's counts say it did per store, read by the database from the JSON (no decoding here)."""

    id: int
    command: str
    status: str
    started_at: datetime
    purged: dict[str, tuple[int, int]]
    """Per store: objects and bytes purged."""
    quarantined: dict[str, tuple[int, int]]
    restored: dict[str, tuple[int, int]]


#: where each figure sits in a run's counts: (section, count path, bytes path) below counts[section][store]
_FIGURES: Final = (
    ("purged", ("purged", "count"), ("purged", "bytes")),
    ("quarantined", ("quarantined", "count"), ("quarantined", "bytes")),
    ("restored", ("restored",), ("restored_bytes",)),
)


def run_figures(
    catalog: Catalog,
    stores: Collection[str],
    *,
    since: datetime | None = None,
    after: int | None = None,
    limit: int = 50_000,
) -> list[RunFigures]:
    """Per run (started at or after ``since``, or with an id above ``after``), oldest first: the
    objects and bytes it purged, quarantined and restored in each of ``stores``.

    The database extracts the figures from the counts' JSON (``json_extract``,
    ``#>>``, ``JSON_EXTRACT``), so a chart over 10,000 runs decodes no JSON in
    Python. A figure a run does not have is 0.
    """
    runs = catalog.tables.runs
    if catalog.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        counts: Any = sa.cast(runs.c.counts, postgresql.JSON)
    else:
        counts = sa.type_coerce(runs.c.counts, sa.JSON)
    names = sorted(stores)
    columns = []
    for section, count_path, bytes_path in _FIGURES:
        for store in names:
            for path in (count_path, bytes_path):
                columns.append(counts[(section, store, *path)].as_float())
    query = sa.select(runs.c.id, runs.c.command, runs.c.status, runs.c.started_at, *columns)
    if since is not None:
        query = query.where(runs.c.started_at >= since).order_by(runs.c.started_at)
    else:
        query = query.where(runs.c.id > (after or 0)).order_by(runs.c.id)
    found = []
    with catalog.begin() as connection:
        for row in connection.execute(query.limit(limit)):
            values = [_int(v) for v in row[4:]]
            parts: list[dict[str, tuple[int, int]]] = []
            for number in range(len(_FIGURES)):
                base = number * len(names) * 2
                parts.append(
                    {name: (values[base + 2 * i], values[base + 2 * i + 1]) for i, name in enumerate(names)}
                )
            found.append(RunFigures(int(row[0]), str(row[1]), str(row[2]), row[3], *parts))
    return found


@dataclass(frozen=True)
class DayFigures:
    """What the runs of some commands quarantined, purged and restored in one store on one UTC day."""

    store: str
    day: date
    quarantined: tuple[int, int]
    """Objects and bytes."""
    purged: tuple[int, int]
    restored: tuple[int, int]


def day_figures(
    catalog: Catalog, stores: Collection[str], commands: Collection[str], first: date
) -> list[DayFigures]:
    """Per store and day from ``first`` on (UTC, of each run's start): what finished runs of ``commands``
    quarantined, purged and restored, from the rows the run writer keeps (``run_days``).

    Reads at most days x stores x commands rows, however many runs there were;
    the figures are those of :func:`run_figures` summed per day (a run counts
    once it has finished; a running run's counts are empty). Days without runs
    are absent.
    """
    with catalog.begin() as connection:
        found = _run_days.per_day(connection, catalog.tables.run_days, stores, commands, first)
    return [
        DayFigures(store, day, (v[0], v[1]), (v[2], v[3]), (v[4], v[5]))
        for (store, day), v in sorted(found.items())
    ]


def run_totals(catalog: Catalog, stores: Collection[str]) -> dict[str, dict[str, int]]:
    """Per store, over the whole audit log: ``purged_objects``, ``purged_bytes``, ``restored_objects``,
    ``restored_bytes`` (and the same for quarantined) of every finished run, from ``run_days``."""
    with catalog.begin() as connection:
        found = _run_days.per_store(connection, catalog.tables.run_days, stores)
    return {store: dict(zip(RUN_DAY_FIGURES, values, strict=True)) for store, values in found.items()}


def page_entries(
    catalog: Catalog,
    *,
    store: str | None = None,
    states: Collection[State] | None = None,
    key_glob: str | None = None,
    run_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Entry]:
    """Journal entries matching every filter, newest first, at most ``limit`` with ids below ``before``.

    ``since``/``until`` bound when the entry was recorded (``created_at``);
    ``run_id`` is the run that recorded it. Raises ``ValueError`` for a limit
    outside 1..:data:`MAX_PAGE` and :class:`~reclaim.errors.CatalogError` on
    database errors.
    """
    _check(limit)
    objects = catalog.tables.objects
    query = sa.select(objects)
    if store is not None:
        query = query.where(objects.c.store == store)
    if states:
        query = query.where(objects.c.state.in_([State(state).value for state in states]))
    if run_id is not None:
        query = query.where(objects.c.run_id == run_id)
    if since is not None:
        query = query.where(objects.c.created_at >= since)
    if until is not None:
        query = query.where(objects.c.created_at < until)
    return _paged(catalog, query, objects, "key", key_glob, before, limit, entry_from_row, lambda e: e.key)


def entry_history(catalog: Catalog, store: str, key: str, *, limit: int = 100) -> list[Entry]:
    """Every journal episode of ``key`` in ``store`` (each quarantine and how it ended), newest first."""
    objects = catalog.tables.objects
    query = (
        sa.select(objects)
        .where(objects.c.store == store, objects.c.key_hash == sha256_hex(key), objects.c.key == key)
        .order_by(objects.c.id.desc())
        .limit(min(limit, MAX_PAGE))
    )
    with catalog.begin() as connection:
        return [entry_from_row(row) for row in connection.execute(query).mappings()]


def page_rows(
    catalog: Catalog,
    *,
    collection: str | None = None,
    states: Collection[RowState] | None = None,
    pk_glob: str | None = None,
    run_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[ArchivedRow]:
    """Archived rows matching every filter, newest first, at most ``limit`` with ids below ``before``.

    ``pk_glob`` matches the primary key's text (``["42"]``). Same errors as :func:`page_entries`.
    """
    _check(limit)
    rows = catalog.tables.rows
    query = sa.select(rows)
    if collection is not None:
        query = query.where(rows.c.collection == collection)
    if states:
        query = query.where(rows.c.state.in_([RowState(state).value for state in states]))
    if run_id is not None:
        query = query.where(rows.c.run_id == run_id)
    if since is not None:
        query = query.where(rows.c.archived_at >= since)
    if until is not None:
        query = query.where(rows.c.archived_at < until)
    return _paged(catalog, query, rows, "pk", pk_glob, before, limit, archived_from_row, lambda r: r.pk)


def row_history(catalog: Catalog, collection: str, pk: str, *, limit: int = 100) -> list[ArchivedRow]:
    """Every archive record of the row ``pk`` of ``collection``, newest first."""
    rows = catalog.tables.rows
    query = (
        sa.select(rows)
        .where(rows.c.collection == collection, rows.c.pk_hash == sha256_hex(pk), rows.c.pk == pk)
        .order_by(rows.c.id.desc())
        .limit(min(limit, MAX_PAGE))
    )
    with catalog.begin() as connection:
        return [archived_from_row(row) for row in connection.execute(query).mappings()]


def page_runs(
    catalog: Catalog,
    *,
    command: str | None = None,
    status: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[RunRecord]:
    """Runs of the audit log, newest first, at most ``limit`` with ids below ``before``."""
    _check(limit)
    runs = catalog.tables.runs
    query = sa.select(runs)
    if command is not None:
        query = query.where(runs.c.command == command)
    if status is not None:
        query = query.where(runs.c.status == status)
    return _paged(catalog, query, runs, None, None, before, limit, record_from_row, lambda r: "")


def runs_after(catalog: Catalog, after: int, *, limit: int = MAX_PAGE) -> list[RunRecord]:
    """Runs with ids above ``after``, oldest first, at most ``limit`` (reading the log incrementally)."""
    _check(limit)
    runs = catalog.tables.runs
    query = sa.select(runs).where(runs.c.id > after).order_by(runs.c.id).limit(limit)
    with catalog.begin() as connection:
        return [record_from_row(row) for row in connection.execute(query).mappings()]


def runs_since(catalog: Catalog, since: datetime, *, limit: int = 20_000) -> list[RunRecord]:
    """Runs started at or after ``since``, oldest first (the history charts), at most ``limit``."""
    runs = catalog.tables.runs
    query = sa.select(runs).where(runs.c.started_at >= since).order_by(runs.c.started_at).limit(limit)
    with catalog.begin() as connection:
        return [record_from_row(row) for row in connection.execute(query).mappings()]


def observations_since(
    catalog: Catalog, kind: str, since: datetime, *, limit: int = 5_000
) -> list[Observation]:
    """Observations of ``kind`` finished at or after ``since``, oldest first, at most the newest ``limit``."""
    table = catalog.tables.observations
    query = (
        sa.select(table)
        .where(table.c.kind == kind, table.c.finished_at >= since)
        .order_by(table.c.id.desc())
        .limit(limit)
    )
    with catalog.begin() as connection:
        found = [observation_from_row(row) for row in connection.execute(query).mappings()]
    return found[::-1]


def change_probe(catalog: Catalog) -> tuple[Any, ...]:
    """A cheap fingerprint of the catalog's state: it changes whenever a run starts or ends, the lease
    changes hands or beats, or a scan, check, journal entry or archived row is added.

    Every part is the last entry of an index (the primary keys, ``runs_finished``; see
    :mod:`reclaim.catalog._first`) or the lease's row.
    """
    t = catalog.tables
    with catalog.begin() as connection:
        runs = connection.execute(
            sa.select(
                sa.select(sa.func.max(t.runs.c.id)).scalar_subquery(),
                first_value(t.runs.c.finished_at, last=True),
            )
        ).one()
        lease = connection.execute(
            sa.select(t.lease.c.token, t.lease.c.heartbeat_at, t.lease.c.progress, t.lease.c.fence)
        ).all()
        newest = tuple(
            connection.execute(sa.select(sa.func.max(table.c.id))).scalar()
            for table in (t.observations, t.objects, t.rows)
        )
    return (tuple(runs), tuple(tuple(row) for row in lease), newest)


def _check(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"a page holds 1 to {MAX_PAGE} items, not {limit}")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0  # a size no store reported (a hand-edited row): counted, not summed


def _paged(
    catalog: Catalog,
    query: sa.Select[Any],
    table: sa.Table,
    column: str | None,
    glob: str | None,
    before: int | None,
    limit: int,
    decode: Callable[[sa.RowMapping], _T],
    text_of: Callable[[_T], str],
) -> list[_T]:
    """Newest-first keyset paging on ``id``; a glob on ``column`` is applied in the database where exact."""
    exact = True
    if glob and column is not None:
        condition, exact = _glob(catalog, table.c[column], glob)
        query = query.where(condition)
    found: list[_T] = []
    cursor = before
    with catalog.begin() as connection:
        while len(found) < limit:
            page = query if cursor is None else query.where(table.c.id < cursor)
            want = limit - len(found) if exact else _ROUND
            rows = list(connection.execute(page.order_by(table.c.id.desc()).limit(want)).mappings())
            for item in map(decode, rows):
                if exact or glob is None or fnmatch.fnmatchcase(text_of(item), glob):
                    found.append(item)
            if len(rows) < want:
                break
            cursor = int(rows[-1]["id"])
    return found[:limit]


def _glob(catalog: Catalog, column: sa.ColumnElement[Any], glob: str) -> tuple[sa.ColumnElement[bool], bool]:
    """A condition for ``column`` matching ``glob``, and whether it is exact (else it only narrows)."""
    if catalog.engine.dialect.name == "sqlite":
        return column.op("GLOB")(glob), True
    like, exact = _like(glob)
    return column.like(like, escape="\\"), exact


def _like(glob: str) -> tuple[str, bool]:
    """A LIKE pattern for ``glob`` (``*`` -> ``%``, ``?`` -> ``_``); not exact when it has ``[...]``.

    A character class becomes ``_`` (any one character) and :func:`fnmatch.fnmatchcase` decides.
    """
    out = []
    exact = True
    index = 0
    while index < len(glob):
        char = glob[index]
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char == "[" and (end := _class_end(glob, index)) is not None:
            exact = False
            out.append("_")
            index = end
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
        index += 1
    return "".join(out), exact


def _class_end(glob: str, start: int) -> int | None:
    """The index of the ``]`` closing the character class opened at ``start`` (fnmatch's rules)."""
    index = start + 1
    if index < len(glob) and glob[index] == "!":
        index += 1
    if index < len(glob) and glob[index] == "]":
        index += 1  # a ] first in the class is a member
    end = glob.find("]", index)
    return None if end == -1 else end
