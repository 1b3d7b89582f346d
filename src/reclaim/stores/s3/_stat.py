"""``stat`` of many S3 keys at once: one listing of their key range where that is cheaper.

Quarantine and purge stat a whole batch of keys, sorted. One ``HeadObject``
per key is one request per key; one ``ListObjectsV2`` page answers up to 1000
keys of a range with the same size, mtime and ETag (S3's listing and
``HeadObject`` report the same values). So :func:`stat_many`:

1. lists the range ``[first, last]`` of the sorted keys (``StartAfter`` just
   below the first key, ``Prefix`` their common prefix, stopping at the first
   key past the last one), spending at most ``len(keys) // max_keys + 2``
   pages: about what the keys would cost if they were dense in their range;
2. settles every key up to where the listing got (listed: found; not listed:
   missing, because a listing is complete over the range it covered);
3. sends ``HeadObject`` for the keys the budget did not reach, several at a
   time on s3fs's event loop.

Dense keys (a prefix of orphans, shards of a Zarr archive) cost a page per
1000 keys; sparse keys cost at most two pages more than one ``HeadObject``
each. A failed page or request raises ``StoreError``: an answer is complete or
an error, so a key is never reported missing because a request failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from fsspec.asyn import sync

from reclaim.stores.base import ObjectInfo, validate_key
from reclaim.stores.partitioned import just_below
from reclaim.stores.s3._client import MAX_KEY_BYTES, NOT_FOUND, BucketClient, error_code, etag_of, info_of

__all__ = ["HEAD_CONCURRENCY", "stat_many"]

#: pages a range listing may spend beyond one per ``max_keys`` keys asked for
EXTRA_PAGES: Final = 2
#: below this many keys a ``HeadObject`` each is never dearer than a listing
MIN_KEYS_TO_LIST: Final = 3
#: ``HeadObject`` requests in flight at once
HEAD_CONCURRENCY: Final = 16


def stat_many(client: BucketClient, keys: Sequence[str], *, span: int | None = None) -> dict[str, ObjectInfo]:
    """What ``HeadObject`` says of each of ``keys`` that exists, by key; missing keys are left out.

    ``span``, where the caller knows it (an inventory report does), is how
    many objects lie from the first key to the last: when listing them would
    take more round trips (a page per ``max_keys``) than ``HeadObject`` for
    each key, :data:`HEAD_CONCURRENCY` at a time, no listing is tried. Raises
    ``ValueError`` for an invalid key (before any request) and ``StoreError``
    when a listing page or a ``HeadObject`` fails.
    """
    wanted = sorted({validate_key(key) for key in keys})
    found: dict[str, ObjectInfo] = {}
    rest = wanted
    sparse = span is not None and -(-span // client.max_keys) > -(-len(wanted) // HEAD_CONCURRENCY)
    if len(wanted) >= MIN_KEYS_TO_LIST and not sparse:
        reached = _list_range(client, wanted, found)
        if reached is not None:
            rest = [key for key in wanted if key > reached]
    found |= _head_each(client, rest)
    return found


def _list_range(client: BucketClient, wanted: list[str], found: dict[str, ObjectInfo]) -> str | None:
    """List from ``wanted[0]`` towards ``wanted[-1]`` within the page budget, adding what it finds.

    Returns the key up to which every key of ``wanted`` is settled (``None``:
    not even the first one).
    """
    first, last = wanted[0], wanted[-1]
    asked = set(wanted)
    request: dict[str, Any] = {
        "Bucket": client.bucket,
        "Prefix": client.prefix + _common_prefix(first, last),
        "MaxKeys": client.max_keys,
    }
    after = _start_after(client.prefix, first)
    if after is not None:
        request["StartAfter"] = after
    reached: str | None = None
    for _ in range(len(wanted) // client.max_keys + EXTRA_PAGES):
        try:
            page = client.call("list_objects_v2", **request)
        except Exception as exc:
            raise client.fail("listing a key range to stat it failed", exc, key=first) from None
        for obj in page.get("Contents", ()):
            key = client.key_of(obj)
            if reached is not None and key <= reached:
                raise client.fail(f"the listing is not in byte order: {key!r} after {reached!r}")
            if key > last:
                return last
            if key in asked:
                found[key] = info_of(key, obj)
            reached = key
        if not page.get("IsTruncated"):
            return last  # the listing ended: every key asked for that it did not show is missing
        token = page.get("NextContinuationToken")
        if not token:
            raise client.fail("a truncated listing page came without a continuation token")
        request.pop("StartAfter", None)
        request["ContinuationToken"] = token
    return reached


def _common_prefix(first: str, last: str) -> str:
    """The longest string both keys start with (character by character, not by path segment)."""
    size = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        size += 1
    return first[:size]


def _start_after(prefix: str, first: str) -> str | None:
    """A ``StartAfter`` just below ``prefix + first`` that S3 accepts (``None``: list from the prefix)."""
    for candidate in (just_below(first), first[:-1] or None):
        if candidate is None:
            return None
        if len((prefix + candidate).encode()) <= MAX_KEY_BYTES:
            return prefix + candidate
    return None  # pragma: no cover - a key of at most 1024 bytes has a shorter candidate


def _head_each(client: BucketClient, keys: list[str]) -> dict[str, ObjectInfo]:
    """``HeadObject`` for each of ``keys``, :data:`HEAD_CONCURRENCY` at a time; missing keys left out."""
    if not keys:
        return {}
    if len(keys) == 1:
        try:
            return {keys[0]: client.head(keys[0])}
        except FileNotFoundError:
            return {}
    try:
        client.open_session()  # one client, before the requests share it
    except Exception as exc:
        raise client.fail("stat failed", exc, key=keys[0]) from None
    answers = sync(client.fs.loop, _heads, client, keys)
    found: dict[str, ObjectInfo] = {}
    for key, answer in zip(keys, answers, strict=True):
        if isinstance(answer, BaseException):
            if error_code(answer) in NOT_FOUND:
                continue  # missing keys are left out of the answer
            if not isinstance(answer, Exception):
                raise answer
            raise client.fail("stat failed", answer, key=key) from None
        size, modified = int(answer["ContentLength"]), answer["LastModified"].timestamp()
        found[key] = ObjectInfo(key, size, modified, etag_of(answer))
    return found


async def _heads(client: BucketClient, keys: list[str]) -> list[Any]:
    limit = asyncio.Semaphore(HEAD_CONCURRENCY)

    async def head(key: str) -> Any:
        async with limit:
            return await client.acall("head_object", {"Bucket": client.bucket, "Key": client.prefix + key})

    return await asyncio.gather(*(head(key) for key in keys), return_exceptions=True)
