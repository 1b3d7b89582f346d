"""Reading a report's data files: downloaded, checked against their MD5, parsed with pyarrow.

Each data file the manifest names is copied to a temporary file (streamed, so
memory is one buffer), its MD5 compared with the manifest's ``MD5checksum``
(a mismatch is a :class:`~reclaim.errors.StoreError` naming the file: fail
closed) and only then parsed, in batches:

- ``CSV`` (gzip): no header, the columns of ``fileSchema`` in order; keys are
  URL-encoded as AWS writes them (form encoding: a space is ``+``), decoded
  with :func:`urllib.parse.unquote_plus`;
- ``Parquet`` and ``ORC``: the columns by name (``key``, ``size``,
  ``last_modified_date``, ``e_tag``, ``is_latest``, ``is_delete_marker``).

Every batch comes out *normalized* (:data:`COLUMNS`: the store key, size,
mtime in seconds, ETag) and *filtered* by :class:`KeyFilter`, all in Arrow
compute, never a Python object per row: only the latest version of a key,
never a delete marker (a key whose latest version is one does not exist),
only keys under the store's prefix (which is stripped) and the listing's
prefix, none under a skip prefix, only keys inside the include prefixes and
the range bounds, none that no valid key can name (invariant 8). A row of
another bucket fails closed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.orc as paorc
import pyarrow.parquet as pq

from reclaim.errors import StoreError
from reclaim.stores.inventory._manifest import DataFile, Report
from reclaim.stores.s3._client import BucketClient

__all__ = ["COLUMNS", "SCHEMA", "KeyFilter", "read_report"]

log = logging.getLogger("reclaim.stores.inventory")

SCHEMA: Final = pa.schema(
    [("key", pa.string()), ("size", pa.int64()), ("mtime", pa.float64()), ("etag", pa.string())]
)
"""What every normalized batch holds: the store key, size, mtime (seconds since the epoch, UTC), ETag."""
COLUMNS: Final = tuple(SCHEMA.names)

#: rows per batch read from a Parquet or ORC file, or block of CSV parsed
BATCH_ROWS: Final = 65_536
_CSV_BLOCK: Final = 4 << 20
_COPY_CHUNK: Final = 8 << 20
# a key no valid store key can name: absolute, empty or '.'/'..' segments, NUL (see validate_key)
_INVALID_KEY: Final = r"^/|//|(^|/)\.\.?(/|$)|\x00"


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """Which keys of a report a listing yields (in store keys, the store prefix stripped)."""

    store_prefix: str
    """The store's key prefix in its bucket ("" or ending in ``/``)."""
    prefix: str = ""
    skip: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    """Prefixes the store is limited to (empty: the whole store)."""
    start_after: str | None = None
    end_before: str | None = None


def read_report(
    client: BucketClient, report: Report, keys: KeyFilter, *, tempdir: str | None = None
) -> Iterator[pa.RecordBatch]:
    """Yield the report's rows as normalized, filtered batches (:data:`SCHEMA`), file by file.

    Raises :class:`StoreError` naming the file when one cannot be read, its
    MD5 does not match the manifest, it lacks a column the schema announced
    or it holds a row of another bucket.
    """
    for data_file in report.files:
        with tempfile.TemporaryDirectory(prefix="reclaim-inventory-", dir=tempdir) as scratch:
            path = os.path.join(scratch, "data")
            _download(client, report, data_file, path)
            try:
                for batch in _parse(report, path):
                    out = _normalized(client, report, data_file, batch, keys)
                    if out.num_rows:
                        yield out
            except StoreError:
                raise
            except (pa.ArrowException, ValueError, OSError) as exc:
                raise _refused(
                    client, report, data_file, f"it cannot be read as {report.file_format}: {exc}"
                ) from None


def _refused(client: BucketClient, report: Report, data_file: DataFile, why: str) -> StoreError:
    return client.fail(
        f"inventory data file s3://{report.bucket}/{data_file.key} (of {report.url}): {why}; "
        "refusing to list from the report"
    )


