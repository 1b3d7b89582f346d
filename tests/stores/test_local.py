"""Local-directory store: listing cost, failing closed, symlinks, atomic writes and moves."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reclaim.errors import StoreError
from reclaim.stores import default_mode, open_store
from reclaim.stores import local as local_module
from reclaim.stores.local import LocalStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def store(root: Path) -> LocalStore:
    return LocalStore("blobs", f"file://{root}", str(root))


def keys(store: LocalStore, prefix: str = "", **kwargs: Any) -> list[str]:
    return [info.key for info in store.list(prefix, **kwargs)]


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Wrap ``module.name`` so that calls are counted (the real function still runs)."""
    counter = [0]
    real: Callable[..., Any] = getattr(module, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return counter


def test_listing_carries_size_and_mtime_without_path_lookups(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"d{d}/sub{s}/f{f:02d}" for d in range(3) for s in range(3) for f in range(20)]
    for i, name in enumerate(names):
        store.write(name, b"x" * i)
    expected = {name: os.lstat(root / name) for name in names}
    stats = count_calls(monkeypatch, os, "stat")
    lstats = count_calls(monkeypatch, os, "lstat")
    infos = list(store.list())
    assert [i.key for i in infos] == sorted(names)
    # size and mtime come from fstatat on the open directory, not from a path stat per key
    assert {i.key: (i.size, i.mtime) for i in infos} == {
        name: (st.st_size, st.st_mtime) for name, st in expected.items()
    }
    assert (stats[0], lstats[0]) == (0, 0)
    # a prefix costs one lstat per directory segment of the prefix, not one per key
    assert keys(store, "d1/sub2/") == sorted(n for n in names if n.startswith("d1/sub2/"))
    assert (stats[0], lstats[0]) == (0, 2)


def test_listing_is_lazy(store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in range(10):
        store.write(f"d{d}/f", b"x")
    scans = count_calls(monkeypatch, os, "scandir")
    listing = store.list()
    assert next(listing).key == "d0/f"
    assert scans[0] == 2  # the root and d0, not the other nine directories
    assert len(list(listing)) == 9


def test_directory_removed_mid_listing_fails_closed(store: LocalStore, root: Path) -> None:
    for d in ("d1", "d2", "d3"):
        for f in range(3):
            store.write(f"{d}/f{f}", b"x")
    listing = store.list()
    assert next(listing).key == "d1/f0"
    shutil.rmtree(root / "d3")
    with pytest.raises(StoreError, match="d3") as failure:
        list(listing)
    assert failure.value.store == "blobs"


def test_directory_swapped_for_a_symlink_mid_listing_is_refused(store: LocalStore, root: Path) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"not ours")
    store.write("a/f", b"x")
    store.write("b/f", b"x")
    listing = store.list()
    assert next(listing).key == "a/f"
    shutil.rmtree(root / "b")
    (root / "b").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="directory 'b'"):
        list(listing)


def test_missing_root_fails_closed(tmp_path: Path) -> None:
    store = LocalStore("gone", "file:///nowhere", str(tmp_path / "not-there"))
    for prefix in ("", "a", "a/", "a/b/c"):
        with pytest.raises(StoreError, match="store root"):
            list(store.list(prefix))


def test_symlink_to_directory_outside_root_is_never_followed(store: LocalStore, root: Path) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"outside the root")
    (root / "link").symlink_to(outside, target_is_directory=True)
    store.write("a", b"a")
    assert keys(store) == ["a", "link"]  # the link is a key; nothing under it is listed
    assert keys(store, "link/") == []
    assert store.stat("link").size == len(str(outside))  # lstat: the link itself
    with pytest.raises(StoreError, match="symbolic link"):
        store.read("link")
    for call in (
        lambda: store.stat("link/secret"),
        lambda: store.read("link/secret"),
        lambda: store.write("link/new", b"x"),
        lambda: store.delete(["a", "link/secret"]),
        lambda: store.move("a", "link/a"),
    ):
        with pytest.raises(StoreError, match="outside the store root"):
            call()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert store.exists("a")  # a refused batch deletes nothing
    store.delete(["link"])  # deleting the link removes the link, never the target
    assert (outside / "secret").read_bytes() == b"outside the root"


def test_symlink_inside_root_is_a_key_not_a_directory(store: LocalStore, root: Path) -> None:
    store.write("d/f", b"x")
    (root / "alias").symlink_to(root / "d", target_is_directory=True)
    assert keys(store) == ["alias", "d/f"]


def test_delete_refuses_directories(store: LocalStore, root: Path) -> None:
    store.write("d/e/f", b"x")
    with pytest.raises(StoreError, match="delete failed"):
        store.delete(["d/e"])
    assert store.exists("d/e/f")


def test_move_is_a_rename(store: LocalStore, root: Path) -> None:
    store.write("k", b"data")
    inode = os.stat(root / "k").st_ino
    store.move("k", "_trash/k")
    assert os.stat(root / "_trash" / "k").st_ino == inode
    assert default_mode(store) == "move"


def test_move_without_renameat2_still_refuses_to_replace(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "_renameat2", None)  # the hard-link fallback
    store.write("a", b"a")
    store.write("b", b"b")
    with pytest.raises(FileExistsError):
        store.move("a", "b")
    store.move("a", "sub/c")
    assert (store.read("b"), store.read("sub/c"), store.exists("a")) == (b"b", b"a", False)


def test_write_is_atomic(store: LocalStore, root: Path) -> None:
    old, new = b"o" * 2**20, b"n" * 2**20
    store.write("obj", old)
    seen: set[bytes] = set()
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.add(store.read("obj"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            store.write("obj", new if i % 2 == 0 else old)
    finally:
        done.set()
        thread.join()
    assert seen <= {old, new}
    assert sorted(p.name for p in root.iterdir()) == ["obj"]  # no temporary files left


def test_failed_write_leaves_nothing_behind(store: LocalStore, root: Path) -> None:
    store.write("f", b"file")
    with pytest.raises(StoreError, match="write failed"):
        store.write("f/x", b"under a file")
    (root / "d").mkdir()
    with pytest.raises(StoreError, match="write failed"):
        store.write("d", b"onto a directory")
    assert sorted(p.name for p in root.rglob("*")) == ["d", "f"]


def test_names_that_are_not_utf8_are_left_out(store: LocalStore, root: Path) -> None:
    store.write("a", b"a")
    store.write("z", b"z")
    os.close(os.open(os.path.join(os.fsencode(root), b"bad\xff"), os.O_CREAT | os.O_WRONLY))
    os.mkdir(os.path.join(os.fsencode(root), b"dir\xfe"))
    assert keys(store) == ["a", "z"]


def test_urls_and_plain_paths(root: Path) -> None:
    for url in (f"file://{root}", f"file://localhost{root}", str(root)):
        store = open_store("blobs", url)
        assert isinstance(store, LocalStore)
        assert store.root == str(root)
    for bad in ("file://host/x", "file://relative"):
        with pytest.raises(StoreError, match="absolute"):
            open_store("blobs", bad)
    with pytest.raises(StoreError, match="filesystem root"):
        open_store("blobs", "file:///")
    with pytest.raises(StoreError, match="no storage options"):
        open_store("blobs", str(root), {"auto_mkdir": True})
