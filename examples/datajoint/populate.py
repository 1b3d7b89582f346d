"""Build the DataJoint example: two schemas, their rows, and one shared store full of objects.

Run by hand (see README.md in this directory)::

    DJ_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/dj_example \\
    DJ_STORE=/tmp/dj-example/store \\
    python examples/datajoint/populate.py [--reset]

It (re)creates the ``ephys`` and ``imaging`` schemas from ``schema.sql`` (and
drops reclaim's catalog schema, so that a rerun starts clean), inserts rows
whose JSON documents point at objects the way DataJoint 2 does, and writes
those objects into the store: hash-addressed files under ``_hash/<schema>/``,
path-addressed files and Zarr-like directories under ``_schema/<schema>/``,
each directory with a ``<dir>.manifest.json`` sidecar. It also writes the
garbage a real pipeline accumulates (objects of deleted rows, abandoned
uploads, a stale copy of an object that lives in another store), all dated 30
days back, and two uploads in progress dated now, which must outlive
``min_age``.

:func:`populate` returns an :class:`Example` describing every object and which
row references it, so that a test can check the outcome exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
SCHEMA_SQL = HERE / "schema.sql"
CONFIG = HERE / "reclaim.toml"
CATALOG_SCHEMA = "reclaim"  # [catalog] schema in reclaim.toml
STORE = "main"
OLD = 30 * 86400.0  # seconds: far beyond min_age = "1d"
_EXAMPLE_TOP = {"_hash", "_schema", "_trash"}

# the files of one Zarr-like directory object (a group with an array and a label array)
ZARR_FILES = (".zattrs", ".zgroup", "0/.zarray", "0/0.0", "0/0.1", "0/1.0", "0/1.1", "labels/.zgroup")
ZARR_FILES += ("labels/cells/0.0",)


@dataclass
class Example:
    """What :func:`populate` built: every object written, and the keys each row references."""

    store: Path
    objects: dict[str, bytes] = field(default_factory=dict)
    """Every key written into the store, with its bytes."""
    rows: dict[str, list[str]] = field(default_factory=dict)
    """Row label (``"imaging.scan scan_id=3"``) -> the keys of store ``main`` it keeps."""
    orphans: set[str] = field(default_factory=set)
    """Old objects no row of store ``main`` references: all must be collected."""
    young: set[str] = field(default_factory=set)
    """Unreferenced objects written just now (uploads in progress): none may be collected."""

    @property
    def referenced(self) -> set[str]:
        """Keys some row references (directory objects: every file under them, and the manifest)."""
        return {key for keys in self.rows.values() for key in keys}

    def kept_by(self, labels: set[str]) -> set[str]:
        """Keys referenced only by the rows ``labels``: what deleting those rows makes garbage."""
        others = {key for label, keys in self.rows.items() if label not in labels for key in keys}
        return {key for label in labels for key in self.rows[label]} - others


class _Writer:
    """Writes objects into the store with a chosen modification time and records them."""

    def __init__(self, example: Example, now: float) -> None:
        self.example = example
        self.old = now - OLD
        self.now = now

    def put(self, key: str, data: bytes, *, young: bool = False) -> str:
        path = self.example.store / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stamp = self.now if young else self.old
        os.utime(path, (stamp, stamp))
        self.example.objects[key] = data
        return key

    def blob(self, schema: str, data: bytes, *, store: str = STORE, write: bool = True) -> dict[str, Any]:
        """A hash-addressed object (``<blob@>``, ``<attach@>``) and its JSON document."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"_hash/{schema}/{digest[:2]}/{digest[2:4]}/{digest}"
        if write:
            self.put(key, data)
        return {"store": store, "hash": digest, "path": key, "size": len(data)}

    def file(self, key: str, data: bytes) -> dict[str, Any]:
        """A path-addressed single file (``<object@>``) and its JSON document."""
        self.put(key, data)
        return {"store": STORE, "path": key, "is_dir": False, "size": len(data)}

    def directory(self, key: str, *, manifest: bool = True) -> tuple[dict[str, Any], list[str]]:
        """A path-addressed Zarr-like directory with its manifest sidecar; its JSON and its keys."""
        keys = [self.put(f"{key}/{name}", f"{key}/{name}\n".encode() * 16) for name in ZARR_FILES]
        sizes = {name: len(self.example.objects[f"{key}/{name}"]) for name in ZARR_FILES}
        if manifest:
            listing = {"path": key, "files": sizes, "item_count": len(sizes), "size": sum(sizes.values())}
            keys.append(self.put(key + ".manifest.json", json.dumps(listing, indent=1).encode()))
        document = {
            "store": STORE,
            "path": key,
            "is_dir": True,
            "item_count": len(sizes),
            "size": sum(sizes.values()),
        }
        return document, keys


