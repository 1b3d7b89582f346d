"""What archived rows reference, and who last changed an archived row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Adds ``row_refs``: one row per value an archived row references (a foreign
key's value, or the value a store's reference source reads from it), indexed
by ``(table_name, selector, value_hash)``. While an archived row can be
restored, these values count as referenced in the object scan, the purge
re-check and other collections' candidate predicates (invariant 6).

Adds to ``rows``: ``updated_at`` and ``updated_run_id`` (the run that restored,
confirmed or discarded the archived row).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = 1024
_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _timestamp() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _value() -> sa.types.TypeEngine[str]:
    # compared and ordered byte for byte, like object keys in 0001
    return (
        sa.String(_KEY)
        .with_variant(postgresql.VARCHAR(_KEY, collation="C"), "postgresql")
        .with_variant(mysql.VARBINARY(4 * _KEY), "mysql", "mariadb")
    )


def upgrade() -> None:
    """Create row_refs; add updated_at and updated_run_id to rows."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.create_table(
        f"{p}row_refs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("selector", sa.String(255), nullable=False),
        sa.Column("value", _value(), nullable=False),
        sa.Column("value_hash", sa.String(64), nullable=False),
        schema=schema,
        **_MYSQL,
    )
    op.create_index(
        f"{p}row_refs_value", f"{p}row_refs", ["table_name", "selector", "value_hash"], schema=schema
    )
    op.create_index(f"{p}row_refs_row", f"{p}row_refs", ["row_id"], schema=schema)
    with op.batch_alter_table(f"{p}rows", schema=schema) as batch:
        batch.add_column(sa.Column("updated_at", _timestamp(), nullable=True))
        batch.add_column(sa.Column("updated_run_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop row_refs and the added columns."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    with op.batch_alter_table(f"{p}rows", schema=schema) as batch:
        batch.drop_column("updated_run_id")
        batch.drop_column("updated_at")
    op.drop_table(f"{p}row_refs", schema=schema)
