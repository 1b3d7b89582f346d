"""The objects a ``follow`` collection's archived rows own.

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-06

Adds ``row_objects``: one row per object an archived row of a collection with
``objects = "follow"`` owns: the store, the key (byte-compared, looked up
through ``key_hash``) and the journal entry that quarantined it, NULL while
that quarantine is pending (a run killed in between leaves it so, and
``recover`` finishes it). Restoring the row restores these objects; its expiry
purges them; while the row is restorable the normal purge never takes them
(invariant 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = 1024
_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _key() -> sa.types.TypeEngine[str]:
    # compared and ordered byte for byte, like object keys in 0001
    return (
        sa.String(_KEY)
        .with_variant(postgresql.VARCHAR(_KEY, collation="C"), "postgresql")
        .with_variant(mysql.VARBINARY(4 * _KEY), "mysql", "mariadb")
    )


def upgrade() -> None:
    """Create row_objects and its indexes."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.create_table(
        f"{p}row_objects",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("key", _key(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        schema=schema,
        **_MYSQL,
    )
    op.create_index(f"{p}row_objects_row", f"{p}row_objects", ["row_id"], schema=schema)
    op.create_index(f"{p}row_objects_key", f"{p}row_objects", ["store", "key_hash"], schema=schema)
    op.create_index(f"{p}row_objects_entry", f"{p}row_objects", ["entry_id"], schema=schema)


def downgrade() -> None:
    """Drop row_objects."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.drop_table(f"{p}row_objects", schema=schema)
