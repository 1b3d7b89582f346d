"""The requests of one S3 store: its bucket and key prefix behind s3fs's aiobotocore client.

:class:`BucketClient` is what the S3 store's modules share (the store, its
listing, ``stat_many`` and versioned restore): it sends one request on s3fs's
event loop, maps keys to the bucket's keys and back, and turns backend errors
into the store's error contract (missing key: ``FileNotFoundError``; anything
else: ``StoreError`` with credentials masked). The error codes, ETags and
client options they all use are here too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fsspec.asyn import sync

from reclaim.errors import StoreError
from reclaim.stores.base import ObjectInfo, validate_key
from reclaim.stores.fsspec_store import exists_error, missing_error, store_error

__all__ = [
    "DEFAULT_CONFIG_KWARGS",
    "MANAGED_COPY_THRESHOLD",
    "MAX_KEY_BYTES",
    "NOT_FOUND",
    "PRECONDITION",
    "BucketClient",
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
#: botocore client settings used unless the storage options' ``config_kwargs`` say otherwise
DEFAULT_CONFIG_KWARGS: Mapping[str, Any] = {"retries": {"mode": "adaptive", "max_attempts": 10}}


class BucketClient:
    """Requests to ``bucket`` under ``prefix`` ("" or ending in ``/``) for the store named ``store``.

    ``max_keys`` is the page size of every listing request; ``secrets`` are
    the store's credential values, masked in every error.
    """

    def __init__(
        self, store: str, fs: Any, bucket: str, prefix: str, *, max_keys: int, secrets: Iterable[str]
    ) -> None:
        self.store = store
        self.fs = fs
        self.bucket = bucket
        self.prefix = prefix
        self.max_keys = max_keys
        self._secrets = tuple(secrets)

    # -- requests ---------------------------------------------------------

    def call(self, method: str, **kwargs: Any) -> Any:
        """Run one request on s3fs's event loop and return the response (the body, for get_object)."""
        return sync(self.fs.loop, self.acall, method, kwargs)

    async def acall(self, method: str, kwargs: dict[str, Any]) -> Any:
        """:meth:`call` as a coroutine on s3fs's event loop, for requests sent several at a time."""
        await self.fs.set_session()
        client = await self.fs.get_s3(self.bucket)
        fast_timestamps(client)
        function = getattr(client, method)
        response = await function(**self.fs._get_s3_method_kwargs(function, **kwargs))
        if method != "get_object":
            return response
        body = response["Body"]
        try:
            return await body.read()
        finally:
            body.close()

    def open_session(self) -> None:
        """Open the client now (once), before threads or concurrent requests share it."""
        sync(self.fs.loop, self.fs.set_session)

    def copy_managed(self, source: str, destination: str, size: int) -> None:
        """A server-side copy part by part (objects above :data:`MANAGED_COPY_THRESHOLD`).

        ``source`` and ``destination`` are ``bucket/key`` paths (``source`` may
        end in ``?versionId=...``).
        """
        sync(self.fs.loop, self.fs._copy_managed, source, destination, size)

    def head(self, key: str) -> ObjectInfo:
        """Size, mtime and ETag of ``key`` (``HeadObject``); ``FileNotFoundError`` if missing."""
        full = self.full_key(key)
        try:
            head = self.call("head_object", Bucket=self.bucket, Key=full)
        except Exception as exc:
            raise self.error(exc, "stat failed", key) from None
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp(), etag_of(head))

    def close(self) -> None:
        """Close the client's HTTP session; idempotent (the next request opens a new one)."""
        if self.fs._s3 is None:
            return
        creator = self.fs._s3creator
        self.fs._s3 = None
        sync(self.fs.loop, creator.__aexit__, None, None, None)

    # -- keys -------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """The bucket key of store key ``key``; ``ValueError`` for an invalid key."""
        return self.prefix + validate_key(key)

    def key_of(self, listed: Mapping[str, Any]) -> str:
        """The store key of an object of a listing page; ``StoreError`` if it is outside the prefix."""
        full = str(listed["Key"])
        if not full.startswith(self.prefix):
            raise self.fail(f"the listing returned {full!r}, outside the store prefix")
        return full[len(self.prefix) :]

    # -- errors -----------------------------------------------------------

    def fail(self, action: str, exc: BaseException | None = None, *, key: str | None = None) -> StoreError:
        """A ``StoreError`` about ``action`` (and the backend's ``exc``) with secrets masked."""
        return store_error(self.store, action, exc, key=key, secrets=self._secrets)

    def missing(self, key: str) -> FileNotFoundError:
        """The error of a missing ``key``."""
        return missing_error(self.store, key)

    def exists_error(self, key: str) -> FileExistsError:
        """The error of an object already stored at ``key``."""
        return exists_error(self.store, key)

    def error(self, exc: BaseException, action: str, key: str) -> Exception:
        """``FileNotFoundError`` if ``exc`` says ``key`` is missing, else ``StoreError`` about ``action``."""
        if error_code(exc) in NOT_FOUND:
            return self.missing(key)
        return self.fail(action, exc, key=key)


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


def parse_timestamp(value: Any) -> datetime:
    """A timestamp of a response, as botocore parses it, without dateutil for S3's ISO 8601 form.

    A ``ListObjectsV2`` page carries a ``LastModified`` per key
    (``2026-12-07T15:26:42.000Z``); botocore's parser (dateutil) spends most of
    a page's client CPU on them. That form is read by ``datetime.fromisoformat``
    (UTC, as botocore gives it); any other (a ``HeadObject`` header's RFC 1123
    date, an epoch) goes to botocore's own parser.
    """
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T" and value.endswith("Z"):
        try:
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
        except ValueError:
            pass
    from botocore.utils import parse_timestamp as botocore_parse

    return botocore_parse(value)  # type: ignore[no-any-return]


def fast_timestamps(client: Any) -> None:
    """Have ``client`` parse response timestamps with :func:`parse_timestamp` (idempotent).

    botocore makes a parser per response from its endpoint's parser factory: the
    factory's defaults are set (shared by the clients of the session).
    """
    factory = getattr(getattr(client, "_endpoint", None), "_response_parser_factory", None)
    defaults = getattr(factory, "_defaults", None)
    if (
        factory is not None
        and isinstance(defaults, dict)
        and defaults.get("timestamp_parser") is not parse_timestamp
    ):
        factory.set_parser_defaults(timestamp_parser=parse_timestamp)


def info_of(key: str, listed: Mapping[str, Any]) -> ObjectInfo:
    """The :class:`ObjectInfo` of an object of a ``ListObjectsV2`` page (as ``HeadObject`` would give it)."""
    return ObjectInfo(key, int(listed["Size"]), listed["LastModified"].timestamp(), etag_of(listed))
