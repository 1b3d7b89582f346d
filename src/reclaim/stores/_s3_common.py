"""Small helpers shared by the S3 store's modules: error codes, ETags, client options."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from reclaim.stores.base import ObjectInfo

__all__ = [
    "MANAGED_COPY_THRESHOLD",
    "MAX_KEY_BYTES",
    "NOT_FOUND",
    "PRECONDITION",
    "error_code",
    "etag_of",
    "info_of",
    "merged",
]

#: objects above this size are copied part by part (the CopyObject limit)
MANAGED_COPY_THRESHOLD: Final = 5 * 2**30
#: the longest key S3 accepts, in UTF-8 bytes
MAX_KEY_BYTES: Final = 1024
#: error codes of a missing key
NOT_FOUND: Final = frozenset({"NoSuchKey", "NotFound", "404"})
#: error codes of a failed condition (``IfMatch``, ``IfNoneMatch``, ...)
PRECONDITION: Final = frozenset({"PreconditionFailed", "412"})


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ``ClientError`` (or the HTTP status), else ``None``."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(code or status) if (code or status) else None


def merged(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``defaults``, merging nested mappings key by key (``given`` wins).

    Returns new dicts all the way down: botocore rewrites the ``retries`` dict it
    is given, which must not change the defaults or the caller's options.
    """
    out = copy.deepcopy(dict(defaults))
    for name, value in given.items():
        below = out.get(name)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            out[name] = merged(below, value)
        else:
            out[name] = copy.deepcopy(value)
    return out


def etag_of(response: Mapping[str, Any]) -> str | None:
    """The ETag of a listed object or a ``HeadObject`` response, without its quotes."""
    value = response.get("ETag")
    return value.strip('"') if isinstance(value, str) and value else None


def info_of(key: str, listed: Mapping[str, Any]) -> ObjectInfo:
    """The :class:`ObjectInfo` of an object of a ``ListObjectsV2`` page (as ``HeadObject`` would give it)."""
    return ObjectInfo(key, int(listed["Size"]), listed["LastModified"].timestamp(), etag_of(listed))
