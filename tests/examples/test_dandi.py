"""The DANDI example (``examples/dandi/``) on PostgreSQL: nightly ``reclaim run`` cycles over 75 days.

``populate.py`` builds the archive with day 0 = now; the example's own
``reclaim.toml`` runs on it unchanged (the catalog in schema ``reclaim`` of the
same database). Each cycle's report, the audit log, the tables, the row
archive, the object journal and the store are compared with what the rules say
must happen, after every cycle:

====  ================================================================================
day   what the cycle does (every other day: nothing; zarr 2 is reported from day 0,
      zarr 3 from day 9; zarr 1 is A5's and never reported; no zarr row or object is
      ever touched; zarr 4 from day 33, when the archived asset 8 no longer holds it)
====  ================================================================================
0     archives upload 1 (9.5 days old), asset 3 (40.5 days, in no version) and
      assetblob 5 (no asset, 9.5 days); assetblob 3 is kept, held by the archived
      asset 3; quarantines S1 (an object no row references)
2     archives asset 8 (a Zarr asset, 30.5 days in no version): zarr 4 is held by it;
      (after the cycle) an admin restores asset 3: row, blob row and object whole;
      then puts it back into the draft
3     archives upload 2 (validated into assetblob 8, whose object stays)
4     archives asset 4 (30.5 days) and assetblob 7; assetblob 4 is held by asset 4 from
      now on; quarantines the three objects of a Zarr directory whose row is gone
7     archives upload 3 (never uploaded); purges S1 (grace 7 days)
11    purges the Zarr directory
30    expires the archive records of day 0 (retention 30 days)
32    expires asset 8's record
31    quarantines the objects of upload 1 and assetblob 5, no longer held
33    expires upload 2's record
34    expires asset 4's and assetblob 7's records
35    archives assetblob 4 (released by asset 4); quarantines assetblob 7's object
37    expires upload 3's record, and S1's purged journal entry (store retention 30 days)
38    purges upload 1's and assetblob 5's objects
41    expires the Zarr directory's journal entries
42    purges assetblob 7's object
65    expires assetblob 4's record
66    quarantines assetblob 4's object
68    expires the journal entries of upload 1's and assetblob 5's objects
72    expires assetblob 7's journal entry
73    purges assetblob 4's object
====  ================================================================================

Simulated time. reclaim reads the real clock, so the test moves the archive
instead of the clock: :func:`travel` subtracts N days from every timestamp
column of the database, the archive's tables and the catalog's alike (row ages,
archive expiry, journal due dates, run times), and from the mtime of every file
in the store, trash included. Everything being N days older is the same as the
clock being N days later, and every cycle runs right after a travel, so "day d"
is populate's now + d days (plus the seconds the test has taken). Ages in
populate.py are whole days plus a half, so every rule's boundary lies twelve
hours from a cycle. Archived rows are JSON, which a travel does not move: a
restored row carries the timestamps it had when it was archived.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.config import Config

from .loader import EXAMPLES, load_example

P = load_example("dandi/populate.py")
CONFIG = EXAMPLES / "dandi" / "reclaim.toml"
DAY = timedelta(days=1)

TABLES = {
    "uploads": "api_upload",
    "assetblobs": "api_assetblob",
    "assets": "api_asset",
    "zarrs": "zarr_zarrarchive",
}
COLLECTED = ("uploads", "assets", "assetblobs")  # in the order a cycle takes them: referencing first


def key(label: str) -> str:
    return str(P.blob_key(label))


ZGONE = list(P.zarr_keys("Zgone"))


@dataclass(frozen=True)
class Cycle:
    """What one day's cycle does."""

    archived: dict[str, list[int]] = field(default_factory=dict)
    """Rows deleted and archived, by collection."""
    quarantined: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    expired_rows: list[tuple[str, int]] = field(default_factory=list)
    """Archive records past their collection's retention."""
    expired_entries: list[str] = field(default_factory=list)
    """Finished journal entries past the store's retention."""


