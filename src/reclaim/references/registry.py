"""Binding configured reference sources to database engines."""

from __future__ import annotations

from types import TracebackType

import sqlalchemy as sa

from reclaim.config.model import Config
from reclaim.config.paths import sqlite_path
from reclaim.errors import ConfigError
from reclaim.references.databases import create_database_engine
from reclaim.references.sources import ReferenceSource

__all__ = ["Databases"]


class Databases:
    """Lazily created engines for the configured databases; a context manager that disposes them."""

    def __init__(self, config: Config, *, tempdir: str | None = None) -> None:
        self._config = config
        self._engines: dict[str, sa.Engine] = {}
        self._tempdir = tempdir

    def engine(self, name: str) -> sa.Engine:
        """The engine of database ``name`` (created on first use)."""
        if name not in self._engines:
            try:
                db = self._config.databases[name]
            except KeyError:
                raise ConfigError(f"database {name!r} is not configured", field=f"databases.{name}") from None
            _require_sqlite_file(name, db.url, self._config.source_path)
            self._engines[name] = create_database_engine(db)
        return self._engines[name]

    def sources(self, store: str) -> list[ReferenceSource]:
        """The reference sources of ``store``, bound to their engines."""
        store_config = self._config.stores[store]
        return [
            ReferenceSource(
                name=ref.display_name(index),
                config=ref,
                engine=self.engine(ref.database),
                database=ref.database,
                tempdir=self._tempdir,
            )
            for index, ref in enumerate(store_config.references)
        ]

    def close(self) -> None:
        """Dispose every engine (closing pooled connections)."""
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def __enter__(self) -> Databases:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _require_sqlite_file(name: str, url: str, config_path: str | None) -> None:
    """Refuse a SQLite database file that does not exist, naming it.

    SQLite would create an empty file and the command would then fail with
    "no such table"; reclaim reads the application's database, it never creates it.
    """
    path = sqlite_path(url)
    if path is None or path.exists():
        return
    missing = path if path.parent.is_dir() else path.parent
    what = "file" if missing == path else "directory"
    raise ConfigError(
        f"the SQLite database {what} {missing} does not exist (relative paths resolve against "
        "the config file's directory)",
        field=f"databases.{name}.url",
        path=config_path,
    )
