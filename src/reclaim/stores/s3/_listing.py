"""Listing an S3 store: ``ListObjectsV2`` page by page, in key byte order, failing closed.

:func:`list_objects` streams one key range (``Prefix``, ``StartAfter``,
stopping at ``end_before``), one request per page as the consumer iterates, so
memory is one page. S3 returns keys in UTF-8 byte order with size, mtime and
ETag, so no stat call is ever needed; the order is checked anyway. A run of
keys under a ``skip`` prefix that fills a page is jumped over with a new
``StartAfter`` past the whole prefix. :func:`first_level` is the one delimiter
request a partitioned listing chooses its boundaries from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from reclaim.stores._walk import check_listing_args
from reclaim.stores.base import ObjectInfo, validate_key
from reclaim.stores.s3._client import MAX_KEY_BYTES, BucketClient, info_of

__all__ = ["first_level", "list_objects"]

log = logging.getLogger("reclaim.stores.s3")

_LAST_CHAR = "\U0010ffff"  # sorts after every other character: "p" + this is past every key "p..."


def list_objects(
    client: BucketClient, prefix: str, skip: tuple[str, ...], start_after: str | None, end_before: str | None
) -> Iterator[ObjectInfo]:
    """Yield the objects under ``prefix`` with ``start_after < key < end_before``, in key byte order.

    Keys under a ``skip`` prefix and objects no valid key can name are left
    out. Raises ``StoreError`` (while iterating) if any page fails, the bucket
    is missing or the server returns keys out of order.
    """
    token: str | None = None
    after = start_after
    previous: str | None = None
    while True:
        request: dict[str, Any] = {"Bucket": client.bucket, "Prefix": client.prefix + prefix}
        request["MaxKeys"] = client.max_keys
        if token is not None:
            request["ContinuationToken"] = token
        elif after is not None:
            request["StartAfter"] = client.prefix + after
        try:
            page = client.call("list_objects_v2", **request)
        except Exception as exc:
            # fail closed: a partial listing must never pass for a complete one
            raise client.fail("listing failed", exc) from None
        last: str | None = None
        for obj in page.get("Contents", ()):
            key = last = client.key_of(obj)
            if previous is not None and key <= previous:
                raise client.fail(f"the listing is not in byte order: {key!r} after {previous!r}")
            previous = key
            if end_before is not None and key >= end_before:
                return
            if not key or any(key.startswith(s) for s in skip):
                continue
            try:
                validate_key(key)
            except ValueError:
                # ignoring this is safe: an object no valid key can name is never a candidate
                log.warning(
                    "store %r: skipping object %r, not a valid key", client.store, client.prefix + key
                )
                continue
            yield info_of(key, obj)
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")
        if not token:
            raise client.fail("a truncated listing page came without a continuation token")
        jump = _skip_jump(client.prefix, last, skip)
        if jump is not None:
            token, after = None, jump


def first_level(client: BucketClient, prefix: str) -> list[str]:
    """The common prefixes and keys one level under ``prefix`` (``Delimiter="/"``), sorted.

    One request of up to 1000 entries: enough to choose partition boundaries,
    which need not be exact. Raises ``ValueError`` for an invalid prefix and
    ``StoreError`` if the request fails.
    """
    check_listing_args(prefix, (), None, None)
    request = {"Bucket": client.bucket, "Prefix": client.prefix + prefix, "Delimiter": "/"}
    try:
        page = client.call("list_objects_v2", MaxKeys=1000, **request)
    except Exception as exc:
        raise client.fail("listing the first level failed", exc) from None
    names = [str(p["Prefix"]) for p in page.get("CommonPrefixes", ())]
    names += [str(o["Key"]) for o in page.get("Contents", ())]
    root = client.prefix
    return sorted(n[len(root) :] for n in names if n.startswith(root) and n != root)


def _skip_jump(root: str, last: str | None, skip: tuple[str, ...]) -> str | None:
    """Where to restart when a page ended inside a skipped prefix (``StartAfter`` past all of it)."""
    if last is None:
        return None
    for skipped in skip:
        jump = skipped + _LAST_CHAR
        fits = len((root + jump).encode()) <= MAX_KEY_BYTES
        if last.startswith(skipped) and jump > last and fits:
            return jump
    return None
