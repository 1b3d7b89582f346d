"""``reclaim demo``: a small archive (SQLite + a local directory) to try reclaim on.

The archive holds every kind of object reclaim distinguishes: live blobs,
old orphans (candidates), young orphans (too young), references whose objects
are missing (dangling), Zarr-like directory objects referenced by prefix with
a ``.manifest.json`` sidecar, DataJoint-style JSON references filtered by
store, and excluded scratch uploads; and a row collection (abandoned upload
rows older than 7 days). :func:`demo` scans and checks it, then runs one
``reclaim run`` cycle on it. Everything is deterministic, so the counts in the
report are always the same.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reclaim.api import CheckReport, CycleReport, InitResult, ScanReport, check, init, run, scan
from reclaim.errors import ConfigError

__all__ = ["DemoArchive", "DemoResult", "build_demo_archive", "demo"]

_NAMESPACE = uuid.UUID("6f1c9a52-3d5e-4a8b-9c1d-2e7f4b6a8d90")
_DAY = 86400.0


@dataclass(frozen=True)
class DemoArchive:
    """Where the demo archive lives and what it was built with (the expected outcome)."""

    directory: Path
    config_path: Path
    live: int
    orphans: int
    young: int
    dangling: int
    excluded: int
    old_uploads: int = 4
    """Upload rows older than the collection's ``min_age``: the cycle archives and deletes them."""


@dataclass(frozen=True)
class DemoResult:
    """The demo archive, the catalog it initialised, the scan and check of it, and one cycle."""

    archive: DemoArchive
    init: InitResult
    scan: ScanReport
    check: CheckReport
    cycle: CycleReport
    next_commands: list[str]


def _uid(label: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, label))


def _blob_key(label: str) -> str:
    u = _uid(label)
    return f"blobs/{u[:3]}/{u[3:6]}/{u}"


def _put(root: Path, key: str, data: bytes, mtime: float) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def build_demo_archive(directory: str | os.PathLike[str]) -> DemoArchive:
    """Create the demo database, store and ``reclaim.toml`` under ``directory`` (replacing an old demo)."""
    root = Path(directory).resolve()
    store = root / "store"
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the demo archive in {root}: {exc.strerror}", field="DIR") from None
    db_path = root / "archive.sqlite"
    for stale in (db_path, root / "reclaim-catalog.sqlite"):
        stale.unlink(missing_ok=True)
    now = time.time()
    old = now - 30 * _DAY
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("CREATE TABLE assets (id INTEGER PRIMARY KEY, path TEXT NOT NULL, blob_key TEXT)")
        conn.execute("CREATE TABLE zarr_archives (id INTEGER PRIMARY KEY, zarr_id TEXT NOT NULL, name TEXT)")
        conn.execute("CREATE TABLE recordings (id INTEGER PRIMARY KEY, session TEXT, file TEXT)")
        live = 0
        for i in range(40):  # live blobs
            key = _blob_key(f"live-{i}")
            _put(store, key, f"live blob {i}\n".encode() * 8, old)
            conn.execute("INSERT INTO assets (path, blob_key) VALUES (?, ?)", (f"sub-{i:02d}/data.nwb", key))
            live += 1
        for i in range(3):  # dangling: rows whose blobs are gone
            conn.execute(
                "INSERT INTO assets (path, blob_key) VALUES (?, ?)",
                (f"sub-lost-{i}/data.nwb", _blob_key(f"lost-{i}")),
            )
        for i in range(2):  # directory objects referenced by prefix, with a manifest sidecar
            zid = _uid(f"zarr-{i}")
            for chunk in ("0.0", "0.1", "1.0", ".zarray"):
                _put(store, f"zarr/{zid}/{chunk}", b"chunk" * 20, old)
                live += 1
            _put(store, f"zarr/{zid}.manifest.json", b'{"chunks": 4}', old)
            live += 1
            conn.execute(
                "INSERT INTO zarr_archives (zarr_id, name) VALUES (?, ?)", (f"zarr/{zid}", f"zarr {i}")
            )
        for i in range(10):  # DataJoint-style JSON references, hash-addressed
            key = f"_hash/lab/{_uid(f'rec-{i}').replace('-', '')}"
            _put(store, key, f"recording {i}\n".encode() * 16, old)
            live += 1
            file = json.dumps({"path": key, "store": "main", "size": 17 * 16})
            conn.execute("INSERT INTO recordings (session, file) VALUES (?, ?)", (f"s{i}", file))
        conn.execute(  # a reference into another store: must not keep or count anything here
            "INSERT INTO recordings (session, file) VALUES (?, ?)",
            ("ext", json.dumps({"path": "_hash/lab/elsewhere", "store": "external"})),
        )
        # upload rows: a row collection; four were abandoned ten days ago, two are an hour old
        conn.execute(
            "CREATE TABLE uploads (id INTEGER PRIMARY KEY, filename TEXT NOT NULL, created TIMESTAMP)"
        )
        for i in range(6):
            created = datetime.fromtimestamp(now - (10 * _DAY if i < 4 else 3600), UTC)
            conn.execute(
                "INSERT INTO uploads (filename, created) VALUES (?, ?)",
                (f"upload-{i}.nwb", created.strftime("%Y-%m-%d %H:%M:%S.%f")),
            )
    conn.close()
    orphans = 0
    for i in range(15):  # old orphans: candidates
        _put(store, _blob_key(f"orphan-{i}"), f"orphan {i}\n".encode() * 64, old - i * _DAY)
        orphans += 1
    zid = _uid("zarr-orphan")
    for chunk in ("0.0", "0.1", ".zarray"):  # an abandoned directory object: candidates too
        _put(store, f"zarr/{zid}/{chunk}", b"stale" * 40, old)
        orphans += 1
    young = 0
    for i in range(5):  # orphans written an hour ago: too young to touch
        _put(store, _blob_key(f"young-{i}"), b"fresh upload\n" * 8, now - 3600)
        young += 1
    excluded = 0
    for i in range(4):  # scratch space the config excludes
        _put(store, f"uploads/tmp/part-{i}", b"partial" * 10, old)
        excluded += 1
    config_path = root / "reclaim.toml"
    config_path.write_text(
        _DEMO_CONFIG.format(db=db_path.as_posix(), store=store.as_posix()), encoding="utf-8"
    )
    return DemoArchive(root, config_path, live, orphans, young, dangling=3, excluded=excluded)


