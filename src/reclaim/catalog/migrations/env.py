"""The Alembic environment of the catalog, run programmatically (no alembic.ini).

:meth:`reclaim.catalog.Catalog.upgrade` builds an Alembic ``Config`` and puts
three things into ``config.attributes``:

- ``connection``: an open SQLAlchemy connection, already inside a transaction;
- ``schema``: the catalog schema or ``None``;
- ``prefix``: the catalog table prefix.

The version table is ``<prefix>alembic_version`` in that schema, so several
catalogs (different prefixes or schemas) can share one database.

Two upgrades may start at once (two operators running ``reclaim init``, a cron
job and a deploy). Each takes an exclusive lock first (a transaction-scoped
advisory lock on PostgreSQL, ``GET_LOCK`` on MariaDB/MySQL, ``BEGIN IMMEDIATE``
on SQLite, which the catalog's engine issues), and only then reads the current
revision: the second one finds the catalog at head and does nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import context

from reclaim.catalog.tables import catalog_tables
from reclaim.errors import CatalogError

#: seconds to wait for a concurrent upgrade of the same catalog to finish
LOCK_TIMEOUT = 120


def _lock_name(schema: str | None) -> str:
    # per schema, not per catalog: catalogs with different prefixes may both be
    # about to create the same PostgreSQL schema
    return hashlib.sha256(f"reclaim-catalog:{schema or ''}".encode()).hexdigest()


@contextmanager
def _exclusive(connection: sa.Connection, schema: str | None) -> Iterator[None]:
    """Hold a lock that serialises the upgrades of every catalog in ``schema``."""
    name = _lock_name(schema)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # released by the commit or rollback of the caller's transaction
        key = int.from_bytes(bytes.fromhex(name[:16]), "big", signed=True)
        connection.execute(sa.select(sa.func.set_config("lock_timeout", f"{LOCK_TIMEOUT}s", True)))
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        yield
    elif dialect in ("mysql", "mariadb"):
        # GET_LOCK belongs to the session and survives the implicit commits of DDL
        mysql_name = f"reclaim-catalog-{name[:40]}"
        got = connection.execute(sa.select(sa.func.get_lock(mysql_name, LOCK_TIMEOUT))).scalar()
        if got != 1:
            raise CatalogError(f"another upgrade of this catalog held its lock for {LOCK_TIMEOUT} s")

        def release() -> None:
            connection.execute(sa.select(sa.func.release_lock(mysql_name)))

        after = context.config.attributes.get("after_transaction")
        if isinstance(after, list):
            # released by the caller once the transaction has committed (or rolled back): released
            # before, a waiting upgrade would read the revision before this one and run it again
            after.append(release)
            yield
            return
        try:
            yield
        finally:
            release()
    else:
        # SQLite: the catalog engine began this transaction with BEGIN IMMEDIATE
        yield


def _ensure_schema(connection: sa.Connection, schema: str | None) -> None:
    """Create the catalog schema on PostgreSQL when it does not exist yet."""
    if schema is None or connection.dialect.name != "postgresql":
        return
    # checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even
    # when the schema is there, and an operator may have created it for us
    if not sa.inspect(connection).has_schema(schema):
        connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))


def run_migrations() -> None:
    """Upgrade (or downgrade) the catalog on the connection given in ``config.attributes``."""
    config = context.config
    connection = config.attributes.get("connection")
    if not isinstance(connection, sa.Connection):
        raise CatalogError(
            "the catalog migrations run through reclaim ('reclaim init' or Catalog.upgrade), "
            "which passes a connection in config.attributes"
        )
    schema: str | None = config.attributes.get("schema")
    prefix: str = config.attributes["prefix"]
    tables = catalog_tables(schema, prefix)
    ours = set(tables.metadata.tables)

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        # autogenerate must never see (and so never drop) the tables of the
        # database reclaim shares; only the catalog's own tables are compared
        if type_ == "table":
            qualified = f"{schema}.{name}" if schema else str(name)
            return qualified in ours
        if type_ == "schema":
            return name == schema
        return True

    context.configure(
        connection=connection,
        target_metadata=tables.metadata,
        version_table=tables.version_table,
        version_table_schema=schema,
        include_schemas=schema is not None,
        include_name=include_name,
        compare_type=True,
    )
    with _exclusive(connection, schema):
        _ensure_schema(connection, schema)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise CatalogError("the catalog migrations run online only (reclaim init)")
run_migrations()
