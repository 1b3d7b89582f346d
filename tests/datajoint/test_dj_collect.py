"""reclaim.datajoint on a pipeline built by the real DataJoint 2 package (PostgreSQL).

Candidates are compared with the orphans computed independently from the
raw column values; after quarantine + purge every row fetches through
DataJoint and every orphan is gone.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import djpipeline as pipeline
import numpy as np
import pytest

import datajoint as dj
import reclaim.datajoint as rdj

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def candidates(built: Any) -> set[str]:
    report = rdj.scan(*built.schemas, store_name="main", show=100_000)
    return {s.key for s in report.stores[0].samples}


def test_candidates_equal_the_orphans_of_the_database_contents(dj_pg: dict[str, Any]) -> None:
    built, root = dj_pg["built"], dj_pg["root"]
    expected = pipeline.orphans(root, built)
    assert len(expected) >= 20  # blobs, attachments, arrays, objects and directories of deleted rows
    assert any(k.endswith(".manifest.json") for k in expected)
    assert candidates(built) == expected


def test_quarantine_then_purge_keeps_every_row_fetchable(dj_pg: dict[str, Any]) -> None:
    built, root = dj_pg["built"], dj_pg["root"]
    expected = pipeline.orphans(root, built)
    before = pipeline.stored_files(root, tuple(s.database for s in built.schemas))

    q = rdj.quarantine(*built.schemas, store_name="main", dry_run=False)
    assert q.quarantined[0].quarantined.count == len(expected)
    assert pipeline.fetch_everything(built) == 3 + 20 + 2 + 20  # sessions, recordings, methods, scans
    p = rdj.purge(*built.schemas, store_name="main", grace_seconds=0, dry_run=False)

    assert p.purged[0].purged.count == len(expected)
    after = pipeline.stored_files(root, tuple(s.database for s in built.schemas))
    assert set(after) == set(before) - expected
    assert pipeline.orphans(root, built) == set()
    assert not list((root / "_trash").rglob("*.*")) or all(p.is_dir() for p in (root / "_trash").rglob("*"))
    pipeline.fetch_everything(built)


def test_dry_run_is_the_default_and_moves_nothing(dj_pg: dict[str, Any]) -> None:
    built, root = dj_pg["built"], dj_pg["root"]
    before = pipeline.stored_files(root, tuple(s.database for s in built.schemas))
    with pytest.warns(DeprecationWarning, match="grace period"):
        rdj.collect(*built.schemas, store_name="main")
    rdj.quarantine(*built.schemas, store_name="main")
    assert pipeline.stored_files(root, tuple(s.database for s in built.schemas)) == before


def test_another_schema_and_files_outside_the_managed_sections_are_never_touched(
    dj_pg: dict[str, Any],
) -> None:
    built, root = dj_pg["built"], dj_pg["root"]
    stray = {
        root / "user" / "notes.txt",
        root / "_hash" / "other_schema" / "aaaa",
        root / "_schema" / "x" / "f",
    }
    for path in stray:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not this run's")
    rdj.config["gc.max_fraction"] = 1.0  # the scope alone must keep them, not the fraction guard
    with pytest.warns(DeprecationWarning, match="grace period"):
        rdj.collect(built.ephys, store_name="main", dry_run=False)  # one schema of two
    assert all(path.exists() for path in stray)
    imaging = pipeline.stored_files(root, (built.imaging.database,))
    assert set(imaging) & pipeline.orphans(root, built)  # the other schema's orphans are still there
    assert not {k for k in pipeline.orphans(root, built) if k.split("/")[1] == built.ephys.database}


def test_a_table_added_after_the_first_run_is_covered_without_configuration(dj_pg: dict[str, Any]) -> None:
    built = dj_pg["built"]
    rdj.quarantine(*built.schemas, store_name="main", dry_run=False)

    @built.imaging
    class Summary(dj.Manual):
        definition = """
        summary_id : int32
        ---
        figure : <blob@main>
        sheet : <object@main>
        """

    Summary.insert1({"summary_id": 1, "figure": np.arange(100), "sheet": b"new table"})
    # make its files as old as the orphans: only a reference can keep them now
    assert candidates(built) == set()
    rdj.purge(*built.schemas, store_name="main", grace_seconds=0, dry_run=False)
    built.tables["Summary"] = Summary
    assert pipeline.fetch_everything(built) > 0


def test_an_unregistered_codec_fails_closed_before_anything_moves(dj_pg: dict[str, Any]) -> None:
    built, root = dj_pg["built"], dj_pg["root"]
    before = pipeline.stored_files(root, tuple(s.database for s in built.schemas))
    table = built.tables["Scan"]
    comment_sql = f"COMMENT ON COLUMN {table.full_table_name}.\"masks\" IS ':<nosuchcodec@main>:'"
    built.imaging.connection.query(comment_sql)
    with pytest.raises(
        rdj.UnmappedAttribute, match=r"scan\.masks.*nosuchcodec.*not registered in this process"
    ):
        rdj.quarantine(*built.schemas, store_name="main", dry_run=False)
    assert pipeline.stored_files(root, tuple(s.database for s in built.schemas)) == before


class _AlteredDuringRun:
    """A real schema that another connection ALTERs right after the run discovered its tables."""

    def __init__(self, schema: Any, table: Any) -> None:
        self._schema, self._table, self._calls = schema, table, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    def list_tables(self) -> Any:
        self._calls += 1
        tables = self._schema.list_tables()
        if self._calls == 2:  # 1: the fingerprint before, 2: discovery; the scan follows
            self._schema.connection.query(f"ALTER TABLE {self._table.full_table_name} ADD COLUMN late text")
        return tables


def test_a_definition_changed_during_the_run_aborts_before_anything_moves(dj_pg: dict[str, Any]) -> None:
    built, root = dj_pg["built"], dj_pg["root"]
    before = pipeline.stored_files(root, tuple(s.database for s in built.schemas))
    altered = _AlteredDuringRun(built.imaging, built.tables["Scan"])
    with pytest.raises(rdj.UnmappedAttribute, match="definition changed during the run"):
        rdj.quarantine(built.ephys, altered, store_name="main", dry_run=False)
    assert altered._calls >= 3  # the definitions were read again after the scan
    assert pipeline.stored_files(root, tuple(s.database for s in built.schemas)) == before


WRITER = """
import sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {root!r})
import datajoint as dj, numpy as np
import djpipeline as pipeline
conn = pipeline.connect("postgresql", database={database!r}, stores={stores!r})
schema = dj.Schema({schema!r}, connection=conn, create_schema=False)
table = schema.get_table("recording")
row = {{"session_id": 0, "recording_id": 999, "raw": np.arange(64) + 1, "params": {movie!r},
       "trace": np.arange(8), "report": b"again"}}