def _download(client: BucketClient, report: Report, data_file: DataFile, path: str) -> None:
    """Copy the data file to ``path``, computing its MD5 on the way; a mismatch fails closed."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with (
            client.fs.open(f"{report.bucket}/{data_file.key}", "rb", block_size=_COPY_CHUNK) as source,
            open(path, "wb") as target,
        ):
            while chunk := source.read(_COPY_CHUNK):
                digest.update(chunk)
                target.write(chunk)
    except FileNotFoundError:
        raise _refused(client, report, data_file, "it is missing") from None
    except Exception as exc:
        raise client.fail(
            f"reading inventory data file s3://{report.bucket}/{data_file.key} failed", exc
        ) from None
    if digest.hexdigest() != data_file.md5:
        raise _refused(
            client, report, data_file, f"its MD5 is {digest.hexdigest()}, the manifest says {data_file.md5}"
        )


def _parse(report: Report, path: str) -> Iterator[pa.RecordBatch]:
    wanted = [c for c in report.columns if c in _WANTED]
    if report.file_format == "Parquet":
        parquet = pq.ParquetFile(path)
        try:
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted)
        finally:
            parquet.close()
    elif report.file_format == "ORC":
        orc = paorc.ORCFile(path)
        for stripe in range(orc.nstripes):
            table = orc.read_stripe(stripe, columns=wanted)
            yield from (table.to_batches(BATCH_ROWS) if isinstance(table, pa.Table) else [table])
    else:
        types = {name: _CSV_TYPES.get(name, pa.string()) for name in report.columns}
        reader = pacsv.open_csv(
            pa.input_stream(path, compression="gzip"),
            read_options=pacsv.ReadOptions(column_names=list(report.columns), block_size=_CSV_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=wanted,
                null_values=[""],
                strings_can_be_null=True,
                true_values=["true", "True", "TRUE"],
                false_values=["false", "False", "FALSE"],
                timestamp_parsers=[pacsv.ISO8601],
            ),
        )
        for batch in reader:
            yield _decoded_keys(batch)


_WANTED: Final = frozenset(
    {"bucket", "key", "is_latest", "is_delete_marker", "size", "last_modified_date", "e_tag"}
)
_CSV_TYPES: Final = {
    "is_latest": pa.bool_(),
    "is_delete_marker": pa.bool_(),
    "size": pa.int64(),
    "last_modified_date": pa.timestamp("ms", tz="UTC"),
}


def _decoded_keys(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with its CSV keys URL-decoded (only keys holding ``%`` or ``+`` are touched)."""
    keys = batch.column("key")
    encoded = pc.match_substring_regex(keys, r"[%+]")
    if not pc.any(encoded).as_py():
        return batch
    decoded = pa.array(
        [
            unquote_plus(k, errors="strict") if e else k
            for k, e in zip(keys.to_pylist(), encoded.to_pylist(), strict=True)
        ],
        pa.string(),
    )
    return batch.set_column(batch.schema.get_field_index("key"), "key", decoded)


def _normalized(
    client: BucketClient, report: Report, data_file: DataFile, batch: pa.RecordBatch, keys: KeyFilter
) -> pa.RecordBatch:
    names = batch.schema.names
    missing = [c for c in report.columns if c in _WANTED and c not in names]
    if missing:
        raise _refused(
            client, report, data_file, f"it has no column {missing[0]!r} though fileSchema names it"
        )
    if "bucket" in names:
        other = pc.invert(pc.fill_null(pc.equal(batch.column("bucket"), report.source_bucket), False))
        if pc.any(other).as_py():
            first = pc.filter(batch.column("bucket"), other)[0].as_py()
            raise _refused(
                client,
                report,
                data_file,
                f"it lists objects of bucket {first!r}, not {report.source_bucket!r}",
            )
    key = batch.column("key")
    if key.null_count:
        raise _refused(client, report, data_file, "a row has no key")
    keep = pc.starts_with(key, keys.store_prefix + keys.prefix)
    if "is_latest" in names:
        keep = pc.and_(keep, pc.fill_null(batch.column("is_latest"), True))
    if "is_delete_marker" in names:
        keep = pc.and_(keep, pc.invert(pc.fill_null(batch.column("is_delete_marker"), False)))
    batch = batch.filter(keep)
    if not batch.num_rows:
        return pa.RecordBatch.from_pylist([], schema=SCHEMA)
    key = (
        pc.utf8_slice_codeunits(batch.column("key"), len(keys.store_prefix))
        if keys.store_prefix
        else batch.column("key")
    )
    keep = _key_filter(key, keys)
    columns = [
        key,
        _column(batch, "size", pa.int64()),
        _seconds(batch),
        _column(batch, "e_tag", pa.string()),
    ]
    out = pa.RecordBatch.from_arrays(columns, schema=SCHEMA)
    return out.filter(keep) if keep is not None else out


def _key_filter(key: Any, keys: KeyFilter) -> Any:
    """Which store keys the listing yields (see :class:`KeyFilter`), as an Arrow boolean array."""
    keep = pc.and_(pc.not_equal(key, ""), pc.invert(pc.match_substring_regex(key, _INVALID_KEY)))
    invalid = pc.sum(pc.invert(keep)).as_py() or 0
    if invalid:
        # ignoring these is safe: an object no valid key can name is never a candidate
        log.warning("skipping %d inventory rows whose key is not a valid store key", invalid)
    for skip in keys.skip:
        keep = pc.and_(keep, pc.invert(pc.starts_with(key, skip)))
    if keys.include:
        inside = pc.starts_with(key, keys.include[0])
        for scope in keys.include[1:]:
            inside = pc.or_(inside, pc.starts_with(key, scope))
        keep = pc.and_(keep, inside)
    if keys.start_after is not None:
        keep = pc.and_(keep, pc.greater(key, keys.start_after))
    if keys.end_before is not None:
        keep = pc.and_(keep, pc.less(key, keys.end_before))
    return keep


def _column(batch: pa.RecordBatch, name: str, kind: pa.DataType) -> Any:
    if name in batch.schema.names:
        return pc.cast(batch.column(name), kind)
    return pa.nulls(batch.num_rows, kind)


def _seconds(batch: pa.RecordBatch) -> Any:
    if "last_modified_date" not in batch.schema.names:
        return pa.nulls(batch.num_rows, pa.float64())
    stamps = pc.cast(batch.column("last_modified_date"), pa.timestamp("ms", tz="UTC"), safe=False)
    return pc.divide(pc.cast(pc.cast(stamps, pa.int64()), pa.float64()), 1000.0)
