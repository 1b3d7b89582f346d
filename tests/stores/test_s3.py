"""S3 store against moto's server on 127.0.0.1: paging, failing closed, batched deletes, secrets.

Requests are counted with botocore event hooks on the store's own client: a
measurement of what goes over the wire, not a replacement for the server.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from fsspec.asyn import sync

from reclaim.errors import StoreError
from reclaim.stores import default_mode, open_store

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")

from reclaim.stores.s3 import S3Store  # noqa: E402  (after the skips above)

SECRET_KEY = "sEcReT-reclaim-value-" + secrets.token_hex(4)
ACCESS_KEY = "AKIDRECLAIM" + secrets.token_hex(4).upper()
NO_RETRIES = {"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 2, "read_timeout": 5}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make(s3_bucket: str, s3_options: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def factory(prefix: str = "root", options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        store = S3Store("blobs", f"s3://{s3_bucket}/{prefix}", options or s3_options, **kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


def count_requests(store: Any, operation: str) -> list[int]:
    """Count the ``operation`` requests the store's client sends from now on."""
    client = sync(store.fs.loop, store.fs.set_session)
    counter = [0]

    def hook(**_: Any) -> None:
        counter[0] += 1

    client.meta.events.register(f"before-call.s3.{operation}", hook)
    return counter


def test_listing_streams_page_by_page(make: Callable[..., Any]) -> None:
    store = make(max_keys=3)
    names = [f"k{i:02d}" for i in range(10)]
    store.fs.pipe({f"{store.root}/{name}": name.encode() for name in names})
    pages = count_requests(store, "ListObjectsV2")
    listing = store.list()
    first = next(listing)
    assert pages[0] == 1  # one page fetched for the first key
    infos = [first, *listing]
    assert pages[0] == 4
    assert [i.key for i in infos] == names
    for info in infos:
        stat = store.stat(info.key)
        assert (info.size, info.etag, info.mtime) == (3, stat.etag, stat.mtime)
        assert info.etag
        assert '"' not in info.etag


def test_default_page_size_and_batched_delete(make: Callable[..., Any]) -> None:
    store = make()
    names = [f"obj/{i:05d}" for i in range(2500)]
    store.fs.pipe({f"{store.root}/{name}": b"x" for name in names})
    pages = count_requests(store, "ListObjectsV2")
    deletes = count_requests(store, "DeleteObjects")
    assert [i.key for i in store.list()] == names
    assert pages[0] == 3
    store.delete([*names, "obj/missing"])
    assert deletes[0] == 3  # 1000 + 1000 + 501 keys
    assert list(store.list()) == []


def test_listing_fails_closed_when_the_server_stops_midway() -> None:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "config_kwargs": NO_RETRIES,
    }
    stopped = False
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="midway")
        for i in range(10):
            client.put_object(Bucket="midway", Key=f"k{i}", Body=b"x")
        store = S3Store("flaky", "s3://midway", options, max_keys=3)
        listing = store.list()
        assert [next(listing).key for _ in range(3)] == ["k0", "k1", "k2"]
        server.stop()
        stopped = True
        with pytest.raises(StoreError, match="listing failed") as failure:
            list(listing)
        assert failure.value.store == "flaky"
        assert "'flaky'" in str(failure.value)
    finally:
        if not stopped:
            server.stop()


def test_missing_bucket_fails_closed(s3_options: dict[str, Any]) -> None:
    store = S3Store("blobs", f"s3://no-such-bucket-{secrets.token_hex(4)}/p", s3_options)
    with pytest.raises(StoreError, match="NoSuchBucket"):
        list(store.list())
    store.close()


def test_skipped_prefix_is_jumped_over(make: Callable[..., Any]) -> None:
    store = make(max_keys=3)
    trash = [f"_trash/{i:02d}" for i in range(30)]
    store.fs.pipe({f"{store.root}/{name}": b"x" for name in [*trash, "A", "a", "b", "z"]})
    pages = count_requests(store, "ListObjectsV2")
    assert [i.key for i in store.list(skip=["_trash/"])] == ["A", "a", "b", "z"]
    assert pages[0] <= 3  # not the 12 pages it takes to read through the trash


def test_move_keeps_a_source_rewritten_during_the_move(
    make: Callable[..., Any], s3_server: str, s3_bucket: str
) -> None:
    store = make()
    store.write("k", b"old")
    writer = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")  # a concurrent writer
    client = sync(store.fs.loop, store.fs.set_session)

    def rewrite(**_: Any) -> None:
        writer.put_object(Bucket=s3_bucket, Key="root/k", Body=b"new")  # between the copy and the delete

    client.meta.events.register("before-call.s3.DeleteObject", rewrite)
    with pytest.raises(StoreError, match="rewritten"):
        store.move("k", "_trash/k")
    assert store.read("k") == b"new"
    assert store.read("_trash/k") == b"old"


def test_mark_is_the_default_mode(make: Callable[..., Any]) -> None:
    assert default_mode(make()) == "mark"


