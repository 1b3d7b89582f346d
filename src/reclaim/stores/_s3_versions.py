"""Bringing a purged object back from its newest noncurrent version (buckets that keep versions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync

from reclaim.stores._s3_common import MANAGED_COPY_THRESHOLD, NOT_FOUND, PRECONDITION, error_code

if TYPE_CHECKING:
    from reclaim.stores.s3 import S3Store

__all__ = ["restore_version"]


def restore_version(store: S3Store, key: str) -> bool:
    """:meth:`S3Store.restore_version <reclaim.stores.s3.S3Store.restore_version>`: see there."""
    full = store._key(key)
    if store.exists(key):
        raise store._exists_error(key)
    version = _newest_version(store, key, full)
    if version is None:
        return False
    version_id, size = version
    try:
        if size <= MANAGED_COPY_THRESHOLD:
            copy_source = {"Bucket": store.bucket, "Key": full, "VersionId": version_id}
            store._call("copy_object", Bucket=store.bucket, Key=full, CopySource=copy_source, IfNoneMatch="*")
        else:
            paths = (f"{store.bucket}/{full}?versionId={version_id}", f"{store.bucket}/{full}")
            sync(store.fs.loop, store.fs._copy_managed, *paths, size)
    except Exception as exc:
        if error_code(exc) in PRECONDITION:
            raise store._exists_error(key) from None
        if error_code(exc) in NOT_FOUND | {"NoSuchVersion"}:
            return False  # the version expired between the listing and the copy
        raise store._fail(f"restoring version {version_id!r} failed", exc, key=key) from None
    return True


def _newest_version(store: S3Store, key: str, full: str) -> tuple[str, int] | None:
    """The version id and size of the newest version of exactly ``full`` that is no delete marker."""
    request: dict[str, Any] = {"Bucket": store.bucket, "Prefix": full, "MaxKeys": store.max_keys}
    while True:
        try:
            page = store._call("list_object_versions", **request)
        except Exception as exc:
            raise store._fail("listing the versions failed", exc, key=key) from None
        # versions come by key, newest first; ``full`` sorts before every other key it prefixes
        for version in page.get("Versions", ()):
            if version.get("Key") == full and version.get("VersionId"):
                return str(version["VersionId"]), int(version.get("Size") or 0)
        listed = [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]
        if any(item.get("Key") != full for item in listed) or not page.get("IsTruncated"):
            return None
        key_marker, version_marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
        if not key_marker:
            raise store._fail("a truncated version listing came without a key marker", key=key)
        request["KeyMarker"] = key_marker
        if version_marker:
            request["VersionIdMarker"] = version_marker
        else:
            request.pop("VersionIdMarker", None)
