"""Writing S3 Inventory reports as AWS delivers them, into a bucket of the test S3 server.

:func:`write_report` puts, under ``<prefix>/<source-bucket>/<config-id>/``:

- ``data/<uuid>.csv.gz`` (no header, every field quoted, keys URL-encoded as
  Java's ``URLEncoder`` does: a space is ``+``), ``data/<uuid>.parquet``
  (Snappy) or ``data/<uuid>.orc`` (ZLIB), the rows shuffled across several
  files (AWS's files are in no order);
- ``<YYYY-MM-DDTHH-MMZ>/manifest.json`` with ``sourceBucket``,
  ``destinationBucket`` (an ARN), ``version``, ``creationTimestamp`` (ms),
  ``fileFormat``, ``fileSchema`` (in each format's own notation) and
  ``files`` (key, size, ``MD5checksum``), and ``manifest.checksum`` (the MD5
  of the manifest), written last.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.orc as paorc
import pyarrow.parquet as pq


@dataclass
class Row:
    """One object (or version) as a report lists it."""

    key: str
    size: int | None
    modified: datetime | None
    etag: str | None
    version_id: str | None = None
    is_latest: bool = True
    is_delete_marker: bool = False


CSV_FIELDS = {
    "Bucket": "bucket",
    "Key": "key",
    "VersionId": "version_id",
    "IsLatest": "is_latest",
    "IsDeleteMarker": "is_delete_marker",
    "Size": "size",
    "LastModifiedDate": "last_modified_date",
    "ETag": "e_tag",
    "StorageClass": "storage_class",
}
PARQUET_TYPES = {
    "bucket": "required binary bucket (STRING)",
    "key": "required binary key (STRING)",
    "version_id": "optional binary version_id (STRING)",
    "is_latest": "optional boolean is_latest",
    "is_delete_marker": "optional boolean is_delete_marker",
    "size": "optional int64 size",
    "last_modified_date": "optional int64 last_modified_date (TIMESTAMP(MILLIS,true))",
    "e_tag": "optional binary e_tag (STRING)",
    "storage_class": "optional binary storage_class (STRING)",
}
ORC_TYPES = {
    "bucket": "string",
    "key": "string",
    "version_id": "string",
    "is_latest": "boolean",
    "is_delete_marker": "boolean",
    "size": "bigint",
    "last_modified_date": "timestamp",
    "e_tag": "string",
    "storage_class": "string",
}


def fields_for(versions: bool, schema: list[str] | None = None) -> list[str]:
    """The report's CSV field names: AWS's order, version fields only for an all-versions report."""
    if schema is not None:
        return schema
    base = ["Bucket", "Key"]
    if versions:
        base += ["VersionId", "IsLatest", "IsDeleteMarker"]
    return [*base, "Size", "LastModifiedDate", "ETag", "StorageClass"]


def java_url_encode(key: str) -> str:
    """``java.net.URLEncoder.encode(key, "UTF-8")``: what AWS writes for a key in a CSV report."""
    out = []
    for byte in key.encode("utf-8"):
        ch = chr(byte)
        if ch.isascii() and (ch.isalnum() or ch in ".-*_"):
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _value(row: Row, column: str, bucket: str) -> Any:
    return {
        "bucket": bucket,
        "key": row.key,
        "version_id": row.version_id,
        "is_latest": row.is_latest,
        "is_delete_marker": row.is_delete_marker,
        "size": row.size,
        "last_modified_date": row.modified,
        "e_tag": row.etag,
        "storage_class": None if row.is_delete_marker else "STANDARD",
    }[column]


def _csv_cell(value: Any, column: str) -> str:
    if value is None:
        return ""
    if column == "key":
        return java_url_encode(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return str(value)


def encode_file(rows: list[Row], fmt: str, columns: list[str], bucket: str) -> bytes:
    """One data file of ``rows`` in ``fmt`` (``CSV``, ``Parquet``, ``ORC``) with ``columns``."""
    if fmt == "CSV":
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for row in rows:
            writer.writerow([_csv_cell(_value(row, c, bucket), c) for c in columns])
        return gzip.compress(text.getvalue().encode("utf-8"))
    types = {
        "bucket": pa.string(),
        "key": pa.string(),
        "version_id": pa.string(),
        "is_latest": pa.bool_(),
        "is_delete_marker": pa.bool_(),
        "size": pa.int64(),
        "last_modified_date": pa.timestamp("ms", tz="UTC") if fmt == "Parquet" else pa.timestamp("ms"),
        "e_tag": pa.string(),
        "storage_class": pa.string(),
    }
    arrays = {}
    for column in columns:
        values = [_value(row, column, bucket) for row in rows]
        if column == "last_modified_date" and fmt == "ORC":
            values = [v.astimezone(UTC).replace(tzinfo=None) if v is not None else None for v in values]
        arrays[column] = pa.array(values, types[column])
    table = pa.table(arrays)
    sink = io.BytesIO()
    if fmt == "Parquet":
        pq.write_table(table, sink, compression="snappy")
    else:
        paorc.write_table(table, sink, compression="zlib")
    return sink.getvalue()


def file_schema(fmt: str, columns: list[str]) -> str:
    """The manifest's ``fileSchema`` in ``fmt``'s own notation."""
    if fmt == "Parquet":
        return "message s3.inventory { " + " ".join(f"{PARQUET_TYPES[c]};" for c in columns) + "}"
    if fmt == "ORC":
        return "struct<" + ",".join(f"{c}:{ORC_TYPES[c]}" for c in columns) + ">"
    names = {v: k for k, v in CSV_FIELDS.items()}
    return ", ".join(names[c] for c in columns)


def folder_of(taken: datetime) -> str:
    """The report folder's name for a report that began at ``taken``."""
    return taken.astimezone(UTC).strftime("%Y-%m-%dT%H-%MZ")


