"""Engines for the configured databases, with connect timeouts and pre-ping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from reclaim.config.model import DatabaseConfig

__all__ = ["create_database_engine", "dialect_of"]


def create_database_engine(config: DatabaseConfig, **kwargs: Any) -> sa.Engine:
    """Create an engine for ``config`` with a connect timeout and pre-ping.

    No connection is made here; the first query connects.
    """
    url = sa.make_url(config.url)
    timeout = max(1, int(config.connect_timeout.total_seconds()))
    connect_args: dict[str, Any] = {}
    dialect = url.get_backend_name()
    if dialect == "postgresql":
        connect_args["connect_timeout"] = timeout
        if "options" not in url.query:
            # the re-check runs one statement per batch with a new array of keys: once psycopg has
            # prepared it, PostgreSQL would switch to a generic plan whose `= ANY(array)` is not
            # hashed (several times slower on every batch); a custom plan per batch keeps it hashed
            connect_args["options"] = "-c plan_cache_mode=force_custom_plan"
    elif dialect in {"mysql", "mariadb"}:
        connect_args["connect_timeout"] = timeout
        connect_args.setdefault("charset", "utf8mb4")
    elif dialect == "sqlite":
        connect_args["timeout"] = timeout
    options: Mapping[str, Any] = {"pool_pre_ping": True, **kwargs}
    return sa.create_engine(url, connect_args=connect_args, **options)


def dialect_of(engine: sa.Engine) -> str:
    """``postgresql``, ``mysql`` (MariaDB included) or ``sqlite``."""
    name = engine.dialect.name
    return "mysql" if name == "mariadb" else name