EVENTS: dict[int, Cycle] = {
    0: Cycle(archived={"uploads": [1], "assets": [3], "assetblobs": [5]}, quarantined=[key("S1")]),
    2: Cycle(archived={"assets": [8]}),
    3: Cycle(archived={"uploads": [2]}),
    4: Cycle(archived={"assets": [4], "assetblobs": [7]}, quarantined=ZGONE),
    7: Cycle(archived={"uploads": [3]}, purged=[key("S1")]),
    11: Cycle(purged=ZGONE),
    30: Cycle(expired_rows=[("uploads", 1), ("assets", 3), ("assetblobs", 5)]),
    31: Cycle(quarantined=[key("U1"), key("B5")]),
    32: Cycle(expired_rows=[("assets", 8)]),
    33: Cycle(expired_rows=[("uploads", 2)]),
    34: Cycle(expired_rows=[("assets", 4), ("assetblobs", 7)]),
    35: Cycle(archived={"assetblobs": [4]}, quarantined=[key("B7")]),
    37: Cycle(expired_rows=[("uploads", 3)], expired_entries=[key("S1")]),
    38: Cycle(purged=[key("U1"), key("B5")]),
    41: Cycle(expired_entries=ZGONE),
    42: Cycle(purged=[key("B7")]),
    65: Cycle(expired_rows=[("assetblobs", 4)]),
    66: Cycle(quarantined=[key("B4")]),
    68: Cycle(expired_entries=[key("U1"), key("B5")]),
    72: Cycle(expired_entries=[key("B7")]),
    73: Cycle(purged=[key("B4")]),
}
RESTORE_AFTER = 2
# nightly cycles around every event; the archive is left alone in between (days 13-28, 43-63)
CYCLE_DAYS = [*range(13), *range(29, 43), *range(64, 75)]


def reported(day: int) -> list[int]:
    """Zarr archives no asset uses, untouched for 30 days: Z2 (40.5 days at day 0), Z3 (21.5).

    Z4 (40.5 days) is asset 8's; from day 2 on no live asset uses it, but the
    archived asset 8 does until its record expires at the end of day 32.
    """
    return [2, *([3] if day >= 9 else []), *([4] if day >= 33 else [])]


def held(day: int) -> dict[str, int]:
    """Candidate rows kept because an archived row references them.

    Assetblob 3 while asset 3 is archived (days 0-2), assetblob 4 while asset 4
    is (days 4-34; the record expires at the end of day 34's cycle), zarr 4
    while asset 8 is (days 2-32): a held Zarr archive is not reported.
    """
    blobs = 1 if day <= RESTORE_AFTER or 4 <= day <= 34 else 0
    return {"uploads": 0, "assets": 0, "assetblobs": blobs, "zarrs": 1 if 2 <= day <= 32 else 0}


@dataclass
class State:
    """Everything the test compares: live rows, the row archive, the store, the trash, the journal."""

    rows: dict[str, list[int]]
    archive: dict[tuple[str, int], str]
    store: list[str]
    trash: list[str]
    journal: dict[str, str]


class Model:
    """The state the rules predict, advanced one cycle at a time."""

    def __init__(self) -> None:
        self.rows = {
            "uploads": {u.id for u in P.UPLOADS},
            "assetblobs": {b.id for b in P.ASSET_BLOBS},
            "assets": {a.id for a in P.ASSETS},
            "zarrs": {z.id for z in P.ZARRS},
        }
        self.archive: dict[tuple[str, int], str] = {}
        self.store = set(P.all_objects())
        self.trash: set[str] = set()
        self.journal: dict[str, str] = {}

    def apply(self, cycle: Cycle) -> None:
        for collection, pks in cycle.archived.items():
            self.rows[collection] -= set(pks)
            self.archive |= {(collection, pk): "ARCHIVED" for pk in pks}
        for k in cycle.purged:
            self.trash.remove(k)
            self.journal[k] = "PURGED"
        for k in cycle.quarantined:
            self.store.remove(k)
            self.trash.add(k)
            self.journal[k] = "QUARANTINED"
        for record in cycle.expired_rows:
            del self.archive[record]
        for k in cycle.expired_entries:
            assert self.journal.pop(k) == "PURGED"

    def restore(self, collection: str, pk: int) -> None:
        self.rows[collection].add(pk)
        self.archive[(collection, pk)] = "RESTORED"

    def state(self) -> State:
        return State(
            rows={name: sorted(pks) for name, pks in self.rows.items()},
            archive=dict(self.archive),
            store=sorted(self.store),
            trash=sorted(self.trash),
            journal=dict(self.journal),
        )


