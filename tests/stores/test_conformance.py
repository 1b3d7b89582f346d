"""The conformance suite run against every backend: only fixtures differ."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from reclaim.stores import PartitionableStore, Store, VersionedStore, is_versioned, open_store
from reclaim.stores.fsspec_store import FsspecStore
from reclaim.stores.scoped import ScopedStore, scoped

from .suite import MakeStore, StoreSuite, keys


class TestLocalStore(StoreSuite):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        def make(root: str) -> Store:
            (tmp_path / root).mkdir(exist_ok=True)
            return open_store("blobs", f"file://{tmp_path / root}")

        return make


class TestMemoryStore(StoreSuite):
    @pytest.fixture
    def make_store(self) -> Iterator[MakeStore]:
        base = f"test-{secrets.token_hex(4)}"
        yield lambda root: open_store("blobs", f"memory://{base}/{root}")
        fs = fsspec.filesystem("memory")
        if fs.exists(f"/{base}"):
            fs.rm(f"/{base}", recursive=True)


class TestS3Store(StoreSuite):
    keys_can_be_prefixes = True
    # the backend can restore kept versions whatever the bucket's setting: in a bucket that
    # keeps none, restore_version finds none (tests/lifecycle/test_versioned_restore.py)
    versioned = True
    partitionable = True

    @pytest.fixture
    def make_store(self, s3_bucket: str, s3_options: dict[str, object]) -> Iterator[MakeStore]:
        pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
        from reclaim.stores.s3 import S3Store

        made: list[FsspecStore] = []

        def make(root: str) -> Store:
            # three keys per page, so that every listing in the suite crosses pages
            store = S3Store("blobs", f"s3://{s3_bucket}/{root}", s3_options, max_keys=3)
            made.append(store)
            return store

        yield make
        for store in made:
            store.close()


class TestFsspecStore(StoreSuite):
    """The generic adapter (as used for gs://, az://, ...) over fsspec's local filesystem."""

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        def make(root: str) -> Store:
            store = open_store("blobs", f"local://{tmp_path / root}")
            assert type(store) is FsspecStore
            return store

        return make


#: prefixes that cover every key the suite writes, several of them siblings that a listing
#: must join in byte order ("a-", "a.", "a/", "a0", "ab": keys under each sort between the others')
SCOPE = [
    *("A", "Z", "_", "a-", "a.", "a/", "a0", "ab", "c/", "d", "e", "g/", "h", "i", "m/", "o"),
    *("p", "q", "r/", "s", "t", "v/", "w", "~", "é", "日", "\ufb01", "\U0001f600"),
]
#: keys outside SCOPE, written next to the suite's in every scoped store, never listed
OUTSIDE = ["aa", "b/x", "c0", "gx", "r0", "u/deep/x", "z", "本/x"]


class _ScopedFixtures:
    """A scoped store over a backend: it lists the keys under ``include`` and nothing else."""

    include = SCOPE

    def scope(self, inner: Store) -> Store:
        outside = [key for key in OUTSIDE if not key.startswith(tuple(self.include))]
        assert outside
        for key in outside:
            inner.write(key, b"outside the scope")
        store = scoped(inner, self.include)
        assert isinstance(store, ScopedStore)
        return store


class TestScopedLocalStore(_ScopedFixtures, StoreSuite):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        def make(root: str) -> Store:
            (tmp_path / root).mkdir(exist_ok=True)
            return self.scope(open_store("blobs", f"file://{tmp_path / root}"))

        return make


class TestScopedS3Store(_ScopedFixtures, StoreSuite):
    """Scoped over S3: versions and partitioning are delegated, so both capabilities remain."""

    include = [p for p in SCOPE if not p.startswith("a")] + ["a"]  # the suite writes "a" and "a/x" here
    keys_can_be_prefixes = True
    versioned = True
    partitionable = True

    @pytest.fixture
    def make_store(self, s3_bucket: str, s3_options: dict[str, object]) -> Iterator[MakeStore]:
        pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
        from reclaim.stores.s3 import S3Store

        made: list[Store] = []

        def make(root: str) -> Store:
            store = self.scope(S3Store("blobs", f"s3://{s3_bucket}/{root}", s3_options, max_keys=3))
            made.append(store)
            return store

        yield make
        for store in made:
            store.close()


def test_a_scope_lists_nothing_outside_it_under_any_prefix_or_range(tmp_path: Path) -> None:
    inner = open_store("blobs", f"file://{tmp_path}")
    inside = ["_hash/s1/ab/x", "_hash/s1/cd", "_schema/s1/t/k/f", "_schema/s10/t/k/f"]
    outside = ["_hash/s0/x", "_hash/s10/x", "_hash/s2/x", "_schema/s2/t/k/f", "user/own", "_schema/s1.txt"]
    for key in inside + outside:
        inner.write(key, b"x")
    store = scoped(inner, ["_schema/s1/", "_hash/s1/", "_schema/s10/", "_hash/s1/ab/"])
    assert keys(store.list()) == sorted(inside)
    assert keys(store.list("_hash/")) == ["_hash/s1/ab/x", "_hash/s1/cd"]
    assert keys(store.list("_hash/s1/ab/")) == ["_hash/s1/ab/x"]
    assert keys(store.list("user/")) == []
    assert keys(store.list(skip=["_hash/s1/ab/"])) == sorted(set(inside) - {"_hash/s1/ab/x"})
    bounds: list[str | None] = [None, "_hash/s1/b", "_hash/s2", "_schema/s1/t", "_schema/s10/", None]
    for lo in bounds:
        for hi in bounds[::-1]:
            expected = [k for k in sorted(inside) if (lo is None or k > lo) and (hi is None or k < hi)]
            assert keys(store.list(start_after=lo, end_before=hi)) == expected, (lo, hi)
    for key in outside:  # the scope limits listings, not single-object calls
        assert store.read(key) == b"x"
    with pytest.raises(ValueError, match="at least one prefix"):
        scoped(inner, [])
    with pytest.raises(ValueError, match="invalid"):
        scoped(inner, ["../up/"])


def test_a_scope_has_the_capabilities_of_what_it_wraps_and_no_others(tmp_path: Path) -> None:
    local = scoped(open_store("blobs", f"file://{tmp_path}"), ["a/"])
    assert not isinstance(local, VersionedStore)
    assert not isinstance(local, PartitionableStore)
    assert not hasattr(local, "restore_version")  # no attribute passthrough
    assert not hasattr(local, "first_level")


def test_a_versioned_s3_bucket_is_a_versioned_store(s3_server: str, s3_options: dict[str, object]) -> None:
    pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
    boto3 = pytest.importorskip("boto3")
    bucket = f"reclaim-cap-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = open_store("blobs", f"s3://{bucket}/root", s3_options)
    try:
        assert isinstance(store, VersionedStore)
        assert is_versioned(store)
        assert isinstance(store, PartitionableStore)
        store.write("k", b"kept")
        store.delete(["k"])
        assert store.restore_version("k") is True
        assert store.read("k") == b"kept"
    finally:
        store.close()
        store.close()


def test_a_local_store_has_no_optional_capability(tmp_path: Path) -> None:
    store = open_store("blobs", f"file://{tmp_path}")
    assert not isinstance(store, VersionedStore)
    assert not is_versioned(store)
    assert not isinstance(store, PartitionableStore)
    assert not is_versioned(open_store("blobs", f"memory://cap-{secrets.token_hex(4)}"))
