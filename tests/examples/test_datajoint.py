"""``examples/datajoint`` end to end: the ``datajoint`` package builds it, ``reclaim datajoint`` collects.

Everything runs as an operator runs it, each step a process of its own, and
everything is configured by DataJoint's own ``DJ_*`` variables (no
``reclaim.toml``): ``pipeline.py`` declares and fills the two schemas and
deletes a third of the rows; ``reclaim datajoint scan|quarantine|restore|
purge|status|config`` does the rest. What must be collected is computed here
independently of reclaim and of DataJoint: every ``jsonb`` column of the two
schemas is read with plain SQL, and a stored file is kept when a document's
``path`` names it, a directory above it, or it is that directory's
``.manifest.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytest.importorskip("datajoint")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "datajoint"
MANIFEST = ".manifest.json"


class Example:
    def __init__(self, url: str, store: Path, prefix: str, env: dict[str, str]) -> None:
        self.url, self.store, self.prefix, self.env = url, store, prefix, env
        self.schemas = (f"{prefix}ephys", f"{prefix}imaging")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=300, check=False)

    def reclaim(self, *args: str, schemas: bool = True) -> Any:
        """``reclaim datajoint <args> [--schema …] --json``: its JSON report (the command must succeed)."""
        scope = [arg for schema in self.schemas for arg in ("--schema", schema)] if schemas else []
        done = self.run(sys.executable, "-m", "reclaim", "datajoint", *args, *scope, "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    def files(self, *, trash: bool = False) -> dict[str, bytes]:
        """The files of the schemas' managed subtrees (or of the trash, keyed as before quarantine)."""
        root = self.store / "_trash" if trash else self.store
        out = {}
        for section in ("_hash", "_schema"):
            for schema in self.schemas:
                base = root / section / schema
                for path in base.rglob("*") if base.exists() else ():
                    if path.is_file():
                        out[path.relative_to(root).as_posix()] = path.read_bytes()
        return out

    def referenced(self) -> set[str]:
        """Every ``path`` of a ``jsonb`` document in store ``main``, read with plain SQL."""
        engine = sa.create_engine(self.url)
        paths = set()
        try:
            with engine.connect() as conn:
                columns = conn.execute(
                    sa.text(
                        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema IN :schemas AND data_type = 'jsonb'"
                    ).bindparams(sa.bindparam("schemas", expanding=True)),
                    {"schemas": list(self.schemas)},
                ).all()
                assert len(columns) == 6, columns  # raw, params, trace, report; movie, masks
                for schema, table, column in columns:
                    table_name = f'"{schema}"."{table}"'
                    document = f'{table_name}."{column}"'
                    query = f"SELECT {document} ->> 'path' FROM {table_name} WHERE {document} ->> 'store' = "
                    query += "'main'"
                    paths.update(path for (path,) in conn.exec_driver_sql(query) if path)
        finally:
            engine.dispose()
        return paths

    def orphans(self) -> set[str]:
        referenced = self.referenced()

        def covered(path: str) -> bool:
            parts = path.removesuffix(MANIFEST).split("/")
            return any("/".join(parts[:i]) in referenced for i in range(1, len(parts) + 1))

        return {path for path in self.files() if not covered(path)}


@pytest.fixture
def example(pg_url: str, tmp_path: Path) -> Example:
    url = sa.make_url(pg_url)
    store = tmp_path / "store"
    prefix = f"x{secrets.token_hex(3)}_"
    env = {
        **os.environ,
        "DJ_BACKEND": "postgresql",
        "DJ_HOST": url.host or "127.0.0.1",
        "DJ_PORT": str(url.port or 5432),
        "DJ_USER": url.username or "postgres",
        "DJ_PASS": url.password or "",
        "DJ_DATABASE_NAME": str(url.database),
        "DJ_STORES": json.dumps({"default": "main", "main": {"protocol": "file", "location": str(store)}}),
        "DJ_GC_MIN_AGE_SECONDS": "0",  # the files were written a moment ago
    }
    example = Example(pg_url, store, prefix, env)
    built = example.run(sys.executable, str(EXAMPLE / "pipeline.py"), "--rows", "15", "--prefix", prefix)
    assert built.returncode == 0, built.stderr[-3000:]
    assert json.loads(built.stdout.splitlines()[-1]) == {"recordings": 10, "scans": 10}
    return example


