"""The conformance suite run against every backend: only fixtures differ."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from reclaim.stores import PartitionableStore, Store, VersionedStore, is_versioned, open_store
from reclaim.stores.fsspec_store import FsspecStore

from .suite import MakeStore, StoreSuite


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
