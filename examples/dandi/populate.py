"""Build the DANDI-shaped example archive: the schema, back-dated rows, and their objects.

    python examples/dandi/populate.py postgresql+psycopg://postgres@127.0.0.1/dandi s3://dandi-example/
    python examples/dandi/populate.py URL s3://BUCKET/ --now 2026-03-01T03:17:00+00:00

Creates the tables of ``schema.sql`` in the (empty) database, the rows below
with timestamps ``age`` days before ``--now`` (default: the current time), and
their objects in a versioned S3 bucket (boto3's usual environment:
``AWS_ENDPOINT_URL`` for an S3-compatible server). Every row tells its own
story in the comments: what the rules of ``reclaim.toml`` do to it, and on
which night of nightly ``reclaim run`` cycles (night 0 = ``--now``).

Keys and UUIDs are derived from the labels (``B1``, ``U2``, ``Z3``), so that
every build of the example names the same objects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

SCHEMA = Path(__file__).resolve().with_name("schema.sql")
DAY = timedelta(days=1)
_NAMESPACE = uuid.UUID("6a4c0b57-0d1e-4f55-9d4e-2a3f1c8e7b90")

# -- the archive --------------------------------------------------------------------------
# Ages are days before --now (night 0). The half days keep every rule's boundary
# twelve hours away from a nightly cycle. Each comment says what DANDI's rules do to
# the row and its object, and on which night of nightly ``reclaim run`` cycles; the
# table of expected outcomes in tests/examples/test_dandi.py is derived from these.

DANDISETS = [1, 2]

# id, dandiset, version
VERSIONS = [
    (1, 1, "draft"),
    (2, 1, "0.230101.1200"),  # dandiset 1 published once
    (3, 2, "draft"),
]


@dataclass(frozen=True)
class AssetBlob:
    id: int
    label: str
    age: float


ASSET_BLOBS = [
    AssetBlob(1, "B1", 40.5),  # A1's: live
    AssetBlob(2, "B2", 60.5),  # A2's: live
    AssetBlob(3, "B3", 40.5),  # A3's; held by the archived A3 (nights 30-60), then unused:
    #                            archived with its object night 61, purged night 91
    AssetBlob(4, "B4", 26.5),  # A4's; held by the archived A4 (nights 33-63): archived with
    #                            its object night 64, purged night 94
    AssetBlob(5, "B5", 9.5),  # no asset: archived with its object night 0; restored night 2
    #                           (byte-identical) and used by the new asset A9: live from then on
    AssetBlob(6, "B6", 40.5),  # A6's: live (A6 is published)
    AssetBlob(7, "B7", 3.5),  # no asset: archived with its object night 4 (7 days old), purged night 34
    AssetBlob(8, "B8", 4.5),  # A7's, made from upload U2 (the same key): live
]


@dataclass(frozen=True)
class Asset:
    id: int
    label: str
    blob: str | None
    zarr: int | None
    versions: tuple[int, ...]
    age: float
    """Days since ``modified``; an asset's rule counts from when a cycle first saw it in no version."""
    published: bool = False


ASSETS = [
    Asset(1, "A1", "B1", None, (1,), 40.5),  # in the draft: kept
    Asset(2, "A2", "B2", None, (1, 2), 60.5, published=True),  # in the draft and the release: kept
    Asset(3, "A3", "B3", None, (), 40.5),  # in no version: seen night 0, archived night 30
    Asset(4, "A4", "B4", None, (1,), 50.5),  # removed from the draft after night 2: seen night 3,
    #                                          archived night 33 (not night 3: age since unreferenced)
    Asset(5, "A5", None, 1, (3,), 40.5),  # a Zarr asset in dandiset 2's draft: kept
    Asset(6, "A6", "B6", None, (), 40.5, published=True),  # in no version but published: kept (where)
    Asset(7, "A7", "B8", None, (1,), 4.5),  # just uploaded (U2) and added to the draft: kept
    Asset(8, "A8", None, 4, (), 28.5),  # a Zarr asset in no version: seen night 0, archived night 30;
    #                                     its Zarr archive Z4 stays (Zarr rows are only reported)
]

#: made by an admin after night 2's cycle, for the restored AssetBlob B5
RESTORED_ASSET = Asset(9, "A9", "B5", None, (1,), 0.0)
#: removed from the draft by an admin after night 2's cycle
DROPPED = (1, 4)


