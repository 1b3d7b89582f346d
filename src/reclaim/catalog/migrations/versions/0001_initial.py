"""The initial catalog: runs, the object journal, the row archive and the lease.

Revision ID: 0001
Revises:
Create Date: 2026-05-09

The schema and the table prefix come from ``context.config.attributes`` (see
``env.py``). The column types are spelled out here rather than imported from
``reclaim.catalog.tables``: a migration is history and must keep creating what
it created on the day it was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = 1024
# utf8mb4_bin: keys "A" and "a" (or "a" and "a ") are different objects
_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def _object_key() -> sa.types.TypeEngine[str]:
    # compared and ordered byte for byte: "C" on PostgreSQL, VARBINARY on MariaDB
    # (whose binary text collations ignore trailing spaces), BINARY on SQLite
    return (
        sa.String(_KEY)
        .with_variant(postgresql.VARCHAR(_KEY, collation="C"), "postgresql")
        .with_variant(mysql.VARBINARY(4 * _KEY), "mysql", "mariadb")
    )


def _timestamp() -> sa.types.TypeEngine[datetime]:
    # UTC; MariaDB keeps microseconds only with an explicit precision
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the four catalog tables and the lease row."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]

    op.create_table(
        f"{p}runs",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("command", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("options", _long_text(), nullable=False),
        sa.Column("counts", _long_text(), nullable=False),
        sa.Column("error", _long_text(), nullable=True),
        schema=schema,
        **_MYSQL,
    )

    op.create_table(
        f"{p}objects",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("key", _object_key(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("trash_key", _object_key(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime", _timestamp(), nullable=True),
        sa.Column("etag", sa.String(255), nullable=True),
        sa.Column("version_id", sa.String(_KEY), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_run_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("due_at", _timestamp(), nullable=True),
        schema=schema,
        **_MYSQL,
    )
    op.create_index(f"{p}objects_key", f"{p}objects", ["store", "key_hash"], schema=schema)
    op.create_index(f"{p}objects_due", f"{p}objects", ["store", "state", "due_at"], schema=schema)
    op.create_index(f"{p}objects_run", f"{p}objects", ["run_id"], schema=schema)

    op.create_table(
        f"{p}rows",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("collection", sa.String(255), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("pk", sa.Text(), nullable=False),
        sa.Column("pk_hash", sa.String(64), nullable=False),
        sa.Column("row", _long_text(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("archived_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        schema=schema,
        **_MYSQL,
    )
    op.create_index(f"{p}rows_pk", f"{p}rows", ["collection", "pk_hash"], schema=schema)
    op.create_index(f"{p}rows_expiry", f"{p}rows", ["state", "expires_at"], schema=schema)
    op.create_index(f"{p}rows_run", f"{p}rows", ["run_id"], schema=schema)

    lease = op.create_table(
        f"{p}lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("token", sa.String(64), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("acquired_at", _timestamp(), nullable=True),
        sa.Column("heartbeat_at", _timestamp(), nullable=True),
        sa.Column("expires_at", _timestamp(), nullable=True),
        schema=schema,
        **_MYSQL,
    )
    # the one lease row exists from the start, so that taking the lease is a
    # compare-and-set UPDATE and two collectors can never both insert it
    op.bulk_insert(lease, [{"name": "collector"}])


def downgrade() -> None:
    """Drop the catalog tables (and with them the journal and the row archive)."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    for name in ("lease", "rows", "objects", "runs"):
        op.drop_table(f"{p}{name}", schema=schema)
