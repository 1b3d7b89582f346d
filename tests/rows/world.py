"""A small DANDI-shaped archive for row-collection tests, on any of the three dialects.

Tables: ``blobs`` (an object key per row), ``assets`` (each points at a blob),
``versions`` and ``version_assets`` (which assets a version holds), and
``uploads`` (an object key, no references). Timestamps are naive UTC.
"""

from __future__ import annotations

import os
import textwrap
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import reclaim
from reclaim.config import Config

DAY = timedelta(days=1)


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def build_schema(engine: sa.Engine, *, cascade: bool = False) -> sa.MetaData:
    """Create the tables; ``cascade`` makes version_assets.asset_id ON DELETE CASCADE."""
    md = sa.MetaData()
    sa.Table(
        "blobs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("blob", sa.String(200), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        mysql_engine="InnoDB",
    )
    sa.Table(
        "assets",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("blob_id", sa.Integer, sa.ForeignKey("blobs.id"), nullable=True),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("meta", sa.JSON, nullable=True),
        sa.Column("size", sa.Numeric(12, 2), nullable=True),
        sa.Column("modified", sa.DateTime, nullable=False),
        mysql_engine="InnoDB",
    )
    sa.Table(
        "versions",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(50), nullable=False),
        mysql_engine="InnoDB",
    )
    sa.Table(
        "version_assets",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column(
            "asset_id",
            sa.Integer,
            sa.ForeignKey("assets.id", ondelete="CASCADE" if cascade else None),
            nullable=False,
        ),
        mysql_engine="InnoDB",
    )
    sa.Table(
        "uploads",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("blob", sa.String(200), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        mysql_engine="InnoDB",
    )
    md.create_all(engine)
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    return md


@dataclass
class World:
    """The schema on ``db_url``, a local store under ``root``, and a reclaim.toml for both."""

    root: Path
    db_url: str
    engine: sa.Engine
    md: sa.MetaData
    shared_catalog: bool = False
    collections: str = ""
    extra: str = ""
    store_options: str = ""
    """Extra lines of ``[stores.blobs]`` (e.g. ``strays = "report"``)."""
    upload_options: str = ""
    """Extra lines of the store's ``uploads`` reference source (e.g. ``dangling = "ignore"``)."""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def config_path(self) -> Path:
        return self.root / "reclaim.toml"

    def t(self, name: str) -> sa.Table:
        return self.md.tables[name]

    def write_config(self) -> Config:
        self.store_dir.mkdir(exist_ok=True)
        catalog = self.db_url if self.shared_catalog else f"sqlite:///{self.root / 'catalog.sqlite'}"
        text = textwrap.dedent(
            f"""
            [catalog]
            url = "{catalog}"

            [databases.app]
            url = "{self.db_url}"

            [stores.blobs]
            url = "file://{self.store_dir}"
            min_age = "1d"
            grace = "0s"
            max_fraction = 1.0
            {self.store_options}

            [[stores.blobs.references]]
            database = "app"
            table = "blobs"
            column = "blob"

            [[stores.blobs.references]]
            database = "app"
            table = "uploads"
            column = "blob"
            allow_empty = true
            {self.upload_options}
            """
        )
        self.config_path.write_text(text + textwrap.dedent(self.collections) + textwrap.dedent(self.extra))
        config = reclaim.load_config(self.config_path)
        reclaim.init(self.config_path)
        return config

    def insert(self, table: str, *rows: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.t(table).insert(), list(rows))

    def ids(self, table: str) -> list[int]:
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.select(self.t(table).c.id)))

    def put(self, key: str, *, age: timedelta = 30 * DAY) -> None:
        path = self.store_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())
        stamp = time.time() - age.total_seconds()
        os.utime(path, (stamp, stamp))

    def objects(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.store_dir))
            for p in self.store_dir.rglob("*")
            if p.is_file() and "_trash" not in p.parts
        )

    def asset(
        self, asset_id: int, blob_id: int | None, *, age: timedelta, blob_age: timedelta | None = None
    ) -> None:
        """An asset pointing at a new blob row and object (when ``blob_id`` is given)."""
        if blob_id is not None:
            key = f"blobs/{blob_id:04d}"
            self.insert("blobs", {"id": blob_id, "blob": key, "created": naive(self.now - (blob_age or age))})
            self.put(key)
        self.insert(
            "assets",
            {
                "id": asset_id,
                "blob_id": blob_id,
                "path": f"sub-{asset_id}/file.nwb",
                "meta": {"schema": "dandi", "n": asset_id, "tags": ["a", "b"]},
                "size": "12.50",
                "modified": naive(self.now - age),
            },
        )

    def link(self, version_id: int, asset_id: int) -> None:
        self.insert("version_assets", {"version_id": version_id, "asset_id": asset_id})


ASSETS = """
[collections.assets]
database = "app"
table = "assets"
age_column = "modified"
min_age = "30d"
retention = "30d"
"""

BLOBS = """
[collections.blobs]
database = "app"
table = "blobs"
age_column = "created"
min_age = "7d"
retention = "30d"
"""

UPLOADS = """
[collections.uploads]
database = "app"
table = "uploads"
age_column = "created"
min_age = "7d"
"""
