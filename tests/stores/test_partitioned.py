"""Partitioned S3 listing against moto's server: ordered, complete, fails closed, stops its threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim.errors import StoreError
from reclaim.stores import PartitionableStore, open_store
from reclaim.stores.base import ObjectInfo
from reclaim.stores.partitioned import choose_boundaries, just_below, list_partitioned, range_bounds

pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")

from reclaim.stores.s3 import S3Store

NO_RETRIES = {"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 2, "read_timeout": 5}
KEYS = sorted(
    [f"{a}{b}/{c}/obj-{i}" for a in "0ab" for b in "xy" for c in "pq" for i in range(3)]
    + ["top", "top-level.txt", "ax", "ax/", "a", "by/"]
)


@pytest.fixture
def make(s3_bucket: str, s3_options: dict[str, Any]) -> Iterator[Callable[..., S3Store]]:
    made: list[S3Store] = []

    def factory(options: dict[str, Any] | None = None, **kwargs: Any) -> S3Store:
        store = S3Store("blobs", f"s3://{s3_bucket}/root", options or s3_options, **kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


def _put(s3_server: str, bucket: str, keys: Sequence[str], root: str = "root/") -> None:
    client = _client(s3_server)
    for key in keys:
        client.put_object(Bucket=bucket, Key=root + key, Body=b"x")


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _keys(infos: Iterator[ObjectInfo]) -> list[str]:
    return [info.key for info in infos]


def _listing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("reclaim-list")]


@pytest.mark.parametrize("partitions", [1, 2, 3, 8, 50])
def test_ordered_and_complete(
    make: Callable[..., S3Store], s3_server: str, s3_bucket: str, partitions: int
) -> None:
    _put(s3_server, s3_bucket, KEYS)
    single = make(max_keys=4)
    store = make(max_keys=4, partitions=partitions)
    expected = _keys(single.list())
    assert expected == KEYS
    assert _keys(store.list()) == expected
    assert _keys(list_partitioned(single, partitions=partitions)) == expected
    # with skip prefixes, with a prefix (partial segment), and both
    skip = ["ax/", "by", "0x/p/"]
    assert _keys(store.list(skip=skip)) == _keys(single.list(skip=skip))
    assert _keys(store.list("a")) == _keys(single.list("a"))
    assert _keys(store.list("ay/", skip=["ay/q"])) == [k for k in KEYS if k.startswith("ay/p")]
    assert _keys(store.list("nothing/")) == []
    # bounded listings are one stream, and still honour their bounds
    assert _keys(store.list(start_after="ay", end_before="b")) == [k for k in KEYS if "ay" < k < "b"]


def test_first_level_and_default_boundaries(
    make: Callable[..., S3Store], s3_server: str, s3_bucket: str
) -> None:
    _put(s3_server, s3_bucket, KEYS)
    store = make(max_keys=4)
    level: list[str] = store.first_level()
    assert level == sorted({k.split("/")[0] + ("/" if "/" in k else "") for k in KEYS})
    assert store.first_level("ax") == ["ax", "ax/"]
    assert choose_boundaries(level, 3) == [level[len(level) // 3], level[2 * len(level) // 3]]
    assert choose_boundaries(["only/"], 8) == []
    assert range_bounds(["b", "d"]) == [(None, "b"), ("b", "d"), ("d", None)]


def test_single_directory_is_descended(make: Callable[..., S3Store], s3_server: str, s3_bucket: str) -> None:
    keys = [f"blobs/{a}{b}/k" for a in "abcd" for b in "xyz"]
    _put(s3_server, s3_bucket, keys)
    seen: list[str] = []
    store = make(max_keys=2)
    real = store.first_level

    def spy(prefix: str = "") -> list[str]:
        seen.append(prefix)
        return real(prefix)

    store.first_level = spy  # type: ignore[method-assign]
    assert _keys(list_partitioned(store, partitions=4)) == sorted(keys)
    assert seen == ["", "blobs/"]


def test_a_store_that_is_not_partitionable_lists_as_one_stream() -> None:
    import secrets

    store = open_store("blobs", f"memory://partitioned-{secrets.token_hex(4)}")
    keys = [f"{a}/{i}" for a in "abcd" for i in range(3)]
    for key in keys:
        store.write(key, b"x")
    assert not isinstance(store, PartitionableStore)
    assert _keys(list_partitioned(store, partitions=4)) == keys  # no first level to split on
    assert _keys(list_partitioned(store, boundaries=["b", "c/1"])) == keys  # given boundaries still split
    assert _listing_threads() == []


def test_just_below_is_just_below() -> None:
    for bound in ["ab/", "a", "b0", "0", "x\U0000e000", "a\x01", "\x01"]:
        below = just_below(bound)
        assert below is None or below < bound
        assert below is None or not below.startswith("/")
        assert below is None or "\x00" not in below


def test_open_store_takes_list_partitions(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    options = {**s3_options, "list_partitions": 4}
    store = open_store("blobs", f"s3://{s3_bucket}/root", options)
    assert isinstance(store, S3Store)
    assert store.partitions == 4
    assert options["list_partitions"] == 4  # the caller's options are left alone
    with pytest.raises(StoreError, match="list_partitions"):
        open_store("blobs", f"s3://{s3_bucket}/root", {**s3_options, "list_partitions": 0})


def test_invalid_arguments_raise_at_once(make: Callable[..., S3Store]) -> None:
    store = make()
    with pytest.raises(ValueError, match="relative"):
        list_partitioned(store, "/abs")
    with pytest.raises(ValueError, match="partitions"):
        list_partitioned(store, partitions=0)
    with pytest.raises(ValueError, match="empty boundary"):
        list_partitioned(store, boundaries=["a", ""])


KEY_CHARS = st.sampled_from(["a", "b", "-", ".", "/", "0", "z", "é"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(st.text(KEY_CHARS, min_size=1, max_size=5), max_size=25),
    extra_bounds=st.lists(st.text(KEY_CHARS, min_size=1, max_size=4), max_size=4),
    use_keys=st.lists(st.integers(0, 30), max_size=4),
    data=st.data(),
)
def test_ranges_cover_exactly_the_single_stream(
    s3_server: str,
    s3_options: dict[str, Any],
    keys: list[str],
    extra_bounds: list[str],
    use_keys: list[int],
    data: st.DataObject,
) -> None:
    import secrets

    valid = sorted({k for k in keys if _valid(k)})
    bucket = f"reclaim-p-{secrets.token_hex(4)}"
    client = _client(s3_server)
    client.create_bucket(Bucket=bucket)
    for key in valid:
        client.put_object(Bucket=bucket, Key="r/" + key, Body=b"")
    # boundaries collide with keys, with their prefixes, and fall between them
    bounds = [b for b in extra_bounds if not b.startswith("/")]
    bounds += [valid[i % len(valid)] for i in use_keys if valid]
    bounds += [valid[i % len(valid)][:-1] for i in use_keys if valid and len(valid[i % len(valid)]) > 1]
    bounds = [b for b in bounds if b and not b.startswith("/")]
    prefix = data.draw(st.sampled_from(["", "a", "a/", "b"]))
    store = S3Store("p", f"s3://{bucket}/r", s3_options, max_keys=2)
    try:
        expected = _keys(store.list(prefix))
        assert expected == [k for k in valid if k.startswith(prefix)]
        got = _keys(list_partitioned(store, prefix, boundaries=bounds, prefetch_pages=1))
        assert got == expected
        assert _keys(list_partitioned(store, prefix, partitions=3)) == expected
    finally:
        store.close()


def _valid(key: str) -> bool:
    from reclaim.stores.base import validate_key

    try:
        validate_key(key)
    except ValueError:
        return False
    return True


def test_error_in_one_range_raises_and_stops_the_others() -> None:
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = _client(endpoint)
        client.create_bucket(Bucket="doomed")
        keys = [f"{a}/{i:03d}" for a in "abcdefgh" for i in range(50)]
        _put(endpoint, "doomed", keys)
        options = {"key": "testing", "secret": "testing", "config_kwargs": NO_RETRIES}
        options["client_kwargs"] = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        store = S3Store("doomed", "s3://doomed/root", options, max_keys=2, partitions=8)
        listing = store.list()
        assert next(listing).key == "a/000"
    finally:
        server.stop()  # mid-listing: every later page fails
    try:
        with pytest.raises(StoreError, match="listing failed"):
            for _ in listing:
                pass
        _assert_no_listing_threads()
    finally:
        store.close()


def test_failing_range_stops_the_producers_promptly() -> None:
    calls: list[tuple[str | None, str | None]] = []
    endless = threading.Event()

    class Fake:
        name = "fake"

        def list(
            self,
            prefix: str = "",
            *,
            skip: Sequence[str] = (),
            start_after: str | None = None,
            end_before: str | None = None,
        ) -> Iterator[ObjectInfo]:
            calls.append((start_after, end_before))
            if end_before is None:
                raise OSError("range broke")
            i = 0
            while not endless.is_set():  # an endless range: only a stop ends it
                i += 1
                yield ObjectInfo(f"{(start_after or '')[:1]}{i:09d}")

    listing = list_partitioned(Fake(), boundaries=["m", "t"], page_size=2)
    with pytest.raises(StoreError, match="range broke"):
        for _ in listing:
            pass
    _assert_no_listing_threads()
    assert len(calls) == 3


def test_early_close_stops_the_threads(make: Callable[..., S3Store], s3_server: str, s3_bucket: str) -> None:
    keys = [f"{a}{b}/{i:02d}" for a in "abcd" for b in "xyz" for i in range(10)]
    _put(s3_server, s3_bucket, keys)
    store = make(max_keys=3, partitions=6)
    listing = store.list()
    assert [next(listing).key for _ in range(4)] == sorted(keys)[:4]
    assert _listing_threads()
    listing.close()  # type: ignore[attr-defined]
    _assert_no_listing_threads()


def _assert_no_listing_threads() -> None:
    deadline = time.monotonic() + 5
    while _listing_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _listing_threads() == []
