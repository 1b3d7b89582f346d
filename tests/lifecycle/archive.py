"""A small archive for lifecycle tests: a database table of references and a store of objects."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import reclaim
from reclaim.config import Config
from reclaim.stores import Store, open_store

OLD = 30 * 86400


@dataclass
class Archive:
    """References in ``assets.blob_key`` on ``db_url``; objects in ``store_url``."""

    config_path: Path
    db_url: str
    store_url: str
    storage_options: dict[str, Any]
    engine: sa.Engine

    @property
    def config(self) -> Config:
        return reclaim.load_config(self.config_path)

    def store(self) -> Store:
        return open_store("main", self.store_url, self.storage_options)

    def put(self, key: str, data: bytes = b"payload", *, age: float = OLD) -> None:
        store = self.store()
        store.write(key, data)
        if self.store_url.startswith("file://") and age:
            path = Path(self.store_url.removeprefix("file://")) / key
            stamp = time.time() - age
            os.utime(path, (stamp, stamp))

    def reference(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO assets (blob_key) VALUES (:k)"), {"k": key})

    def unreference(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM assets WHERE blob_key = :k"), {"k": key})

    def referenced(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT blob_key FROM assets"))]

    def dispose(self) -> None:
        self.engine.dispose()


def make_archive(
    tmp_path: Path,
    db_url: str,
    *,
    store_url: str | None = None,
    storage_options: dict[str, Any] | None = None,
    mode: str | None = None,
    grace: str = "0",
    min_age: str = "1d",
    max_fraction: float = 1.0,
    catalog_url: str | None = None,
    extra: str = "",
) -> Archive:
    """Create the ``assets`` table, an empty store and a config; initialise the catalog."""
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS assets")
        auto = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
        if engine.dialect.name in {"mysql", "mariadb"}:
            conn.exec_driver_sql(
                "CREATE TABLE assets (id INTEGER PRIMARY KEY AUTO_INCREMENT, blob_key VARCHAR(255) NOT NULL)"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TABLE assets (id {auto} PRIMARY KEY, blob_key VARCHAR(255) NOT NULL)"
            )
    if store_url is None:
        root = tmp_path / "store"
        root.mkdir(exist_ok=True)
        store_url = f"file://{root}"
    options = storage_options or {}
    catalog = catalog_url or f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    lines = [
        "[catalog]",
        f'url = "{catalog}"',
        "[databases.app]",
        f'url = "{db_url}"',
        "[stores.main]",
        f'url = "{store_url}"',
        f'min_age = "{min_age}"',
        f'grace = "{grace}"',
        f"max_fraction = {max_fraction}",
    ]
    if mode:
        lines.append(f'mode = "{mode}"')
    if options:
        lines.append(f"storage_options = {_toml_inline(options)}")
    lines += [
        extra,
        "[[stores.main.references]]",
        'database = "app"',
        'table = "assets"',
        'column = "blob_key"',
    ]
    lines.append("allow_empty = true")
    path = tmp_path / "reclaim.toml"
    path.write_text("\n".join(lines) + "\n")
    reclaim.init(path)
    return Archive(path, db_url, store_url, options, engine)


def _toml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
