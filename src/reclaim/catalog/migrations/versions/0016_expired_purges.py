"""The objects a row's expiry purged count as purged in the per-day run figures.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

With ``objects = "follow"``, the objects an archived row owns are purged when
the row's retention ends, by the cycle's expiry step; its run records them
under ``counts["expired"]["objects"][store]``, not ``counts["purged"]``.
``run_days`` (0014) summed only the latter, so the history's bytes reclaimed
and the metrics' purged counters left those purges out. The run writer now
adds both (``reclaim.catalog._run_days``); this upgrade adds the expired
objects of the runs already recorded to their rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIGURES = (
    "quarantined_objects",
    "quarantined_bytes",
    "purged_objects",
    "purged_bytes",
    "restored_objects",
    "restored_bytes",
)


def _number(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def _day(moment: Any) -> datetime:
    """The start (UTC midnight) of the UTC day of ``moment``, as 0014 stored it."""
    if isinstance(moment, str):  # SQLite without the catalog's type: its ISO text
        moment = datetime.fromisoformat(moment)
    day: date = moment.date() if moment.tzinfo is None else moment.astimezone(UTC).date()
    start = datetime(day.year, day.month, day.day)
    if op.get_bind().dialect.name == "postgresql":
        return start.replace(tzinfo=UTC)
    return start


def upgrade() -> None:
    """Add the purges of expired rows' objects to the rows of their runs' days."""
    _add(+1)


def downgrade() -> None:
    """Take them out again (a row left all zero is read as no row)."""
    _add(-1)


def _add(sign: int) -> None:
    """Add ``sign`` times each finished run's purges of expired rows' objects to its day's row."""
    schema: str | None = context.config.attributes.get("schema")
    p: str = context.config.attributes["prefix"]
    meta = sa.MetaData(schema=schema)
    runs = sa.Table(
        f"{p}runs",
        meta,
        sa.Column("command", sa.String(64)),
        sa.Column("status", sa.String(16)),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("counts", sa.Text()),
    )
    run_days = sa.Table(
        f"{p}run_days",
        meta,
        sa.Column("store", sa.String(255)),
        sa.Column("day", sa.DateTime()),
        sa.Column("command", sa.String(64)),
        *(sa.Column(name, sa.BigInteger()) for name in _FIGURES),
    )
    bind = op.get_bind()
    added: dict[tuple[str, datetime, str], list[int]] = {}
    query = sa.select(runs.c.command, runs.c.started_at, runs.c.counts).where(runs.c.status != "running")
    for command, started_at, counts in bind.execute(query):
        try:
            decoded = json.loads(counts)
        except ValueError:
            continue
        expired = decoded.get("expired") if isinstance(decoded, dict) else None
        objects = expired.get("objects") if isinstance(expired, dict) else None
        if not isinstance(objects, dict):
            continue
        for store, result in objects.items():
            purged = result.get("purged") if isinstance(result, dict) else None
            if not isinstance(purged, dict):
                continue
            slot = added.setdefault((str(store), _day(started_at), str(command)), [0, 0])
            slot[0] += _number(purged.get("count"))
            slot[1] += _number(purged.get("bytes"))
    for (store, day, command), (count, size) in sorted(added.items()):
        if not (count or size):
            continue
        where = (run_days.c.store == store, run_days.c.day == day, run_days.c.command == command)
        count, size = sign * count, sign * size
        changed = bind.execute(
            run_days.update()
            .where(*where)
            .values(
                purged_objects=run_days.c.purged_objects + count,
                purged_bytes=run_days.c.purged_bytes + size,
            )
        ).rowcount
        if not changed and sign > 0:
            values = dict.fromkeys(_FIGURES, 0) | {"purged_objects": count, "purged_bytes": size}
            bind.execute(run_days.insert().values(store=store, day=day, command=command, **values))
