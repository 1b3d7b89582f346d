"""S3-native quarantine: the journal records the delete marker that hides a versioned object.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Adds ``marker_id`` to ``objects``: in ``mode = "versioned"`` a quarantine
puts a delete marker over the object's current version (whose id goes in the
existing ``version_id``), restore deletes exactly that marker and purge the
version and the marker. ``mode`` grows to 16 characters (``versioned`` has
nine). SQLite rebuilds the table (batch mode), the others alter it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the journal's key columns hold this many characters (tables.KEY_LENGTH)
_KEY = 1024


def upgrade() -> None:
    """Add objects.marker_id; widen objects.mode to 16 characters."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    with op.batch_alter_table(f"{p}objects", schema=schema) as batch:
        batch.add_column(sa.Column("marker_id", sa.String(_KEY), nullable=True))
        batch.alter_column("mode", existing_type=sa.String(8), type_=sa.String(16), existing_nullable=False)


def downgrade() -> None:
    """Drop objects.marker_id; ``versioned`` entries cannot be kept (mode narrows back to 8 characters)."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    objects = sa.table(f"{p}objects", sa.column("mode", sa.String(16)), schema=schema)
    if op.get_bind().execute(sa.select(sa.func.count()).where(objects.c.mode == "versioned")).scalar():
        raise RuntimeError(
            "the journal holds entries of mode 'versioned'; settle (restore or purge) and expire them "
            "before downgrading below revision 0010"
        )
    with op.batch_alter_table(f"{p}objects", schema=schema) as batch:
        batch.alter_column("mode", existing_type=sa.String(16), type_=sa.String(8), existing_nullable=False)
        batch.drop_column("marker_id")
