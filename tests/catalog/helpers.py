"""Helpers shared by the catalog tests."""

from __future__ import annotations

from reclaim.catalog import Catalog, open_catalog
from reclaim.config import CatalogConfig


def open_tracked(catalogs: list[Catalog], url: str) -> Catalog:
    """Open a catalog on ``url`` and remember it, so the ``catalogs`` fixture disposes it."""
    catalog = open_catalog(CatalogConfig(url=url))
    catalogs.append(catalog)
    return catalog
