"""Bringing a purged object back from its newest noncurrent version (buckets that keep versions).

In a bucket that keeps versions, a delete only adds a delete marker:
:func:`restore_version` finds the newest remaining version of exactly the key
(``ListObjectVersions``) and copies it back server-side (``CopyObject`` with
its ``VersionId``, part by part above 5 GiB) when nothing is stored at the key,
conditional on that (``IfNoneMatch``): an object stored there is never
overwritten.

:func:`versioning_status` and :func:`noncurrent_expiry_problem` read what the
bucket promises about its versions (``GetBucketVersioning``,
``GetBucketLifecycleConfiguration``): the checks S3-native quarantine
(``mode = "versioned"``, ``purge = "lifecycle"``) is to make before it relies
on a delete marker and on the bucket's noncurrent-version expiry.
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

__all__ = ["noncurrent_expiry_problem", "restore_version", "versioning_status"]


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


def versioning_status(client: BucketClient) -> str:
    """The bucket's versioning status: ``Enabled``, ``Suspended`` or ``""`` (never enabled).

    For ``mode = "versioned"``, which is safe only where a delete leaves a
    delete marker over a kept version (``Enabled``). Raises ``StoreError`` when
    the request fails (fail closed: an unknown status is no ``Enabled``).
    """
    try:
        response = client.call("get_bucket_versioning", Bucket=client.bucket)
    except Exception as exc:
        raise client.fail("reading the bucket's versioning status failed", exc) from None
    return str(response.get("Status") or "")


def noncurrent_expiry_problem(client: BucketClient, grace_days: int, *, required: bool = True) -> str | None:
    """Why the bucket's lifecycle cannot be left to purge the store's noncurrent versions; ``None`` if it can.

    It can when an enabled rule expires noncurrent versions
    (``NoncurrentVersionExpiration``) of every key under the store's prefix
    (its filter is a prefix of the store's prefix, with no tag or size
    condition), keeps no newer noncurrent versions back and waits at least
    ``grace_days``. A rule over any of the store's keys that expires noncurrent
    versions sooner is a problem too: it would purge quarantined objects
    before their grace ends, without the re-check. Without ``required`` only
    such a rule is a problem (purge deletes the versions itself). Raises
    ``StoreError`` when the request fails.
    """
    try:
        response = client.call("get_bucket_lifecycle_configuration", Bucket=client.bucket)
    except Exception as exc:
        if error_code(exc) == "NoSuchLifecycleConfiguration":
            return "the bucket has no lifecycle configuration" if required else None
        raise client.fail("reading the bucket's lifecycle configuration failed", exc) from None
    suitable = False
    for rule in response.get("Rules", ()):
        expiry = rule.get("NoncurrentVersionExpiration") or {}
        if rule.get("Status") != "Enabled" or "NoncurrentDays" not in expiry:
            continue
        days = int(expiry["NoncurrentDays"])
        prefix, whole = _rule_prefix(rule)
        overlaps = prefix.startswith(client.prefix) or client.prefix.startswith(prefix)
        if overlaps and days < grace_days:
            name = rule.get("ID") or prefix or "(whole bucket)"
            return (
                f"lifecycle rule {name!r} expires noncurrent versions after {days} days, "
                f"before the grace of {grace_days} days ends"
            )
        if whole and client.prefix.startswith(prefix) and not expiry.get("NewerNoncurrentVersions"):
            suitable = True
    if not suitable and required:
        return f"no enabled rule expires every noncurrent version under {client.prefix or 'the bucket'!r}"
    return None


def _rule_prefix(rule: dict[str, Any]) -> tuple[str, bool]:
    """A lifecycle rule's key prefix, and whether it covers every key under it (no tag or size filter)."""
    if "Filter" not in rule:
        return str(rule.get("Prefix") or ""), True
    found = rule.get("Filter") or {}
    if "And" in found:
        found = found["And"] or {}
        whole = not (found.get("Tags") or "ObjectSizeGreaterThan" in found or "ObjectSizeLessThan" in found)
        return str(found.get("Prefix") or ""), whole
    whole = not ("Tag" in found or "ObjectSizeGreaterThan" in found or "ObjectSizeLessThan" in found)
    return str(found.get("Prefix") or ""), whole