def write_report(
    client: Any,
    *,
    dest: str,
    prefix: str,
    source: str,
    config_id: str,
    rows: list[Row],
    fmt: str,
    taken: datetime,
    versions: bool = False,
    files: int = 3,
    schema: list[str] | None = None,
    manifest_source: str | None = None,
    corrupt_checksum: bool = False,
    corrupt_file: bool = False,
    rows_bucket: str | None = None,
    missing_column: str | None = None,
    with_checksum: bool = True,
    seed: int = 0,
) -> str:
    """Write one report (see the module docstring); returns the report location ``s3://dest/.../config/``.

    ``schema`` overrides the CSV field names (a schema without ``Key``);
    ``manifest_source`` the manifest's ``sourceBucket``; ``corrupt_checksum``
    writes a wrong ``manifest.checksum``, ``corrupt_file`` replaces a data
    file after its MD5 was recorded (by a readable one, a row short);
    ``rows_bucket`` is the bucket the data files' rows name, and
    ``missing_column`` a column of the fileSchema the data files lack;
    ``with_checksum=False`` leaves the report incomplete.
    """
    base = f"{prefix.strip('/')}/{source}/{config_id}/".lstrip("/")
    csv_names = fields_for(versions, schema)
    columns = [CSV_FIELDS.get(name, name.lower()) for name in csv_names]
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    extension = {"CSV": "csv.gz", "Parquet": "parquet", "ORC": "orc"}[fmt]
    entries = []
    written = [c for c in columns if c != missing_column]
    for index in range(files):
        part = shuffled[index::files]
        body = encode_file(part, fmt, written, rows_bucket or source)
        key = f"{base}data/{uuid.UUID(int=random.Random(seed * 100 + index).getrandbits(128))}.{extension}"
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if corrupt_file and index == 0:
            # a well-formed file, but not the one the manifest's MD5 is of: only the MD5 tells them apart
            body = encode_file(part[1:], fmt, written, rows_bucket or source)
        client.put_object(Bucket=dest, Key=key, Body=body)
        entries.append({"key": key, "size": len(body), "MD5checksum": md5})
    manifest = {
        "sourceBucket": manifest_source or source,
        "destinationBucket": f"arn:aws:s3:::{dest}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(taken.timestamp() * 1000)),
        "fileFormat": fmt,
        "fileSchema": file_schema(fmt, columns),
        "files": entries,
    }
    body = json.dumps(manifest, indent=2).encode()
    folder = f"{base}{folder_of(taken)}/"
    client.put_object(Bucket=dest, Key=f"{folder}manifest.json", Body=body)
    if with_checksum:
        checksum = hashlib.md5(body + (b"x" if corrupt_checksum else b""), usedforsecurity=False).hexdigest()
        client.put_object(Bucket=dest, Key=f"{folder}manifest.checksum", Body=checksum.encode())
    return f"s3://{dest}/{base}"


def rows_of(client: Any, bucket: str, prefix: str = "") -> list[Row]:
    """The bucket's objects now, as a report taken now would list them (from one listing)."""
    rows = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            rows.append(Row(obj["Key"], obj["Size"], obj["LastModified"], obj["ETag"].strip('"')))
    return rows
