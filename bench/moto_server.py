"""moto's S3 server in a separate process, behind a middleware the benchmarks control.

:class:`MotoServer` starts ``python bench/moto_server.py --port P`` on 127.0.0.1
(its own process, so the server shares no GIL with what is measured) and talks
to the middleware in front of moto's WSGI app, which answers paths under
``/__bench/`` itself (they never reach moto and are never counted):

- ``POST /__bench/latency?ms=20``: add that much to every later S3 request
  (an emulated network round trip);
- ``POST /__bench/populate?bucket=B&objects=N&orphans=F&age=S``: make bucket
  ``B`` hold exactly the N objects of :func:`common.object_keys` (1-byte bodies,
  last modified ``S`` seconds ago), put straight into moto's in-process backend:
  5,000 to 10,000 objects/s, where PUTs over HTTP manage about 200/s;
- ``POST /__bench/index?on=1``: answer ``ListObjectsV2`` (no delimiter) from a
  sorted index of the bucket's keys (:class:`_Index`), so that the server's CPU
  per page does not grow with the bucket, as S3's does not; ``&render=1``: and
  write those pages' XML itself (a few ms a page instead of moto's 0.15 s or more);
- ``POST /__bench/reset`` and ``GET /__bench/counts``: the S3 requests the
  server has answered since the last reset, by operation (``ListObjectsV2``,
  ``HeadObject``, ``CopyObject``, ``DeleteObjects``, ...; see :func:`operation`),
  with the CPU seconds moto's threads spent on them (the added latency not counted);
- ``GET /__bench/check?bucket=B``: how the bucket's objects compare to what
  ``populate`` put there (objects, orphans left, referenced objects missing,
  keys it never put) and a SHA-256 of its sorted keys, read from the backend.

Requests are counted where they arrive, so retries and requests a client
library makes on its own count too. Path-style addressing is assumed (what
botocore uses for an ``http://127.0.0.1:port`` endpoint).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from common import free_port, object_keys, wait_for_port

CONTROL = "/__bench/"
ACCOUNT = "123456789012"  # moto's default account: the one any access key maps to
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}


def operation(method: str, path: str, query: str, copy_source: bool) -> str:
    """The S3 operation of a path-style request (``PutObject``, ``DeleteObjects``, ...)."""
    bucket, _, key = path.lstrip("/").partition("/")
    params = parse_qs(query, keep_blank_values=True)
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if "tagging" in params:
        verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method)
        return f"{verb}{'Object' if key else 'Bucket'}Tagging"
    if key:
        if "uploadId" in params or "uploads" in params:
            return f"{method} multipart"
        if method == "PUT":
            return "CopyObject" if copy_source else "PutObject"
        names = {"HEAD": "HeadObject", "GET": "GetObject", "DELETE": "DeleteObject"}
        return names.get(method, f"{method} object")
    if method == "POST" and "delete" in params:
        return "DeleteObjects"
    if method == "GET" and params.get("list-type") == ["2"]:
        return "ListObjectsV2"
    if method == "GET" and "versions" in params:
        return "ListObjectVersions"
    if method == "GET" and not set(params) - {"prefix", "delimiter", "marker", "max-keys", "encoding-type"}:
        return "ListObjects"
    names = {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
    if method in names and not params:
        return names[method]
    return f"{method} bucket?{'&'.join(sorted(params))}"


class _Control:
    """The middleware: counts and times every S3 request, answers ``/__bench/`` itself."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.latency = 0.0
        self.populated: dict[str, tuple[int, float]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        query = str(environ.get("QUERY_STRING", ""))
        if path.startswith(CONTROL):
            answer = self.control(path[len(CONTROL) :], parse_qs(query))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(answer).encode()]
        if self.latency:
            time.sleep(self.latency)
        started = time.thread_time()  # CPU of this request's thread: wall time would count GIL waits
        copy_source = "HTTP_X_AMZ_COPY_SOURCE" in environ
        name = operation(str(environ.get("REQUEST_METHOD", "")), path, query, copy_source)
        page = _Index.answer(path, query) if name == "ListObjectsV2" else None
        if page is not None:
            start_response(
                "200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(page)))]
            )
            body = [page]
        else:
            body = list(self.app(environ, start_response))  # moto answers whole, so this is its time
        with self.lock:
            self.requests[name] += 1
            self.seconds[name] += time.thread_time() - started
        return body

    def control(self, command: str, params: dict[str, list[str]]) -> dict[str, Any]:
        if command == "latency":
            self.latency = float(params["ms"][0]) / 1000
            return {"latency_ms": self.latency * 1000}
        if command == "index":
            _Index.on = params["on"][0] == "1"
            _Index.render = _Index.on and params.get("render", ["0"])[0] == "1"
            with _Index.lock:
                _Index.names.clear()
            return {"index": _Index.on}
        if command == "reset":
            with self.lock:
                self.requests.clear()
                self.seconds.clear()
            return {}
        if command == "counts":
            with self.lock:
                return {"requests": dict(self.requests), "seconds": dict(self.seconds)}
        bucket = params["bucket"][0]
        if command == "populate":
            n, orphans = int(params["objects"][0]), float(params["orphans"][0])
            return self.populate(bucket, n, orphans, float(params.get("age", ["86400"])[0]))
        if command == "check":
            return self.check(bucket)
        raise ValueError(f"unknown control command {command!r}")

    def populate(self, bucket: str, n: int, orphans: float, age: float) -> dict[str, Any]:
        from moto.s3.models import s3_backends

        started = time.perf_counter()
        backend = s3_backends[ACCOUNT]["aws"]
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, CREDENTIALS["region_name"])
        backend.get_bucket(bucket).keys.clear()
        # moto keeps naive UTC; whole seconds, as S3 reports them in listings and in HEAD
        modified = (datetime.now(UTC) - timedelta(seconds=age)).replace(tzinfo=None, microsecond=0)
        count = 0
        for key, orphan in object_keys(n, orphans):
            stored = backend.put_object(bucket, key, b"x", disable_notification=True)
            stored.last_modified = modified
            count += orphan
        self.populated[bucket] = (n, orphans)
        return {"objects": n, "orphans": count, "seconds": time.perf_counter() - started}

    def check(self, bucket: str) -> dict[str, Any]:
        from moto.s3.models import s3_backends

        stored = sorted(s3_backends[ACCOUNT]["aws"].get_bucket(bucket).keys)
        n, fraction = self.populated[bucket]
        orphaned = dict(object_keys(n, fraction))
        present = set(stored)
        digest = hashlib.sha256("\n".join(stored).encode()).hexdigest()
        return {
            "objects": len(stored),
            "orphans_left": sum(1 for key in stored if orphaned.get(key)),
            "referenced_missing": sum(1 for key, o in orphaned.items() if not o and key not in present),
            "unexpected": sum(1 for key in stored if key not in orphaned),
            "sha256": digest,
        }