def _insert(conn: sa.Connection, table: str, values: dict[str, Any]) -> None:
    columns = ", ".join(values)
    placeholders = ", ".join(f":{name}" for name in values)
    params = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in values.items()}
    conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"), params)


def _pk(values: dict[str, Any], names: tuple[str, ...]) -> str:
    return " ".join(f"{name}={values[name]}" for name in names)


def _ephys(conn: sa.Connection, w: _Writer) -> None:
    ex = w.example
    for subject, session_id in (("subA", 1), ("subA", 2), ("subB", 1)):
        _insert(
            conn,
            "ephys.session",
            {"subject": subject, "session_id": session_id, "session_date": "2024-05-01"},
        )
    shared = b"raw voltage trace, imported twice\n" * 64  # two rows, one hash-addressed object
    recordings = [
        ("subA", 1, 1, b"raw voltage trace subA/1/1\n" * 64),
        ("subA", 1, 2, shared),
        ("subA", 2, 1, shared),
        ("subB", 1, 1, b"raw voltage trace subB/1/1\n" * 64),
    ]
    params = {1: b'{"sorter": "kilosort4", "threshold": 6}\n', 2: b'{"sorter": "mountainsort5"}\n'}
    for subject, session_id, recording_id, data in recordings:
        raw = w.blob("ephys", data)
        row = {"subject": subject, "session_id": session_id, "recording_id": recording_id, "raw": raw}
        _insert(conn, "ephys.recording", row)
        ex.rows[f"ephys.recording {_pk(row, ('subject', 'session_id', 'recording_id'))}"] = [raw["path"]]
        for paramset_id in (1, 2) if recording_id == 1 else (0,):
            key = (
                f"_schema/ephys/spike_sorting/subject={subject}/session_id={session_id}/"
                f"recording_id={recording_id}/paramset_id={paramset_id}/report.html"
            )
            report = w.file(key, f"<html>report {key}</html>\n".encode())
            attach = w.blob("ephys", params[paramset_id]) if paramset_id in params else None
            sorting = {k: v for k, v in row.items() if k != "raw"}
            sorting.update(paramset_id=paramset_id, params_file=attach, report=report)
            _insert(conn, "ephys.spike_sorting", sorting)
            pk = _pk(sorting, ("subject", "session_id", "recording_id", "paramset_id"))
            ex.rows[f"ephys.spike_sorting {pk}"] = [report["path"]] + ([attach["path"]] if attach else [])
    # a recording moved to the archival store: its JSON names store "cold"; a stale copy
    # of the same path is still in "main" and must be collected there
    cold = w.blob("ephys", b"raw voltage trace subB/1/2, archived\n" * 64, store="cold", write=False)
    _insert(conn, "ephys.recording", {"subject": "subB", "session_id": 1, "recording_id": 2, "raw": cold})
    ex.rows["ephys.recording subject=subB session_id=1 recording_id=2"] = []  # nothing in "main"
    w.put(cold["path"], b"raw voltage trace subB/1/2, archived\n" * 64)
    ex.orphans.add(cold["path"])
    # objects of rows deleted long ago, and an abandoned temporary upload next to a live blob
    ex.orphans.add(w.blob("ephys", b"raw voltage trace of a deleted recording\n" * 64)["path"])
    live_raw = ex.rows["ephys.recording subject=subA session_id=1 recording_id=1"][0]
    ex.orphans.add(w.put(live_raw + ".part", b"half an upload"))
    deleted = "_schema/ephys/spike_sorting/subject=subB/session_id=1/recording_id=1/paramset_id=9/report.html"
    ex.orphans.add(w.put(deleted, b"<html>report of a deleted sorting</html>\n"))


