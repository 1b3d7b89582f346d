"""An application with a local store and two reference tables, on one real database, for the incremental mode.

Tables ``assets (id, blob_key, note)`` and ``uploads (id, path)``: ``assets.blob_key`` holds
keys as they are, ``uploads.path`` holds ``s3://app/<key>`` (the source strips
``s3://app/``). The catalog is a SQLite file beside the config.
"""

from __future__ import annotations

import os
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import reclaim
from reclaim.catalog import Journal, open_catalog

OLD = 30 * 86400
STORE = "main"
STRIP = "s3://app/"


@dataclass
class World:
    root: Path
    url: str
    engine: sa.Engine

    @property
    def config_path(self) -> Path:
        return self.root / "reclaim.toml"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def dialect(self) -> str:
        name = self.engine.dialect.name
        return "mysql" if name == "mariadb" else name

    def put(self, key: str, *, young: bool = False) -> None:
        path = self.store_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())
        if not young:
            stamp = time.time() - OLD
            os.utime(path, (stamp, stamp))

    def there(self, key: str) -> bool:
        path = self.store_dir / key
        return path.is_file() and path.read_bytes() == key.encode()

    def sql(self, statement: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def queued(self) -> list[str]:
        """The queue's keys for the store, in the order queued."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT object_key FROM reclaim_queue WHERE store = :s ORDER BY id"), {"s": STORE}
            )
            return [r[0] for r in rows]

    def states(self, keys: list[str]) -> dict[str, str]:
        catalog = open_catalog(reclaim.load_config(self.config_path).catalog)
        try:
            journal = Journal(catalog)
            out = {}
            for key in keys:
                entry = journal.latest(STORE, key)
                out[key] = entry.state.value.lower() if entry is not None else "-"
            return out
        finally:
            catalog.dispose()

    def reclaim_objects(self) -> dict[str, set[str]]:
        """Triggers, functions and tables named ``reclaim_…`` in the application database."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                triggers = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                functions = "SELECT proname FROM pg_proc WHERE proname LIKE 'reclaim%'"
                tables = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            elif self.dialect == "mysql":
                triggers = (
                    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
                )
                functions = (
                    "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"
                )
                tables = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            else:
                triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                functions = "SELECT name FROM sqlite_master WHERE 0"
                tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
            found = {}
            for what, query in (("triggers", triggers), ("functions", functions), ("tables", tables)):
                names = {str(r[0]) for r in conn.execute(sa.text(query))}
                found[what] = {n for n in names if n.startswith("reclaim")}
            return found


def make_world(root: Path, url: str, *, extra: str = "", full_scan_every: str = "7d") -> World:
    engine = sa.create_engine(url)
    text_type = "VARCHAR(300)"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key {text_type}, note {text_type})"
        )
        conn.exec_driver_sql(f"CREATE TABLE uploads (id INTEGER PRIMARY KEY, path {text_type})")
    world = World(root, url, engine)
    world.store_dir.mkdir()
    world.config_path.write_text(
        textwrap.dedent(
            f"""
            [catalog]
            url = "sqlite:///{root / "catalog.sqlite"}"

            [databases.app]
            url = "{url}"

            [stores.{STORE}]
            url = "file://{world.store_dir}"
            min_age = "1d"
            grace = "1h"
            max_fraction = 1.0
            full_scan_every = "{full_scan_every}"

            [[stores.{STORE}.references]]
            name = "assets"
            database = "app"
            table = "assets"
            column = "blob_key"
            allow_empty = true

            [[stores.{STORE}.references]]
            name = "uploads"
            database = "app"
            table = "uploads"
            column = "path"
            strip_prefix = "{STRIP}"
            allow_empty = true
            """
        )
        + textwrap.dedent(extra)
    )
    reclaim.init(world.config_path)
    return world
