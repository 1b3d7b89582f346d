"""A store whose listing goes out of byte order makes scan and quarantine fail closed (invariant 2).

The streaming merge is only right when the listing and the reference streams
are in the same order: a key listed late could be passed over by the merge and
look unreferenced. The store here is a real local directory whose listing
swaps two neighbouring keys (as a buggy backend or an inventory report out of
order would); every key in it is real and old enough. The scan must raise
:class:`~reclaim.errors.StoreError` naming the store, and quarantine must stop
before anything moves: no journal entry, every object at its key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import reclaim
from reclaim import api
from reclaim.api import Session
from reclaim.catalog import Journal, open_catalog
from reclaim.errors import StoreError
from reclaim.lifecycle.scan import scan_store
from reclaim.stores import ObjectInfo, Store, register_scheme
from reclaim.stores._pages import InfoPage, KeyPage
from reclaim.stores.local import LocalStore

from .archive import OLD, Archive, make_archive

SCHEME = "unordered-test"
ORPHANS = [f"blobs/{i:02d}" for i in range(10)]
REFERENCED = ["blobs/03", "blobs/08"]


class UnorderedStore(LocalStore):
    """A local directory whose listing swaps the last two keys of every listing call."""

    def list(self, *args: Any, **kwargs: Any) -> Iterator[ObjectInfo]:
        listed = list(super().list(*args, **kwargs))
        if len(listed) >= 2:
            listed[-2], listed[-1] = listed[-1], listed[-2]
        yield from listed

    def list_pages(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[KeyPage]:
        """The same listing, as the page the scan reads (one page: the swap is inside it)."""
        yield InfoPage(list(self.list(prefix, skip=skip)), self)


def _unordered(name: str, url: str, options: Mapping[str, Any]) -> Store:
    return UnorderedStore(name, url, url.removeprefix(f"{SCHEME}://"))


@pytest.fixture
def archive(tmp_path: Path, sqlite_url: str) -> Iterator[Archive]:
    register_scheme(SCHEME, _unordered)  # a scheme of its own: no other test opens it
    root = tmp_path / "store"
    root.mkdir()
    archive = make_archive(tmp_path, sqlite_url, store_url=f"{SCHEME}://{root}", mode="move")
    stamp = time.time() - OLD
    for key in ORPHANS:
        archive.put(key)
        os.utime(root / key, (stamp, stamp))  # Archive.put ages file:// stores only
    for key in REFERENCED:
        archive.reference(key)
    yield archive
    archive.dispose()


def test_the_store_really_lists_out_of_order(archive: Archive) -> None:
    listed = [info.key for info in archive.store().list()]
    assert sorted(listed) == ORPHANS
    assert listed != ORPHANS  # the fixture is what it claims to be


def test_scan_store_fails_closed_on_a_listing_out_of_order(archive: Archive) -> None:
    config = reclaim.load_config(archive.config_path)
    with Session(config) as session:
        store = session.store("main")
        sources = session.sources("main")
        cfg = config.stores["main"]
        with pytest.raises(StoreError, match="order") as caught:
            scan_store(
                store,
                sources,
                action="collect",
                min_age=timedelta(days=1),
                max_fraction=1.0,
                trash_prefix=cfg.trash_prefix,
            )
    assert caught.value.store == "main"


def test_scan_and_quarantine_fail_closed_with_nothing_quarantined(archive: Archive) -> None:
    with pytest.raises(StoreError, match="order"):
        api.scan(archive.config_path)
    with pytest.raises(StoreError, match="order"):
        api.quarantine(archive.config_path)
    store = archive.store()
    assert all(store.exists(key) for key in ORPHANS), "an object moved although the listing was unusable"
    assert not any(store.exists("_trash/" + key) for key in ORPHANS)
    catalog = open_catalog(archive.config.catalog)
    try:
        journal = Journal(catalog)
        assert [key for key in ORPHANS if journal.latest("main", key) is not None] == []
    finally:
        catalog.dispose()
    assert api.runs(archive.config_path)[0].status == "aborted"
