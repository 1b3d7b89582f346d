"""Strays: objects no row referenced, live or archived, and no row collection released.

A store with ``strays = "report"`` reports them in scan, run, status, the run
record and ``--fail-on-findings``, and never touches them, while the objects
that expired archived rows released are still collected. Real databases (every
dialect, the catalog in its own SQLite file or in the same database) and a
real local store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.catalog import ReleasedKey, open_catalog
from reclaim.catalog.released import add_released, consume_released, released_among
from reclaim.config import CatalogConfig, ReferenceConfig
from reclaim.errors import ConfigError
from reclaim.lifecycle.strays import released_keys

from .world import DAY, World, build_schema, naive


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A real ``reclaim`` process."""
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        # this checkout's reclaim, whatever the working directory
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(reclaim.__file__).parents[1])},
        timeout=120,
        check=False,
    )


#: blob rows archived for no time at all: the run that archives them also expires them (releases)
BLOBS_RELEASED_AT_ONCE = """
[collections.blobs]
database = "app"
table = "blobs"
age_column = "created"
min_age = "7d"
retention = "0s"
"""


def _world(world: World, *, strays: str) -> None:
    world.collections = BLOBS_RELEASED_AT_ONCE
    world.store_options = f'strays = "{strays}"'
    world.write_config()
    world.put("stray/1")  # an old object no row ever referenced: a symptom of a bug for DANDI
    world.insert("blobs", {"id": 1, "blob": "blobs/0001", "created": naive(world.now - 9 * DAY)})
    world.put("blobs/0001")


def test_strays_are_reported_never_touched_while_released_objects_are_collected(world: World) -> None:
    _world(world, strays="report")
    first = reclaim.run(world.config_path)
    assert "stray/1" in world.objects()  # the guard: a stray is never quarantined
    # the blob row is archived (its object held by the archive), then expires at once: released
    assert [c.archived for c in first.collections] == [1]
    assert first.expired_rows == 1
    [scan] = first.scans
    assert (scan.strays.count, scan.candidates.count) == (1, 0)
    assert first.strays == 1
    assert first.findings == 1
    record = reclaim.runs(world.config_path, run_id=first.run_id)[0]
    assert record.counts["strays"] == {"blobs": {"objects": 1, "bytes": len(b"stray/1")}}
    assert record.counts["findings"] == 1

    second = reclaim.run(world.config_path)  # the released object is a candidate: quarantined
    [scan] = second.scans
    assert (scan.strays.count, scan.candidates.count) == (1, 1)
    assert [q.quarantined.count for q in second.quarantined] == [1]
    third = reclaim.run(world.config_path)  # grace 0: purged; the stray is still reported
    assert [p.purged.count for p in third.purged] == [1]
    assert third.strays == 1
    assert world.objects() == ["stray/1"]  # never touched, night after night

    status = reclaim.status(world.config_path)
    [store] = status.stores
    assert (store.strays, store.released) == (1, 0)  # the release was consumed by the quarantine
    assert status.findings == 1


def test_a_store_that_collects_strays_collects_them_as_before(world: World) -> None:
    _world(world, strays="collect")
    first = reclaim.run(world.config_path)
    [scan] = first.scans
    assert (scan.strays.count, scan.candidates.count, first.findings) == (0, 1, 0)
    reclaim.run(world.config_path)
    reclaim.run(world.config_path)
    assert world.objects() == []


def test_a_scan_without_a_catalog_reports_every_candidate_as_a_stray(tmp_path: Path, sqlite_url: str) -> None:
    """No catalog: no row was ever archived, so nothing was released."""
    engine = sa.create_engine(sqlite_url)
    world = World(root=tmp_path, db_url=sqlite_url, engine=engine, md=build_schema(engine))
    world.store_options = 'strays = "report"'
    world.write_config()
    (tmp_path / "catalog.sqlite").unlink()
    world.put("stray/1")
    world.put("stray/2")
    report = reclaim.scan(world.config_path, show=5)
    [scan] = report.stores
    assert (scan.strays.count, scan.candidates.count) == (2, 0)
    assert [info.key for info in scan.stray_samples] == ["stray/1", "stray/2"]
    assert report.reported == 2
    engine.dispose()


