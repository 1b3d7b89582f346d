"""S3-native quarantine (``mode = "versioned"``): delete markers over kept versions, and reading them.

In a bucket whose versioning is enabled, a ``DeleteObjects`` without a
``VersionId`` does not delete anything: it puts a delete marker over the
current version, so the key stops being served at once while the version is
kept. Deleting that marker (``DeleteObjects`` with its ``VersionId``) makes
the same version current again: no copy, the same bytes and the same version
id. Deleting the version itself (with its ``VersionId``) is the purge.

- :func:`hide` sends the first kind (one request per 1000 keys, ``Quiet``
  off, so that each key's ``DeleteMarkerVersionId`` comes back);
- :func:`delete_versions` the second (one request per 1000 versions; a
  version already gone counts as deleted: deletes are idempotent);
- :func:`served_versions` reads the version each of many keys serves from
  one ``ListObjectVersions`` of their common prefix where they are dense (a
  page holds the versions and the delete markers as two lists, and
  ``IsLatest`` tells which one is current; a page budget bounds the
  listing), and from ``HeadObject`` (its ``VersionId``), several at a time,
  for the keys the listing did not reach, as
  :mod:`~reclaim.stores.s3._stat` does for objects. No ``KeyMarker`` starts
  the listing: moto drops the first version after a ``KeyMarker`` given
  without a ``VersionIdMarker``;
- :func:`versions` lists every version of exactly one key (recovery looks for
  its delete marker above the version it recorded).

A failed request raises ``StoreError``: an answer is complete or an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from reclaim.stores.base import Version, validate_key
from reclaim.stores.fsspec_store import DELETE_BATCH
from reclaim.stores.s3._client import NOT_FOUND, BucketClient, etag_of
from reclaim.stores.s3._stat import common_prefix, head_each

__all__ = ["delete_versions", "hide", "served_versions", "versions"]

#: listing pages a range may spend beyond two per ``max_keys`` keys asked for (a hidden key has two)
EXTRA_PAGES: Final = 2
#: below this many keys a ``HeadObject`` each is never dearer than listing their range
MIN_KEYS_TO_LIST: Final = 3
#: per-key errors of a delete that mean the version is gone already
_GONE: Final = NOT_FOUND | {"NoSuchVersion"}


def hide(client: BucketClient, keys: Sequence[str]) -> dict[str, str]:
    """Put a delete marker over the current version of each of ``keys``; the markers' version ids by key.

    A key the answer names without a delete marker is left out (a server
    that makes none for a key with no current version). Raises
    ``ValueError`` for an invalid key (before any request) and ``StoreError``
    when a request or a key fails, or when a whole request made no delete
    marker at all: the bucket does not keep versions, and the run must stop
    at once (the up-front check of the versioning status is what prevents it).
    """
    full = [client.full_key(key) for key in dict.fromkeys(keys)]
    markers: dict[str, str] = {}
    for start in range(0, len(full), DELETE_BATCH):
        batch = full[start : start + DELETE_BATCH]
        response = _delete(client, [{"Key": k} for k in batch], quiet=False)
        made = 0
        for deleted in response.get("Deleted", ()):
            marker = deleted.get("DeleteMarkerVersionId")
            if deleted.get("DeleteMarker") and marker:
                markers[client.key_of(deleted)] = str(marker)
                made += 1
        if not made:
            first = batch[0][len(client.prefix) :]
            raise client.fail(
                "the delete made no delete marker: the bucket does not keep versions", key=first
            )
    return markers


def delete_versions(client: BucketClient, versions: Sequence[tuple[str, str]]) -> None:
    """Delete each ``(key, version_id)`` for good; versions already gone are ignored.

    Raises ``ValueError`` for an invalid key and ``StoreError`` when a request
    or a version fails (later requests are not sent: their versions are kept,
    which only keeps them longer).
    """
    objects = [{"Key": client.full_key(key), "VersionId": vid} for key, vid in dict.fromkeys(versions)]
    for start in range(0, len(objects), DELETE_BATCH):
        _delete(client, objects[start : start + DELETE_BATCH], quiet=True)


def _delete(client: BucketClient, objects: list[dict[str, str]], *, quiet: bool) -> Any:
    first = objects[0]["Key"][len(client.prefix) :]
    try:
        response = client.call(
            "delete_objects", Bucket=client.bucket, Delete={"Objects": objects, "Quiet": quiet}
        )
    except Exception as exc:
        raise client.fail(f"deleting a batch of {len(objects)} failed", exc, key=first) from None
    errors = [e for e in response.get("Errors", ()) if e.get("Code") not in _GONE]
    if errors:
        error = errors[0]
        detail = f"{error.get('Code')}: {error.get('Message')}"
        key = str(error.get("Key", ""))[len(client.prefix) :] or None
        raise client.fail(f"{len(errors)} of {len(objects)} deletes failed, first: {detail}", key=key)
    return response


def served_versions(client: BucketClient, keys: Sequence[str]) -> dict[str, Version]:
    """The version served at each of ``keys`` that serves one (no delete marker over it), by key.

    Raises ``ValueError`` for an invalid key (before any request) and
    ``StoreError`` when a request fails.
    """
    wanted = sorted({validate_key(key) for key in keys})
    found: dict[str, Version] = {}
    rest = wanted
    if len(wanted) >= MIN_KEYS_TO_LIST:
        reached = _list_range(client, wanted, found)
        if reached is not None:
            rest = [key for key in wanted if key > reached]
    for key, head in head_each(client, rest).items():
        version = head.get("VersionId")
        found[key] = Version(
            key,
            str(version or "null"),
            delete_marker=False,
            latest=True,
            size=int(head["ContentLength"]),
            mtime=head["LastModified"].timestamp(),
            etag=etag_of(head),
        )
    return found


def versions(client: BucketClient, key: str) -> list[Version]:
    """Every version and delete marker of exactly ``key``; ``StoreError`` on failure."""
    full = client.full_key(key)
    out: list[Version] = []
    for page in _pages(client, {"Prefix": full}, key=key):
        items = list(_items(client, page))
        out += [item for item in items if item.key == key]
        if any(item.key != key for item in items):
            break  # past the key: every other key it prefixes sorts after it
    return out


def _list_range(client: BucketClient, wanted: list[str], found: dict[str, Version]) -> str | None:
    """List versions from ``wanted[0]`` towards ``wanted[-1]`` within the budget, adding the served ones.

    Returns the key up to which every key of ``wanted`` is settled (``None``:
    not even the first one). A key's current version is the first item of
    that key in the listing, so once any item of a key was listed its current
    version was too.
    """
    first, last = wanted[0], wanted[-1]
    asked = set(wanted)
    # no KeyMarker to start just below the first key: moto drops the first version after a
    # KeyMarker given without a VersionIdMarker; the common prefix bounds the listing instead
    request: dict[str, Any] = {"Prefix": client.prefix + common_prefix(first, last)}
    reached: str | None = None
    budget = 2 * len(wanted) // client.max_keys + EXTRA_PAGES
    for spent, page in enumerate(_pages(client, request, key=first), start=1):
        items = list(_items(client, page))
        for item in items:
            if item.key in asked and item.latest and not item.delete_marker:
                found[item.key] = item
        if items:
            top = max(item.key for item in items)
            if top > last:
                return last
            reached = top if reached is None or top > reached else reached
        if not page.get("IsTruncated"):
            return last  # the listing ended: every key asked for that it did not show has no version
        if spent >= budget:
            break
    # the last key listed may continue on the next page, but its current version came first
    return reached


def _pages(client: BucketClient, request: Mapping[str, Any], *, key: str) -> Iterator[Any]:
    """The pages of one ``ListObjectVersions``, requested as the caller iterates."""
    asked: dict[str, Any] = {"Bucket": client.bucket, "MaxKeys": client.max_keys, **request}
    while True:
        try:
            page = client.call("list_object_versions", **asked)
        except Exception as exc:
            raise client.fail("listing the versions failed", exc, key=key) from None
        yield page
        if not page.get("IsTruncated"):
            return
        key_marker, version_marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
        if not key_marker:
            raise client.fail("a truncated version listing came without a key marker", key=key)
        asked["KeyMarker"] = key_marker
        if version_marker:
            asked["VersionIdMarker"] = version_marker
        else:
            asked.pop("VersionIdMarker", None)


def _items(client: BucketClient, page: Mapping[str, Any]) -> Iterator[Version]:
    """The versions and delete markers of a page under the store's prefix, as :class:`Version`."""
    for listed in page.get("Versions", ()):
        if not str(listed.get("Key", "")).startswith(client.prefix):
            continue
        yield Version(
            client.key_of(listed),
            str(listed["VersionId"]),
            delete_marker=False,
            latest=bool(listed.get("IsLatest")),
            size=int(listed.get("Size") or 0),
            mtime=listed["LastModified"].timestamp(),
            etag=etag_of(listed),
        )
    for listed in page.get("DeleteMarkers", ()):
        if not str(listed.get("Key", "")).startswith(client.prefix):
            continue
        yield Version(
            client.key_of(listed),
            str(listed["VersionId"]),
            delete_marker=True,
            latest=bool(listed.get("IsLatest")),
        )