def test_urls(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    for url, prefix in [(f"s3://{s3_bucket}", ""), (f"s3a://{s3_bucket}/a/b/", "a/b/")]:
        store = open_store("blobs", url, s3_options)
        assert isinstance(store, S3Store)
        assert store.prefix == prefix
        store.close()
    for bad in ("s3://", "s3:///x", f"s3://{s3_bucket}/a//b", f"s3://{s3_bucket}/../x"):
        with pytest.raises(StoreError, match="invalid store URL"):
            open_store("blobs", bad, s3_options)
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store("blobs", f"s3://{s3_bucket}", {**s3_options, "username": "both key and username"})


def test_credentials_never_appear_in_errors(s3_server: str) -> None:
    endpoint = s3_server.replace("http://", f"http://user:{SECRET_KEY}@")
    options = {
        "key": ACCESS_KEY,
        "secret": SECRET_KEY,
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"},
        "config_kwargs": NO_RETRIES,
    }
    refused = {**options, "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{_free_port()}"}}
    with_password = {**options, "client_kwargs": {"endpoint_url": endpoint}}
    failures: list[StoreError] = []
    for opts, url in [
        (options, "s3://no-such-bucket-x/p"),
        (refused, "s3://b/p"),
        (with_password, "s3://b/p"),
    ]:
        store = S3Store("blobs", url, opts)
        with pytest.raises(StoreError) as listing:
            list(store.list())
        with pytest.raises(StoreError) as writing:
            store.write("k", b"x")
        with pytest.raises(StoreError) as deleting:
            store.delete(["k"])
        failures += [listing.value, writing.value, deleting.value]
        store.close()
    # a backend message that quotes the credentials verbatim
    failures.append(store._fail("boom", RuntimeError(f"signed with {ACCESS_KEY}:{SECRET_KEY}")))
    for error in failures:
        assert error.__cause__ is None  # the backend exception is not chained: it may quote secrets
        assert error.__context__ is None or error.__suppress_context__
        text = f"{error} {error.args!r}"
        assert SECRET_KEY not in text
        assert ACCESS_KEY not in text


# -- stat_many: a listing of the key range where it is cheaper than a HeadObject each -----------


def test_stat_many_lists_a_dense_range_instead_of_one_head_per_key(make: Callable[..., Any]) -> None:
    store = make(max_keys=10)
    names = [f"d/{i:03d}" for i in range(100)]
    store.fs.pipe({f"{store.root}/{name}": name.encode() for name in [*names, "c/before", "e/after"]})
    pages = count_requests(store, "ListObjectsV2")
    heads = count_requests(store, "HeadObject")
    asked = [*names[5:85], "d/0055x", "d/0845"]  # two absent keys among them
    found = store.stat_many(asked[::-1])
    assert sorted(found) == names[5:85]
    assert (pages[0], heads[0]) == (9, 0)  # 80 keys from d/005: one page per 10, one more to see past d/084
    pages[0] = 0
    assert found == {key: store.stat(key) for key in names[5:85]}
    assert pages[0] == 0  # (stat is one HeadObject per key)


def test_stat_many_heads_sparse_keys_after_a_bounded_listing(make: Callable[..., Any]) -> None:
    store = make(max_keys=10)
    names = [f"s/{i:04d}" for i in range(300)]
    store.fs.pipe({f"{store.root}/{name}": b"x" for name in names})
    pages = count_requests(store, "ListObjectsV2")
    heads = count_requests(store, "HeadObject")
    asked = [*names[::50], "s/0001x", "t/missing"]  # 6 present, 2 absent, 300 neighbours
    found = store.stat_many(asked)
    assert sorted(found) == names[::50]
    # two pages (20 keys) settle s/0000 and s/0001x; the other six keys cost a HeadObject each
    assert (pages[0], heads[0]) == (2, 6)
    assert found == {key: store.stat(key) for key in names[::50]}


def test_stat_many_of_one_or_two_keys_never_lists(make: Callable[..., Any]) -> None:
    store = make()
    store.write("a", b"1")
    pages = count_requests(store, "ListObjectsV2")
    assert store.stat_many(["a", "b"]) == {"a": store.stat("a")}
    assert store.stat_many(["b"]) == {}
    assert pages[0] == 0


def test_stat_many_starts_just_below_the_first_key(make: Callable[..., Any]) -> None:
    """Keys sorting just before the first key asked for are not listed (nor returned)."""
    store = make(max_keys=5)
    before = [f"r/k0{i:03d}" for i in range(50)] + ["r/k", "r/k0", "r/k0\U0010ffff"]
    asked = ["r/k1", "r/k1/a", "r/k1/b"]
    store.fs.pipe({f"{store.root}/{name}": b"x" for name in [*before, *asked, "r/k2"]})
    pages = count_requests(store, "ListObjectsV2")
    assert sorted(store.stat_many(asked)) == asked
    assert pages[0] == 1


def test_stat_many_fails_closed_when_the_server_is_gone() -> None:
    """A request that fails raises: a key must never be reported missing because a request failed."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "config_kwargs": NO_RETRIES,
    }
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="gone")
        for i in range(10):
            client.put_object(Bucket="gone", Key=f"k{i}", Body=b"x")
        store = S3Store("flaky", "s3://gone", options, max_keys=3)
        assert len(store.stat_many([f"k{i}" for i in range(10)])) == 10
    finally:
        server.stop()
    for asked in ([f"k{i}" for i in range(10)], ["k1", "k7"]):  # listed, and by HeadObject
        with pytest.raises(StoreError, match="'flaky'"):
            store.stat_many(asked)


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-07T15:26:42.000Z",
        "2026-12-07T15:26:42Z",
        "2026-12-07T15:26:42.123456Z",
        "2026-12-07T15:26:42.000+01:00",
        "Mon, 07 Dec 2026 15:26:42 GMT",
        "1700000000",
    ],
)
def test_response_timestamps_parse_as_botocore_parses_them(value: str) -> None:
    # a listing page's LastModified values skip dateutil; every form means the instant botocore reads
    from botocore.utils import parse_timestamp as botocore_parse

    from reclaim.stores.s3._client import parse_timestamp

    parsed = parse_timestamp(value)
    assert parsed == botocore_parse(value)
    assert parsed.utcoffset() is not None
