"""Bringing a purged object back from its newest noncurrent version (buckets that keep versions).

In a bucket that keeps versions, a delete only adds a delete marker:
:func:`restore_version` finds the newest remaining version of exactly the key
(``ListObjectVersions``) and copies it back server-side (``CopyObject`` with
its ``VersionId``, part by part above 5 GiB) when nothing is stored at the key,
conditional on that (``IfNoneMatch``): an object stored there is never
overwritten.
"""

from __future__ import annotations

from typing import Any

from reclaim.stores.s3._client import (
    MANAGED_COPY_THRESHOLD,
    NOT_FOUND,
    PRECONDITION,
    BucketClient,
    error_code,
)

__all__ = ["restore_version"]


def restore_version(client: BucketClient, key: str) -> bool:
    """Copy the newest stored version of ``key`` back to ``key``; whether there was one.

    Returns ``False`` when no version but delete markers is left (an
    unversioned bucket, or the version expired). Raises ``FileExistsError`` if
    an object is stored at ``key``, ``ValueError`` for an invalid key and
    ``StoreError`` on any other failure.
    """
    full = client.full_key(key)
    if _exists(client, key):
        raise client.exists_error(key)
    version = _newest_version(client, key, full)
    if version is None:
        return False
    version_id, size = version
    try:
        if size <= MANAGED_COPY_THRESHOLD:
            copy_source = {"Bucket": client.bucket, "Key": full, "VersionId": version_id}
            client.call(
                "copy_object", Bucket=client.bucket, Key=full, CopySource=copy_source, IfNoneMatch="*"
            )
        else:
            paths = (f"{client.bucket}/{full}?versionId={version_id}", f"{client.bucket}/{full}")
            client.copy_managed(*paths, size)
    except Exception as exc:
        if error_code(exc) in PRECONDITION:
            raise client.exists_error(key) from None
        if error_code(exc) in NOT_FOUND | {"NoSuchVersion"}:
            return False  # the version expired between the listing and the copy
        raise client.fail(f"restoring version {version_id!r} failed", exc, key=key) from None
    return True


def _exists(client: BucketClient, key: str) -> bool:
    try:
        client.head(key)
    except FileNotFoundError:
        return False
    return True


def _newest_version(client: BucketClient, key: str, full: str) -> tuple[str, int] | None:
    """The version id and size of the newest version of exactly ``full`` that is no delete marker."""
    request: dict[str, Any] = {"Bucket": client.bucket, "Prefix": full, "MaxKeys": client.max_keys}
    while True:
        try:
            page = client.call("list_object_versions", **request)
        except Exception as exc:
            raise client.fail("listing the versions failed", exc, key=key) from None
        # versions come by key, newest first; ``full`` sorts before every other key it prefixes
        for version in page.get("Versions", ()):
            if version.get("Key") == full and version.get("VersionId"):
                return str(version["VersionId"]), int(version.get("Size") or 0)
        listed = [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]
        if any(item.get("Key") != full for item in listed) or not page.get("IsTruncated"):
            return None
        key_marker, version_marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
        if not key_marker:
            raise client.fail("a truncated version listing came without a key marker", key=key)
        request["KeyMarker"] = key_marker
        if version_marker:
            request["VersionIdMarker"] = version_marker
        else:
            request.pop("VersionIdMarker", None)