def test_the_example_collects_exactly_its_orphans_and_every_row_still_reads(example: Example) -> None:
    before = example.files()
    orphans = example.orphans()
    kinds = {path.split("/")[0] for path in orphans}
    assert kinds == {"_hash", "_schema"}  # blobs of deleted rows, and their objects and directories
    assert any(path.endswith(MANIFEST) for path in orphans)
    assert len(orphans) >= 30

    scan = example.reclaim("scan", "--store", "main", "--show", "1000")
    [main] = scan["stores"]
    assert {sample["key"] for sample in main["samples"]} == orphans
    assert main["candidates"]["count"] == len(orphans)
    assert example.files() == before  # a scan changes nothing

    example.reclaim("quarantine", "--store", "main")
    assert example.files() == {k: v for k, v in before.items() if k not in orphans}
    assert example.files(trash=True) == {k: before[k] for k in orphans}  # byte for byte

    status = example.reclaim("status", schemas=False)
    assert status["stores"][0]["summary"]["quarantined"] == len(orphans)

    back = sorted(orphans)[0]
    example.reclaim("restore", back, schemas=False)
    assert example.files()[back] == before[back]

    example.reclaim("purge", "--store", "main", "--grace-seconds", "0")
    assert example.files() == {k: v for k, v in before.items() if k not in orphans or k == back}
    assert example.files(trash=True) == {}

    # every row left fetches through DataJoint, each file it names read back
    read = example.run(sys.executable, "-c", _FETCH_ALL, example.prefix)
    assert read.returncode == 0, read.stderr[-3000:]
    assert json.loads(read.stdout.splitlines()[-1]) == {"recordings": 10, "scans": 10}


def test_the_equivalent_reclaim_toml_finds_the_same_candidates(example: Example, tmp_path: Path) -> None:
    scope = [arg for schema in example.schemas for arg in ("--schema", schema)]
    printed = example.run(sys.executable, "-m", "reclaim", "datajoint", "config", *scope, "--store", "main")
    assert printed.returncode == 0, printed.stderr[-3000:]
    config = tmp_path / "reclaim.toml"
    config.write_text(printed.stdout)
    assert example.run(sys.executable, "-m", "reclaim", "init", "--config", str(config)).returncode == 0
    done = example.run(
        sys.executable, "-m", "reclaim", "scan", "--config", str(config), "--show", "1000", "--json"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [main] = json.loads(done.stdout)["stores"]
    assert {sample["key"] for sample in main["samples"]} == example.orphans()


_FETCH_ALL = """  # run as ``python -c _FETCH_ALL <prefix>``
import json, sys, tempfile, warnings
warnings.simplefilter("ignore")
import numpy as np
import datajoint as dj
sys.path.insert(0, EXAMPLE_DIRECTORY)
import pipeline
tables = pipeline.declare(sys.argv[1])
counts = {}
with tempfile.TemporaryDirectory() as downloads, dj.config.override(download_path=downloads):
    for name, table in (("recordings", tables["Recording"]), ("scans", tables["Scan"])):
        rows = table.to_dicts()
        for row in rows:
            for value in row.values():
                if hasattr(value, "load"):  # <npy@>: a lazy array
                    value.load()
                elif hasattr(value, "walk"):  # <object@>: a file or a directory
                    assert value.verify(), value.path
                    if value.is_dir:
                        assert sum(len(files) for _root, _dirs, files in value.walk()) == 3
                    else:
                        assert value.read()
        counts[name] = len(rows)
print(json.dumps(counts))
""".replace("EXAMPLE_DIRECTORY", repr(str(EXAMPLE)))
