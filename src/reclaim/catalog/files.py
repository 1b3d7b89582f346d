"""Which files a command may create: only ``init`` creates a SQLite catalog.

SQLite creates a missing database file on first connect. A read-only command
(``scan``, ``check``, ``status``, ``runs``, ``lock``) must never leave files
behind, and a mutating one needs a catalog ``init`` created and migrated, so
both check for the file before anything connects.
"""

from __future__ import annotations

from reclaim.config import Config
from reclaim.config.paths import sqlite_path
from reclaim.errors import CatalogError, ConfigError

__all__ = ["catalog_file_exists", "require_catalog_directory", "require_catalog_file"]


def catalog_file_exists(config: Config) -> bool:
    """Whether the catalog is there to open (always ``True`` for server databases)."""
    path = sqlite_path(config.catalog.url or "")
    return path is None or path.exists()


def require_catalog_file(config: Config) -> None:
    """Raise :class:`CatalogError` naming the SQLite catalog file when it does not exist."""
    if not catalog_file_exists(config):
        path = sqlite_path(config.catalog.url or "")
        init = "reclaim init" + (f" --config {config.source_path}" if config.source_path else "")
        raise CatalogError(f"the catalog {path} does not exist; create it with '{init}'")


def require_catalog_directory(config: Config) -> None:
    """For ``init``: raise :class:`ConfigError` naming the missing directory of a SQLite catalog."""
    path = sqlite_path(config.catalog.url or "")
    if path is not None and not path.parent.is_dir():
        raise ConfigError(
            f"the directory {path.parent} of the SQLite catalog does not exist",
            field="catalog.url",
            path=config.source_path,
        )