def _imaging(conn: sa.Connection, w: _Writer) -> None:
    ex = w.example
    for scan_id in (1, 2, 3, 4, 5):
        base = f"_schema/imaging/scan/scan_id={scan_id}"
        if scan_id == 5:  # a single-file object in the same column
            movie = w.file(f"{base}/movie.tif", b"II*\x00 tiff movie\n" * 64)
            keys = [movie["path"]]
        else:
            movie, keys = w.directory(f"{base}/movie.zarr")
        _insert(conn, "imaging.scan", {"scan_id": scan_id, "subject": "subC", "movie": movie})
        ex.rows[f"imaging.scan scan_id={scan_id}"] = keys
        methods = ("suite2p", "cellpose") if scan_id == 2 else ("suite2p",)
        for method in methods:
            masks = w.blob("imaging", f"masks of scan {scan_id} by {method}\n".encode() * 32)
            summary = None
            if method == "suite2p":
                key = f"_schema/imaging/segmentation/scan_id={scan_id}/method={method}/summary.png"
                summary = w.file(key, f"\x89PNG summary {scan_id}\n".encode() * 8)
            seg = {"scan_id": scan_id, "method": method, "masks": masks, "summary": summary}
            _insert(conn, "imaging.segmentation", seg)
            keys = [masks["path"]] + ([summary["path"]] if summary else [])
            ex.rows[f"imaging.segmentation scan_id={scan_id} method={method}"] = keys
    # a directory object whose row was deleted: files and manifest
    ex.orphans.update(w.directory("_schema/imaging/scan/scan_id=9/movie.zarr")[1])
    # only the manifest of a deleted directory is left
    ex.orphans.add(w.put("_schema/imaging/scan/scan_id=7/movie.zarr.manifest.json", b'{"item_count": 9}'))
    # only files of a deleted directory are left (its manifest went first)
    ex.orphans.update(w.directory("_schema/imaging/scan/scan_id=8/movie.zarr", manifest=False)[1])
    # keys that start with a live directory's name without being under it
    live = "_schema/imaging/scan/scan_id=1/movie.zarr"
    ex.orphans.add(w.put(f"{live}.partial/0/0.0", b"an abandoned upload of the same movie"))
    ex.orphans.add(w.put(f"{live}2", b"a file named like the directory"))
    ex.orphans.add(w.put(f"{live}.manifest.json.tmp", b"{}"))
    ex.orphans.add(w.blob("imaging", b"masks of a deleted segmentation\n" * 32)["path"])
    # uploads in progress: written now, their rows not yet committed
    young = w.blob("imaging", b"masks being inserted right now\n" * 32, write=False)["path"]
    ex.young.add(w.put(young, b"masks being inserted right now\n" * 32, young=True))
    ex.young.add(w.put("_schema/imaging/scan/scan_id=10/movie.zarr/0/0.0", b"chunk", young=True))


def populate(database_url: str, store: str | os.PathLike[str], *, now: float | None = None) -> Example:
    """Create the schemas and rows in ``database_url`` and the objects in the directory ``store``.

    ``store`` must be absent or empty. Drops and recreates the ``ephys`` and
    ``imaging`` schemas and drops reclaim's catalog schema: use a scratch database.
    """
    root = Path(store).resolve()
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"the store directory {root} is not empty (use --reset to clear it)")
    root.mkdir(parents=True, exist_ok=True)
    example = Example(root)
    writer = _Writer(example, time.time() if now is None else now)
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {CATALOG_SCHEMA} CASCADE")
            conn.exec_driver_sql(SCHEMA_SQL.read_text(encoding="utf-8"))
            _ephys(conn, writer)
            _imaging(conn, writer)
    finally:
        engine.dispose()
    return example


def _reset(store: Path) -> None:
    if not store.exists():
        return
    top = {entry.name for entry in store.iterdir()}
    if not top <= _EXAMPLE_TOP:
        sys.exit(f"refusing to delete {store}: it holds {sorted(top - _EXAMPLE_TOP)}, not only this example")
    shutil.rmtree(store)


def main(argv: list[str] | None = None) -> None:
    """Command line: build the example where ``DJ_DATABASE_URL`` and ``DJ_STORE`` say."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=os.environ.get("DJ_DATABASE_URL"))
    parser.add_argument("--store", default=os.environ.get("DJ_STORE"), help="absolute path of the store")
    parser.add_argument("--reset", action="store_true", help="delete this example's store directory first")
    args = parser.parse_args(argv)
    if not args.database_url or not args.store:
        parser.error("set DJ_DATABASE_URL and DJ_STORE (or pass --database-url and --store)")
    store = Path(args.store)
    if args.reset:
        _reset(store)
    example = populate(args.database_url, store)
    print(
        f"store {example.store}: {len(example.objects)} objects, {len(example.referenced)} referenced "
        f"by {len(example.rows)} rows, {len(example.orphans)} orphans, {len(example.young)} young"
    )
    print(f"next: reclaim init --config {CONFIG} && reclaim scan --config {CONFIG} --show 30")


if __name__ == "__main__":
    main()
