"""Finding and trusting an S3 Inventory report: the newest complete one, its manifest checked.

AWS delivers a report of source bucket ``S`` and configuration ``C`` under
``s3://<dest>/<prefix>/S/C/``: one folder per report, named by the instant it
began scanning the bucket (``YYYY-MM-DDTHH-MMZ/``), holding ``manifest.json``
(what the report is and the data files it is made of) and
``manifest.checksum`` (the MD5 of ``manifest.json``, written last). So:

- the **newest complete** report is the newest dated folder holding both files
  (a folder without its checksum is still being delivered and is passed over);
  none at all is a :class:`~reclaim.errors.StoreError`;
- its **checksum** must match, it must be of the store's **bucket**
  (``sourceBucket``), in a known **format** (``CSV``, ``Parquet``, ``ORC``),
  with a **schema** that has the key; each data file it names is checked
  against its ``MD5checksum`` when it is read (:mod:`._read`);
- it must be no older than ``max_inventory_age``.

Every refusal is a ``StoreError`` naming the file (fail closed: a report that
is not understood is never listed from). :func:`report_date` is the instant
the report describes, which caps the age threshold of a scan.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from reclaim.errors import StoreError
from reclaim.stores.s3._client import NOT_FOUND, BucketClient, error_code

__all__ = [
    "FIELDS",
    "DataFile",
    "Report",
    "find_report",
    "parse_location",
]

_FOLDER: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})Z/$")
FORMATS: Final = ("CSV", "Parquet", "ORC")

FIELDS: Final = {
    # the CSV schema's names (``Bucket, Key, ...``) -> the Parquet/ORC column names
    "Bucket": "bucket",
    "Key": "key",
    "VersionId": "version_id",
    "IsLatest": "is_latest",
    "IsDeleteMarker": "is_delete_marker",
    "Size": "size",
    "LastModifiedDate": "last_modified_date",
    "ETag": "e_tag",
}
"""The report fields reclaim reads (others, like ``StorageClass``, are ignored)."""


@dataclass(frozen=True, slots=True)
class DataFile:
    """One data file of a report: its key in the destination bucket, size and MD5 (hex)."""

    key: str
    size: int | None
    md5: str


@dataclass(frozen=True, slots=True)
class Report:
    """A report whose manifest was checked: where it is, what it holds and when it was taken."""

    bucket: str
    """The destination bucket (where the report's files are)."""
    manifest_key: str
    source_bucket: str
    file_format: str
    columns: tuple[str, ...]
    """The schema's column names in file order, as Parquet and ORC name them (``key``, ``size``...)."""
    files: tuple[DataFile, ...]
    taken_at: datetime
    """When the report began scanning the bucket: the earlier of its folder's date and
    ``creationTimestamp``. Objects modified after this instant may or may not be in it."""

    @property
    def url(self) -> str:
        """The manifest's ``s3://`` URL (for messages)."""
        return f"s3://{self.bucket}/{self.manifest_key}"


def parse_location(url: str) -> tuple[str, str]:
    """The bucket and key prefix (ending in ``/``) of an inventory destination URL.

    Raises ``ValueError`` unless it is ``s3://<bucket>/.../<source-bucket>/<config-id>/``.
    """
    if not url.startswith(("s3://", "s3a://")):
        raise ValueError(f"an inventory location is an s3:// URL, not {url!r}")
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    prefix = prefix.strip("/")
    if not bucket or prefix.count("/") < 1:
        raise ValueError(
            f"an inventory location names the report's folder, s3://<bucket>/<prefix>/<source-bucket>/"
            f"<config-id>/, not {url!r}"
        )
    return bucket, prefix + "/"


def find_report(
    client: BucketClient, source_bucket: str, *, max_age: timedelta, now: datetime | None = None
) -> Report:
    """The newest complete report under ``client``'s prefix, checked (see the module docstring).

    Raises :class:`StoreError` naming the file when there is no complete
    report, when the newest one is older than ``max_age`` or its manifest is
    corrupt, of another bucket or of an unknown format or schema.
    """
    now = now or datetime.now(UTC)
    where = f"s3://{client.bucket}/{client.prefix}"
    folders = sorted(_dated_folders(client), reverse=True)
    for taken, folder in folders:
        manifest_key = f"{client.prefix}{folder}manifest.json"
        checksum = _get(client, f"{client.prefix}{folder}manifest.checksum")
        if checksum is None:
            continue  # still being delivered: the checksum is written last
        body = _get(client, manifest_key)
        if body is None:
            continue
        report = _checked(client, manifest_key, body, checksum, source_bucket, taken)
        age = now - report.taken_at
        if age > max_age:
            raise client.fail(
                f"the newest complete inventory report {report.url} was taken {_hours(age)} ago, "
                f"longer than max_inventory_age ({_hours(max_age)}): refusing a stale listing"
            )
        return report
    found = f" ({len(folders)} dated folders, none complete)" if folders else ""
    raise client.fail(f"no complete inventory report under {where}{found}: nothing to list from")


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def _dated_folders(client: BucketClient) -> list[tuple[datetime, str]]:
    """The report folders (``YYYY-MM-DDTHH-MMZ/``) under the location, with their dates."""
    folders: list[tuple[datetime, str]] = []
    request: dict[str, Any] = {"Bucket": client.bucket, "Prefix": client.prefix, "Delimiter": "/"}
    while True:
        try:
            page = client.call("list_objects_v2", **request)
        except Exception as exc:
            raise client.fail(
                f"listing the inventory reports under s3://{client.bucket}/{client.prefix} failed", exc
            ) from None
        for common in page.get("CommonPrefixes", ()):
            folder = str(common.get("Prefix", ""))[len(client.prefix) :]
            match = _FOLDER.match(folder)
            if match is None:
                continue  # hive/, data/ and anything else that is not a report's folder
            try:
                year, month, day, hour, minute = (int(part) for part in match.groups())
                folders.append((datetime(year, month, day, hour, minute, tzinfo=UTC), folder))
            except ValueError:
                continue  # a folder name no report has (month 13): not a report
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return folders
        request["ContinuationToken"] = token


def _get(client: BucketClient, key: str) -> bytes | None:
    try:
        return bytes(client.call("get_object", Bucket=client.bucket, Key=key))
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise client.fail(f"reading s3://{client.bucket}/{key} failed", exc) from None


def _checked(
    client: BucketClient, manifest_key: str, body: bytes, checksum: bytes, source_bucket: str, taken: datetime
) -> Report:
    url = f"s3://{client.bucket}/{manifest_key}"

    def refuse(why: str) -> StoreError:
        return client.fail(f"inventory manifest {url}: {why}; refusing to list from it")

    expected = checksum.decode("ascii", "replace").strip().lower()
    actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
    if actual != expected:
        raise refuse(f"its MD5 is {actual}, manifest.checksum says {expected[:64]!r}")
    try:
        manifest = json.loads(body)
    except ValueError as exc:
        raise refuse(f"not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise refuse("not a JSON object")
    if manifest.get("sourceBucket") != source_bucket:
        raise refuse(f"it is a report of bucket {manifest.get('sourceBucket')!r}, not {source_bucket!r}")
    file_format = manifest.get("fileFormat")
    if file_format not in FORMATS:
        raise refuse(f"unknown fileFormat {file_format!r} (CSV, Parquet and ORC are read)")
    columns = parse_schema(str(manifest.get("fileSchema") or ""), file_format)
    if "key" not in columns:
        raise refuse(f"its fileSchema has no Key column: {manifest.get('fileSchema')!r}")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise refuse("it names no files")
    data_files = []
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise refuse(f"a file entry without a key: {str(item)[:200]!r}")
        md5 = item.get("MD5checksum")
        if not isinstance(md5, str) or not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
            raise refuse(f"file {item['key']!r} has no MD5checksum")
        size = item.get("size")
        data_files.append(DataFile(item["key"], size if isinstance(size, int) else None, md5.lower()))
    created = manifest.get("creationTimestamp")
    taken_at = taken
    if created is not None:
        try:
            stamp = datetime.fromtimestamp(int(created) / 1000, UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise refuse(f"creationTimestamp {created!r} is not milliseconds since the epoch") from None
        taken_at = min(taken, stamp)
    return Report(
        client.bucket, manifest_key, source_bucket, file_format, columns, tuple(data_files), taken_at
    )


def parse_schema(schema: str, file_format: str) -> tuple[str, ...]:
    """The column names of a manifest's ``fileSchema``, as Parquet and ORC name them.

    CSV: ``Bucket, Key, Size, ...`` (names outside :data:`FIELDS` keep their
    place, lower-cased); Parquet: ``message s3.inventory { required binary key
    (STRING); ... }``; ORC: ``struct<bucket:string,key:string,...>``.
    """
    if file_format == "CSV":
        names = [part.strip() for part in schema.split(",") if part.strip()]
        return tuple(FIELDS.get(name, name.lower()) for name in names)
    if file_format == "Parquet":
        body = schema.partition("{")[2].rpartition("}")[0]
        columns = []
        for field in body.split(";"):
            words = field.split("(")[0].split()
            if len(words) >= 3:
                columns.append(words[2])
        return tuple(columns)
    body = schema.strip()
    if body.startswith("struct<") and body.endswith(">"):
        body = body[len("struct<") : -1]
    return tuple(part.split(":")[0].strip() for part in body.split(",") if ":" in part)
