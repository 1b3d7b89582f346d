"""Fixtures of the catalog tests: catalogs that are always disposed, a migrated catalog per dialect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reclaim.catalog import Catalog

from .helpers import open_tracked


@pytest.fixture
def catalogs() -> Iterator[list[Catalog]]:
    """Catalogs opened by a test, disposed of afterwards (so the database can be dropped)."""
    opened: list[Catalog] = []
    yield opened
    for catalog in opened:
        catalog.dispose()


@pytest.fixture
def catalog(db_url: str, catalogs: list[Catalog]) -> Catalog:
    """A catalog migrated to head on a fresh database of each dialect."""
    catalog = open_tracked(catalogs, db_url)
    catalog.upgrade()
    return catalog
