"""The DANDI example (``examples/dandi/``): DANDI's rules as written, on PostgreSQL and a versioned S3 bucket.

``populate.py`` builds the archive (night 0 = now) on a fresh PostgreSQL
database and a versioned bucket of the S3 test server (moto, in this process);
the example's own ``reclaim.toml`` runs on it unchanged. After every simulated
night the test compares what it finds (the tables, the row archive, the
object journal, what the bucket serves and which versions it keeps, what the
cycle reported and the audit log recorded) with the table below.

**The table is written from DANDI's rules and populate.py's ages, by hand**,
not from reclaim's output. The rules (each night's cycle, in this order:
recover, purge due, collect rows, quarantine, expire):

- an Upload goes the first night it is 7 days old (``created``), with its
  object unless an AssetBlob uses it; an AssetBlob no Asset uses, the first
  night it is 7 days old, with its object: from that night on the object is
  not served (a delete marker);
- an Asset goes 30 nights after the first night a cycle saw it in no version
  (never a published one); while it is archived its AssetBlob is in use;
- every archived row is restorable for 30 days with its objects; the night its
  retention ends its objects are purged (both versions gone) and the record
  expires; a finished journal entry (purged, restored) is kept 30 days;
- objects no row ever referenced (strays) are reported from the night they are
  7 days old, Zarr archives from the night they are 30 days unmodified (in use
  or not); neither is ever touched.

Ages (populate.py) are whole days plus a half: every boundary lies twelve hours
from a night's cycle. ``*`` in the table: an admin acts after that night's cycle.

=========================  =========  ========  ========  ==================================
row / object               goes       restored  purged    why
                           (night)              expired
=========================  =========  ========  ========  ==================================
Upload 1 + object U1       0                    30        9.5 days old on night 0
Upload 2 (object B8 kept)  3                    33        4.5 + 3 > 7; B8's row uses the key
Upload 3 (never uploaded)  7                    37        0.5 + 7 > 7
Upload 4                   0                    30        7.5 days old on night 0
object U4                  31                   38        5.5 days old on night 0: too young
                                                          to go with its row (the store's
                                                          min_age), held by the archived
                                                          row; released at its expiry (30),
                                                          hidden through the store on the
                                                          next night, purged after grace (7)
AssetBlob 5 + object       0          2*                  9.5 days, no asset; restored and
                                                          used by the new asset 9; the RESTORED
                                                          record expires night 30, the journal
                                                          entry night 32; the object stays
AssetBlob 7 + object       4                    34        3.5 + 4 > 7, no asset
Asset 3                    30                   60        in no version, first seen night 0
Asset 8 (Zarr, Z4 stays)   30                   60        in no version, first seen night 0
Asset 4                    33                   63        dropped from the draft after
                                                          night 2*, first seen night 3
                                                          (its modified is 50.5 days old)
AssetBlob 3 + object       61                   91        held by the archived asset 3
                                                          until its record expires (60)
AssetBlob 4 + object       64                   94        held by asset 4 until 63
every other row, object    never
=========================  =========  ========  ========  ==================================

Reported, never touched, still there on the last night: strays S1 (20.5 days:
from night 0) and the three objects of Zgone (3.5 days: from night 4); stale
Zarr archives Z1 (A5 uses it), Z2, Z4 (A8's) from night 0, Z3 (21.5 days) from
night 9, Z5 (2.5 days) from night 28. Journal entries of purged objects expire
30 nights after their purge (U1: 60, B7: 64, U4: 68).

The cycles run on nights ``NIGHTS``: every night of the windows where something
happens (0-10, 27-38, 59-68, 89-95) plus their quiet nights; the nights in
between (11-26, 39-58, 69-88) have no event and are skipped (the clock moves
across them in one travel). Night 0 goes through the real command line
(``reclaim run --dry-run --json``, then ``reclaim run --json``: the preview's
figures are the real run's); the others through the Python API.

Simulated time. reclaim reads the real clock, so the test moves the archive
instead: :meth:`Archive.travel` subtracts N days from every timestamp column of
the database and the catalog (row ages, archive expiry, journal due dates, the
first sightings of ``age = "unreferenced"``, run times) and from the
LastModified of every object version and delete marker on the S3 server
(``moto_clock``). Archived rows are JSON, which a travel does not move: a
restored row carries the timestamps it had when it was archived.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.config import Config

from .loader import EXAMPLES, load_example

pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
boto3 = pytest.importorskip("boto3")

from .moto_clock import age_bucket, backdate  # noqa: E402  (moto is there)

P = load_example("dandi/populate.py")
CONFIG = EXAMPLES / "dandi" / "reclaim.toml"
DAY = timedelta(days=1)
NEVER = 10**6


# -- the expected outcomes (by hand: see the module docstring) ------------------------------


@dataclass(frozen=True)
class Fate:
    """A row, or an object, that the rules take: the night it goes, is restored, is purged/expires."""

    goes: int
    expires: int = NEVER
    """The night its archive record expires (rows) or it is purged, both versions gone (objects)."""
    restored: int = NEVER
    """The night after whose cycle an admin restores it (it is live again from the next night)."""


ROWS: dict[tuple[str, int], Fate] = {
    ("uploads", 1): Fate(goes=0, expires=30),
    ("uploads", 2): Fate(goes=3, expires=33),
    ("uploads", 3): Fate(goes=7, expires=37),
    ("uploads", 4): Fate(goes=0, expires=30),
    ("assetblobs", 5): Fate(goes=0, expires=30, restored=2),
    ("assetblobs", 7): Fate(goes=4, expires=34),
    ("assets", 3): Fate(goes=30, expires=60),
    ("assets", 8): Fate(goes=30, expires=60),
    ("assets", 4): Fate(goes=33, expires=63),
    ("assetblobs", 3): Fate(goes=61, expires=91),
    ("assetblobs", 4): Fate(goes=64, expires=94),
}
OBJECTS: dict[str, Fate] = {  # by label: quarantined (a delete marker) with its row, purged at its expiry
    "U1": Fate(goes=0, expires=30),
    "B5": Fate(goes=0, restored=2),
    "B7": Fate(goes=4, expires=34),
    "B3": Fate(goes=61, expires=91),
    "B4": Fate(goes=64, expires=94),
}
THROUGH_THE_STORE = {"U4": Fate(goes=31, expires=38)}  # hidden by the store's scan, purged after grace
KEPT = {0: 1, 3: 1}  # night -> objects a collected row referenced but left: U4's (young), U2's (B8 uses it)
JOURNAL_RETENTION = 30  # nights a finished journal entry is kept
STRAYS = {"S1": 0, "Zgone": 4}  # reported from night, never touched
STALE_ZARRS = {1: 0, 2: 0, 4: 0, 3: 9, 5: 28}  # zarr id -> reported from night, never touched
HELD = {("assetblobs", 3): ("assets", 3), ("assetblobs", 4): ("assets", 4)}
"""Rows an archived row uses: held (counted ``held``) while it is archived, from the night it goes."""
RESTORE_AFTER = 2
NIGHTS = [*range(11), *range(27, 39), *range(59, 69), *range(89, 96)]

TABLES = {
    "uploads": "api_upload",
    "assetblobs": "api_assetblob",
    "assets": "api_asset",
    "zarrs": "zarr_zarrarchive",
}
COLLECTED = ("uploads", "assets", "assetblobs")  # in the order a cycle takes them: referencing first


def key(label: str) -> str:
    return str(P.blob_key(label))


def object_keys(label: str) -> list[str]:
    return list(P.zarr_keys(label)) if label.startswith("Z") else [key(label)]


# -- what the table says about one night ---------------------------------------------------


@dataclass
class State:
    """Everything the test compares after a night."""

    rows: dict[str, list[int]]
    archive: dict[tuple[str, int], str]
    """Archive records present: ARCHIVED or RESTORED."""
    journal: dict[str, str]
    """Latest journal state per key, for entries present."""
    bucket: dict[str, str]
    """Per key: ``served`` (a current version), ``hidden`` (a delete marker over the version)."""


def expected(night: int) -> State:
    """The state after ``night``'s cycle (and before the admin's actions of that night)."""
    rows = {
        "uploads": {u.id for u in P.UPLOADS},
        "assetblobs": {b.id for b in P.ASSET_BLOBS},
        "assets": {a.id for a in P.ASSETS} | ({P.RESTORED_ASSET.id} if night > RESTORE_AFTER else set()),
        "zarrs": {z.id for z in P.ZARRS},
    }
    archive: dict[tuple[str, int], str] = {}
    for (collection, pk), fate in ROWS.items():
        if fate.goes <= night <= fate.restored:
            rows[collection].discard(pk)
        if fate.goes <= night < fate.expires:
            archive[(collection, pk)] = "RESTORED" if night > fate.restored else "ARCHIVED"
    journal: dict[str, str] = {}
    bucket = dict.fromkeys(P.all_objects(), "served")
    for label, fate in (OBJECTS | THROUGH_THE_STORE).items():
        k = key(label)
        if night < fate.goes:
            continue
        if night > fate.restored:
            finished = fate.restored
            if night < finished + JOURNAL_RETENTION:
                journal[k] = "RESTORED"
        elif night < fate.expires:
            journal[k] = "QUARANTINED"
            bucket[k] = "hidden"
        else:
            del bucket[k]
            if night < fate.expires + JOURNAL_RETENTION:
                journal[k] = "PURGED"
    return State({n: sorted(pks) for n, pks in rows.items()}, archive, journal, bucket)


def on(night: int, field: str) -> dict[str, list[int]]:
    """Rows whose fate's ``field`` (goes, expires) is ``night``, by collection."""
    out: dict[str, list[int]] = {c: [] for c in COLLECTED}
    for (collection, pk), fate in ROWS.items():
        if getattr(fate, field) == night:
            out[collection].append(pk)
    return {c: sorted(pks) for c, pks in out.items()}


