"""Age since unreferenced (``age = "unreferenced"``), over simulated nights of real ``reclaim run``.

On SQLite, PostgreSQL and MariaDB, with the catalog in its own SQLite file and
in the application's database. Each night is a real ``reclaim run`` process
after :func:`~.nights.travel` made everything a day older. What each test
expects follows from the rule, written before running: an item is collected
on the first night at least ``min_age`` after the first night a complete scan
saw it unreferenced, and every night in between saw it so.
"""

from __future__ import annotations

import json
import os
import textwrap
from datetime import timedelta

import pytest
import sqlalchemy as sa

from .nights import cli, night, sightings, travel
from .world import DAY, World, naive

ASSETS = """
[collections.assets]
database = "app"
table = "assets"
age_column = "modified"
min_age = "{min_age}"
retention = "30d"
age = "{age}"
"""


def _assets(world: World, *, min_age: str = "30d", age: str = "unreferenced") -> None:
    world.collections = ASSETS.format(min_age=min_age, age=age)
    world.insert("versions", {"id": 1, "name": "draft"})


def _unlink(world: World, asset: int) -> None:
    t = world.t("version_assets")
    with world.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.asset_id == asset))


def _archived(report: dict[str, object]) -> dict[str, int]:
    collections = report["collections"]
    assert isinstance(collections, list)
    return {c["collection"]: c["archived"] for c in collections}


def test_an_asset_replaced_today_with_an_old_modified_goes_30_days_after_it_left(world: World) -> None:
    """DANDI: an asset replaced in a draft today, ``modified`` 50 days ago, is not collected tonight."""
    _assets(world)
    world.asset(1, None, age=50 * DAY)
    world.asset(2, None, age=50 * DAY)
    world.link(1, 1)
    world.link(1, 2)
    world.write_config()
    night(world)  # night 0: both assets are in the draft
    assert sightings(world, "collection", "assets") == {}
    _unlink(world, 1)  # replaced in the draft today
    nights = {1: [], 2: [], 15: [], 30: [], 31: [1]}
    day = 0
    for target, expected in nights.items():
        travel(world, target - day)
        day = target
        report = night(world)
        gone = [a for a in (1, 2) if a not in world.ids("assets")]
        assert gone == expected, (day, report)
        if day < 31:  # watched since night 1, vouched for by a complete scan
            assert [c for _, c in sightings(world, "collection", "assets").values()] == [True]
            assert list(sightings(world, "collection", "assets")) == ['["1"]']
    assert sightings(world, "collection", "assets") == {}  # collected: forgotten (a restore starts again)
    assert world.ids("assets") == [2]


def test_with_the_rows_own_age_the_same_asset_goes_tonight(world: World) -> None:
    """The control: ``age = "own"`` (today's rule) collects the replaced asset at once."""
    _assets(world, age="own")
    world.asset(1, None, age=50 * DAY)
    world.link(1, 1)
    world.write_config()
    night(world)
    _unlink(world, 1)
    travel(world, 1)
    assert _archived(night(world)) == {"assets": 1}
    assert sightings(world, "collection", "assets") == {}


def test_an_asset_referenced_again_is_forgotten_and_its_clock_restarts(world: World) -> None:
    _assets(world, min_age="5d")
    world.asset(1, None, age=50 * DAY)
    world.asset(2, None, age=50 * DAY)  # in no version from night 0 on: the reference
    world.write_config()
    night(world)  # night 0: both seen unreferenced
    assert set(sightings(world, "collection", "assets")) == {'["1"]', '["2"]'}
    travel(world, 3)
    world.link(1, 1)  # night 3: asset 1 is put into a version
    night(world)
    assert set(sightings(world, "collection", "assets")) == {'["2"]'}  # forgotten
    travel(world, 1)
    _unlink(world, 1)  # night 4: out of the version again, its clock starts now
    night(world)
    assert set(sightings(world, "collection", "assets")) == {'["1"]', '["2"]'}
    travel(world, 1)
    night(world)  # night 5: asset 2 was seen unreferenced on nights 0-5
    assert world.ids("assets") == [1]
    travel(world, 3)
    night(world)  # night 8: asset 1 only 4 days since night 4
    assert world.ids("assets") == [1]
    travel(world, 1)
    night(world)  # night 9: 5 days
    assert world.ids("assets") == []


def test_a_dry_run_reads_the_clock_and_never_starts_it(world: World) -> None:
    """A dry run does not change what a later real run does."""
    _assets(world, min_age="2d")
    world.asset(1, None, age=50 * DAY)
    world.write_config()
    for _ in range(3):
        dry = night(world, "--dry-run")
        assert dry["collection_scans"][0]["candidates"] == 0
        travel(world, 1)
    assert sightings(world, "collection", "assets") == {}
    night(world)  # the first real run: the clock starts tonight
    assert world.ids("assets") == [1]
    travel(world, 2)
    dry = night(world, "--dry-run")
    assert dry["collection_scans"][0]["candidates"] == 1
    assert dry["collection_scans"][0]["unreferenced"] == 1
    scan = cli(world, "scan", "--json")
    assert json.loads(scan.stdout)["collections"][0]["candidates"] == 1
    assert world.ids("assets") == [1]
    night(world)
    assert world.ids("assets") == []


