"""The lease as a fence: a fencing token that only grows, and when a holder can no longer act.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Adds to ``lease``:

- ``fence``: a number incremented every time the lease changes hands. Every
  journal write a collector makes under the lease is refused once the row
  holds a newer fence (or another token), so a collector that was paused past
  its lease cannot change the journal after another one took over;
- ``safe_at``: the instant (database clock) after which the holder can no
  longer act on its own rule (its expiry plus the holder's margin). A lease is
  taken over, and its holder's in-flight entries settled, only after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Add fence and safe_at to lease."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    with op.batch_alter_table(f"{p}lease", schema=schema) as batch:
        batch.add_column(sa.Column("fence", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("safe_at", _timestamp(), nullable=True))


def downgrade() -> None:
    """Drop the added columns."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    with op.batch_alter_table(f"{p}lease", schema=schema) as batch:
        batch.drop_column("safe_at")
        batch.drop_column("fence")
