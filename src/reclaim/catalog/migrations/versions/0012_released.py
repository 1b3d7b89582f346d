"""Keys released by row collections, so that strays can be told apart.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06

Adds ``released``: one row per key (``kind = 'exact'``) or directory prefix
(``kind = 'prefix'``) that archived rows of a collection held in a store when
their archive expired (``store``, ``key``, ``key_hash``, ``collection``,
``released_at``), indexed by ``(store, key_hash)``. A scan candidate of a store
with ``strays = "report"`` is collected only when a row released it; any other
candidate is a stray, reported and never touched. A row is consumed when its
key is quarantined.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = 1024
_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _object_key() -> sa.types.TypeEngine[str]:
    # compared and ordered byte for byte, like object keys in 0001
    return (
        sa.String(_KEY)
        .with_variant(postgresql.VARCHAR(_KEY, collation="C"), "postgresql")
        .with_variant(mysql.VARBINARY(4 * _KEY), "mysql", "mariadb")
    )


def _timestamp() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create released."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.create_table(
        f"{p}released",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("key", _object_key(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("collection", sa.String(255), nullable=False),
        sa.Column("released_at", _timestamp(), nullable=False),
        schema=schema,
        **_MYSQL,
    )
    op.create_index(f"{p}released_key", f"{p}released", ["store", "key_hash"], schema=schema)


def downgrade() -> None:
    """Drop released."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.drop_table(f"{p}released", schema=schema)