def _many_assets(world: World) -> None:
    """Assets 1-700 of 50 days; 2 and 601-700 in the draft: 599 unreferenced, two scan pages."""
    old = naive(world.now - 50 * DAY)
    shape = {"blob_id": None, "meta": None, "size": None, "modified": old}
    world.insert("assets", *({"id": a, "path": f"a{a}", **shape} for a in range(1, 701)))
    world.insert("version_assets", *({"version_id": 1, "asset_id": a} for a in [2, *range(601, 701)]))


def test_a_killed_scan_forgets_nothing_and_its_first_sightings_never_count(world: World) -> None:
    """A run killed after the first page of its scan (500 rows) forgets nothing, and what it saw
    first counts only from the next complete scan."""
    _assets(world, min_age="3d")
    _many_assets(world)
    world.write_config()
    night(world)  # night 0: 1, 3-600 seen unreferenced
    assert len(sightings(world, "collection", "assets")) == 599
    travel(world, 1)
    _unlink(world, 2)  # on the first page
    world.link(1, 550)  # referenced again, on the second page
    _unlink(world, 650)  # on the second page
    killed = cli(world, "run", env={"RECLAIM_FAULT": "unreferenced.after-record"})
    assert killed.returncode != 0, killed.stdout  # night 1: killed after recording the first page
    seen = sightings(world, "collection", "assets")
    assert seen['["550"]'] == (seen['["1"]'][0], True)  # not forgotten: no complete scan since
    assert '["650"]' not in seen  # never reached
    assert seen['["2"]'][1] is False  # seen by the killed run only: not vouched for
    travel(world, 3)
    scan = json.loads(cli(world, "scan", "--json").stdout)["collections"][0]
    assert (scan["candidates"], scan["unreferenced"]) == (598, 600)  # not 2: only a killed run saw it
    night(world)  # night 4: complete; the night-0 rows have been unreferenced for 4 days, and go
    seen = sightings(world, "collection", "assets")
    assert set(seen) == {'["2"]', '["650"]'}  # 550 forgotten (referenced); the collected ones too
    # asset 2 stays: the killed night-1 run's sighting never counted, its clock starts tonight
    assert world.ids("assets") == [2, 550, *range(601, 701)]
    travel(world, 2)
    night(world)  # night 6: 2 days for 2 and 650
    assert world.ids("assets") == [2, 550, *range(601, 701)]
    travel(world, 1)
    night(world)  # night 7: 3 days since night 4
    assert world.ids("assets") == [550, *range(601, 650), *range(651, 701)]


DECODER = """
def fail_on_boom(value):
    if value == "boom":
        raise ValueError("cannot read this value")
    return [value]
"""


def test_a_store_object_waits_min_age_after_its_row_went_and_a_failed_scan_forgets_nothing(
    world: World,
) -> None:
    """``age = "unreferenced"`` on a store: an old object whose upload row goes today waits 3 nights."""
    world.write_config()
    config = world.config_path.read_text()
    config = config.replace('min_age = "1d"\n', 'min_age = "3d"\nage = "unreferenced"\n', 1)
    # a third source whose decoder fails on the value "boom": a scan that breaks halfway
    config += textwrap.dedent(
        """
        [[stores.blobs.references]]
        database = "app"
        table = "blobs"
        column = "blob"
        name = "decoded"
        decoder = "unref_decoders:fail_on_boom"
        allow_empty = true
        """
    )
    world.config_path.write_text(config)
    (world.root / "unref_decoders.py").write_text(DECODER)
    env = {"PYTHONPATH": os.pathsep.join([str(world.root), os.environ.get("PYTHONPATH", "")])}
    world.put("uploads/1", age=50 * DAY)
    world.put("uploads/2", age=50 * DAY)
    world.insert("uploads", {"id": 1, "blob": "uploads/1", "created": naive(world.now)})
    world.insert("uploads", {"id": 2, "blob": "uploads/2", "created": naive(world.now)})
    night(world, env=env)  # night 0: both referenced
    assert sightings(world, "store", "blobs") == {}
    with world.engine.begin() as conn:
        conn.execute(sa.delete(world.t("uploads")))  # both rows go today
    travel(world, 1)
    night(world, env=env)  # night 1: both seen unreferenced, their clocks start
    assert set(sightings(world, "store", "blobs")) == {"uploads/1", "uploads/2"}
    travel(world, 1)
    world.insert("uploads", {"id": 3, "blob": "uploads/2", "created": naive(world.now)})  # referenced again
    world.insert("blobs", {"id": 9, "blob": "boom", "created": naive(world.now)})
    failed = cli(world, "run", env=env)
    assert failed.returncode == 3, failed.stdout + failed.stderr  # the decoder's source failed
    # night 2: the failed scan forgot nothing (uploads/2 is referenced, but only a complete scan says so)
    assert set(sightings(world, "store", "blobs")) == {"uploads/1", "uploads/2"}
    with world.engine.begin() as conn:
        conn.execute(sa.delete(world.t("blobs")).where(world.t("blobs").c.blob == "boom"))
    night(world, env=env)  # night 2, again: complete; uploads/2 is forgotten
    assert set(sightings(world, "store", "blobs")) == {"uploads/1"}
    travel(world, 1)
    with world.engine.begin() as conn:
        conn.execute(sa.delete(world.t("uploads")))  # uploads/2 unreferenced again: its clock restarts
    night(world, env=env)  # night 3: 2 days for uploads/1, 0 for uploads/2
    assert world.objects() == ["uploads/1", "uploads/2"]
    travel(world, 1)
    report = night(world, env=env)  # night 4: 3 days for uploads/1
    assert report["quarantined"][0]["quarantined"]["count"] == 1
    assert world.objects() == ["uploads/2"]
    assert set(sightings(world, "store", "blobs")) == {"uploads/2"}  # quarantined: forgotten
    travel(world, 1)
    night(world, env=env)  # night 5: 2 days for uploads/2
    assert world.objects() == ["uploads/2"]
    travel(world, 1)
    night(world, env=env)  # night 6: 3 days since night 3
    assert world.objects() == []


