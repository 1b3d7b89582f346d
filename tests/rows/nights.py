"""Simulated nights for a :class:`~.world.World`: move the world back in time, run a real command.

reclaim reads the real clock, so a night is made by making everything a day
older: every timestamp column of the application's tables and of the
catalog's (row ages, first sightings, archive expiry, due dates, run times)
and the mtime of every file in the store, trash included, as
``tests/examples/test_dandi.py`` does. ``reclaim`` runs as a real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

import reclaim
from reclaim.catalog import UTCDateTime, catalog_tables

from .world import World

DAY = timedelta(days=1)


def cli(world: World, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``reclaim ARGS --config <world's>`` as a real process; never raises on its exit code."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RECLAIM_FAULT", "RECLAIM_PAUSE")}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args, "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        env={**environment, "COLUMNS": "200", **(env or {})},
        timeout=180,
        check=False,
    )


def night(world: World, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``reclaim run --json`` (plus ``args``) that must succeed; its report."""
    done = cli(world, "run", "--json", *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _shift(engine: sa.Engine, tables: list[sa.Table], shift: timedelta, kinds: tuple[type, ...]) -> None:
    with engine.begin() as conn:
        for table in tables:
            dates = [c for c in table.columns if isinstance(c.type, kinds)]
            if not dates:
                continue
            pk = list(table.primary_key.columns)
            for row in conn.execute(sa.select(*pk, *dates)).mappings().all():
                values = {c.name: row[c.name] - shift for c in dates if row[c.name] is not None}
                if values:
                    conn.execute(table.update().where(*(c == row[c.name] for c in pk)).values(values))


def travel(world: World, days: int) -> None:
    """Make the world ``days`` days older (see the module docstring)."""
    shift = days * DAY
    _shift(world.engine, list(world.md.sorted_tables), shift, (sa.DateTime,))
    config = reclaim.load_config(world.config_path)
    url = str(config.catalog.url)
    engine = sa.create_engine(url)
    try:
        tables = catalog_tables(None, config.catalog.table_prefix, engine.dialect.name)
        _shift(engine, list(tables.metadata.sorted_tables), shift, (UTCDateTime,))
        with engine.begin() as conn:
            epoch = tables.objects.c.mtime_epoch
            conn.execute(tables.objects.update().values(mtime_epoch=epoch - shift.total_seconds()))
    finally:
        engine.dispose()
    nanoseconds = int(shift.total_seconds()) * 10**9
    for path in world.store_dir.rglob("*"):
        if path.is_file():
            stat = path.stat()
            os.utime(path, ns=(stat.st_atime_ns - nanoseconds, stat.st_mtime_ns - nanoseconds))


def sightings(world: World, kind: str, owner: str) -> dict[str, Any]:
    """The catalog's ``unreferenced`` rows of one store or collection: ``{item: (first_seen, confirmed)}``."""
    config = reclaim.load_config(world.config_path)
    engine = sa.create_engine(str(config.catalog.url))
    try:
        t = catalog_tables(None, config.catalog.table_prefix, engine.dialect.name).unreferenced
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.item, t.c.first_seen, t.c.confirmed).where(t.c.kind == kind, t.c.owner == owner)
            ).all()
        return {str(r.item): (r.first_seen, bool(r.confirmed)) for r in rows}
    finally:
        engine.dispose()
