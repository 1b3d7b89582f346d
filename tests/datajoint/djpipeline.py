"""A small DataJoint 2 pipeline built by the real package: two schemas sharing store ``main``.

``ephys``: hash-addressed blobs deduplicated across rows (``<blob@main>``),
attachments (``<attach@main>``), npy arrays (``<npy@main>``), single-file
objects (``<object@main>``) and rows whose blob lives in store ``cold``;
``imaging``: directory objects with their ``.manifest.json`` sidecars, and a
lookup table (``#method``, a name only a quoted identifier can spell). A third
of the rows is deleted at the end, leaving their files as orphans.

Also used by ``bench/datajoint_bench.py`` (with many more rows).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import datajoint as dj

_MANIFEST = ".manifest.json"


def connect(backend: str, *, database: str | None, stores: dict[str, Path] | dict[str, str]) -> Any:
    """Point ``dj.config`` at the test server and the store directories; a fresh connection."""
    dj.config["safemode"] = False
    dj.config["database.backend"] = backend
    dj.config["database.host"] = "127.0.0.1"
    if backend == "postgresql":
        dj.config["database.user"] = "postgres"
        dj.config["database.port"] = 5432
        dj.config["database.name"] = database
    else:
        dj.config["database.user"] = "root"
        dj.config["database.port"] = 3306
        dj.config["database.name"] = None
    dj.config["database.password"] = ""
    spec: dict[str, Any] = {"default": "main"}
    for name, location in stores.items():
        path = Path(location)
        path.mkdir(parents=True, exist_ok=True)
        spec[name] = {"protocol": "file", "location": str(path)}
    dj.config["stores"] = spec
    return dj.conn(reset=True)


@dataclass
class Built:
    """The schemas and their table classes."""

    ephys: Any
    imaging: Any
    tables: dict[str, Any]

    @property
    def schemas(self) -> tuple[Any, Any]:
        return self.ephys, self.imaging


def unique_prefix() -> str:
    return "rdj" + secrets.token_hex(3)


def build(connection: Any, prefix: str, workdir: Path, *, rows: int = 30, chunk_size: int = 1000) -> Built:
    """Declare both schemas under ``prefix`` and insert ``rows`` recordings and scans.

    Rows go in through DataJoint's own multi-row insert, ``chunk_size`` rows a statement.
    """
    ephys = dj.Schema(f"{prefix}_ephys", connection=connection)
    imaging = dj.Schema(f"{prefix}_imaging", connection=connection)

    @ephys
    class Session(dj.Manual):
        definition = """
        session_id : int32
        ---
        note : varchar(64)
        """

    @ephys
    class Recording(dj.Manual):
        definition = """
        -> Session
        recording_id : int32
        ---
        raw : <blob@main>
        params : <attach@main>
        trace : <npy@main>
        report : <object@main>
        archived=null : <blob@cold>
        """

    @imaging
    class Method(dj.Lookup):
        definition = """
        method : varchar(16)
        ---
        settings : <blob@main>
        """
        contents = [("suite2p", {"tau": 1.0}), ("cellpose", {"diameter": 12})]

    @imaging
    class Scan(dj.Manual):
        definition = """
        scan_id : int32
        ---
        movie : <object@main>
        masks : <blob@main>
        """

    workdir.mkdir(parents=True, exist_ok=True)
    attachment = workdir / "params.json"
    attachment.write_text(json.dumps({"sorter": "kilosort4"}))
    Session.insert({"session_id": s, "note": f"session {s}"} for s in range(max(1, rows // 10)))
    shared = np.arange(64)  # one hash-addressed file for many rows

    def recordings() -> Iterator[dict[str, Any]]:
        for r in range(rows):
            yield {
                "session_id": r % max(1, rows // 10),
                "recording_id": r,
                "raw": shared if r % 3 == 0 else np.arange(64) + r,
                "params": str(attachment),
                "trace": np.arange(8) * r,
                "report": f"<html>report {r}</html>".encode(),
                "archived": np.arange(4) + r if r % 5 == 0 else None,
            }

    def scans() -> Iterator[dict[str, Any]]:
        for r in range(rows):
            movie = workdir / f"movie{r}.zarr"
            (movie / "0").mkdir(parents=True, exist_ok=True)
            (movie / ".zgroup").write_text("{}")
            (movie / "0" / "0.0").write_bytes(os.urandom(32))
            yield {"scan_id": r, "movie": str(movie), "masks": np.ones(16) * (r % 4)}

    # DataJoint's own multi-row insert, a transaction per chunk: the same rows and files as insert1
    Recording.insert(recordings(), chunk_size=chunk_size)
    Scan.insert(scans(), chunk_size=chunk_size)
    # a third of the rows go: their files become orphans (the shared blob stays referenced)
    (Recording & "mod(recording_id, 3) = 1").delete()
    (Scan & "mod(scan_id, 3) = 2").delete()
    tables = {"Session": Session, "Recording": Recording, "Method": Method, "Scan": Scan}
    return Built(ephys, imaging, tables)


def drop(built: Built) -> None:
    for schema in (built.imaging, built.ephys):
        schema.drop(prompt=False)


def stored_files(root: Path, schemas: tuple[str, ...]) -> dict[str, int]:
    """Every file under the managed subtrees of ``schemas`` in the store at ``root``."""
    out = {}
    for section in ("_hash", "_schema"):
        for schema in schemas:
            base = root / section / schema
            for path in base.rglob("*") if base.exists() else ():
                if path.is_file():
                    out[path.relative_to(root).as_posix()] = path.stat().st_size
    return out


def referenced_paths(built: Built, store: str = "main") -> Iterator[str]:
    """Every path a row of the pipeline names in ``store``, read from the raw column values."""
    for schema in built.schemas:
        for name in schema.list_tables():
            table = schema.get_table(name)
            heading = table.heading
            columns = [a for a, attr in heading.attributes.items() if attr.codec and attr.store]
            if not columns:
                continue
            for row in table.proj(*columns).cursor(as_dict=True):
                for column in columns:
                    value = row[column]
                    if isinstance(value, str):
                        value = json.loads(value)
                    if value and value.get("store", "main") == store:
                        yield value["path"]


def orphans(root: Path, built: Built, store: str = "main") -> set[str]:
    """Files in the schemas' subtrees that no row covers (exactly, under a directory, or as manifest)."""
    referenced = set(referenced_paths(built, store))
    files = stored_files(root, tuple(s.database for s in built.schemas))

    def covered(path: str) -> bool:
        base = path.removesuffix(_MANIFEST)
        parts = base.split("/")
        return any("/".join(parts[:i]) in referenced for i in range(1, len(parts) + 1))

    return {path for path in files if not covered(path)}


def fetch_everything(built: Built) -> int:
    """Fetch every attribute of every row through DataJoint and read every file it names; the rows read.

    Raises what DataJoint raises for a missing file (a blob's or attachment's
    at fetch, an object's or array's when read).
    """
    count = 0
    for table in built.tables.values():
        with dj.config.override(download_path=str(_downloads())):
            rows = table.to_dicts()
        for row in rows:
            for value in row.values():
                if hasattr(value, "load"):  # <npy@>: a lazy array
                    value.load()
                elif hasattr(value, "walk"):  # <object@>: a file or a directory
                    if not value.verify():
                        raise FileNotFoundError(value.path)
                    if value.is_dir:
                        for _root, _dirs, files in value.walk():
                            assert files is not None
                    else:
                        value.read()
            count += 1
    return count


def _downloads() -> Path:
    path = Path(os.environ.get("RDJ_DOWNLOADS", tempfile.gettempdir())) / "rdj-downloads"  # attachments
    path.mkdir(parents=True, exist_ok=True)
    return path
