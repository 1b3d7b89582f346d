"""``reclaim init``: a commented config file and an up-to-date catalog."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reclaim.api._template import CONFIG_TEMPLATE
from reclaim.catalog import open_catalog
from reclaim.catalog.files import require_catalog_directory
from reclaim.config import load_config, mask_url

__all__ = ["InitResult", "init"]


@dataclass(frozen=True)
class InitResult:
    """What ``init`` did."""

    config_path: str
    config_written: bool
    catalog_url: str
    catalog_revision: str


def init(path: str | os.PathLike[str] = "reclaim.toml", *, template: str = CONFIG_TEMPLATE) -> InitResult:
    """Write ``path`` from ``template`` unless it exists, then create or upgrade the catalog.

    An existing file is never overwritten; it is validated and its catalog
    migrated to the newest revision (running ``init`` again is safe). Raises
    :class:`~reclaim.errors.ConfigError` for an invalid file and
    :class:`~reclaim.errors.CatalogError` when the catalog cannot be reached.
    """
    file = Path(path)
    written = False
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(template, encoding="utf-8")
        written = True
    config = load_config(file)
    require_catalog_directory(config)
    catalog = open_catalog(config.catalog)
    try:
        revision = catalog.upgrade()
    finally:
        catalog.dispose()
    assert config.catalog.url is not None
    return InitResult(str(file), written, mask_url(config.catalog.url), revision)
