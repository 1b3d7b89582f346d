"""A store in an S3 bucket (``s3://bucket/prefix``), over s3fs's aiobotocore client.

Why not the generic adapter:

- **Listing streams.** ``fs.find`` builds the whole listing in memory; here
  ``ListObjectsV2`` is paged (``MaxKeys``, ``ContinuationToken``) one request
  per page as the consumer iterates, so memory is one page. S3 returns keys in
  UTF-8 byte order, the order the scan needs, together with size, mtime and
  ETag, so no stat call is ever needed. A failure on any page raises
  ``StoreError``: a listing is complete or an error.
- **Deletes are literal and checked.** ``fs.rm`` would expand ``*?[`` in keys as
  glob patterns and ignores per-key errors of ``DeleteObjects``; here each
  batch of up to 1000 keys is one ``DeleteObjects`` request and any per-key
  error (other than an already missing key) raises ``StoreError``.
- **Moves are guarded copies.** A move is copy + delete (``atomic_move`` is
  false, so ``mark`` is the default mode). The copy is conditional on the
  source ETag seen before (``CopySourceIfMatch``) and on the destination not
  existing (``IfNoneMatch``), and the source is deleted only if it still has
  that ETag (``IfMatch``): an object a writer rewrites mid-move stays in place.
  Servers that ignore these conditions still get the up-front checks.
- **Purged objects come back from versions.** In a bucket that keeps versions,
  a delete only adds a delete marker; :meth:`S3Store.restore_version` copies
  the newest remaining version of a key (``ListObjectVersions``, then
  ``CopyObject`` with the ``VersionId``) back to the key when nothing is
  stored there, and never overwrites an object that is.
- **Throttling is retried adaptively.** Unless the storage options say
  otherwise, the client is made with botocore's ``config_kwargs={"retries":
  {"mode": "adaptive", "max_attempts": 10}}``: a ``SlowDown`` or 503 is
  retried with backoff and the client paces its own request rate, so a large
  delete or listing slows down instead of failing. These defaults are merged
  under the user's ``config_kwargs`` key by key (the user's values win, e.g.
  ``{"retries": {"max_attempts": 3}}`` keeps the adaptive mode).

- **Listing can be partitioned.** With ``partitions > 1`` (the storage option
  ``list_partitions`` of :func:`~reclaim.stores.open_store`, default 1: one
  stream), a full listing splits the key space at first-level prefixes
  (:meth:`S3Store.first_level`) into that many disjoint ranges, lists them
  concurrently and yields them in order
  (:func:`~reclaim.stores.partitioned.list_partitioned`); a listing given
  ``start_after``/``end_before`` is always one stream.

Storage options (``key``, ``secret``, ``anon``, ``client_kwargs`` with
``endpoint_url``, ...) are passed to ``s3fs.S3FileSystem`` (all but
``list_partitions``); credential values are masked in every error message.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fsspec.asyn import sync

from reclaim.errors import StoreError
from reclaim.stores._s3_common import (
    MANAGED_COPY_THRESHOLD,
    MAX_KEY_BYTES,
    NOT_FOUND,
    PRECONDITION,
    error_code,
    etag_of,
    merged,
)
from reclaim.stores._s3_stat import stat_many
from reclaim.stores._s3_versions import restore_version
from reclaim.stores._walk import check_listing_args
from reclaim.stores.base import ObjectInfo, validate_key
from reclaim.stores.fsspec_store import DELETE_BATCH, FsspecStore, secret_values, store_error
from reclaim.stores.partitioned import list_partitioned

__all__ = ["S3Store"]

log = logging.getLogger(__name__)

_LAST_CHAR = "\U0010ffff"  # sorts after every other character: "p" + this is past every key "p..."
#: botocore client settings used unless the storage options' ``config_kwargs`` say otherwise
DEFAULT_CONFIG_KWARGS: Mapping[str, Any] = {"retries": {"mode": "adaptive", "max_attempts": 10}}


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

    # -- requests ---------------------------------------------------------

    def _call(self, method: str, **kwargs: Any) -> Any:
        """Run one request on s3fs's event loop and return the response (the body, for get_object)."""
        return sync(self.fs.loop, self._acall, method, kwargs)

    async def _acall(self, method: str, kwargs: dict[str, Any]) -> Any:
        await self.fs.set_session()
        client = await self.fs.get_s3(self.bucket)
        function = getattr(client, method)
        response = await function(**self.fs._get_s3_method_kwargs(function, **kwargs))
        if method != "get_object":
            return response
        body = response["Body"]
        try:
            return await body.read()
        finally:
            body.close()

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _error(self, exc: BaseException, action: str, key: str) -> Exception:
        if error_code(exc) in NOT_FOUND:
            return self._missing(key)
        return self._fail(action, exc, key=key)

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
        bound the key range (for parallel listing of ranges). A run of keys under
        a ``skip`` prefix that fills a page is jumped over with ``StartAfter``.
        Raises ``ValueError`` for an invalid prefix (at once); ``StoreError``
        (while iterating) if any page fails, the bucket is missing or the server
        returns keys out of order.
        """
        check_listing_args(prefix, skip, start_after, end_before)
        if self.partitions > 1 and start_after is None and end_before is None:
            return self._partitioned(prefix, tuple(skip))
        return self._stream(prefix, tuple(skip), start_after, end_before)

    def _partitioned(self, prefix: str, skip: tuple[str, ...]) -> Iterator[ObjectInfo]:
        try:
            sync(self.fs.loop, self.fs.set_session)  # one client, before the producer threads share it
        except Exception as exc:
            raise self._fail("listing failed", exc) from None
        yield from list_partitioned(self, prefix, skip=skip, partitions=self.partitions, lister=self._range)

    def _range(
        self, prefix: str, *, skip: Sequence[str], start_after: str | None, end_before: str | None
    ) -> Iterator[ObjectInfo]:
        check_listing_args(prefix, skip, start_after, end_before)
        return self._stream(prefix, tuple(skip), start_after, end_before)

    def first_level(self, prefix: str = "") -> builtins.list[str]:
        """The common prefixes and keys one level under ``prefix`` (``Delimiter="/"``), sorted.

        One request of up to 1000 entries: enough to choose partition
        boundaries, which need not be exact. Raises ``StoreError`` if the request fails.
        """
        check_listing_args(prefix, (), None, None)
        request = {"Bucket": self.bucket, "Prefix": self.prefix + prefix, "Delimiter": "/"}
        try:
            page = self._call("list_objects_v2", MaxKeys=1000, **request)
        except Exception as exc:
            raise self._fail("listing the first level failed", exc) from None
        names = [str(p["Prefix"]) for p in page.get("CommonPrefixes", ())]
        names += [str(o["Key"]) for o in page.get("Contents", ())]
        return sorted(n[len(self.prefix) :] for n in names if n.startswith(self.prefix) and n != self.prefix)

    def _stream(
        self, prefix: str, skip: tuple[str, ...], start_after: str | None, end_before: str | None
    ) -> Iterator[ObjectInfo]:
        token: str | None = None
        after = start_after
        previous: str | None = None
        while True:
            request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
            request["MaxKeys"] = self.max_keys
            if token is not None:
                request["ContinuationToken"] = token
            elif after is not None:
                request["StartAfter"] = self.prefix + after
            try:
                page = self._call("list_objects_v2", **request)
            except Exception as exc:
                # fail closed: a partial listing must never pass for a complete one
                raise self._fail("listing failed", exc) from None
            last: str | None = None
            for obj in page.get("Contents", ()):
                full = str(obj["Key"])
                if not full.startswith(self.prefix):
                    raise self._fail(f"the listing returned {full!r}, outside the store prefix")
                key = last = full[len(self.prefix) :]
                if previous is not None and key <= previous:
                    raise self._fail(f"the listing is not in byte order: {key!r} after {previous!r}")
                previous = key
                if end_before is not None and key >= end_before:
                    return
                if not key or any(key.startswith(s) for s in skip):
                    continue
                try:
                    validate_key(key)
                except ValueError:
                    # ignoring this is safe: an object no valid key can name is never a candidate
                    log.warning("store %r: skipping object %r, not a valid key", self.name, full)
                    continue
                yield ObjectInfo(key, int(obj["Size"]), obj["LastModified"].timestamp(), etag_of(obj))
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                raise self._fail("a truncated listing page came without a continuation token")
            jump = self._skip_jump(last, skip)
            if jump is not None:
                token, after = None, jump

    def _skip_jump(self, last: str | None, skip: tuple[str, ...]) -> str | None:
        """Where to restart when a page ended inside a skipped prefix (``StartAfter`` past all of it)."""
        if last is None:
            return None
        for skipped in skip:
            jump = skipped + _LAST_CHAR
            fits = len((self.prefix + jump).encode()) <= MAX_KEY_BYTES
            if last.startswith(skipped) and jump > last and fits:
                return jump
        return None

    # -- single objects ---------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Size, mtime and ETag of ``key`` (``HeadObject``); ``FileNotFoundError`` if missing."""
        full = self._key(key)
        try:
            head = self._call("head_object", Bucket=self.bucket, Key=full)
        except Exception as exc:
            raise self._error(exc, "stat failed", key) from None
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp(), etag_of(head))

    def stat_many(self, keys: Sequence[str]) -> dict[str, ObjectInfo]:
        """Size, mtime and ETag of each of ``keys`` that exists, by key; missing keys are left out.

        Keys dense in their range are read from one ``ListObjectsV2`` of it (a
        page per 1000 keys), the others with ``HeadObject``, several at a time
        (see :mod:`reclaim.stores._s3_stat`). Raises ``ValueError`` for an
        invalid key and ``StoreError`` when a request fails.
        """
        return stat_many(self, keys)

    def read(self, key: str) -> bytes:
        """The content of ``key`` (``GetObject``); ``FileNotFoundError`` if missing."""
        full = self._key(key)
        try:
            return bytes(self._call("get_object", Bucket=self.bucket, Key=full))
        except Exception as exc:
            raise self._error(exc, "read failed", key) from None

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` with one ``PutObject`` (atomic on S3); ``StoreError`` on failure."""
        full = self._key(key)
        try:
            self._call("put_object", Bucket=self.bucket, Key=full, Body=data)
        except Exception as exc:
            raise self._fail("write failed", exc, key=key) from None

    def move(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` server-side, then delete ``src`` if it is unchanged.

        Raises ``FileNotFoundError`` if ``src`` is missing, ``FileExistsError``
        if ``dst`` exists, ``StoreError`` otherwise. Crash-safe: the source is
        deleted only after the copy is complete, so at worst both exist.
        """
        src_key, dst_key = self._key(src), self._key(dst)
        source = self.stat(src)
        if self.exists(dst):
            raise self._exists_error(dst)
        match = {"IfMatch": f'"{source.etag}"'} if source.etag else {}
        try:
            if (source.size or 0) <= MANAGED_COPY_THRESHOLD:
                copy_source = {"Bucket": self.bucket, "Key": src_key}
                conditions = {"CopySourceIfMatch": match["IfMatch"]} if match else {}
                self._call(
                    "copy_object",
                    Bucket=self.bucket,
                    Key=dst_key,
                    CopySource=copy_source,
                    IfNoneMatch="*",
                    **conditions,
                )
            else:
                paths = (f"{self.bucket}/{src_key}", f"{self.bucket}/{dst_key}")
                sync(self.fs.loop, self.fs._copy_managed, *paths, source.size)
        except Exception as exc:
            if error_code(exc) in PRECONDITION:
                if self.exists(dst):
                    raise self._exists_error(dst) from None
                raise self._fail(
                    "the source changed during the move; nothing was moved", exc, key=src
                ) from None
            raise self._error(exc, f"copying to {dst!r} failed", src) from None
        try:
            self._call("delete_object", Bucket=self.bucket, Key=src_key, **match)
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
        return restore_version(self, key)

    def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` with one ``DeleteObjects`` request per 1000 keys; missing keys are ignored.

        Every key is validated before anything is deleted. Raises ``StoreError``
        if a request or any key in it fails; keys of later batches are left in
        place, which only keeps them longer.
        """
        full = [self._key(key) for key in dict.fromkeys(keys)]
        for start in range(0, len(full), DELETE_BATCH):
            batch = full[start : start + DELETE_BATCH]
            objects = {"Objects": [{"Key": k} for k in batch], "Quiet": True}
            try:
                response = self._call("delete_objects", Bucket=self.bucket, Delete=objects)
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
        """Close the HTTP session of this store's client (it is reopened on the next request)."""
        creator = getattr(self.fs, "_s3creator", None)
        if creator is not None and self.fs._s3 is not None:
            self.fs._s3 = None
            sync(self.fs.loop, creator.__aexit__, None, None, None)