@dataclass
class Archive:
    """The example built on a fresh database, with the example's config pointed at it."""

    engine: sa.Engine
    store_dir: Path
    config: Config

    def observe(self) -> State:
        with self.engine.connect() as conn:
            rows = {
                name: sorted(conn.execute(sa.text(f"SELECT id FROM {table}")).scalars())
                for name, table in TABLES.items()
            }
            archive = {
                (c, int(json.loads(pk)[0])): state
                for c, pk, state in conn.execute(
                    sa.text("SELECT collection, pk, state FROM reclaim.reclaim_rows")
                )
            }
            journal = dict(conn.execute(sa.text("SELECT key, state FROM reclaim.reclaim_objects")).all())
        files = sorted(
            p.relative_to(self.store_dir).as_posix() for p in self.store_dir.rglob("*") if p.is_file()
        )
        return State(
            rows=rows,
            archive=archive,
            store=[f for f in files if not f.startswith("_trash/")],
            trash=[f.removeprefix("_trash/") for f in files if f.startswith("_trash/")],
            journal=journal,
        )

    def travel(self, days: int) -> None:
        """Make everything ``days`` days older (see the module docstring)."""
        if days == 0:
            return
        shift = days * DAY
        with self.engine.begin() as conn:
            columns = conn.execute(
                sa.text(
                    "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema IN ('public', 'reclaim') AND data_type LIKE 'timestamp%'"
                )
            ).all()
            assert ("reclaim", "reclaim_rows", "expires_at") in columns
            assert ("reclaim", "reclaim_objects", "due_at") in columns
            for schema, table, column in columns:
                conn.execute(
                    sa.text(f'UPDATE "{schema}"."{table}" SET "{column}" = "{column}" - :shift'),
                    {"shift": shift},
                )
            conn.execute(
                sa.text("UPDATE reclaim.reclaim_objects SET mtime_epoch = mtime_epoch - :seconds"),
                {"seconds": shift.total_seconds()},
            )
        nanoseconds = int(shift.total_seconds()) * 10**9
        for path in self.store_dir.rglob("*"):
            if path.is_file():
                stat = path.stat()
                os.utime(path, ns=(stat.st_atime_ns - nanoseconds, stat.st_mtime_ns - nanoseconds))

    def row(self, table: str, pk: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT * FROM {table} WHERE id = :pk"), {"pk": pk}).mappings()
            return dict(found.one())

    def link(self, version: int, asset: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO api_version_assets (version_id, asset_id) VALUES (:v, :a)"),
                {"v": version, "a": asset},
            )


@pytest.fixture
def archive(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    store_dir = tmp_path / "bucket"
    store_dir.mkdir()
    P.populate(pg_url, store_dir, now=datetime.now(UTC))
    monkeypatch.setenv("DANDI_DATABASE_URL", pg_url)
    monkeypatch.setenv("DANDI_STORE_URL", store_dir.as_uri())
    reclaim.init(CONFIG)  # the config exists: only creates the catalog (schema "reclaim")
    engine = sa.create_engine(pg_url)
    try:
        yield Archive(engine, store_dir, reclaim.load_config(CONFIG))
    finally:
        engine.dispose()


def _pks(samples: list[str]) -> list[int]:
    return sorted(int(json.loads(pk)[0]) for pk in samples)


def test_seventy_five_days_of_nightly_cycles(archive: Archive) -> None:
    model = Model()
    assert archive.observe() == model.state()
    as_archived = {
        "asset": archive.row("api_asset", 3),
        "blob": archive.row("api_assetblob", 3),
        "object": (archive.store_dir / key("B3")).read_bytes(),
    }
    day = 0
    for cycle_day in CYCLE_DAYS:
        archive.travel(cycle_day - day)
        day = cycle_day
        cycle = EVENTS.get(day, Cycle())
        report = reclaim.run(archive.config, show=50)
        model.apply(cycle)

        assert archive.observe() == model.state(), f"day {day}"
        # the report says what happened, collection by collection, referencing tables first
        assert [c.collection for c in report.collections] == list(COLLECTED)
        assert {c.collection: _pks(c.samples) for c in report.collections} == {
            name: cycle.archived.get(name, []) for name in COLLECTED
        }, f"day {day}"
        (zarrs,) = report.collection_scans
        assert {c.collection: c.held for c in [*report.collections, zarrs]} == held(day), f"day {day}"
        assert all(c.skipped == c.retries == 0 for c in report.collections)
        assert (zarrs.collection, zarrs.action, _pks(zarrs.samples)) == ("zarrs", "report", reported(day))
        assert zarrs.candidates == len(reported(day))
        assert report.findings == len(reported(day))
        ((purge,), (quarantine,)) = report.purged, report.quarantined
        assert (purge.due, purge.purged.count, purge.restored) == (len(cycle.purged), len(cycle.purged), 0)
        assert quarantine.quarantined.count == len(cycle.quarantined), f"day {day}"
        assert report.expired_rows == len(cycle.expired_rows), f"day {day}"
        assert report.expired_entries == {"bucket": len(cycle.expired_entries)}, f"day {day}"
        # and so does the audit log
        (record,) = reclaim.runs(archive.config, run_id=report.run_id)
        assert record.counts["reported"] == {
            "zarrs": {
                "rows": len(reported(day)),
                "row_bytes": zarrs.row_bytes,
                "data_bytes": zarrs.data_bytes,
                "samples": zarrs.samples,
            }
        }
        assert {name: c["archived"] for name, c in record.counts["collections"].items()} == {
            name: len(cycle.archived.get(name, [])) for name in COLLECTED
        }
        assert record.counts["findings"] == len(reported(day))

        if day == RESTORE_AFTER:
            _restore_asset_3(archive, model, as_archived)

    assert archive.observe() == State(
        rows={
            "uploads": [],
            "assetblobs": [1, 2, 3, 6, 8],
            "assets": [1, 2, 3, 5, 6, 7],
            "zarrs": [1, 2, 3, 4],
        },
        archive={},
        store=sorted(
            [key(b) for b in ("B1", "B2", "B3", "B6", "B8")]
            + [k for z in ("Z1", "Z2", "Z3", "Z4") for k in P.zarr_keys(z)]
        ),
        trash=[],
        journal={key("B4"): "PURGED"},
    )


def _restore_asset_3(archive: Archive, model: Model, as_archived: dict[str, Any]) -> None:
    """An admin brings asset 3 back two days after it was collected: it is whole."""
    restored = reclaim.restore_rows(archive.config, collection="assets", pks=["3"])
    assert restored.result.restored == {"assets": 1}
    assert restored.result.dependencies == 0  # its AssetBlob was held, never archived
    model.restore("assets", 3)
    assert archive.observe() == model.state()
    # the row, every column as it was: metadata (jsonb), uuid, timestamps, flags
    row = archive.row("api_asset", 3)
    assert row == as_archived["asset"]
    assert row["metadata"]["wasAttributedTo"] == [{"species": "Mus musculus", "age": "P90D"}]
    # its AssetBlob row stayed live the whole time (only two days older, like everything)
    blob = archive.row("api_assetblob", 3)
    before = as_archived["blob"]
    assert {k: v for k, v in blob.items() if k not in ("created", "modified")} == {
        k: v for k, v in before.items() if k not in ("created", "modified")
    }
    assert (before["created"] - blob["created"], before["modified"] - blob["modified"]) == (2 * DAY, 2 * DAY)
    assert row["blob_id"] == blob["id"] == 3
    # and its object never left the store
    data = (archive.store_dir / blob["blob"]).read_bytes()
    assert data == as_archived["object"] == P.content(key("B3"))
    assert len(data) == blob["size"]
    # the admin puts it back into the draft, so that the next cycle keeps it
    archive.link(1, 3)


def test_a_version_that_takes_an_asset_while_it_is_collected_fails_at_commit(archive: Archive) -> None:
    """Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: the writer loses, nothing dangles.

    An admin's transaction links asset 3 (in no version, 40.5 days old) into the
    draft and is still open while the cycle collects the asset. A deferred
    foreign key takes no lock on the asset until commit, so the cycle deletes
    and archives it; the admin's commit then fails its foreign key check. The
    version never points at a missing asset, and the asset can be restored.
    """
    with archive.engine.connect() as admin:
        admin.begin()
        admin.execute(sa.text("INSERT INTO api_version_assets (version_id, asset_id) VALUES (1, 3)"))
        report = reclaim.run(archive.config, show=10)
        assert {c.collection: _pks(c.samples) for c in report.collections}["assets"] == [3]
        with pytest.raises(sa.exc.IntegrityError, match="api_version_assets_asset_id_fk_api_asset_id"):
            admin.commit()
    state = archive.observe()
    assert 3 not in state.rows["assets"]
    assert state.archive[("assets", 3)] == "ARCHIVED"
    with archive.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM api_version_assets WHERE asset_id = 3")).scalar() == 0
        )
    # retried after a restore, the admin's link holds
    reclaim.restore_rows(archive.config, collection="assets", pks=["3"])
    archive.link(1, 3)
    assert 3 in archive.observe().rows["assets"]
    reclaim.run(archive.config)
    assert 3 in archive.observe().rows["assets"]