def objects_on(night: int, field: str) -> list[str]:
    return sorted(key(label) for label, fate in OBJECTS.items() if getattr(fate, field) == night)


def strays(night: int) -> list[str]:
    return sorted(k for label, first in STRAYS.items() if first <= night for k in object_keys(label))


def stale_zarrs(night: int) -> list[int]:
    return sorted(z for z, first in STALE_ZARRS.items() if first <= night)


def held(night: int) -> int:
    """AssetBlobs kept because their archived asset still uses them."""
    return sum(1 for row in HELD.values() if ROWS[row].goes <= night <= ROWS[row].expires)


def expired_entries(night: int) -> int:
    """Finished journal entries past their 30 days."""
    count = 0
    for fate in (OBJECTS | THROUGH_THE_STORE).values():
        finished = fate.restored if fate.restored < NEVER else fate.expires
        count += finished + JOURNAL_RETENTION == night
    return count


# -- the archive ---------------------------------------------------------------------------


@dataclass
class Archive:
    """The example built on a fresh database and bucket, the example's config pointed at them."""

    engine: sa.Engine
    s3: Any
    bucket: str
    config: Config
    env: dict[str, str]

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
            journal = dict(
                conn.execute(sa.text("SELECT key, state FROM reclaim.reclaim_objects ORDER BY id")).all()
            )
        return State(rows, archive, journal, self.versions())

    def versions(self) -> dict[str, str]:
        """What the bucket holds per key, read through S3's own ListObjectVersions."""
        out: dict[str, str] = {}
        pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket)
        for page in pages:
            for version in page.get("Versions", []):
                if version["IsLatest"]:
                    out[version["Key"]] = "served"
                else:
                    out.setdefault(version["Key"], "noncurrent")
            for marker in page.get("DeleteMarkers", []):
                if marker["IsLatest"]:
                    out[marker["Key"]] = "hidden"
        # a hidden key has its version under the marker; a key with a marker and no version
        # (or a version and no marker) would be neither state the rules allow
        for k, state in out.items():
            if state == "hidden":
                assert self._has_noncurrent(k), k
        return out

    def _has_noncurrent(self, k: str) -> bool:
        listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix=k)
        return any(v["Key"] == k and not v["IsLatest"] for v in listed.get("Versions", []))

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
            assert ("reclaim", "reclaim_unreferenced", "first_seen") in columns
            for schema, table, column in columns:
                conn.execute(
                    sa.text(f'UPDATE "{schema}"."{table}" SET "{column}" = "{column}" - :shift'),
                    {"shift": shift},
                )
            conn.execute(
                sa.text("UPDATE reclaim.reclaim_objects SET mtime_epoch = mtime_epoch - :seconds"),
                {"seconds": shift.total_seconds()},
            )
        age_bucket(self.bucket, shift)

    def run_cli(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "reclaim", *args, "--json", "--fail-on-findings", "--config", str(CONFIG)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 5, done.stderr  # findings: strays and stale Zarr archives
        return dict(json.loads(done.stdout))

    def row(self, table: str, pk: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT * FROM {table} WHERE id = :pk"), {"pk": pk}).mappings()
            return dict(found.one())

    def execute(self, sql: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)


@pytest.fixture
def archive(pg_url: str, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    bucket = f"dandi-{secrets.token_hex(4)}"
    env = {
        "DANDI_DATABASE_URL": pg_url,
        "DANDI_BUCKET_URL": f"s3://{bucket}/",
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    P.populate(pg_url, f"s3://{bucket}/", now=datetime.now(UTC), client=s3)
    backdate(bucket, {k: age * DAY for k, age in P.all_objects().items()})
    reclaim.init(CONFIG)  # the config exists: only creates the catalog (schema "reclaim")
    engine = sa.create_engine(pg_url)
    cli_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        yield Archive(engine, s3, bucket, reclaim.load_config(CONFIG), cli_env)
    finally:
        engine.dispose()


def _pks(samples: list[str]) -> list[int]:
    return sorted(int(json.loads(pk)[0]) for pk in samples)


# -- the nights ----------------------------------------------------------------------------


@pytest.mark.timeout(900)  # 40 cycles (a hang guard: 35 s on a quiet machine, 291 s at load 6 to 9)
def test_dandis_rules_night_by_night(archive: Archive) -> None:
    _nights(archive, distributed=None)


@pytest.mark.timeout(1200)  # 40 cycles of 4 ranges, each range a session of its own
def test_dandis_rules_night_by_night_in_key_ranges(archive: Archive) -> None:
    """The same nights, each cycle a distributed run (``mode = "versioned"``, ``purge = "delete"``):
    the bucket cut at the quartiles of its keys (its first level is two directories), each range
    worked by the workers' own function (:class:`~reclaim.distributed.InProcess`); the outcomes
    are the same table's."""
    from reclaim.distributed import split
    from reclaim.lifecycle import Session

    keys = sorted(P.all_objects())
    quartiles = [keys[len(keys) * q // 4] for q in (1, 2, 3)]
    with Session(CONFIG) as session:
        assert len(split(session.store("bucket"), partitions=3)) == 2  # blobs/ and zarr/
        assert len(split(session.store("bucket"), partitions=3, boundaries=quartiles)) == 4
    _nights(archive, distributed=quartiles)


def _nights(archive: Archive, *, distributed: list[str] | None) -> None:
    """Every night of ``NIGHTS`` against the table; ``distributed``: the split points of a distributed
    run (else the single-process run, night 0 through the command line)."""
    from reclaim.distributed import InProcess
    from reclaim.distributed import run as run_in_ranges

    assert archive.observe() == expected(-1)
    b5 = {
        "row": archive.row("api_assetblob", 5),
        "version": archive.s3.head_object(Bucket=archive.bucket, Key=key("B5"))["VersionId"],
    }
    night = 0
    for cycle_night in NIGHTS:
        archive.travel(cycle_night - night)
        night = cycle_night
        if distributed is not None:
            dispatcher = InProcess(archive.config)
            splits = {"bucket": distributed}
            report = run_in_ranges(CONFIG, dispatcher=dispatcher, boundaries=splits, show=50).to_dict()
        elif night == 0:
            report = _night_zero_through_the_cli(archive)
        else:
            report = reclaim.run(archive.config, show=50).to_dict()
        _compare(archive, night, report)
        if night in (0, NIGHTS[-1]):
            _check(archive, night)
        if night == RESTORE_AFTER:
            _restore_blob_5_and_drop_asset_4(archive, b5)

    # the last night: the strays and every stale Zarr archive are still there, served
    last = archive.observe().bucket
    for label in [*STRAYS, *(f"Z{z}" for z in STALE_ZARRS)]:
        for k in object_keys(label):
            assert last[k] == "served", k
            assert archive.s3.get_object(Bucket=archive.bucket, Key=k)["Body"].read() == P.content(k)


def _compare(archive: Archive, night: int, report: dict[str, Any]) -> None:
    """The night's state and report against the table."""
    where = f"night {night}"
    assert archive.observe() == expected(night), where
    # rows: archived tonight, with their objects; kept objects; rows held by archived rows
    collections = {c["collection"]: c for c in report["collections"]}
    assert list(collections) == list(COLLECTED), where
    assert {name: _pks(c["samples"]) for name, c in collections.items()} == on(night, "goes"), where
    objects = sum(c["objects"] for c in collections.values())
    assert objects == len(objects_on(night, "goes")), where
    assert sum(c["objects_kept"] for c in collections.values()) == KEPT.get(night, 0), where
    assert collections["assetblobs"]["held"] == held(night), where
    assert all(c["skipped"] == c["retries"] == 0 for c in collections.values()), where
    # the night's expiry: records and the objects they owned
    assert report["expired_rows"] == sum(len(pks) for pks in on(night, "expires").values()), where
    purged = report["expired_objects"].get("bucket", {"purged": {"count": 0}})
    assert purged["purged"]["count"] == len(objects_on(night, "expires")), where
    assert report["expired_entries"] == {"bucket": expired_entries(night)}, where
    # the store's own way (quarantine + grace): only U4's object, released by its row
    ((scan,),) = (report["scans"],)
    through = [key(label) for label, fate in THROUGH_THE_STORE.items() if fate.goes == night]
    assert scan["candidates"]["count"] == len(through), where
    ((quarantine,),) = (report["quarantined"],)
    assert quarantine["quarantined"]["count"] == len(through), where
    due = [key(label) for label, fate in THROUGH_THE_STORE.items() if fate.expires == night]
    (purge,) = report["purged"]
    assert (purge["due"], purge["purged"]["count"], purge["restored"]) == (len(due), len(due), 0), where
    # reported, never touched: strays and stale Zarr archives
    assert (scan["stray_policy"], scan["strays"]["count"]) == ("report", len(strays(night))), where
    assert sorted(s["key"] for s in scan["stray_samples"]) == strays(night), where
    (zarrs,) = report["collection_scans"]
    assert (zarrs["collection"], zarrs["action"]) == ("stale_zarrs", "report")
    assert _pks(zarrs["samples"]) == stale_zarrs(night), where
    assert report["findings"] == len(strays(night)) + len(stale_zarrs(night)), where
    # and the audit log says the same
    (record,) = reclaim.runs(archive.config, run_id=report["run_id"])
    assert {name: c["archived"] for name, c in record.counts["collections"].items()} == {
        name: len(pks) for name, pks in on(night, "goes").items()
    }, where
    assert record.counts["reported"]["stale_zarrs"]["rows"] == len(stale_zarrs(night)), where
    assert record.counts["findings"] == report["findings"], where


def _check(archive: Archive, night: int) -> None:
    """``reclaim check``: nothing dangles; the never finished upload 3 is missing, as expected."""
    checked = reclaim.check(archive.config)
    assert (checked.dangling, checked.findings) == (0, 0), f"night {night}"
    uploads_missing = 1 if night < ROWS[("uploads", 3)].goes else 0
    (store,) = checked.stores
    assert {s.name: s.expected_missing for s in store.sources if s.dangling_policy == "ignore"} == {
        "uploads": uploads_missing
    }, f"night {night}"


def _night_zero_through_the_cli(archive: Archive) -> dict[str, Any]:
    """``reclaim run --dry-run --json`` previews night 0; ``reclaim run --json`` then does exactly that."""
    before = archive.observe()
    preview = archive.run_cli("run", "--dry-run", "--show", "50")
    assert archive.observe() == before  # a dry run changes nothing
    report = archive.run_cli("run", "--show", "50")

    would = {c["collection"]: c for c in preview["collection_scans"]}
    did = {c["collection"]: c for c in report["collections"]}
    for name in COLLECTED:
        assert (would[name]["candidates"], _pks(would[name]["samples"])) == (
            did[name]["archived"],
            _pks(did[name]["samples"]),
        ), name
        assert would[name]["row_bytes"] == did[name]["row_bytes"], name
        assert would[name]["data_bytes"] == did[name]["data_bytes"], name
    # the data the rows stand for: AssetBlob 5's size column; Uploads 1 and 4's objects in the bucket
    assert did["assetblobs"]["data_bytes"] == P.ASSET_BLOB_SIZES["B5"]
    assert did["uploads"]["data_bytes"] == len(P.content(key("U1"))) + len(P.content(key("U4")))
    # the objects hidden with them: B5's and U1's (U4's is too young: kept)
    assert did["assetblobs"]["objects_bytes"] == len(P.content(key("B5")))
    assert did["uploads"]["objects_bytes"] == len(P.content(key("U1")))
    # age since unreferenced: a dry run reads the clock and never starts it, so tonight no asset
    assert would["assets"]["candidates"] == 0
    assert would["stale_zarrs"]["candidates"] == len(stale_zarrs(0))
    (would_scan,), (did_scan,) = preview["scans"], report["scans"]
    assert would_scan["strays"] == did_scan["strays"]
    assert (preview["findings"], preview["strays"]) == (report["findings"], report["strays"])
    assert preview["expired_rows"] == report["expired_rows"] == 0
    return report


def _restore_blob_5_and_drop_asset_4(archive: Archive, b5: dict[str, Any]) -> None:
    """After night 2: an admin restores AssetBlob 5 (row and object) and gives it an asset; drops asset 4."""
    restored = reclaim.restore_rows(archive.config, collection="assetblobs", pks=["5"])
    assert restored.result.restored == {"assetblobs": 1}
    # the row, every column as it was
    assert archive.row("api_assetblob", 5) == b5["row"]
    # the object: the same version is current again (the delete marker removed), byte-identical
    head = archive.s3.head_object(Bucket=archive.bucket, Key=key("B5"))
    assert head["VersionId"] == b5["version"]
    body = archive.s3.get_object(Bucket=archive.bucket, Key=key("B5"))["Body"].read()
    assert body == P.content(key("B5"))
    assert len(body) == b5["row"]["size"]
    # a new asset in the draft uses it, so the next night keeps it
    a9 = P.RESTORED_ASSET
    archive.execute(
        "INSERT INTO api_asset (id, asset_id, path, blob_id, metadata, status, published, created, modified)"
        " VALUES (:id, :uid, :path, 5, '{}', 'Valid', false, now(), now())",
        id=a9.id,
        uid=P.uid(a9.label),
        path="sub-09/sub-09_ecephys.nwb",
    )
    archive.execute("INSERT INTO api_version_assets (version_id, asset_id) VALUES (1, :a)", a=a9.id)
    # asset 4 leaves the draft: its 30 days start with the next night's cycle, not its modified
    version, asset = P.DROPPED
    archive.execute(
        "DELETE FROM api_version_assets WHERE version_id = :v AND asset_id = :a", v=version, a=asset
    )


def test_a_version_that_takes_a_blob_while_it_is_collected_fails_at_commit(archive: Archive) -> None:
    """Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: the writer loses, nothing dangles.

    An admin's transaction makes an asset of AssetBlob 5 (no asset, 9.5 days
    old) and is still open while the cycle collects the blob and hides its
    object. A deferred foreign key takes no lock on the blob until commit, so
    the cycle deletes and archives it; the admin's commit then fails its
    foreign key check. No asset points at a missing blob, and the blob comes
    back with its object.
    """
    with archive.engine.connect() as admin:
        admin.begin()
        admin.execute(
            sa.text(
                "INSERT INTO api_asset (id, asset_id, path, blob_id, created, modified)"
                " VALUES (9, gen_random_uuid(), 'sub-09/sub-09.nwb', 5, now(), now())"
            )
        )
        report = reclaim.run(archive.config, show=10)
        assert {c.collection: _pks(c.samples) for c in report.collections}["assetblobs"] == [5]
        with pytest.raises(sa.exc.IntegrityError, match="api_asset_blob_id_fk_api_assetblob_id"):
            admin.commit()
    state = archive.observe()
    assert 5 not in state.rows["assetblobs"]
    assert 9 not in state.rows["assets"]
    assert state.archive[("assetblobs", 5)] == "ARCHIVED"
    assert state.bucket[key("B5")] == "hidden"
    # retried after a restore, the admin's asset holds, and the object is served again
    reclaim.restore_rows(archive.config, collection="assetblobs", pks=["5"])
    archive.execute(
        "INSERT INTO api_asset (id, asset_id, path, blob_id, created, modified)"
        " VALUES (9, gen_random_uuid(), 'sub-09/sub-09.nwb', 5, now(), now())"
    )
    reclaim.run(archive.config)
    state = archive.observe()
    assert 5 in state.rows["assetblobs"]
    assert state.bucket[key("B5")] == "served"
