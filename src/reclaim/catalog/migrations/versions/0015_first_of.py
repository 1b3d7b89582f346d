"""Indexes that answer the overview's "oldest", "next due" and "newest end" by one index lookup each.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

The overview (``reclaim status``, the dashboard, ``/metrics``) reads per store
the oldest QUARANTINED entry and the next due one, per collection the oldest
ARCHIVED row and the next expiry, and the dashboard's change probe the newest
end of a run. Each is a ``min``/``max`` that a database answers from the first
entry of an index whose leading columns are the query's equalities:

- ``objects_oldest`` (store, state, created_at, size) replaces
  ``objects_summary`` (store, state, size, created_at, due_at), which made the
  oldest entry a scan of every QUARANTINED entry of the store; it still covers
  the running totals' recount (store, state, size). The next due entry is
  read from ``objects_due`` (store, state, due_at).
- ``rows_next_expiry`` (collection, state, expires_at): the next expiry of one
  collection (``rows_expiry`` is ordered by state and expiry over every
  collection); the oldest row is read from ``rows_summary``.
- ``runs_finished`` (finished_at): the newest end of a run, without reading
  the runs (and their JSON counts).

The queries name the order they need (``reclaim.catalog._first``). On an
analyzed SQLite catalog the upgrade analyzes the new indexes too.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATISTICS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"


def upgrade() -> None:
    """Add objects_oldest, rows_next_expiry and runs_finished; drop objects_summary."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.create_index(
        f"{p}objects_oldest", f"{p}objects", ["store", "state", "created_at", "size"], schema=schema
    )
    op.drop_index(f"{p}objects_summary", table_name=f"{p}objects", schema=schema)
    op.create_index(f"{p}rows_next_expiry", f"{p}rows", ["collection", "state", "expires_at"], schema=schema)
    op.create_index(f"{p}runs_finished", f"{p}runs", ["finished_at"], schema=schema)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql(_STATISTICS).first() is not None:
        # a catalog that was ANALYZE-d (by hand, or by a restore): without statistics of their own the
        # new indexes look more selective to SQLite's planner than the analyzed ones, and it would
        # read whole ranges through them; with none anywhere it weighs them all alike
        for name in ("objects_oldest", "rows_next_expiry", "runs_finished"):
            bind.exec_driver_sql(f'ANALYZE "{p}{name}"')


def downgrade() -> None:
    """Back to 0014's indexes."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.drop_index(f"{p}runs_finished", table_name=f"{p}runs", schema=schema)
    op.drop_index(f"{p}rows_next_expiry", table_name=f"{p}rows", schema=schema)
    op.create_index(
        f"{p}objects_summary",
        f"{p}objects",
        ["store", "state", "size", "created_at", "due_at"],
        schema=schema,
    )
    op.drop_index(f"{p}objects_oldest", table_name=f"{p}objects", schema=schema)