def test_a_collection_reports_the_bytes_of_its_rows_data_beside_their_json(world: World) -> None:
    """``data_bytes``: the objects candidate rows reference (store listing), or a size column."""
    world.collections = textwrap.dedent(
        """
        [collections.blobs]
        database = "app"
        table = "blobs"
        age_column = "created"
        min_age = "7d"

        [collections.assets]
        database = "app"
        table = "assets"
        age_column = "modified"
        min_age = "7d"
        size_column = "size"
        action = "report"
        """
    )
    for blob in (1, 2, 3):
        key = f"blobs/{blob:04d}"
        world.insert("blobs", {"id": blob, "blob": key, "created": naive(world.now - 30 * DAY)})
        path = world.store_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000 * blob)
    asset = {"path": "a", "meta": None, "size": "12.50", "modified": naive(world.now - 30 * DAY)}
    world.insert("assets", {"id": 10, "blob_id": 3, **asset})  # blob 3 is an asset's: not a candidate
    world.insert("assets", {"id": 11, "blob_id": None, **asset})  # size 12.50: 12 bytes
    world.write_config()
    scan = cli(world, "scan", "--json")
    assert scan.returncode == 0, scan.stderr
    by_name = {c["collection"]: c for c in json.loads(scan.stdout)["collections"]}
    assert by_name["blobs"]["candidates"] == 2
    assert by_name["blobs"]["data_bytes"] == 1000 + 2000
    assert by_name["blobs"]["row_bytes"] > 0
    assert by_name["assets"]["data_bytes"] == 12 + 12  # both assets: neither is in a version
    text = cli(world, "scan")
    assert "data bytes" in text.stdout
    assert "row bytes" in text.stdout
    dry = night(world, "--dry-run")
    assert {c["collection"]: c["data_bytes"] for c in dry["collection_scans"]} == {
        "assets": 24,
        "blobs": 3000,
    }
    report = night(world)
    assert [(c["collection"], c["archived"], c["data_bytes"]) for c in report["collections"]] == [
        ("blobs", 2, 3000)
    ]
    runs = json.loads(cli(world, "runs", "--json").stdout)
    counts = runs[0]["counts"]
    assert counts["collections"]["blobs"]["data_bytes"] == 3000
    assert counts["collections"]["blobs"]["row_bytes"] > 0
    assert counts["reported"]["assets"]["data_bytes"] == 24
    status = json.loads(cli(world, "status", "--json").stdout)
    assert {c["collection"]: c["data_bytes"] for c in status["collections"]} == {"blobs": 3000, "assets": 24}
    shown = cli(world, "status").stdout.splitlines()
    header = next(line for line in shown if line.lstrip().startswith("collection "))
    assert header.split()[-1] == "data"
    assert any(
        line.split()[0] == "blobs" and line.rstrip().endswith("2.9 KiB") for line in shown if line.strip()
    )


def test_without_a_way_to_measure_data_bytes_are_not_measured(world: World) -> None:
    world.collections = ASSETS.format(min_age="7d", age="own")
    world.asset(1, None, age=30 * DAY)
    world.write_config()
    scan = json.loads(cli(world, "scan", "--json").stdout)
    assert scan["collections"][0]["data_bytes"] is None
    assert "not measured" in cli(world, "run", "--dry-run").stdout


@pytest.mark.parametrize("age", ["own", "unreferenced"])
def test_min_age_zero_needs_no_earlier_sighting(world: World, age: str) -> None:
    _assets(world, min_age="0s", age=age)
    world.asset(1, None, age=timedelta(hours=1))
    world.write_config()
    night(world)
    assert world.ids("assets") == []


def test_a_size_column_the_table_lacks_is_a_config_error(world: World) -> None:
    world.collections = ASSETS.format(min_age="7d", age="own") + 'size_column = "bytes"\n'
    world.write_config()
    scan = cli(world, "scan")
    assert scan.returncode == 2, scan.stdout + scan.stderr
    assert "collections.assets.size_column" in scan.stdout + scan.stderr
