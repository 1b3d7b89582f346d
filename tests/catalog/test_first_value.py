"""The overview's oldest, next due and newest end: the right values, each the first entry of an index."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from reclaim.catalog import Catalog, Intent, Journal, State, browse

from .helpers import open_tracked

#: per table, the indexes a first value may be read from (the overview's summaries and change probe)
INDEXES = {
    "reclaim_objects": {"reclaim_objects_oldest", "reclaim_objects_due"},
    "reclaim_rows": {"reclaim_rows_summary", "reclaim_rows_next_expiry"},
    "reclaim_runs": {"reclaim_runs_finished", "PRIMARY KEY"},
}


def _fill(catalog: Catalog) -> dict[str, tuple[datetime, datetime]]:
    """Entries of two stores in every state; per store, the oldest QUARANTINED entry and next due."""
    journal = Journal(catalog)
    now = datetime.now(UTC)
    expected = {}
    for n, store in enumerate(("blobs", "zarr")):
        recorded = journal.record_intents(
            store, [Intent(f"{store}/{i}", size=i) for i in range(30)], mode="mark", run_id=1
        )
        entries = [e for e in recorded if e is not None]
        moved = []
        for i, entry in enumerate(entries):
            due = now + timedelta(days=7 + n, hours=-i)  # the newest entries are due first
            moved += [
                e for e in journal.transition_many([entry], State.QUARANTINED, run_id=1, due_at=due) if e
            ]
        purging = [e for e in journal.transition_many(moved[-10:], State.PURGING, run_id=2) if e]
        journal.transition_many(purging, State.PURGED, run_id=2)  # the soonest due: no longer quarantined
        standing = moved[:-10]
        expected[store] = (
            min(e.created_at for e in standing),
            min(e.due_at for e in standing if e.due_at is not None),
        )
    return expected


@contextmanager
def _statements(catalog: Catalog) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.startswith("SELECT") and any(w in statement for w in ("LIMIT", "min(", "max(")):
            seen.append((statement, parameters))

    sa.event.listen(catalog.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(catalog.engine, "before_cursor_execute", record)


def _plans(catalog: Catalog, reads: Callable[[], object]) -> list[str]:
    """The query plan lines (SQLite) of the first-value statements ``reads`` runs."""
    with _statements(catalog) as seen:
        reads()
    assert seen
    lines = []
    with catalog.engine.connect() as connection:
        for statement, parameters in seen:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            lines += [str(row[3]) for row in plan]
    return lines


def _every_read_is_an_index_lookup(lines: list[str]) -> None:
    assert not [line for line in lines if "TEMP B-TREE" in line], lines
    for table, indexes in INDEXES.items():
        reads = [line for line in lines if f" {table}" in line]
        for line in reads:
            # a min over a range shows as a search of an index that lacks the column (not covering)
            assert line == f"SEARCH {table}" or any(
                line.startswith(f"SEARCH {table} USING COVERING INDEX {index} ") for index in indexes
            ), line


def _reads(catalog: Catalog) -> None:
    for store in ("blobs", "zarr"):
        Journal(catalog).summary(store)
    catalog.archive.summary("assets")
    browse.change_probe(catalog)


def test_the_oldest_and_next_due_are_those_of_the_quarantined_entries(catalog: Catalog) -> None:
    expected = _fill(catalog)
    for store, (oldest, next_due) in expected.items():
        summary = Journal(catalog).summary(store)
        assert (summary.oldest, summary.next_due) == (oldest, next_due)
    assert Journal(catalog).summary("none").oldest is None


def test_the_change_probe_sees_a_run_finish(catalog: Catalog) -> None:
    first = catalog.start_run("run", {}, dry_run=False)
    catalog.start_run("run", {}, dry_run=False)
    before = browse.change_probe(catalog)
    catalog.finish_run(first, "succeeded", {})  # not the newest run: only its end shows
    assert browse.change_probe(catalog) != before


def test_on_sqlite_each_is_the_first_entry_of_an_index(sqlite_url: str, catalogs: list[Catalog]) -> None:
    catalog = open_tracked(catalogs, sqlite_url)
    catalog.upgrade()
    _fill(catalog)
    _every_read_is_an_index_lookup(_plans(catalog, lambda: _reads(catalog)))


def test_an_analyzed_catalog_gets_statistics_of_the_new_indexes(
    sqlite_url: str, catalogs: list[Catalog]
) -> None:
    # statistics on 0014's indexes but none on 0015's made SQLite read whole ranges through them
    catalog = open_tracked(catalogs, sqlite_url)
    with catalog.engine.begin() as connection:
        command.upgrade(catalog._alembic_config(connection), "0014")
    _fill(catalog)
    catalog.finish_run(catalog.start_run("run", {}, dry_run=False), "succeeded", {})
    with catalog.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    catalog.upgrade()
    with catalog.engine.connect() as connection:
        analyzed = {row[0] for row in connection.exec_driver_sql("SELECT idx FROM sqlite_stat1")}
    # (ANALYZE records nothing for an empty table: the archive has no rows here)
    assert {"reclaim_objects_oldest", "reclaim_runs_finished"} <= analyzed
    assert "reclaim_objects_summary" not in analyzed
    _every_read_is_an_index_lookup(_plans(catalog, lambda: _reads(catalog)))


@pytest.mark.parametrize("analyzed", [False, True])
def test_a_catalog_never_analyzed_keeps_no_statistics(
    sqlite_url: str, catalogs: list[Catalog], analyzed: bool
) -> None:
    catalog = open_tracked(catalogs, sqlite_url)
    with catalog.engine.begin() as connection:
        command.upgrade(catalog._alembic_config(connection), "0014")
        if analyzed:
            connection.exec_driver_sql("ANALYZE")
    catalog.upgrade()
    with catalog.engine.connect() as connection:
        kept = connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
    assert (kept is not None) == analyzed
