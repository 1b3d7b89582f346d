"""What the dashboard reads: observations of scans and checks, progress in the lease, paging indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Adds ``observations``: one row per ``reclaim scan`` or ``reclaim check`` that
ran against an existing catalog, with its report as JSON (redacted like the
audit log). They change nothing in the archive; they let the dashboard show
standing numbers (candidates, report-only findings, dangling references)
without ever listing a store itself.

Adds to ``lease``: ``progress``, the latest progress snapshot of the run that
holds the lease (JSON), written with its heartbeat.

Adds the indexes the dashboard's pages page with, so that no page reads the
whole journal: entries by state and id (the quarantine browser, newest
first), by store, state and id, and by store, state and last change (purged
and restored in the last days); a covering index for the journal summary of
``reclaim status`` (counts, bytes, oldest and next due per state of a store,
read from the index alone); runs by command and id, and by start time (the
history charts).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _timestamp() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    """Create observations; add lease.progress; add the paging indexes."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.create_table(
        f"{p}observations",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=False),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("report", _long_text(), nullable=False),
        schema=schema,
        **_MYSQL,
    )
    op.create_index(f"{p}observations_kind", f"{p}observations", ["kind", "id"], schema=schema)
    with op.batch_alter_table(f"{p}lease", schema=schema) as batch:
        batch.add_column(sa.Column("progress", _long_text(), nullable=True))
    op.create_index(f"{p}objects_state_id", f"{p}objects", ["state", "id"], schema=schema)
    op.create_index(f"{p}objects_store_state_id", f"{p}objects", ["store", "state", "id"], schema=schema)
    op.create_index(
        f"{p}objects_changed", f"{p}objects", ["store", "state", "updated_at", "size"], schema=schema
    )
    op.create_index(
        f"{p}objects_summary",
        f"{p}objects",
        ["store", "state", "size", "created_at", "due_at"],
        schema=schema,
    )
    op.create_index(f"{p}rows_state_id", f"{p}rows", ["state", "id"], schema=schema)
    op.create_index(f"{p}runs_command", f"{p}runs", ["command", "id"], schema=schema)
    op.create_index(f"{p}runs_started", f"{p}runs", ["started_at"], schema=schema)


def downgrade() -> None:
    """Drop what upgrade added."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.drop_index(f"{p}runs_started", table_name=f"{p}runs", schema=schema)
    op.drop_index(f"{p}runs_command", table_name=f"{p}runs", schema=schema)
    op.drop_index(f"{p}rows_state_id", table_name=f"{p}rows", schema=schema)
    op.drop_index(f"{p}objects_summary", table_name=f"{p}objects", schema=schema)
    op.drop_index(f"{p}objects_changed", table_name=f"{p}objects", schema=schema)
    op.drop_index(f"{p}objects_store_state_id", table_name=f"{p}objects", schema=schema)
    op.drop_index(f"{p}objects_state_id", table_name=f"{p}objects", schema=schema)
    with op.batch_alter_table(f"{p}lease", schema=schema) as batch:
        batch.drop_column("progress")
    op.drop_index(f"{p}observations_kind", table_name=f"{p}observations", schema=schema)
    op.drop_table(f"{p}observations", schema=schema)