table.insert1(row)  # raw: the bytes of deleted recording 1, whose file is quarantined
"""


@pytest.mark.parametrize("mode", ["move", "mark"])
def test_a_writer_reusing_a_quarantined_file_keeps_it(dj_pg: dict[str, Any], mode: str) -> None:
    built, root, tmp = dj_pg["built"], dj_pg["root"], dj_pg["tmp"]
    rdj.config["gc.mode"] = mode
    # scan 2 was deleted: its masks (ones * 2) are a hash-addressed orphan
    orphan_masks = [
        k for k in pipeline.orphans(root, built) if k.startswith(f"_hash/{built.ephys.database}/")
    ]
    rdj.quarantine(*built.schemas, store_name="main", dry_run=False)
    movie = tmp / "work" / "params.json"
    code = WRITER.format(
        root=str(Path(__file__).resolve().parent),
        database=built.imaging.connection.conn_info["database_name"],
        stores={"main": str(root), "cold": str(tmp / "cold")},
        schema=built.ephys.database,
        movie=str(movie),
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]  # a writer in another process
    report = rdj.purge(*built.schemas, store_name="main", grace_seconds=0, dry_run=False)
    assert report.purged[0].restored >= 1  # the re-check found the new row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = (built.tables["Recording"] & {"recording_id": 999}).fetch1()
    assert np.array_equal(row["raw"], np.arange(64) + 1)
    assert orphan_masks
    assert not [p for p in (root / "_trash").rglob("*") if p.is_file()]  # the trash copy was dropped
