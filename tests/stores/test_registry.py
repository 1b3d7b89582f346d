"""Opening stores by URL: the scheme registry, missing backends, the default mode, the public API."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import reclaim.stores
from reclaim.errors import StoreError
from reclaim.stores import ObjectInfo, Store, default_mode, open_store, register_scheme
from reclaim.stores import registry as registry_module
from reclaim.stores.fsspec_store import FsspecStore
from reclaim.stores.local import LocalStore
from reclaim.stores.memory import MemoryStore


def test_public_api_is_exactly_all() -> None:
    assert sorted(reclaim.stores.__all__) == [
        "ObjectInfo",
        "PartitionableStore",
        "Store",
        "Version",
        "VersionedStore",
        "check_store_url",
        "default_mode",
        "is_versioned",
        "open_store",
        "register_scheme",
        "validate_key",
    ]
    for name in reclaim.stores.__all__:
        assert hasattr(reclaim.stores, name)


def test_builtin_schemes(tmp_path: Path) -> None:
    assert isinstance(open_store("a", str(tmp_path)), LocalStore)
    assert isinstance(open_store("b", f"file://{tmp_path}"), LocalStore)
    assert isinstance(open_store("c", "memory://registry-test"), MemoryStore)
    generic = open_store("d", f"local://{tmp_path}")
    assert type(generic) is FsspecStore
    assert default_mode(open_store("e", str(tmp_path))) == "move"
    assert default_mode(open_store("f", "memory://registry-test")) == "mark"


@pytest.mark.parametrize(
    ("url", "package", "hint"),
    [
        ("gs://bucket/prefix", "gcsfs", "reclaim[gcs]"),
        ("gcs://bucket/prefix", "gcsfs", "reclaim[gcs]"),
        ("az://container/prefix", "adlfs", "reclaim[azure]"),
        ("abfs://container/prefix", "adlfs", "reclaim[azure]"),
    ],
)
def test_missing_backend_says_which_extra_to_install(url: str, package: str, hint: str) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    with pytest.raises(StoreError, match=re.escape(f"pip install '{hint}'")) as failure:
        open_store("archive", url)
    assert failure.value.store == "archive"


def test_unknown_scheme() -> None:
    with pytest.raises(StoreError, match="no store backend for URL scheme 'nosuch'") as failure:
        open_store("archive", "nosuch://x/y")
    assert failure.value.store == "archive"


def test_register_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_factories", dict(registry_module._factories))
    opened: list[tuple[str, str, Mapping[str, Any]]] = []

    def factory(name: str, url: str, options: Mapping[str, Any]) -> Store:
        opened.append((name, url, options))
        return MemoryStore(name, "memory://custom")

    register_scheme("Custom", factory)
    store = open_store("x", "CUSTOM://anything", {"opt": 1})
    assert isinstance(store, MemoryStore)
    assert opened == [("x", "CUSTOM://anything", {"opt": 1})]
    with pytest.raises(ValueError, match="invalid URL scheme"):
        register_scheme("not a scheme", factory)


def test_urls_are_masked(tmp_path: Path) -> None:
    store = open_store("m", "memory://user:hunter2-secret@host/x")
    assert "hunter2-secret" not in store.url
    assert "***" in store.url


def test_memory_url_needs_a_name() -> None:
    with pytest.raises(StoreError, match="needs a name"):
        open_store("m", "memory://")


def test_object_info_defaults() -> None:
    assert ObjectInfo("k") == ObjectInfo("k", None, None, None)
