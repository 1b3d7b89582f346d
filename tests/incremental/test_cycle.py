"""The incremental cycle: only the queued keys, re-checked exactly, through the normal quarantine.

On PostgreSQL, MariaDB and SQLite: after a full scan, rows are deleted and
updated; the incremental cycle quarantines exactly the keys whose last
reference went (a key still referenced by another row stays, a young object
stays queued, a stray is left to the full scan), dequeues what it processed,
and refuses without triggers, without a recent full scan, or above
max_fraction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import reclaim
from reclaim import api
from reclaim.api.incremental import install
from reclaim.catalog import open_catalog

from .world import STRIP, World

KEYS = ["a/1", "a/2", "a/3", "a/4", "a/5", "shared", "stray"]


def _setup(world: World) -> None:
    """Objects and rows; a full scan (which quarantines the stray); then the churn."""
    for key in KEYS:
        world.put(key)
    world.sql(
        "INSERT INTO assets (id, blob_key) VALUES "
        "(1, 'a/1'), (2, 'a/2'), (3, 'a/3'), (4, 'shared'), (5, 'a/5')"
    )
    world.sql(f"INSERT INTO uploads (id, path) VALUES (1, '{STRIP}shared'), (2, '{STRIP}a/4')")
    install(world.config_path)
    full = api.run(world.config_path)
    assert [q.quarantined.count for q in full.quarantined] == [1]  # the stray
    world.put("late-stray")  # no row ever named it: only a full scan can find it
    world.put("a/5", young=True)  # rewritten just now
    world.sql("DELETE FROM assets WHERE id IN (1, 4, 5)")  # a/1 and a/5 go; 'shared' is still an upload's
    world.sql("UPDATE assets SET blob_key = 'a/4' WHERE id = 3")  # a/3 goes; a/4 gains a second reference
    world.sql("DELETE FROM uploads WHERE id = 2")  # a/4 keeps the asset's reference


def test_the_cycle_quarantines_exactly_the_keys_whose_last_reference_went(world: World) -> None:
    _setup(world)
    assert sorted(world.queued()) == ["a/1", "a/3", "a/4", "a/5", "shared"]

    preview = api.run(world.config_path, incremental=True, dry_run=True)
    [seen] = preview.incremental or []
    assert (seen.queued, seen.candidates.count, seen.referenced, seen.young.count) == (5, 2, 2, 1)

    report = api.run(world.config_path, incremental=True)
    [quarantined] = report.quarantined
    assert quarantined.quarantined.count == 2
    states = world.states([*KEYS, "late-stray"])
    assert states == {
        "a/1": "quarantined",
        "a/2": "-",
        "a/3": "quarantined",
        "a/4": "-",
        "a/5": "-",
        "shared": "-",
        "stray": "quarantined",
        "late-stray": "-",
    }
    for key in ("a/2", "a/4", "a/5", "shared", "late-stray"):
        assert world.there(key), key
    assert world.queued() == ["a/5"]  # young: looked at again by a later cycle
    assert report.dequeued == {"main": 4}
    record = api.runs(world.config_path, run_id=report.run_id)[0]
    assert record.options["incremental"] is True
    assert "listed" not in record.counts  # an incremental run is never taken for a full scan

    again = api.run(world.config_path, incremental=True)  # nothing new: the young key is still young
    assert [q.quarantined.count for q in again.quarantined] == [0]
    assert world.queued() == ["a/5"]


def test_a_reference_that_comes_back_before_the_purge_restores_the_object(world: World) -> None:
    # the lifecycle is the usual one: grace, then the purge re-checks
    _setup(world)
    api.run(world.config_path, incremental=True)
    world.sql("INSERT INTO assets (id, blob_key) VALUES (9, 'a/1')")
    purged = api.purge(world.config_path, older_than=timedelta(0))
    assert world.there("a/1")
    assert world.states(["a/1", "a/3"]) == {"a/1": "restored", "a/3": "purged"}
    assert purged.run_id is not None


def test_a_row_queued_while_the_cycle_ran_stays_queued(world: World) -> None:
    # dequeuing is by id: a key queued again after the cycle read it is looked at next time
    _setup(world)
    plan_seen: list[int] = []
    from reclaim.lifecycle import Collector

    with Collector.open(world.config_path, command="run", options={}, dry_run=False) as c:
        step = c.plan_incremental()
        plan_seen.append(step.scans[0].queued)
        world.sql("DELETE FROM assets WHERE id = 2")  # queued after the plan read the queue
        step.execute()
    assert plan_seen == [5]
    assert sorted(world.queued()) == ["a/2", "a/5"]


def test_the_cycle_refuses_without_a_recent_full_scan(world: World) -> None:
    install(world.config_path)
    with pytest.raises(reclaim.UnsafeToProceed, match="no full scan succeeded within full_scan_every"):
        api.run(world.config_path, incremental=True)
    api.run(world.config_path)
    api.run(world.config_path, incremental=True)  # accepted now
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        runs = catalog.tables.runs
        with catalog.begin() as conn:
            conn.execute(runs.update().values(started_at=datetime.now(UTC) - timedelta(days=8)))
    finally:
        catalog.dispose()
    with pytest.raises(reclaim.UnsafeToProceed, match="no full scan succeeded"):
        api.run(world.config_path, incremental=True)


def test_the_cycle_refuses_a_source_without_triggers(world: World) -> None:
    api.run(world.config_path)
    with pytest.raises(reclaim.UnsafeToProceed, match="assets: no triggers installed; uploads: no triggers"):
        api.run(world.config_path, incremental=True)
    install(world.config_path)
    text = world.config_path.read_text().replace(f'strip_prefix = "{STRIP}"', 'strip_prefix = "s3://new/"')
    world.config_path.write_text(text)
    with pytest.raises(reclaim.UnsafeToProceed, match="uploads: its triggers were installed for another"):
        api.run(world.config_path, incremental=True)


def test_a_mass_delete_stops_at_max_fraction(sqlite_url: str, build: Callable[..., World]) -> None:
    world = build(sqlite_url)
    text = world.config_path.read_text().replace("max_fraction = 1.0", "max_fraction = 0.5")
    world.config_path.write_text(text)
    for i in range(10):
        world.put(f"m/{i}")
    world.sql("INSERT INTO assets (id, blob_key) VALUES " + ", ".join(f"({i}, 'm/{i}')" for i in range(10)))
    install(world.config_path)
    api.run(world.config_path)
    world.sql("DELETE FROM assets")
    with pytest.raises(reclaim.UnsafeToProceed, match=r"above max_fraction 50\.0%"):
        api.run(world.config_path, incremental=True)
    assert all(world.there(f"m/{i}") for i in range(10))
    assert len(world.queued()) == 10  # nothing was dequeued
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM assets")).scalar_one() == 0


def test_a_reference_made_between_plan_and_execute_keeps_the_object(world: World) -> None:
    # the quarantine re-checks after recording its intent, as for a full scan's candidates
    _setup(world)
    from reclaim.lifecycle import Collector

    with Collector.open(world.config_path, command="run", options={}, dry_run=False) as c:
        step = c.plan_incremental()
        assert step.scans[0].candidates.count == 2
        world.sql("INSERT INTO uploads (id, path) VALUES (7, :p)", p=f"{STRIP}a/1")
        outcome = step.execute()
    assert outcome.quarantined[0].referenced_again == 1
    assert world.there("a/1")
    assert world.states(["a/1", "a/3"]) == {"a/1": "restored", "a/3": "quarantined"}
