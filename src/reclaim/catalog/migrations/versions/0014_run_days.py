"""Per store, day and command, the figures of finished runs, so that charts and metrics read a row per day.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-06

Adds ``run_days``: per store, UTC day (of the run's start) and command, the
objects and bytes finished runs quarantined, purged and restored. The run
writer adds a run's figures in the transaction that finishes it
(``reclaim.catalog._run_days``); the dashboard's history and the metrics'
counters read these rows instead of every run's JSON counts. The upgrade fills
them from the runs already recorded, with the same paths and the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
_FIGURES = (
    "quarantined_objects",
    "quarantined_bytes",
    "purged_objects",
    "purged_bytes",
    "restored_objects",
    "restored_bytes",
)
# below counts[section][store], in the order of _FIGURES (what reclaim.catalog._run_days reads)
_PATHS = (
    ("quarantined", ("quarantined", "count")),
    ("quarantined", ("quarantined", "bytes")),
    ("purged", ("purged", "count")),
    ("purged", ("purged", "bytes")),
    ("restored", ("restored",)),
    ("restored", ("restored_bytes",)),
)


def _timestamp() -> sa.types.TypeEngine[datetime]:
    # UTC; MariaDB keeps microseconds only with an explicit precision
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _number(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def _day(moment: Any) -> datetime:
    """The start (UTC midnight) of the UTC day of ``moment``, naive as SQLite and MariaDB store it."""
    if isinstance(moment, str):  # SQLite without the catalog's type: its ISO text
        moment = datetime.fromisoformat(moment)
    day: date = moment.date() if moment.tzinfo is None else moment.astimezone(UTC).date()
    start = datetime(day.year, day.month, day.day)
    if op.get_bind().dialect.name == "postgresql":
        return start.replace(tzinfo=UTC)
    return start


def upgrade() -> None:
    """Create run_days and fill it from the finished runs."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    run_days = op.create_table(
        f"{p}run_days",
        sa.Column("store", sa.String(255), primary_key=True),
        sa.Column("day", _timestamp(), primary_key=True),
        sa.Column("command", sa.String(64), primary_key=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _FIGURES),
        schema=schema,
        **_MYSQL,
    )
    assert run_days is not None
    runs = sa.Table(
        f"{p}runs",
        sa.MetaData(schema=schema),
        sa.Column("id", sa.BigInteger()),
        sa.Column("command", sa.String(64)),
        sa.Column("status", sa.String(16)),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("counts", sa.Text()),
    )
    found: dict[tuple[str, datetime, str], list[int]] = {}
    query = sa.select(runs.c.command, runs.c.started_at, runs.c.counts).where(runs.c.status != "running")
    for command, started_at, counts in op.get_bind().execute(query):
        try:
            decoded = json.loads(counts)
        except ValueError:
            continue
        if not isinstance(decoded, dict):
            continue
        for position, (section, path) in enumerate(_PATHS):
            part = decoded.get(section)
            if not isinstance(part, dict):
                continue
            for store, value in part.items():
                for step in path:
                    value = value.get(step) if isinstance(value, dict) else None
                slot = found.setdefault((str(store), _day(started_at), str(command)), [0] * len(_FIGURES))
                slot[position] += _number(value)
    rows = [
        {"store": store, "day": day, "command": command, **dict(zip(_FIGURES, values, strict=True))}
        for (store, day, command), values in sorted(found.items())
        if any(values)
    ]
    for start in range(0, len(rows), 1_000):
        op.bulk_insert(run_days, rows[start : start + 1_000])


def downgrade() -> None:
    """Drop what upgrade added."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    op.drop_table(f"{p}run_days", schema=schema)
