"""Objects follow their rows (``objects = "follow"``) on SQLite, PostgreSQL and MariaDB.

An archived upload row takes its object into quarantine that night (moved to
the trash, or marked); an object another row references, live or archived,
stays; restoring the row brings both back byte-identical; the row's expiry
purges its object (re-checked) and then the row; and while the row can be
restored the normal purge never takes its object, whatever the store's grace
(invariant 6).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.catalog import Journal, State, open_catalog
from reclaim.errors import ConfigError

from .test_cli_rows import cli
from .world import DAY, World, build_schema, naive

FOLLOW = """
[collections.uploads]
database = "app"
table = "uploads"
age_column = "created"
min_age = "7d"
retention = "30d"
objects = "follow"
"""


KEEP_BLOBS = """
[collections.blobs]
database = "app"
table = "blobs"
age_column = "created"
min_age = "7d"
"""


def _upload(world: World, upload_id: int, key: str, *, age: float = 9) -> None:
    world.insert("uploads", {"id": upload_id, "blob": key, "created": naive(world.now - age * DAY)})
    world.put(key)


def _blob(world: World, blob_id: int, key: str) -> None:
    world.insert("blobs", {"id": blob_id, "blob": key, "created": naive(world.now - 40 * DAY)})


def _trash(world: World, key: str) -> Path:
    return world.store_dir / "_trash" / key


def _entries(world: World, key: str) -> list[State]:
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        journal = Journal(catalog)
        return [e.state for e in journal.select(store="blobs", states=tuple(State), keys=[key])]
    finally:
        catalog.dispose()


def _expire_archive(world: World) -> None:
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        with catalog.begin() as conn:
            conn.execute(catalog.tables.rows.update().values(expires_at=world.now - DAY))
    finally:
        catalog.dispose()


def _links(world: World) -> int:
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        return catalog.archive.links.count()
    finally:
        catalog.dispose()


def test_an_archived_row_takes_its_object_and_a_restore_brings_both_back(world: World) -> None:
    world.collections = FOLLOW
    _upload(world, 1, "uploads/1")  # old, unused: goes with its object
    _upload(world, 2, "uploads/2", age=1)  # young: stays, with its object
    _upload(world, 3, "shared/x")  # old, but a live blob row references its object
    _blob(world, 1, "shared/x")
    world.write_config()
    before = (world.store_dir / "uploads/1").read_bytes()

    report = reclaim.run(world.config_path)
    (result,) = report.collections
    assert (result.archived, result.objects, result.objects_kept) == (2, 1, 1)
    assert result.objects_bytes == len(before)
    assert world.ids("uploads") == [2]
    # not served from that night on: in the trash, the journal holding it
    assert world.objects() == ["shared/x", "uploads/2"]
    assert _trash(world, "uploads/1").read_bytes() == before
    assert _entries(world, "uploads/1") == [State.QUARANTINED]
    assert _entries(world, "shared/x") == []
    (record,) = [r for r in reclaim.runs(world.config_path) if r.id == report.run_id]
    assert record.counts["collections"]["uploads"]["objects"] == 1
    assert record.counts["collections"]["uploads"]["objects_kept"] == 1

    restored = reclaim.restore_rows(world.config_path, collection="uploads", pks=["1"])
    assert restored.result.restored == {"uploads": 1}
    assert restored.result.objects == {"blobs": 1}
    assert world.ids("uploads") == [1, 2]
    assert (world.store_dir / "uploads/1").read_bytes() == before
    assert not _trash(world, "uploads/1").exists()
    assert _entries(world, "uploads/1") == [State.RESTORED]
    assert _links(world) == 0


def test_a_row_whose_object_was_never_written_counts_no_object_kept(world: World) -> None:
    # an upload that never finished: its key holds nothing, so nothing is quarantined or left live
    world.collections = FOLLOW
    world.insert("uploads", {"id": 1, "blob": "uploads/never", "created": naive(world.now - 9 * DAY)})
    world.write_config()
    report = reclaim.run(world.config_path)
    (result,) = report.collections
    assert (result.archived, result.objects, result.objects_kept) == (1, 0, 0)
    (record,) = [r for r in reclaim.runs(world.config_path) if r.id == report.run_id]
    assert record.counts["collections"]["uploads"]["objects_kept"] == 0
    assert _entries(world, "uploads/never") == []


def test_the_expiry_of_the_row_purges_its_object_then_the_row(world: World) -> None:
    world.collections = FOLLOW
    _upload(world, 1, "uploads/1")
    world.write_config()
    reclaim.run(world.config_path)
    assert _trash(world, "uploads/1").exists()

    _expire_archive(world)
    report = reclaim.run(world.config_path)
    assert report.expired_rows == 1
    assert report.expired_objects["blobs"].purged.count == 1
    assert not _trash(world, "uploads/1").exists()
    assert "uploads/1" not in world.objects()
    assert _entries(world, "uploads/1") == [State.PURGED]
    assert _links(world) == 0


def test_while_the_row_is_restorable_its_object_is_never_purged_whatever_the_grace(world: World) -> None:
    # grace 0s, retention 30 days: the normal purge would take the object at the next cycle
    world.collections = FOLLOW
    _upload(world, 1, "uploads/1")
    world.write_config()
    before = (world.store_dir / "uploads/1").read_bytes()
    reclaim.run(world.config_path)
    for _ in range(2):
        nightly = reclaim.run(world.config_path)
        assert [p.due for p in nightly.purged] == [0]
        assert reclaim.purge(world.config_path).purged[0].due == 0  # nor an explicit purge
    assert _entries(world, "uploads/1") == [State.QUARANTINED]
    assert "uploads/1" not in world.objects()  # still not served
    reclaim.restore_rows(world.config_path, collection="uploads", pks=["1"])
    assert (world.store_dir / "uploads/1").read_bytes() == before


def test_an_object_another_archived_row_references_stays_live(world: World) -> None:
    # blobs is a "keep" collection: its archived row keeps its object referenced (and served)
    world.collections = FOLLOW + KEEP_BLOBS
    _upload(world, 1, "shared/y", age=1)  # young tonight
    _blob(world, 1, "shared/y")
    world.write_config()
    first = reclaim.run(world.config_path)
    assert [(c.collection, c.archived) for c in first.collections] == [("uploads", 0), ("blobs", 1)]
    with world.engine.begin() as conn:  # a week later, the upload is old and unused too
        conn.execute(world.t("uploads").update().values(created=naive(world.now - 9 * DAY)))
    second = reclaim.run(world.config_path)
    uploads = next(c for c in second.collections if c.collection == "uploads")
    assert (uploads.archived, uploads.objects, uploads.objects_kept) == (1, 0, 1)
    assert world.objects() == ["shared/y"]
    assert _entries(world, "shared/y") == []
    # the archived upload owns nothing: once the blob row expires the object is an ordinary candidate
    assert _links(world) == 0


def test_a_dry_run_of_the_expiry_counts_the_objects_and_changes_nothing(world: World) -> None:
    world.collections = FOLLOW
    _upload(world, 1, "uploads/1")
    world.write_config()
    dry = reclaim.run(world.config_path, dry_run=True)
    assert world.ids("uploads") == [1]
    assert [s.candidates for s in dry.collection_scans] == [1]
    reclaim.run(world.config_path)
    _expire_archive(world)
    dry = reclaim.run(world.config_path, dry_run=True)
    assert dry.expired_rows == 1
    assert dry.expired_objects["blobs"].purged.count == 1
    assert _trash(world, "uploads/1").exists()
    assert _entries(world, "uploads/1") == [State.QUARANTINED]
    assert _links(world) == 1


def test_mark_mode_keeps_the_object_in_place_and_journals_it(world: World) -> None:
    world.collections = FOLLOW
    _upload(world, 1, "uploads/1")
    world.write_config()
    text = world.config_path.read_text()
    text = text.replace("max_fraction = 1.0\n", 'max_fraction = 1.0\nmode = "mark"\n', 1)
    world.config_path.write_text(text)
    before = (world.store_dir / "uploads/1").read_bytes()
    reclaim.run(world.config_path)
    assert world.ids("uploads") == []
    assert _entries(world, "uploads/1") == [State.QUARANTINED]
    reclaim.run(world.config_path)
    assert _entries(world, "uploads/1") == [State.QUARANTINED]  # mark mode: the object stays, held
    reclaim.restore_rows(world.config_path, collection="uploads", pks=["1"])
    assert (world.store_dir / "uploads/1").read_bytes() == before
    assert _entries(world, "uploads/1") == [State.RESTORED]


def test_follow_needs_exact_table_sources_that_read_its_table(world: World) -> None:
    world.collections = FOLLOW.replace('table = "uploads"', 'table = "versions"').replace(
        'age_column = "created"', 'age_column = "id"'
    )
    world.write_config()
    with pytest.raises(ConfigError, match="no store reference source reads table 'versions'") as caught:
        reclaim.run(world.config_path)
    assert caught.value.field == "collections.uploads.objects"
    world.collections = FOLLOW
    world.write_config()
    text = world.config_path.read_text().replace(
        'table = "uploads"\ncolumn = "blob"', 'table = "uploads"\ncolumn = "blob"\nkind = "prefix"', 1
    )
    world.config_path.write_text(text)
    with pytest.raises(ConfigError, match="is a prefix source") as caught:
        reclaim.run(world.config_path)
    assert caught.value.field == "collections.uploads.objects"


def test_the_cli_reports_the_objects_that_followed_their_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    engine = sa.create_engine(url)
    world = World(root=tmp_path, db_url=url, engine=engine, md=build_schema(engine))
    try:
        world.collections = FOLLOW
        _upload(world, 1, "uploads/1")
        world.write_config()
        run = cli(world, "run")
        assert run.returncode == 0, run.stderr
        assert "their objects: quarantined 1 object (9 B) with them; 0 left live" in run.stdout
        restore = cli(world, "restore", "--collection", "uploads", "1")
        assert restore.returncode == 0, restore.stderr
        assert "restored 1 object of store blobs that the rows own" in restore.stdout
        assert world.objects() == ["uploads/1"]
        _expire_archive(world)
        with engine.begin() as conn:  # collected again, then expired at once
            conn.execute(world.t("uploads").update().values(created=naive(world.now - 9 * DAY)))
        assert cli(world, "run").returncode == 0
        _expire_archive(world)
        expired = cli(world, "run", "--json")
        assert expired.returncode == 0, expired.stderr
        data = json.loads(expired.stdout)
        assert data["expired_rows"] == 1
        assert data["expired_objects"]["blobs"]["purged"]["count"] == 1
        assert world.objects() == []
    finally:
        engine.dispose()


def test_young_objects_and_report_only_stores_stay_live(world: World) -> None:
    world.collections = FOLLOW
    _upload(world, 1, "uploads/1")
    _upload(world, 2, "uploads/2")
    world.write_config()
    world.put("uploads/2", age=DAY / 24)  # rewritten an hour ago: younger than the store's min_age
    report = reclaim.run(world.config_path)
    (result,) = report.collections
    assert (result.archived, result.objects, result.objects_kept) == (2, 1, 1)
    assert world.objects() == ["uploads/2"]

    _upload(world, 3, "uploads/3")
    text = world.config_path.read_text().replace(
        "max_fraction = 1.0\n", 'max_fraction = 1.0\naction = "report"\n', 1
    )
    world.config_path.write_text(text)
    report = reclaim.run(world.config_path)
    (result,) = report.collections
    assert (result.archived, result.objects, result.objects_kept) == (1, 0, 1)
    assert world.objects() == ["uploads/2", "uploads/3"]
    assert _entries(world, "uploads/3") == []