def demo(directory: str | os.PathLike[str] = "reclaim-demo") -> DemoResult:
    """Build the demo archive under ``directory``, initialise its catalog, scan and check it, run a cycle."""
    archive = build_demo_archive(directory)
    initialised = init(archive.config_path)
    scan_report = scan(archive.config_path, show=5)
    check_report = check(archive.config_path)
    cycle = run(archive.config_path)
    cfg = archive.config_path
    next_commands = [
        f"reclaim status --config {cfg}",
        f"reclaim runs --config {cfg}",
        f"reclaim restore --config {cfg} --store main --match 'zarr/*'",
        f"reclaim restore --config {cfg} --collection uploads --since 1h",
        f"reclaim check --config {cfg} --fail-on-findings",
        f"reclaim run --config {cfg} --dry-run",
    ]
    return DemoResult(archive, initialised, scan_report, check_report, cycle, next_commands)


_DEMO_CONFIG = """\
# The demo archive's configuration: see the README for every field.

[databases.archive]
url = "sqlite:///{db}"

[stores.main]
url = "file://{store}"
min_age = "1d"          # the demo's orphans are 30 days old, its young uploads one hour
grace = "7d"
exclude = ["uploads/tmp/*"]
max_fraction = 0.5

[[stores.main.references]]
name = "assets"
database = "archive"
table = "assets"
column = "blob_key"

[[stores.main.references]]
name = "zarr"
database = "archive"
table = "zarr_archives"
column = "zarr_id"
kind = "prefix"
sidecars = [".manifest.json"]

[[stores.main.references]]
name = "recordings"
database = "archive"
table = "recordings"
column = "file"
json_path = "path"
json_filter = {{ store = "main" }}

# rows that become garbage: uploads abandoned for more than 7 days are archived
# (restorable for 30 days) and deleted by 'reclaim run'
[collections.uploads]
database = "archive"
table = "uploads"
age_column = "created"
min_age = "7d"
retention = "30d"
"""
