"""What every command starts from: a validated config, its databases, stores and collections."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from types import TracebackType

import sqlalchemy as sa

from reclaim.catalog import RowArchive
from reclaim.config import Config, StoreConfig, install_log_filter, load_config
from reclaim.errors import ConfigError, StoreError
from reclaim.lifecycle.archived import archived_sources
from reclaim.lifecycle.rows import same_database
from reclaim.references import Databases, ReferenceSource
from reclaim.rows import CollectionTable, describe
from reclaim.stores import Store, check_store_url, open_store
from reclaim.stores.scoped import scoped

__all__ = ["ConfigLike", "Session", "resolve_config"]

ConfigLike = Config | str | os.PathLike[str]


def resolve_config(config: ConfigLike) -> Config:
    """Accept a :class:`Config` or the path of a ``reclaim.toml``."""
    return config if isinstance(config, Config) else load_config(config)


def _check_store_urls(config: Config) -> None:
    """Every store URL has an installed backend: a config error naming the field, before any work."""
    for name, store in config.stores.items():
        try:
            check_store_url(name, store.url, store.storage_options)
        except StoreError as exc:
            message = str(exc).removeprefix(f"store {name!r}: ")
            raise ConfigError(message, field=f"stores.{name}.url", path=config.source_path) from None
        if store.listing == "inventory" and importlib.util.find_spec("pyarrow") is None:
            raise ConfigError(
                "reading S3 Inventory reports needs pyarrow: pip install 'reclaim[inventory]'",
                field=f"stores.{name}.listing",
                path=config.source_path,
            )


def _inventory_store(store: Store, cfg: StoreConfig) -> Store:
    """``store`` listed from its S3 Inventory reports (``listing = "inventory"``)."""
    from reclaim.stores.inventory import InventoryStore  # pyarrow: only for stores that use it
    from reclaim.stores.s3 import S3Store

    if not isinstance(store, S3Store) or cfg.inventory is None:
        raise StoreError(store.name, 'listing = "inventory" needs an s3:// store and its inventory location')
    return InventoryStore(store, cfg.inventory, max_age=cfg.max_inventory_age, include=cfg.include)


class Session:
    """Opened databases and stores for one command; a context manager that closes them."""

    def __init__(self, config: ConfigLike) -> None:
        self.config = resolve_config(config)
        _check_store_urls(self.config)
        self.databases = Databases(self.config)
        self._stores: dict[str, Store] = {}
        self._collections: dict[str, CollectionTable] = {}
        self.archive: RowArchive | None = None
        """The row archive, once a catalog is open: archived rows' references then count."""
        self._archive_engine: sa.Engine | None = None

    def attach(self, archive: RowArchive, engine: sa.Engine) -> None:
        """Let archived rows' references count in every source list from now on (invariant 6)."""
        self.archive = archive
        self._archive_engine = engine

    def store_names(self, selected: Sequence[str] | None) -> list[str]:
        """``selected`` validated against the config, or every configured store."""
        if not selected:
            return list(self.config.stores)
        unknown = [name for name in selected if name not in self.config.stores]
        if unknown:
            known = ", ".join(sorted(self.config.stores)) or "none"
            raise ConfigError(f"no store named {unknown[0]!r} (configured: {known})", field="stores")
        return list(selected)

    def store(self, name: str) -> Store:
        """The store called ``name``, opened once per session (clients and sessions are reused)."""
        if name not in self._stores:
            cfg = self.config.stores[name]
            store = open_store(name, cfg.url, cfg.storage_options)
            if cfg.listing == "inventory":
                # the listing comes from the newest S3 Inventory report (include applied to it)
                self._stores[name] = _inventory_store(store, cfg)
            else:
                # a store limited to some prefixes lists nothing outside them (never a candidate)
                self._stores[name] = scoped(store, cfg.include) if cfg.include else store
            # the backend's libraries (botocore logs credentials at DEBUG) exist now: filter them too
            install_log_filter()
        return self._stores[name]

    def sources(self, name: str) -> list[ReferenceSource]:
        """The reference sources of store ``name``, validated (tables and columns exist)."""
        sources = self.databases.sources(name)
        for source in sources:
            source.validate()
        if self.archive is not None and self._archive_engine is not None:
            sources += archived_sources(self.archive, sources, engine=self._archive_engine)
        return sources

    def released(self, name: str) -> Callable[[list[str]], set[str]] | None:
        """For a store with ``strays = "report"``: which of a page's candidates a row collection released.

        ``None`` for ``strays = "collect"`` (every candidate is collected). Without a
        catalog no row was ever archived, so nothing was released: every candidate is a stray.
        """
        if self.config.stores[name].strays != "report":
            return None
        archive = self.archive
        if archive is None:
            return lambda keys: set()
        return lambda keys: archive.released(name, keys)

    def collection_names(self, selected: Sequence[str] | None) -> list[str]:
        """``selected`` validated against the config, or every configured collection."""
        if not selected:
            return list(self.config.collections)
        unknown = [name for name in selected if name not in self.config.collections]
        if unknown:
            known = ", ".join(sorted(self.config.collections)) or "none"
            raise ConfigError(
                f"no collection named {unknown[0]!r} (configured: {known})", field="collections"
            )
        return list(selected)

    def collection(self, name: str) -> CollectionTable:
        """Collection ``name`` reflected and validated against its database (once per session)."""
        if name not in self._collections:
            cfg = self.config.collections[name]
            self._collections[name] = describe(name, self.config, self.databases.engine(cfg.database))
        return self._collections[name]

    def collections(self) -> dict[str, CollectionTable]:
        """Every configured collection, reflected."""
        return {name: self.collection(name) for name in self.config.collections}

    def shares_catalog(self, name: str) -> bool:
        """Whether collection ``name`` lives in the catalog's database (one transaction holds both)."""
        url = self.config.catalog.url
        database = self.config.databases[self.config.collections[name].database].url
        return url is not None and same_database(url, database)

    def close(self) -> None:
        """Release database connections and every store opened (each, even when another fails)."""
        with contextlib.ExitStack() as stack:
            stack.callback(self.databases.close)
            for store in self._stores.values():
                stack.callback(store.close)
            self._stores.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