def test_strays_on_the_command_line(tmp_path: Path, sqlite_url: str) -> None:
    """scan --json and run --json say how many strays; --fail-on-findings exits 5; status shows them."""
    engine = sa.create_engine(sqlite_url)
    world = World(root=tmp_path, db_url=sqlite_url, engine=engine, md=build_schema(engine))
    _world(world, strays="report")
    config = str(world.config_path)
    scan = cli("scan", "-c", config, "--json", "--show", "3", cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    [store] = json.loads(scan.stdout)["stores"]
    assert store["strays"]["count"] == 1
    assert store["stray_policy"] == "report"
    assert [s["key"] for s in store["stray_samples"]] == ["stray/1"]
    assert cli("scan", "-c", config, "--fail-on-findings", cwd=tmp_path).returncode == 5
    ran = cli("run", "-c", config, "--fail-on-findings", cwd=tmp_path)
    assert ran.returncode == 5, ran.stderr
    assert "1 stray:" in " ".join(ran.stdout.split())
    dry = cli("run", "-c", config, "--dry-run", "--json", cwd=tmp_path)
    assert json.loads(dry.stdout)["strays"] == 1
    status = cli("status", "-c", config, cwd=tmp_path)
    assert "1 stray in the last cycle" in " ".join(status.stdout.split())
    audit = cli("runs", "-c", config, cwd=tmp_path)
    assert "reported 1 stray" in " ".join(audit.stdout.split())
    assert (tmp_path / "store" / "stray" / "1").exists()
    engine.dispose()


def test_released_keys_follow_the_sources_key_mapping() -> None:
    """Prefix sources release a directory, sidecars their keys, strip/add prefixes map the value."""
    blob = ReferenceConfig(database="d", table="t", column="c", strip_prefix="s3://b/", add_prefix="x/")
    assert released_keys("st", blob, "s3://b/k1", "col") == [ReleasedKey("st", "x/k1", "exact", "col")]
    assert released_keys("st", blob, "gs://other/k1", "col") == []  # another store's value
    zarr = ReferenceConfig(
        database="d", table="t", column="c", kind="prefix", add_prefix="zarr/", sidecars=[".manifest.json"]
    )
    assert released_keys("st", zarr, "abc/", "col") == [
        ReleasedKey("st", "zarr/abc/.manifest.json", "exact", "col"),
        ReleasedKey("st", "zarr/abc", "prefix", "col"),
    ]


def test_the_released_table_answers_a_page_at_a_time_byte_for_byte(db_url: str) -> None:
    """Set-based lookups on every dialect: exact keys, keys under a released directory, case kept."""
    catalog = open_catalog(CatalogConfig(url=db_url, table_prefix="rs_"))
    try:
        catalog.upgrade()
        table = catalog.tables.released
        with catalog.begin() as connection:
            add_released(
                connection,
                table,
                [
                    ReleasedKey("a", "blobs/K", "exact", "blobs"),
                    ReleasedKey("a", "zarr/abc", "prefix", "zarrs"),
                    ReleasedKey("b", "blobs/x", "exact", "blobs"),
                ],
            )
        page = ["blobs/K", "blobs/k", "blobs/K ", "blobs/x", "zarr/abc", "zarr/abc/0/1", "zarr/abcd/0"]
        with catalog.begin() as connection:
            assert released_among(connection, table, "a", page) == {"blobs/K", "zarr/abc", "zarr/abc/0/1"}
            assert released_among(connection, table, "b", page) == {"blobs/x"}
        with catalog.begin() as connection:
            assert consume_released(connection, table, "a", ["zarr/abc/0/1", "blobs/K"]) == 2
        with catalog.begin() as connection:
            assert released_among(connection, table, "a", page) == set()
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 1
    finally:
        with catalog.engine.begin() as connection:
            catalog.tables.metadata.drop_all(connection)
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {catalog.tables.version_table}")
        catalog.dispose()


def test_a_release_is_recorded_with_the_expiry_that_deletes_the_row(world: World) -> None:
    """Expiry writes the release in its transaction: the catalog's released table names the row's key."""
    _world(world, strays="report")
    reclaim.run(world.config_path)
    config = reclaim.load_config(world.config_path)
    catalog = open_catalog(config.catalog)
    try:
        table = catalog.tables.released
        with catalog.begin() as connection:
            rows = connection.execute(sa.select(table.c.store, table.c.key, table.c.kind, table.c.collection))
            assert [tuple(r) for r in rows] == [("blobs", "blobs/0001", "exact", "blobs")]
            [released_at] = connection.execute(sa.select(table.c.released_at)).scalars()
        assert released_at <= datetime.now(UTC)
    finally:
        catalog.dispose()


def test_a_malformed_strays_setting_is_a_config_error(world: World) -> None:
    world.store_options = 'strays = "delete"'
    with pytest.raises(ConfigError) as caught:
        world.write_config()
    assert caught.value.field == "stores.blobs.strays"
