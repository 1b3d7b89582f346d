"""Running totals of the journal and the archive, so that status reads a few rows.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-04

Adds ``totals``: entries and bytes per store (the object journal) or
collection (the row archive) and state. Every write that adds, moves or
deletes a journal entry or an archived row adds its delta in the same
transaction (``reclaim.catalog._totals``); ``status`` and the dashboard read
these rows instead of summing the whole history (a million entries took
seconds). The upgrade fills them from the rows already there. Adds
``rows_summary`` (collection, state, archived_at, expires_at): the oldest
archived row and next expiry of a collection, read from the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    """Create totals, fill them from the journal and the archive; add rows_summary."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    totals = op.create_table(
        f"{p}totals",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(16), primary_key=True),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        schema=schema,
        **_MYSQL,
    )
    assert totals is not None
    op.create_index(
        f"{p}rows_summary", f"{p}rows", ["collection", "state", "archived_at", "expires_at"], schema=schema
    )
    bind = op.get_bind()
    meta = sa.MetaData(schema=schema)
    objects = sa.Table(
        f"{p}objects",
        meta,
        sa.Column("store", sa.String(255)),
        sa.Column("state", sa.String(16)),
        sa.Column("size", sa.BigInteger()),
    )
    rows = sa.Table(
        f"{p}rows",
        meta,
        sa.Column("collection", sa.String(255)),
        sa.Column("state", sa.String(16)),
        sa.Column("row", sa.Text()),
    )
    # the same measures as the writers count (reclaim.catalog._totals): unknown sizes are 0,
    # an archived row's size is its JSON's length in characters
    length = sa.func.char_length if bind.dialect.name in ("mysql", "mariadb") else sa.func.length
    journal = sa.select(
        sa.literal("store"),
        objects.c.store,
        objects.c.state,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(objects.c.size), 0),
    ).group_by(objects.c.store, objects.c.state)
    archive = sa.select(
        sa.literal("collection"),
        rows.c.collection,
        rows.c.state,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(length(rows.c.row)), 0),
    ).group_by(rows.c.collection, rows.c.state)
    columns = ["kind", "name", "state", "entries", "bytes"]
    op.execute(totals.insert().from_select(columns, journal))
    op.execute(totals.insert().from_select(columns, archive))


def downgrade() -> None:
    """Drop what upgrade added."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.drop_index(f"{p}rows_summary", table_name=f"{p}rows", schema=schema)
    op.drop_table(f"{p}totals", schema=schema)