@dataclass(frozen=True)
class Upload:
    id: int
    label: str
    blob: str
    """The label of the key the client uploads to (an AssetBlob's, once validated)."""
    age: float
    uploaded: bool
    """Whether the object exists (the client completed the multipart upload)."""
    object_age: float | None = None
    """Days since the client completed the upload (default: when the row was made)."""


UPLOADS = [
    Upload(1, "U1", "U1", 9.5, uploaded=True),  # abandoned after uploading: archived with its
    #                                             object night 0, purged night 30
    Upload(2, "U2", "B8", 4.5, uploaded=True),  # validated into B8, row left behind: archived
    #                                             night 3, its object stays (B8 uses it)
    Upload(3, "U3", "U3", 0.5, uploaded=False),  # never finished: archived night 7 (no object)
    Upload(4, "U4", "U4", 7.5, uploaded=True, object_age=5.5),  # abandoned, its object completed two
    #   days after the row: archived night 0, but its object is too young to be taken (the store's
    #   min_age: a writer may be reusing the key) and stays, held by the archived row until the row
    #   expires (night 30); released then, it is hidden through the store night 31 and purged after
    #   grace, night 38 (released by a row: collected, not reported as a stray)
]


@dataclass(frozen=True)
class Zarr:
    id: int
    label: str
    dandiset: int
    age: float


ZARRS = [
    Zarr(1, "Z1", 2, 40.5),  # A5's, stale: reported from night 0, although an asset uses it
    Zarr(2, "Z2", 1, 40.5),  # no asset, stale: reported from night 0
    Zarr(3, "Z3", 1, 21.5),  # no asset: reported from night 9 (30 days unmodified)
    Zarr(4, "Z4", 2, 40.5),  # A8's, stale: reported from night 0
    Zarr(5, "Z5", 2, 2.5),  # no asset, modified lately: reported from night 28
]
ZARR_FILES = (".zgroup", "data/.zarray", "data/0.0")

# objects no row references, ever (strays): key label -> age of the object;
# reported from the night they are 7 days old, never touched
STRAY_BLOBS = {"S1": 20.5}  # an upload whose row was deleted by hand long ago: night 0
STRAY_ZARRS = {"Zgone": 3.5}  # a Zarr directory whose row is gone: night 4


# -- names ---------------------------------------------------------------------------------


def uid(label: str) -> uuid.UUID:
    """The UUID of a labelled blob, upload or Zarr archive (the same in every build)."""
    return uuid.uuid5(_NAMESPACE, label)


def blob_key(label: str) -> str:
    """DANDI's key for a blob: ``blobs/<first 3>/<next 3>/<uuid>``."""
    text = str(uid(label))
    return f"blobs/{text[:3]}/{text[3:6]}/{text}"


def zarr_keys(label: str) -> list[str]:
    """The objects of a labelled Zarr archive."""
    return [f"zarr/{uid(label)}/{name}" for name in ZARR_FILES]


def content(key: str) -> bytes:
    """An object's bytes (different for every key, a few KiB)."""
    return hashlib.sha256(key.encode()).digest() * 64


def all_objects() -> dict[str, float]:
    """Every object the example puts in the store, with its age in days."""
    ages = {b.label: b.age for b in ASSET_BLOBS}
    objects = {blob_key(b.label): b.age for b in ASSET_BLOBS}
    for upload in UPLOADS:
        if upload.uploaded:
            own = upload.age if upload.object_age is None else upload.object_age
            objects[blob_key(upload.blob)] = ages.get(upload.blob, own)
    objects |= {blob_key(label): age for label, age in STRAY_BLOBS.items()}
    for zarr in ZARRS:
        objects |= dict.fromkeys(zarr_keys(zarr.label), zarr.age)
    for label, age in STRAY_ZARRS.items():
        objects |= dict.fromkeys(zarr_keys(label), age)
    return objects


#: the ``size`` column of each AssetBlob row (DANDI records it at upload)
ASSET_BLOB_SIZES = {b.label: len(content(blob_key(b.label))) for b in ASSET_BLOBS}


# -- building it ---------------------------------------------------------------------------


def populate(database_url: str, bucket_url: str, *, now: datetime, client: Any = None) -> None:
    """Create the schema and the rows in ``database_url`` and the objects in ``bucket_url``.

    ``bucket_url`` is ``s3://bucket/``: the bucket is created (versioning
    enabled) if it does not exist. ``client`` is a boto3 S3 client (default:
    one from the environment: ``AWS_ENDPOINT_URL`` reaches a test server). S3
    sets an object's LastModified itself: the objects are as old as this call,
    whatever their ages above (the test moves them back on its S3 server).
    """
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(SCHEMA.read_text(encoding="utf-8"))
            _rows(conn, now)
    finally:
        engine.dispose()
    if client is None:
        import boto3  # the example's only S3 client; reclaim itself goes through s3fs

        client = boto3.client("s3")
    bucket = bucket_name(bucket_url)
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in names:
        client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in all_objects():
        client.put_object(Bucket=bucket, Key=key, Body=content(key))


