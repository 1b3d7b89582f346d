"""The object journal as a compare-and-set state machine: one active entry per key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-16

Adds to ``objects``:

- ``active_hash``: the key's hash while the entry is active (QUARANTINING,
  QUARANTINED, PURGING, RESTORING), NULL once it is PURGED or RESTORED. A
  UNIQUE index on ``(store, active_hash)`` makes the database itself refuse a
  second active entry for one key (NULLs never collide on SQLite, PostgreSQL or
  MariaDB/MySQL), so a quarantine and a claim cannot both start an episode;
- ``note``: why an entry ended where it did ("changed since quarantine", ...);
- ``mtime_epoch``: the object's mtime exactly as the store reported it (a
  double), because ``mtime`` keeps microseconds only and mark-mode purges
  compare the two for equality.

``run_id`` becomes nullable: a claim (``reclaim.ensure``) changes entries
outside any run. Existing active entries get their ``active_hash``; SQLite
rebuilds the table to drop the NOT NULL (batch mode), the others alter it.

Adds to ``lease``: ``identity``, which names the holding process beyond host
and pid (boot, PID namespace, pid, start time), so that a collector on the
same machine can tell for certain that the holder died and take the lease over
at once instead of waiting for it to expire.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = ("QUARANTINING", "QUARANTINED", "PURGING", "RESTORING")


def upgrade() -> None:
    """Add active_hash (unique while active), note, mtime_epoch, the lease identity; run_id nullable."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]

    with op.batch_alter_table(f"{p}objects", schema=schema) as batch:
        batch.add_column(sa.Column("active_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("mtime_epoch", sa.Double(), nullable=True))
        batch.alter_column("run_id", existing_type=sa.BigInteger(), nullable=True)

    objects = sa.table(
        f"{p}objects",
        sa.column("state", sa.String(16)),
        sa.column("key_hash", sa.String(64)),
        sa.column("active_hash", sa.String(64)),
        schema=schema,
    )
    op.execute(objects.update().where(objects.c.state.in_(_ACTIVE)).values(active_hash=objects.c.key_hash))
    op.create_index(f"{p}objects_active", f"{p}objects", ["store", "active_hash"], unique=True, schema=schema)
    op.add_column(f"{p}lease", sa.Column("identity", sa.String(255), nullable=True), schema=schema)


def downgrade() -> None:
    """Drop the added columns and the unique index; entries without a run get run 0."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]

    with op.batch_alter_table(f"{p}lease", schema=schema) as batch:
        batch.drop_column("identity")
    op.drop_index(f"{p}objects_active", f"{p}objects", schema=schema)
    objects = sa.table(f"{p}objects", sa.column("run_id", sa.BigInteger()), schema=schema)
    op.execute(objects.update().where(objects.c.run_id.is_(None)).values(run_id=0))
    with op.batch_alter_table(f"{p}objects", schema=schema) as batch:
        batch.alter_column("run_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_column("mtime_epoch")
        batch.drop_column("note")
        batch.drop_column("active_hash")
