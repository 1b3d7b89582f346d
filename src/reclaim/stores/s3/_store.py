"""The S3 store: the :class:`~reclaim.stores.base.Store` protocol and its S3 capabilities.

Object calls go through one :class:`~reclaim.stores.s3._client.BucketClient`;
the listing, ``stat_many`` and versioned restore are modules of their own
beside this one (see :mod:`reclaim.stores.s3`).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from reclaim.errors import StoreError
from reclaim.stores import _walk
from reclaim.stores.base import ObjectInfo, validate_key
from reclaim.stores.fsspec_store import DELETE_BATCH, FsspecStore, secret_values, store_error
from reclaim.stores.partitioned import list_partitioned
from reclaim.stores.s3 import _listing, _stat, _versions
from reclaim.stores.s3._client import (
    DEFAULT_CONFIG_KWARGS,
    MANAGED_COPY_THRESHOLD,
    NOT_FOUND,
    PRECONDITION,
    BucketClient,
    error_code,
    merged,
)

if TYPE_CHECKING:
    from reclaim.stores.base import PartitionableStore, VersionedStore

__all__ = ["S3Store"]


class S3Store(FsspecStore):
    """The bucket and key prefix of ``url``; ``max_keys`` is the page size of a listing.

    ``partitions`` > 1 lists a whole prefix as that many concurrent key ranges.
    """

    atomic_move = False

    def __init__(
        self,
        name: str,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        max_keys: int = 1000,
        partitions: int = 1,
    ) -> None:
        try:
            import s3fs
        except ImportError:
            raise StoreError(name, "S3 stores need s3fs: pip install 'reclaim[s3]'") from None
        bucket, _, prefix = url.split("://", 1)[-1].partition("/")
        prefix = prefix.rstrip("/")
        try:
            if not bucket:
                raise ValueError("an s3:// URL needs a bucket, e.g. s3://bucket/prefix")
            if prefix:
                validate_key(prefix)
        except ValueError as exc:
            raise StoreError(name, f"invalid store URL: {exc}") from None
        if not 1 <= max_keys <= 1000:
            raise StoreError(name, f"max_keys must be between 1 and 1000, not {max_keys}")
        if not isinstance(partitions, int) or partitions < 1:
            raise StoreError(name, f"list_partitions must be a positive integer, not {partitions!r}")
        options = dict(storage_options or {})
        options["config_kwargs"] = merged(DEFAULT_CONFIG_KWARGS, options.get("config_kwargs") or {})
        # a client of its own: no listing cache and no event hooks shared with other stores
        options["skip_instance_cache"] = True
        try:
            fs = s3fs.S3FileSystem(**options)
        except Exception as exc:
            raise store_error(name, "cannot open the store", exc, secrets=secret_values(options)) from None
        super().__init__(name, url, fs, f"{bucket}/{prefix}", secrets=secret_values(options))
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.max_keys = max_keys
        self.partitions = partitions
        self._client = BucketClient(
            name, fs, bucket, self.prefix, max_keys=max_keys, secrets=secret_values(options)
        )

    # -- listing ----------------------------------------------------------

    def list(
        self,
        prefix: str = "",
        *,
        skip: Sequence[str] = (),
        start_after: str | None = None,
        end_before: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """Stream the objects under ``prefix`` in key byte order, one ``ListObjectsV2`` page at a time.

        Yields size, mtime and ETag with each key. ``start_after``/``end_before``
        bound the key range (a bounded listing is always one stream; an
        unbounded one is partitioned when the store was opened with
        ``partitions`` > 1). A run of keys under a ``skip`` prefix that fills a
        page is jumped over with ``StartAfter``. Raises ``ValueError`` for an
        invalid prefix or bound (at once); ``StoreError`` (while iterating) if
        any page fails, the bucket is missing or the server returns keys out of
        order.
        """
        _walk.check_listing_args(prefix, skip, start_after, end_before)
        if self.partitions > 1 and start_after is None and end_before is None:
            return self._partitioned(prefix, tuple(skip))
        return _listing.list_objects(self._client, prefix, tuple(skip), start_after, end_before)

    def _partitioned(self, prefix: str, skip: tuple[str, ...]) -> Iterator[ObjectInfo]:
        try:
            self._client.open_session()  # one client, before the producer threads share it
        except Exception as exc:
            raise self._fail("listing failed", exc) from None
        yield from list_partitioned(
            self, prefix, skip=skip, partitions=self.partitions, page_size=self.max_keys, lister=self._range
        )

    def _range(
        self, prefix: str, *, skip: Sequence[str], start_after: str | None, end_before: str | None
    ) -> Iterator[ObjectInfo]:
        _walk.check_listing_args(prefix, skip, start_after, end_before)
        return _listing.list_objects(self._client, prefix, tuple(skip), start_after, end_before)

    def first_level(self, prefix: str = "") -> builtins.list[str]:
        """The common prefixes and keys one level under ``prefix`` (``Delimiter="/"``), sorted.

        One request of up to 1000 entries: enough to choose partition
        boundaries, which need not be exact. Raises ``ValueError`` for an
        invalid prefix and ``StoreError`` if the request fails.
        """
        return _listing.first_level(self._client, prefix)

    def bucket_client(self, bucket: str, prefix: str) -> BucketClient:
        """Requests to ``bucket`` under ``prefix`` with this store's client and credentials.

        For what lives in another bucket on the store's behalf (its S3
        Inventory reports); errors name this store, with its secrets masked.
        """
        return BucketClient(self.name, self.fs, bucket, prefix, max_keys=self.max_keys, secrets=self._secrets)

    # -- single objects ---------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Size, mtime and ETag of ``key`` (``HeadObject``); ``FileNotFoundError`` if missing."""
        return self._client.head(key)

    def stat_many(self, keys: Sequence[str], *, span: int | None = None) -> dict[str, ObjectInfo]:
        """Size, mtime and ETag of each of ``keys`` that exists, by key; missing keys are left out.

        Keys dense in their range are read from one ``ListObjectsV2`` of it (a
        page per 1000 keys), the others with ``HeadObject``, several at a time
        (see :mod:`reclaim.stores.s3._stat`). ``span``: how many objects lie
        from the first key to the last, where the caller knows (an inventory
        report); no listing is tried where it would cost more round trips
        than the ``HeadObject`` requests. Raises ``ValueError`` for an invalid
        key and ``StoreError`` when a request fails.
        """
        return _stat.stat_many(self._client, keys, span=span)

    def read(self, key: str) -> bytes:
        """The content of ``key`` (``GetObject``); ``FileNotFoundError`` if missing."""
        full = self._client.full_key(key)
        try:
            return bytes(self._client.call("get_object", Bucket=self.bucket, Key=full))
        except Exception as exc:
            raise self._client.error(exc, "read failed", key) from None

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` with one ``PutObject`` (atomic on S3); ``StoreError`` on failure."""
        full = self._client.full_key(key)
        try:
            self._client.call("put_object", Bucket=self.bucket, Key=full, Body=data)
        except Exception as exc:
            raise self._fail("write failed", exc, key=key) from None

    def move(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` server-side, then delete ``src`` if it is unchanged.

        Raises ``FileNotFoundError`` if ``src`` is missing, ``FileExistsError``
        if ``dst`` exists, ``StoreError`` otherwise. Crash-safe: the source is
        deleted only after the copy is complete, so at worst both exist.
        """
        client = self._client
        src_key, dst_key = client.full_key(src), client.full_key(dst)
        source = self.stat(src)
        if self.exists(dst):
            raise self._exists_error(dst)
        match = {"IfMatch": f'"{source.etag}"'} if source.etag else {}
        try:
            if (source.size or 0) <= MANAGED_COPY_THRESHOLD:
                copy_source = {"Bucket": self.bucket, "Key": src_key}
                conditions = {"CopySourceIfMatch": match["IfMatch"]} if match else {}
                client.call(
                    "copy_object",
                    Bucket=self.bucket,
                    Key=dst_key,
                    CopySource=copy_source,
                    IfNoneMatch="*",
                    **conditions,
                )
            else:
                client.copy_managed(f"{self.bucket}/{src_key}", f"{self.bucket}/{dst_key}", source.size or 0)
        except Exception as exc:
            if error_code(exc) in PRECONDITION:
                if self.exists(dst):
                    raise self._exists_error(dst) from None
                raise self._fail(
                    "the source changed during the move; nothing was moved", exc, key=src
                ) from None
            raise client.error(exc, f"copying to {dst!r} failed", src) from None
        try:
            client.call("delete_object", Bucket=self.bucket, Key=src_key, **match)
        except Exception as exc:
            if error_code(exc) in PRECONDITION:
                message = f"the source was rewritten while it was copied to {dst!r}; it was kept in place"
            else:
                message = f"copied to {dst!r} but deleting the source failed (both are kept)"
            raise self._fail(message, exc, key=src) from None

    def restore_version(self, key: str) -> bool:
        """Copy the newest stored version of ``key`` back to ``key``; whether there was one.

        For a purged object in a bucket that keeps versions (or kept them before
        versioning was suspended): the newest version that is not a delete
        marker is copied back server-side (``CopyObject`` with its
        ``VersionId``, part by part above 5 GiB), conditional on ``key`` not
        existing (``IfNoneMatch``). Returns ``False`` when no such version is
        left (an unversioned bucket, or the version expired). Raises
        ``FileExistsError`` if an object is stored at ``key`` (it is never
        overwritten), ``ValueError`` for an invalid key and ``StoreError`` on
        any other failure.
        """
        return _versions.restore_version(self._client, key)

    def versioning_status(self) -> str:
        """The bucket's versioning status: ``Enabled``, ``Suspended`` or ``""``; ``StoreError`` on failure."""
        return _versions.versioning_status(self._client)

    def noncurrent_expiry_problem(self, grace: timedelta) -> str | None:
        """Why the bucket's lifecycle cannot purge this store's noncurrent versions after ``grace``.

        ``None`` when an enabled rule covering the store's prefix expires every
        noncurrent version no sooner than ``grace`` (rounded up to whole days,
        as lifecycle rules count) and no rule over its keys expires them sooner.
        See :func:`reclaim.stores.s3._versions.noncurrent_expiry_problem`.
        """
        days = math.ceil(grace / timedelta(days=1))
        return _versions.noncurrent_expiry_problem(self._client, days)

    def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` with one ``DeleteObjects`` request per 1000 keys; missing keys are ignored.

        Every key is validated before anything is deleted. Raises ``StoreError``
        if a request or any key in it fails; keys of later batches are left in
        place, which only keeps them longer.
        """
        full = [self._client.full_key(key) for key in dict.fromkeys(keys)]
        for start in range(0, len(full), DELETE_BATCH):
            batch = full[start : start + DELETE_BATCH]
            objects = {"Objects": [{"Key": k} for k in batch], "Quiet": True}
            try:
                response = self._client.call("delete_objects", Bucket=self.bucket, Delete=objects)
            except Exception as exc:
                first = batch[0][len(self.prefix) :]
                raise self._fail(f"deleting a batch of {len(batch)} keys failed", exc, key=first) from None
            errors = [e for e in response.get("Errors", ()) if e.get("Code") not in NOT_FOUND]
            if errors:
                first = errors[0]
                detail = f"{first.get('Code')}: {first.get('Message')}"
                key = str(first.get("Key", ""))[len(self.prefix) :] or None
                raise self._fail(f"{len(errors)} of {len(batch)} deletes failed, first: {detail}", key=key)

    def close(self) -> None:
        """Close the HTTP session of this store's client; idempotent (a later request opens a new one)."""
        self._client.close()


if TYPE_CHECKING:  # the S3 store has both optional capabilities (checked by mypy)
    _versioned: type[VersionedStore] = S3Store
    _partitionable: type[PartitionableStore] = S3Store
