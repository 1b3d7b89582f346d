"""The benchmarks' moto server: every S3 request counted under the right operation, populate and check.

The bench's S3 figures are only as good as this counting, so each operation a
collector may send is sent once with boto3 and must show up once, by name.
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server", reason="moto[server] is not installed: pip install -e '.[dev]'")
boto3 = pytest.importorskip("boto3")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from moto_server import CREDENTIALS, MotoServer, operation  # noqa: E402

N = 30  # objects populated; every third (10) is an orphan


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with MotoServer() as running:
        yield running


@pytest.fixture
def client(server: MotoServer) -> Any:
    server.populate("bench", N, 1 / 3)
    server.reset_counts()
    return boto3.client("s3", endpoint_url=server.endpoint, **CREDENTIALS)


@pytest.mark.parametrize(
    ("method", "path", "query", "copy", "expected"),
    [
        ("GET", "/bench", "list-type=2&prefix=blobs%2F", False, "ListObjectsV2"),
        ("GET", "/bench/", "prefix=blobs%2F&max-keys=5", False, "ListObjects"),
        ("GET", "/bench", "versions&prefix=a", False, "ListObjectVersions"),
        ("HEAD", "/bench/blobs/a/b/c", "", False, "HeadObject"),
        ("PUT", "/bench/_trash/a", "", True, "CopyObject"),
        ("PUT", "/bench/a", "", False, "PutObject"),
        ("PUT", "/bench/a", "tagging", False, "PutObjectTagging"),
        ("DELETE", "/bench/a", "", False, "DeleteObject"),
        ("POST", "/bench", "delete", False, "DeleteObjects"),
        ("GET", "/bench", "location", False, "GET bucket?location"),
    ],
)
def test_operation_names_requests_as_s3_does(
    method: str, path: str, query: str, copy: bool, expected: str
) -> None:
    assert operation(method, path, query, copy) == expected


def test_populate_makes_the_same_objects_and_check_sees_them(server: MotoServer, client: Any) -> None:
    assert server.check("bench") | {"sha256": ""} == {
        "objects": N,
        "orphans_left": N // 3,
        "referenced_missing": 0,
        "unexpected": 0,
        "sha256": "",
    }
    first = server.check("bench")["sha256"]
    client.put_object(Bucket="bench", Key="stray", Body=b"x")
    assert server.check("bench")["unexpected"] == 1
    server.populate("bench", N, 1 / 3)
    assert server.check("bench")["sha256"] == first  # populate replaces, and is the same every time
    assert server.counts()["requests"] == {"PutObject": 1}  # control requests are never counted


def test_every_request_is_counted_once_by_operation(server: MotoServer, client: Any) -> None:
    keys = [obj["Key"] for obj in client.list_objects_v2(Bucket="bench", MaxKeys=5)["Contents"]]
    client.list_objects(Bucket="bench", MaxKeys=5)
    client.head_object(Bucket="bench", Key=keys[0])
    client.get_object(Bucket="bench", Key=keys[0])["Body"].read()
    client.copy_object(Bucket="bench", Key="copy", CopySource={"Bucket": "bench", "Key": keys[0]})
    client.put_object_tagging(Bucket="bench", Key=keys[1], Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    client.delete_object(Bucket="bench", Key=keys[1])
    client.delete_objects(Bucket="bench", Delete={"Objects": [{"Key": k} for k in keys[2:]]})
    counts = server.counts()
    assert counts["requests"] == {
        "ListObjectsV2": 1,
        "ListObjects": 1,
        "HeadObject": 1,
        "GetObject": 1,
        "CopyObject": 1,
        "PutObjectTagging": 1,
        "DeleteObject": 1,
        "DeleteObjects": 1,
    }
    assert set(counts["seconds"]) == set(counts["requests"])
    server.reset_counts()
    assert server.counts() == {"requests": {}, "seconds": {}}
    assert server.check("bench")["objects"] == N - 4 + 1  # 4 deleted, 1 copy


def _pages(client: Any, **request: Any) -> list[dict[str, Any]]:
    """Every page of a ListObjectsV2 listing, as botocore parses it (metadata left out)."""
    pages = []
    while True:
        page = client.list_objects_v2(Bucket="bench", **request)
        page.pop("ResponseMetadata")
        pages.append(page)
        if not page.get("IsTruncated"):
            return pages
        request = {k: v for k, v in request.items() if k != "StartAfter"}
        request["ContinuationToken"] = page["NextContinuationToken"]


@pytest.mark.parametrize(
    "request_",
    [
        {"MaxKeys": 7},
        {"MaxKeys": 4, "Prefix": "blobs/"},
        {"MaxKeys": 5, "StartAfter": "blobs/8"},
        {"MaxKeys": 3, "Prefix": "odd", "StartAfter": "odd &"},
        {"MaxKeys": 1000, "EncodingType": "url"},
        {"MaxKeys": 6, "Prefix": "nothing-here/"},
    ],
)
def test_the_indexed_pages_written_here_are_the_pages_moto_writes(
    server: MotoServer, client: Any, request_: dict[str, Any]
) -> None:
    for key in ("odd & <key>/ü x", "odd &/a", "odd/\u00e9t\u00e9 +%20"):
        client.put_object(Bucket="bench", Key=key, Body=b"xy")
    try:
        server.index_listing(False)
        expected = _pages(client, **request_)
        server.index_listing(True)
        assert _pages(client, **request_) == expected
        server.index_listing(True, render=True)
        assert _pages(client, **request_) == expected
        url = f"{server.endpoint}/bench?list-type=2&max-keys=2"
        with urllib.request.urlopen(url) as response:  # noqa: S310 (the loopback server)
            assert response.read().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')  # written here
        assert sum(len(page.get("Contents", ())) for page in expected) > 0 or "nothing" in str(request_)
        # a delimiter listing is still moto's, and still agrees
        assert client.list_objects_v2(Bucket="bench", Delimiter="/")["CommonPrefixes"] == [
            {"Prefix": "blobs/"},
            {"Prefix": "odd & <key>/"},
            {"Prefix": "odd &/"},
            {"Prefix": "odd/"},
        ]
    finally:
        server.index_listing(False)
