"""Items seen unreferenced, for stores and collections whose age is measured from then.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

Adds ``unreferenced``: one row per object key (kind ``store``) or row primary
key (kind ``collection``) that real runs currently see unreferenced, with
``first_seen`` (when a run first saw it so), ``last_seen_run`` and
``confirmed`` (a complete scan vouched for it). With ``age = "unreferenced"``
an item is a candidate only once its confirmed ``first_seen`` is older than
``min_age`` (``reclaim.catalog.sightings``). Starts empty: every watched item's
clock starts at the first run after the upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

_KEY = 1024


def _object_key() -> sa.types.TypeEngine[str]:
    # spelled out, not imported from reclaim.catalog.tables: a migration is history
    return (
        sa.String(_KEY)
        .with_variant(postgresql.VARCHAR(_KEY, collation="C"), "postgresql")
        .with_variant(mysql.VARBINARY(4 * _KEY), "mysql", "mariadb")
    )


def _timestamp() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the unreferenced table and its index."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.create_table(
        f"{p}unreferenced",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("item_hash", sa.String(64), primary_key=True),
        sa.Column("item", _object_key(), nullable=False),
        sa.Column("first_seen", _timestamp(), nullable=False),
        sa.Column("last_seen_run", sa.BigInteger(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        schema=schema,
        **_MYSQL,
    )
    op.create_index(
        f"{p}unreferenced_run", f"{p}unreferenced", ["kind", "owner", "last_seen_run"], schema=schema
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.drop_index(f"{p}unreferenced_run", table_name=f"{p}unreferenced", schema=schema)
    op.drop_table(f"{p}unreferenced", schema=schema)
