"""What every command starts from: a validated config, its databases and stores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType

from reclaim.config import Config, load_config
from reclaim.errors import ConfigError
from reclaim.references import Databases, ReferenceSource
from reclaim.stores import Store, open_store

__all__ = ["ConfigLike", "Session", "resolve_config"]

ConfigLike = Config | str | os.PathLike[str]


def resolve_config(config: ConfigLike) -> Config:
    """Accept a :class:`Config` or the path of a ``reclaim.toml``."""
    return config if isinstance(config, Config) else load_config(config)


class Session:
    """Opened databases and stores for one command; a context manager that closes them."""

    def __init__(self, config: ConfigLike) -> None:
        self.config = resolve_config(config)
        self.databases = Databases(self.config)
        self._stores: dict[str, Store] = {}

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
            self._stores[name] = open_store(name, cfg.url, cfg.storage_options)
        return self._stores[name]

    def sources(self, name: str) -> list[ReferenceSource]:
        """The reference sources of store ``name``, validated (tables and columns exist)."""
        sources = self.databases.sources(name)
        for source in sources:
            source.validate()
        return sources

    def close(self) -> None:
        """Release database connections."""
        self.databases.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