def bucket_name(bucket_url: str) -> str:
    """``s3://name/`` -> ``name``."""
    if not bucket_url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {bucket_url}")
    return bucket_url.removeprefix("s3://").split("/", 1)[0]


def _rows(conn: sa.Connection, now: datetime) -> None:
    def at(age: float) -> datetime:
        return now - age * DAY

    def insert(table: str, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            columns = list(rows[0])
            names = ", ".join(columns)
            values = ", ".join(f":{c}" for c in columns)
            conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({values})"), list(rows))

    insert(
        "api_dandiset",
        [{"id": d, "created": at(400), "modified": at(400)} for d in DANDISETS],
    )
    insert(
        "api_version",
        [
            {
                "id": vid,
                "dandiset_id": dandiset,
                "name": f"Dandiset {dandiset:06d}",
                "version": version,
                "metadata": json.dumps({"schemaVersion": "0.6.4", "version": version}),
                "status": "Valid" if version == "draft" else "Published",
                "created": at(100),
                "modified": at(1),
            }
            for vid, dandiset, version in VERSIONS
        ],
    )
    insert(
        "zarr_zarrarchive",
        [
            {
                "id": z.id,
                "zarr_id": uid(z.label),
                "name": f"{z.label.lower()}.zarr",
                "dandiset_id": z.dandiset,
                "status": "Complete",
                "file_count": len(ZARR_FILES),
                "size": sum(len(content(k)) for k in zarr_keys(z.label)),
                "created": at(z.age),
                "modified": at(z.age),
            }
            for z in ZARRS
        ],
    )
    insert(
        "api_assetblob",
        [
            {
                "id": b.id,
                "blob_id": uid(b.label),
                "blob": blob_key(b.label),
                "sha256": hashlib.sha256(content(blob_key(b.label))).hexdigest(),
                "etag": hashlib.md5(content(blob_key(b.label)), usedforsecurity=False).hexdigest(),
                "size": ASSET_BLOB_SIZES[b.label],
                "created": at(b.age),
                "modified": at(b.age),
            }
            for b in ASSET_BLOBS
        ],
    )
    blob_ids = {b.label: b.id for b in ASSET_BLOBS}
    insert(
        "api_asset",
        [
            {
                "id": a.id,
                "asset_id": uid(a.label),
                "path": f"sub-{a.id:02d}/sub-{a.id:02d}_ecephys.{'zarr' if a.zarr else 'nwb'}",
                "blob_id": blob_ids[a.blob] if a.blob else None,
                "zarr_id": a.zarr,
                "metadata": json.dumps(
                    {
                        "schemaKey": "Asset",
                        "path": f"sub-{a.id:02d}",
                        "contentSize": 12288,
                        "digest": {"dandi:sha2-256": uid(a.label).hex},
                        "wasAttributedTo": [{"species": "Mus musculus", "age": "P90D"}],
                    }
                ),
                "status": "Valid",
                "published": a.published,
                "created": at(a.age + 1),
                "modified": at(a.age),
            }
            for a in ASSETS
        ],
    )
    insert(
        "api_version_assets",
        [{"version_id": v, "asset_id": a.id} for a in ASSETS for v in a.versions],
    )
    insert(
        "api_upload",
        [
            {
                "id": u.id,
                "upload_id": uid(u.blob),
                "blob": blob_key(u.blob),
                "etag": None,
                "size": len(content(blob_key(u.blob))),
                "multipart_upload_id": f"mpu-{u.label}",
                "dandiset_id": 1,
                "created": at(u.age),
                "modified": at(u.age),
            }
            for u in UPLOADS
        ],
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("database_url", help="SQLAlchemy URL of an empty PostgreSQL database")
    parser.add_argument("bucket_url", help="s3://bucket/ (versioning is enabled on it)")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        help="the moment row ages are counted back from (ISO 8601; default: now)",
    )
    args = parser.parse_args(argv)
    now = args.now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    populate(args.database_url, args.bucket_url, now=now)
    print(f"built the DANDI example: {len(all_objects())} objects in {args.bucket_url}, night 0 = {now}")


if __name__ == "__main__":
    main()
