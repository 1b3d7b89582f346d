"""Per store, day and command: the objects and bytes that finished runs quarantined, purged and restored.

The history chart (bytes purged per day, quarantined bytes walked back day by
day) and the metrics' purged and restored counters sum what runs did; read
from the runs' JSON counts, that is a pass over every run of the period (the
first render of a 90-day chart over 10,000 runs missed 200 ms on it alone).
Instead the run writer adds a run's figures to the row of (store, the UTC day
the run started, its command) in *the transaction that finishes the run*
(:func:`add_run`), so the rows commit with the counts they sum, or not at all.
A run's counts are written once, when it finishes, and never change, so the
rows equal a recount of the audit log at every moment (:func:`counted`).

Exact under concurrent writers, as :mod:`reclaim.catalog._totals`: each change
is an upsert that adds in the database (``purged_bytes = purged_bytes + :d``),
applied in store order. Readers sum a bounded number of rows: days x stores x
commands, however many runs there were.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

import sqlalchemy as sa

from reclaim.catalog.tables import RUN_DAY_FIGURES, CatalogTables

__all__ = ["add_run", "counted", "figures_of", "kept", "per_day", "per_store", "recount"]

#: where each figure sits in a run's counts: the section (a path of keys) that holds a result per
#: store, and the figure's path below the store, in the order of
#: :data:`~reclaim.catalog.tables.RUN_DAY_FIGURES`; a figure given by several sections is their sum
#: (the objects a row's expiry purged, ``objects = "follow"``, are purged as much as a purge's)
_PATHS: Final = (
    (0, ("quarantined",), ("quarantined", "count")),
    (1, ("quarantined",), ("quarantined", "bytes")),
    (2, ("purged",), ("purged", "count")),
    (3, ("purged",), ("purged", "bytes")),
    (2, ("expired", "objects"), ("purged", "count")),
    (3, ("expired", "objects"), ("purged", "bytes")),
    (4, ("restored",), ("restored",)),
    (5, ("restored",), ("restored_bytes",)),
)

Figures = list[int]
"""The six figures of :data:`~reclaim.catalog.tables.RUN_DAY_FIGURES`."""


def figures_of(counts: Mapping[str, Any]) -> dict[str, Figures]:
    """Per store named in ``counts``: its six figures (a figure the counts lack, or cannot be one, is 0)."""
    found: dict[str, Figures] = {}
    for position, section, path in _PATHS:
        part: Any = counts
        for step in section:
            part = part.get(step) if isinstance(part, dict) else None
        if not isinstance(part, dict):
            continue
        for store, value in part.items():
            for step in path:
                value = value.get(step) if isinstance(value, dict) else None
            found.setdefault(str(store), [0] * len(RUN_DAY_FIGURES))[position] += _number(value)
    return found


def add_run(connection: sa.Connection, tables: CatalogTables, run_id: int, counts_json: str) -> None:
    """Add the figures of run ``run_id`` (its stored counts, ``counts_json``) in ``connection``'s transaction.

    Called once per run, by the statement that finishes it; a run that no
    longer exists adds nothing.
    """
    runs = tables.runs
    found = connection.execute(
        sa.select(runs.c.command, runs.c.started_at).where(runs.c.id == run_id)
    ).first()
    if found is None:
        return
    figures = figures_of(json.loads(counts_json))
    day = _day(found.started_at)
    for store, values in sorted(figures.items()):
        if any(values):
            connection.execute(
                _upsert(connection.dialect.name, tables.run_days, store, day, found.command, values)
            )


def _upsert(dialect: str, table: sa.Table, store: str, day: datetime, command: str, values: Figures) -> Any:
    row = {"store": store, "day": day, "command": command, **dict(zip(RUN_DAY_FIGURES, values, strict=True))}
    grow = {name: table.c[name] + value for name, value in zip(RUN_DAY_FIGURES, values, strict=True)}
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Any = postgresql.insert(table).values(**row)
        return statement.on_conflict_do_update(index_elements=["store", "day", "command"], set_=grow)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(table).values(**row)
        return statement.on_conflict_do_update(index_elements=["store", "day", "command"], set_=grow)
    from sqlalchemy.dialects import mysql

    return mysql.insert(table).values(**row).on_duplicate_key_update(**grow)


def per_day(
    connection: sa.Connection,
    table: sa.Table,
    stores: Collection[str],
    commands: Collection[str],
    first: date,
) -> dict[tuple[str, date], Figures]:
    """``{(store, day): figures}`` of ``commands`` from day ``first`` on (days without runs are absent)."""
    query = (
        sa.select(table.c.store, table.c.day, *(sa.func.sum(table.c[n]) for n in RUN_DAY_FIGURES))
        .where(
            table.c.store.in_(list(stores)),
            table.c.day >= datetime(first.year, first.month, first.day, tzinfo=UTC),
            table.c.command.in_(list(commands)),
        )
        .group_by(table.c.store, table.c.day)
    )
    found: dict[tuple[str, date], Figures] = {}
    for row in connection.execute(query):
        _sum_into(found.setdefault((str(row[0]), _as_date(row[1])), [0] * len(RUN_DAY_FIGURES)), row[2:])
    return found


def per_store(connection: sa.Connection, table: sa.Table, stores: Collection[str]) -> dict[str, Figures]:
    """``{store: figures}`` over the whole audit log, every command (stores without runs are absent)."""
    query = (
        sa.select(table.c.store, *(sa.func.sum(table.c[n]) for n in RUN_DAY_FIGURES))
        .where(table.c.store.in_(list(stores)))
        .group_by(table.c.store)
    )
    return {str(row[0]): [_number(v) for v in row[1:]] for row in connection.execute(query)}


def counted(connection: sa.Connection, tables: CatalogTables) -> dict[tuple[str, date, str], Figures]:
    """The rows as the audit log gives them now: ``{(store, day, command): figures}``, none all zero."""
    runs = tables.runs
    found: dict[tuple[str, date, str], Figures] = {}
    query = sa.select(runs.c.command, runs.c.started_at, runs.c.counts).where(runs.c.status != "running")
    for command, started_at, counts in connection.execute(query.execution_options(yield_per=1_000)):
        try:
            decoded = json.loads(counts)
        except ValueError:
            continue  # a hand-edited run the writer never added: it adds nothing here either
        if not isinstance(decoded, dict):
            continue
        for store, values in figures_of(decoded).items():
            day = _day(started_at).date()
            slot = found.setdefault((store, day, str(command)), [0] * len(RUN_DAY_FIGURES))
            for position, value in enumerate(values):
                slot[position] += value
    return {key: values for key, values in found.items() if any(values)}


def kept(connection: sa.Connection, table: sa.Table) -> dict[tuple[str, date, str], Figures]:
    """The rows as kept, without the ones that are all zero."""
    found: dict[tuple[str, date, str], Figures] = {}
    for row in connection.execute(sa.select(table)):
        values = [row._mapping[n] for n in RUN_DAY_FIGURES]
        key = (str(row.store), _as_date(row.day), str(row.command))
        _sum_into(found.setdefault(key, [0] * len(RUN_DAY_FIGURES)), values)
    return {key: values for key, values in found.items() if any(values)}


def _sum_into(slot: Figures, values: Any) -> None:
    """Add ``values`` to ``slot`` (rows of one day may differ by a time shift that was not whole days)."""
    for position, value in enumerate(values):
        slot[position] += _number(value)


def recount(connection: sa.Connection, tables: CatalogTables) -> None:
    """Replace every row with a count of the audit log (for a catalog filled in bulk, or repaired by hand)."""
    connection.execute(tables.run_days.delete())
    rows = [
        {
            "store": store,
            "day": datetime(day.year, day.month, day.day, tzinfo=UTC),
            "command": command,
            **dict(zip(RUN_DAY_FIGURES, values, strict=True)),
        }
        for (store, day, command), values in sorted(counted(connection, tables).items())
    ]
    for start in range(0, len(rows), 1_000):
        connection.execute(tables.run_days.insert(), rows[start : start + 1_000])


def _day(moment: datetime) -> datetime:
    """The start (UTC midnight) of the UTC day of a run's start, as the rows key it."""
    day = moment.date() if moment.tzinfo is None else moment.astimezone(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _as_date(value: Any) -> date:
    """The UTC day of a row's ``day`` (a timestamp; shifted by whole days it stays a midnight)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo is not None else value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _number(value: Any) -> int:
    """A figure: a number, truncated (a JSON number, or a database's SUM); anything else is 0."""
    if value is None or isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0  # a hand-edited figure (text, NaN): counted as nothing, as the charts always did
