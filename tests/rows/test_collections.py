"""Row collections end to end on SQLite, PostgreSQL and MariaDB: collect, archive, hold, restore, expire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.api import Session
from reclaim.catalog import RowState, open_catalog
from reclaim.lifecycle.rows import collect_collection
from reclaim.references import referenced_now

from .world import ASSETS, BLOBS, DAY, UPLOADS, World, naive


def _archive(world: World) -> list[tuple[str, str, str]]:
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        return [(r.collection, r.pk, r.state.value) for r in catalog.archive.select(states=tuple(RowState))]
    finally:
        catalog.dispose()


def test_collects_only_old_unreferenced_rows_and_archives_them(world: World) -> None:
    world.collections = ASSETS
    world.insert("versions", {"id": 1, "name": "draft"})
    world.asset(1, 101, age=40 * DAY)  # in a version: kept
    world.asset(2, 102, age=40 * DAY)  # in no version, old: collected
    world.asset(3, 103, age=10 * DAY)  # in no version, young: kept
    world.asset(4, None, age=400 * DAY)  # in no version, no blob: collected
    world.link(1, 1)
    world.write_config()

    scan = reclaim.scan(world.config_path, collections=["assets"], show=5)
    assert [(c.collection, c.rows, c.candidates, c.samples) for c in scan.collections] == [
        ("assets", 4, 2, ['["2"]', '["4"]'])
    ]

    report = reclaim.run(world.config_path)
    (result,) = report.collections
    assert (result.archived, result.skipped) == (2, 0)
    assert world.ids("assets") == [1, 3]
    archived = _archive(world)
    assert sorted(archived) == [("assets", '["2"]', "ARCHIVED"), ("assets", '["4"]', "ARCHIVED")]
    # the archive keeps the whole row, types included
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        (row,) = catalog.archive.select(collection="assets", pk='["2"]')
    finally:
        catalog.dispose()
    data = row.data
    assert data["path"] == "sub-2/file.nwb"
    assert data["blob_id"] == 102
    assert data["size"] == {"$decimal": "12.50"}
    assert "$datetime" in data["modified"]
    # the audit log has the per-collection counts
    (record,) = [r for r in reclaim.runs(world.config_path) if r.id == report.run_id]
    assert record.counts["collections"]["assets"]["archived"] == 2


def test_an_archived_row_keeps_its_blob_row_while_restorable(world: World) -> None:
    world.collections = ASSETS + BLOBS
    world.insert("versions", {"id": 1, "name": "draft"})
    world.asset(1, 101, age=40 * DAY)
    world.asset(2, 102, age=40 * DAY)
    world.link(1, 1)
    world.write_config()

    first = reclaim.run(world.config_path)
    assert [(c.collection, c.archived) for c in first.collections] == [("assets", 1), ("blobs", 0)]
    blobs_result = next(c for c in first.collections if c.collection == "blobs")
    assert blobs_result.held == 1  # blob 102 is unreferenced now, but the archived asset 2 holds it
    assert world.ids("blobs") == [101, 102]
    assert world.objects() == ["blobs/0101", "blobs/0102"]  # the live blob rows keep their objects

    # once the asset's archive expires nothing holds blob 102 any more
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        with catalog.begin() as conn:
            conn.execute(catalog.tables.rows.update().values(expires_at=world.now - DAY))
    finally:
        catalog.dispose()
    second = reclaim.run(world.config_path)
    assert second.expired_rows == 1
    third = reclaim.run(world.config_path)
    assert [(c.collection, c.archived) for c in third.collections] == [("assets", 0), ("blobs", 1)]
    assert world.ids("blobs") == [101]
    # and the blob row, archived now, keeps its object in turn (invariant 6 for objects)
    assert world.objects() == ["blobs/0101", "blobs/0102"]
    scan = reclaim.scan(world.config_path, stores=["blobs"])
    assert scan.stores[0].candidates.count == 0
    assert any(s.name.endswith("(archived rows)") and s.covers == 1 for s in scan.stores[0].sources)


def test_an_archived_upload_keeps_its_object_and_the_purge_recheck_sees_it(world: World) -> None:
    world.collections = UPLOADS
    world.insert("uploads", {"id": 1, "blob": "uploads/1", "created": naive(world.now - 9 * DAY)})
    world.put("uploads/1")
    world.write_config()
    first = reclaim.run(world.config_path)
    assert [c.archived for c in first.collections] == [1]
    assert world.ids("uploads") == []
    assert world.objects() == ["uploads/1"]  # the archived upload row still references it
    assert [q.quarantined.count for q in first.quarantined] == [0]
    # the purge re-check (a point lookup) consults the archive too
    config = reclaim.load_config(world.config_path)
    catalog = open_catalog(config.catalog)
    try:
        with Session(config) as session:
            session.attach(catalog.archive, catalog.engine)
            sources = session.sources("blobs")
            assert referenced_now(sources, ["uploads/1", "uploads/2"]) == {"uploads/1"}
    finally:
        catalog.dispose()
    # restore the row: it references its object as before
    reclaim.restore_rows(world.config_path, collection="uploads", pks=["1"])
    assert world.ids("uploads") == [1]
    assert reclaim.scan(world.config_path, stores=["blobs"]).stores[0].candidates.count == 0


def test_restore_brings_back_the_asset_with_its_archived_blob_row(world: World) -> None:
    world.collections = ASSETS + BLOBS.replace('min_age = "7d"', 'min_age = "1d"')
    world.insert("versions", {"id": 1, "name": "draft"})
    world.asset(1, 101, age=40 * DAY)
    world.asset(2, 102, age=40 * DAY)
    world.link(1, 1)
    world.write_config()

    reclaim.run(world.config_path)
    assert world.ids("assets") == [1]
    assert world.ids("blobs") == [101, 102]  # held by the archived asset
    assert "blobs/0102" in world.objects()  # and so is its object: the blob row is live

    restored = reclaim.restore_rows(world.config_path, collection="assets", pks=["2"])
    assert restored.result.restored == {"assets": 1}
    assert world.ids("assets") == [1, 2]
    with world.engine.connect() as conn:
        row = conn.execute(sa.select(world.t("assets")).where(world.t("assets").c.id == 2)).mappings().one()
    assert row["path"] == "sub-2/file.nwb"
    assert row["blob_id"] == 102
    assert str(row["size"]) == "12.50"
    meta = row["meta"] if isinstance(row["meta"], dict) else json.loads(row["meta"])
    assert meta == {"schema": "dandi", "n": 2, "tags": ["a", "b"]}
    assert naive(world.now - 40 * DAY) - row["modified"] < timedelta(seconds=1)
    assert ("assets", '["2"]', "RESTORED") in _archive(world)


def test_a_restore_that_collides_is_refused_and_restores_nothing(world: World) -> None:
    world.collections = ASSETS
    world.asset(1, None, age=40 * DAY)
    world.asset(2, None, age=40 * DAY)
    world.write_config()
    run = reclaim.run(world.config_path)
    assert world.ids("assets") == []
    world.asset(2, None, age=1 * DAY)  # the key is taken again
    with pytest.raises(reclaim.RowConflict, match=r"collection 'assets', primary key \[\"2\"\]"):
        reclaim.restore_rows(world.config_path, run_id=run.run_id)
    assert world.ids("assets") == [2]  # asset 1 was not restored either
    assert sorted(s for _c, _p, s in _archive(world)) == ["ARCHIVED", "ARCHIVED"]
    # by primary key, the free one comes back
    reclaim.restore_rows(world.config_path, collection="assets", pks=["1"])
    assert world.ids("assets") == [1, 2]


def test_report_only_collections_are_counted_and_never_touched(world: World) -> None:
    world.collections = UPLOADS + '\naction = "report"\n'
    world.insert("uploads", {"id": 1, "blob": "uploads/1", "created": naive(world.now - 9 * DAY)})
    world.insert("uploads", {"id": 2, "blob": "uploads/2", "created": naive(world.now - 1 * DAY)})
    world.write_config()
    report = reclaim.run(world.config_path, show=3)
    assert report.findings == 1
    assert [(s.collection, s.candidates, s.samples) for s in report.collection_scans] == [
        ("uploads", 1, ['["1"]'])
    ]
    assert world.ids("uploads") == [1, 2]
    (record,) = [r for r in reclaim.runs(world.config_path) if r.id == report.run_id]
    assert record.counts["reported"]["uploads"]["rows"] == 1
    status = reclaim.status(world.config_path)
    assert status.findings == 1
    assert [(c.collection, c.findings) for c in status.collections] == [("uploads", 1)]


def test_archived_rows_expire_after_their_retention(world: World) -> None:
    world.collections = UPLOADS + '\nretention = "0s"\n'
    world.insert("uploads", {"id": 1, "blob": "uploads/1", "created": naive(world.now - 9 * DAY)})
    world.write_config()
    first = reclaim.run(world.config_path)
    assert [c.archived for c in first.collections] == [1]
    # retention 0: expired by the same cycle's last step
    assert first.expired_rows == 1
    assert _archive(world) == []


def test_without_returning_the_deleted_rows_are_found_by_a_reselect(world: World) -> None:
    """MySQL has no DELETE ... RETURNING: the rows still there after the delete are the ones it skipped."""
    world.collections = ASSETS
    world.insert("versions", {"id": 1, "name": "v"})
    for asset in (1, 2, 3):
        world.asset(asset, None, age=40 * DAY)
    world.link(1, 2)
    config = world.write_config()
    catalog = open_catalog(config.catalog)
    try:
        with Session(config) as session:
            session.attach(catalog.archive, catalog.engine)
            ct = session.collection("assets")
            ct.engine.dialect.delete_returning = False  # the MySQL code path, on this database
            run_id = catalog.start_run("test", {}, dry_run=False)
            result = collect_collection(
                ct,
                catalog.archive,
                run_id=run_id,
                now=datetime.now(UTC),
                shared=session.shares_catalog("assets"),
                check_lease=lambda: None,
                show=5,
            )
        assert (result.archived, result.samples) == (2, ['["1"]', '["3"]'])
        assert world.ids("assets") == [2]
        assert sorted(r.pk for r in catalog.archive.select(collection="assets")) == ['["1"]', '["3"]']
    finally:
        catalog.dispose()
