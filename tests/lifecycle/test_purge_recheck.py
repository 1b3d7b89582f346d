"""Purge re-checks every kind of reference source (invariants 4 and 6).

Each case quarantines objects nothing references, then commits a reference to
some of them *after* the quarantine and *before* the purge, through one kind
of source: an exact key, a prefix (a directory), a sidecar suffix, a JSON
field with a filter, or a row that a row collection archived in between (the
archived row stays restorable, so what it points at stays referenced). The
purge must restore those objects, bytes intact, and delete only the control
orphan that nothing references.

The scan cannot have seen these references: they did not exist yet. Only the
re-check inside the purge can, so each case fails when that re-check (or, for
archived rows, the archived sources of the session) is taken away.

SQLite only: the purge's use of the re-check is the same on every dialect;
each dialect's lookup SQL for these kinds is covered by
``tests/references/test_sources.py::test_lookup_finds_exact_prefix_sidecar_and_json_references``.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim import api
from reclaim.catalog import Journal, State, open_catalog

OLD = 30 * 86400
CONTROL = "blobs/orphan"


@dataclass
class RecheckWorld:
    """Tables ``files`` (exact keys, sidecar ``.meta``), ``dirs`` (prefixes), ``docs`` (JSON), ``uploads``."""

    root: Path
    engine: sa.Engine

    @property
    def config_path(self) -> Path:
        return self.root / "reclaim.toml"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    def put(self, key: str) -> None:
        path = self.store_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())
        stamp = time.time() - OLD
        os.utime(path, (stamp, stamp))

    def intact(self, key: str) -> bool:
        path = self.store_dir / key
        return path.is_file() and path.read_bytes() == key.encode()

    def insert(self, sql: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def states(self) -> dict[str, str]:
        catalog = open_catalog(reclaim.load_config(self.config_path).catalog)
        try:
            journal = Journal(catalog)
            found = {}
            for key in OBJECTS:
                entry = journal.latest("main", key)
                found[key] = entry.state.value if entry is not None else "-"
            return found
        finally:
            catalog.dispose()


OBJECTS = [
    CONTROL,
    "blobs/s",
    "blobs/s.meta",
    "blobs/x",
    "docs/a",
    "docs/b",
    "uploads/1",
    "zarr/z1/.zattrs",
    "zarr/z1/0.0",
]


def _world(tmp_path: Path) -> RecheckWorld:
    db = tmp_path / "app.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE files (id INTEGER PRIMARY KEY, key VARCHAR(200) NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE dirs (id INTEGER PRIMARY KEY, prefix VARCHAR(200) NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE docs (id INTEGER PRIMARY KEY, meta JSON)")
        conn.exec_driver_sql(
            "CREATE TABLE uploads (id INTEGER PRIMARY KEY, blob VARCHAR(200) NOT NULL,"
            " created DATETIME NOT NULL)"
        )
    world = RecheckWorld(tmp_path, engine)
    world.store_dir.mkdir()
    world.config_path.write_text(
        textwrap.dedent(
            f"""
            [catalog]
            url = "sqlite:///{tmp_path / "catalog.sqlite"}"

            [databases.app]
            url = "sqlite:///{db}"

            [stores.main]
            url = "file://{world.store_dir}"
            min_age = "1d"
            grace = "1h"
            max_fraction = 1.0

            [[stores.main.references]]
            name = "files"
            database = "app"
            table = "files"
            column = "key"
            sidecars = [".meta"]
            allow_empty = true

            [[stores.main.references]]
            name = "dirs"
            database = "app"
            table = "dirs"
            column = "prefix"
            kind = "prefix"
            allow_empty = true

            [[stores.main.references]]
            name = "docs"
            database = "app"
            table = "docs"
            column = "meta"
            json_path = "path"
            json_filter = {{ store = "main" }}
            allow_empty = true

            [[stores.main.references]]
            name = "uploads"
            database = "app"
            table = "uploads"
            column = "blob"
            allow_empty = true

            [collections.uploads]
            database = "app"
            table = "uploads"
            age_column = "created"
            min_age = "7d"
            """
        )
    )
    reclaim.init(world.config_path)
    for key in OBJECTS:
        world.put(key)
    return world


def _exact(world: RecheckWorld) -> None:
    world.insert("INSERT INTO files (key) VALUES (:k)", k="blobs/x")


def _sidecar(world: RecheckWorld) -> None:
    world.insert("INSERT INTO files (key) VALUES (:k)", k="blobs/s")  # covers blobs/s.meta too


def _prefix(world: RecheckWorld) -> None:
    world.insert("INSERT INTO dirs (prefix) VALUES (:k)", k="zarr/z1")


def _json(world: RecheckWorld) -> None:
    for path, store in (("docs/a", "main"), ("docs/b", "other")):  # docs/b: another store's, not ours
        world.insert("INSERT INTO docs (meta) VALUES (:m)", m=json.dumps({"path": path, "store": store}))


def _archived(world: RecheckWorld) -> None:
    created = (datetime.now(UTC) - timedelta(days=9)).replace(tzinfo=None)
    world.insert("INSERT INTO uploads (id, blob, created) VALUES (1, :k, :c)", k="uploads/1", c=created)
    # a cycle in which the row is collected: archived and deleted, so only the archive references the
    # object now (its purge is not due yet: grace is 1h)
    cycle = reclaim.run(world.config_path)
    assert [c.archived for c in cycle.collections] == [1]
    with world.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM uploads").scalar() == 0


#: (how the reference is committed, the keys it makes referenced)
CASES: dict[str, tuple[Callable[[RecheckWorld], None], list[str]]] = {
    "exact": (_exact, ["blobs/x"]),
    "sidecar": (_sidecar, ["blobs/s", "blobs/s.meta"]),
    "prefix": (_prefix, ["zarr/z1/.zattrs", "zarr/z1/0.0"]),
    "json": (_json, ["docs/a"]),
    "archived-row": (_archived, ["uploads/1"]),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_reference_committed_after_quarantine_makes_purge_restore(tmp_path: Path, kind: str) -> None:
    world = _world(tmp_path)
    try:
        quarantined = api.quarantine(world.config_path)
        assert quarantined.quarantined[0].quarantined.count == len(OBJECTS)
        assert not any(world.intact(key) for key in OBJECTS)  # every object is in the trash now
        commit, keys = CASES[kind]
        commit(world)
        report = api.purge(world.config_path, due_before=datetime.now(UTC) + timedelta(hours=2))
        result = report.purged[0]
        assert result.restored == len(keys), result
        assert result.purged.count == len(OBJECTS) - len(keys)
        for key in keys:
            assert world.intact(key), f"{kind}: {key} is referenced again and was not restored intact"
        states = world.states()
        assert {key: states[key] for key in keys} == dict.fromkeys(keys, State.RESTORED.value)
        assert states[CONTROL] == State.PURGED.value  # nothing references it: the purge did purge
        assert not (world.store_dir / CONTROL).exists()
        assert not (world.store_dir / "_trash" / CONTROL).exists()
    finally:
        world.engine.dispose()