class _Index:
    """An opt-in listing index (``POST /__bench/index?on=1``): ``ListObjectsV2`` without a delimiter
    answered from a sorted list of the bucket's keys, by ``bisect``, a page's work per page.

    moto lists by sorting every key of the bucket for every page (about 0.1 to 0.3 s of CPU a page
    at 50,000 keys), so that its one process, not the emulated round trip, limits a listing of a
    large bucket; S3's cost per page does not grow with the bucket. The index is dropped by every
    write (PUT, COPY, DELETE); pages are the same keys, tokens and truncation as moto's.

    With ``render=1`` as well, such a page's XML is written here (:meth:`answer`) instead of by
    moto's generic serializer, which spends about 97 % of moto's CPU per 1,000-key page (0.15 to
    0.4 s on this machine) walking botocore's shape model for every field of every key: CPU that
    S3 spends on its own machines, not on the client's. The document is the one moto writes (same
    elements, values, tokens and URL encoding), which ``tests/bench`` checks page by page.
    """

    on = False
    render = False
    names: dict[str, list[str]] = {}
    lock = threading.Lock()

    @classmethod
    def answer(cls, path: str, query: str) -> bytes | None:
        """The XML of a ``ListObjectsV2`` page (``render=1``), or ``None``: moto answers it."""
        if not cls.render:
            return None
        import urllib.parse
        from xml.sax.saxutils import escape

        from moto.s3.models import s3_backends

        params = parse_qs(query, keep_blank_values=True)
        if set(params) - {
            "list-type",
            "prefix",
            "continuation-token",
            "start-after",
            "max-keys",
            "encoding-type",
        }:
            return None  # a delimiter, fetch-owner, ...: moto's own answer
        backend = s3_backends[ACCOUNT]["aws"]
        bucket = backend.buckets.get(path.strip("/").partition("/")[0])
        if bucket is None or getattr(bucket, "is_versioned", False):
            return None

        def get(name: str) -> str | None:
            return params.get(name, [None])[0]

        token, start_after, prefix = get("continuation-token"), get("start-after"), get("prefix")
        max_keys, encoding = int(get("max-keys") or 1000), get("encoding-type")
        if token is not None and token not in backend._pagination_tokens:
            return None  # moto's error for a bad token
        if not max_keys:
            return None
        answered: Any = backend.list_objects_v2(bucket, prefix, None, token, start_after, max_keys)
        keys, truncated, next_token = answered  # the index's list of moto's keys, in order

        def text(value: str) -> str:
            return escape(urllib.parse.quote(value) if encoding == "url" else value)

        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        ]
        for key in keys:
            out.append(
                f"<Contents><Key>{text(key.name)}</Key><LastModified>{key.last_modified_ISO8601}"
                f"</LastModified><ETag>{escape(key.etag)}</ETag><Size>{key.size}</Size>"
                f"<StorageClass>{escape(key.storage_class)}</StorageClass>"
            )
            if key.checksum_algorithm:
                out.append(f"<ChecksumAlgorithm>{escape(key.checksum_algorithm)}</ChecksumAlgorithm>")
            out.append("</Contents>")
        out.append(
            f"<Name>{escape(bucket.name)}</Name><Prefix>{text(prefix or '')}</Prefix>"
            f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(keys)}</KeyCount>"
        )
        if encoding:
            out.append(f"<EncodingType>{escape(encoding)}</EncodingType>")
        if next_token:
            out.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        if not token and start_after:
            out.append(f"<StartAfter>{escape(start_after)}</StartAfter>")
        out.append("</ListBucketResult>")
        return "".join(out).encode()

    @classmethod
    def install(cls) -> None:
        from bisect import bisect_left, bisect_right

        from moto.s3.models import FakeDeleteMarker, S3Backend

        original = S3Backend.list_objects_v2

        def list_objects_v2(
            self: Any,
            bucket: Any,
            prefix: str | None,
            delimiter: str | None,
            continuation_token: str | None,
            start_after: str | None,
            max_keys: int,
        ) -> Any:
            if not cls.on or delimiter or getattr(bucket, "is_versioned", False) or not max_keys:
                return original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
            with cls.lock:
                names = cls.names.get(bucket.name)
                if names is None:
                    names = cls.names[bucket.name] = sorted(
                        name for name, key in bucket.keys.items() if not isinstance(key, FakeDeleteMarker)
                    )
            limit = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
            low = bisect_right(names, limit) if limit else 0
            high = len(names)
            if prefix:
                low = max(low, bisect_left(names, prefix))
                high = bisect_left(names, prefix[:-1] + chr(ord(prefix[-1]) + 1), low)
            chosen = names[low : min(high, low + max_keys + 1)]
            keys = [bucket.keys[name] for name in chosen]
            return self._truncate_result(keys, max_keys)

        S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]
        for name in ("put_object", "copy_object", "delete_object", "delete_objects"):
            method = getattr(S3Backend, name)

            def dropping(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
                with cls.lock:
                    cls.names.clear()
                return __method(self, *args, **kwargs)

            setattr(S3Backend, name, dropping)


def serve(port: int) -> None:
    """The server process: moto's app behind :class:`_Control`, on 127.0.0.1:``port``, until killed."""
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    # a log line per request would be server work that real S3 does not do for us
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _Index.install()
    app = _Control(DomainDispatcherApplication(create_backend_app))
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


class MotoServer:
    """A running server process (start with ``with MotoServer() as server:``) and its controls."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        command = [sys.executable, str(Path(__file__).resolve()), "--port", str(self.port)]
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()

    def _control(self, command: str, method: str = "POST", **params: object) -> dict[str, Any]:
        query = "&".join(f"{name}={value}" for name, value in params.items())
        # the endpoint is always http://127.0.0.1:<port>, never a URL from outside
        url = f"{self.endpoint}{CONTROL}{command}?{query}"
        request = urllib.request.Request(url, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def set_latency(self, ms: float) -> None:
        """Add ``ms`` milliseconds to every later S3 request."""
        self._control("latency", ms=ms)

    def populate(self, bucket: str, objects: int, orphans: float, age: float = 86400) -> dict[str, Any]:
        """Make ``bucket`` hold exactly the benchmark's objects (see the module docstring)."""
        return self._control("populate", bucket=bucket, objects=objects, orphans=orphans, age=age)

    def index_listing(self, on: bool = True, *, render: bool = False) -> None:
        """Answer ``ListObjectsV2`` without a delimiter from a sorted index (see :class:`_Index`);
        ``render``: and write those pages' XML without moto's serializer."""
        self._control("index", on="1" if on else "0", render="1" if render else "0")

    def reset_counts(self) -> None:
        """Zero the request counters."""
        self._control("reset")

    def counts(self) -> dict[str, Any]:
        """``{"requests": {operation: count}, "seconds": {operation: CPU seconds}}`` since the reset."""
        return self._control("counts", method="GET")

    def check(self, bucket: str) -> dict[str, Any]:
        """The bucket's objects against what ``populate`` put there (see the module docstring)."""
        return self._control("check", method="GET", bucket=bucket)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
