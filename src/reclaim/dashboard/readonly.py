"""The catalog as the dashboard opens it: read-only, on every dialect.

The dashboard must never change the catalog (nor create it), so its
configuration is the operator's with the catalog URL rewritten:

- SQLite: ``sqlite:///file:PATH?mode=ro&uri=true``: the file is opened
  read-only (a missing file is an error, never created), and writes fail;
- PostgreSQL: ``default_transaction_read_only=on`` for every session;
- MariaDB/MySQL (pymysql): ``SET SESSION TRANSACTION READ ONLY`` on connect.

Everything the dashboard reads, through :mod:`reclaim.api` or its own paged
queries, goes through this configuration.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from reclaim.api import ConfigLike, resolve_config
from reclaim.config import Config
from reclaim.errors import CatalogError

__all__ = ["catalog_path", "read_only_config"]

#: how long a dashboard query may run, and wait for a lock (ms), on PostgreSQL
_PG_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=30000 -c lock_timeout=5000"


def catalog_path(config: Config) -> Path | None:
    """The SQLite catalog file of ``config``, ``None`` for a server database."""
    url = sa.make_url(config.catalog.url or "")
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = url.database.removeprefix("file:") if url.query.get("uri") else url.database
    return Path(database.split("?", 1)[0]).expanduser()


def read_only_config(config: ConfigLike) -> Config:
    """``config`` with its catalog URL rewritten so that every connection is read-only.

    Raises :class:`~reclaim.errors.CatalogError` when the catalog URL is not set.
    """
    resolved = resolve_config(config)
    if not resolved.catalog.url:
        raise CatalogError("catalog.url is not set; run 'reclaim init' to write a configuration")
    url = sa.make_url(resolved.catalog.url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = catalog_path(resolved)
        if path is None:
            raise CatalogError("the dashboard needs a catalog in a file or a server, not in memory")
        text = f"sqlite:///file:{path}?mode=ro&uri=true"
    elif backend == "postgresql":
        text = url.update_query_dict({"options": _PG_OPTIONS}).render_as_string(hide_password=False)
    elif backend in ("mysql", "mariadb"):
        query = {"init_command": "SET SESSION TRANSACTION READ ONLY"}
        text = url.update_query_dict(query).render_as_string(hide_password=False)
    else:  # pragma: no cover - the config allows no other dialect
        raise CatalogError(f"the dashboard cannot open a {backend} catalog read-only")
    catalog = resolved.catalog.model_copy(update={"url": text})
    return resolved.model_copy(update={"catalog": catalog})
