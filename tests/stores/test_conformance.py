"""The conformance suite run against every backend: only fixtures differ."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from reclaim.stores import Store, open_store
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
