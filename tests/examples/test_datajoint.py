"""``examples/datajoint``, end to end on PostgreSQL and a real local store.

The example's own files are used as an operator would use them: ``schema.sql``
through ``populate.py``, and ``reclaim.toml`` with ``DJ_DATABASE_URL`` and
``DJ_STORE`` set. Every assertion is exact: the set of objects collected is
compared with the set of orphans ``populate`` wrote, byte for byte what stays.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

import reclaim

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "datajoint"
CONFIG = EXAMPLE / "reclaim.toml"
TRASH = "_trash/"


def _load_populate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("datajoint_example_populate", EXAMPLE / "populate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


populate_mod = _load_populate()


@pytest.fixture
def example(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The example built in a fresh database and store, with its catalog created."""
    store = tmp_path / "store"
    monkeypatch.setenv("DJ_DATABASE_URL", pg_url)
    monkeypatch.setenv("DJ_STORE", str(store))
    built = populate_mod.populate(pg_url, store)
    reclaim.init(CONFIG)
    return built


def files(root: Path, *, trash: bool = False) -> dict[str, bytes]:
    """Every file in the store (outside the trash, or in it, keyed as before quarantine)."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            key = path.relative_to(root).as_posix()
            if key.startswith(TRASH) == trash:
                out[key.removeprefix(TRASH)] = path.read_bytes()
    return out


def expected(ex: Any, keys: set[str]) -> dict[str, bytes]:
    return {key: ex.objects[key] for key in keys}


def cycle(example: Any) -> tuple[reclaim.LifecycleReport, reclaim.LifecycleReport, dict[str, bytes]]:
    """Quarantine with grace 0, note what went to the trash, purge."""
    quarantined = reclaim.quarantine(CONFIG, grace=timedelta(0))
    in_trash = files(example.store, trash=True)
    purged = reclaim.purge(CONFIG)
    return quarantined, purged, in_trash


def delete(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                assert conn.execute(sa.text(statement)).rowcount > 0, statement
    finally:
        engine.dispose()


def test_the_layout_covers_every_kind_of_object(example: Any) -> None:
    # guards the other tests: populate must really build what they rely on
    ex = example
    referenced = ex.referenced
    assert not referenced & ex.orphans
    assert not referenced & ex.young
    assert not ex.orphans & ex.young
    assert set(ex.objects) == referenced | ex.orphans | ex.young
    assert files(ex.store) == ex.objects
    assert {k.split("/")[1] for k in referenced if k.startswith("_hash/")} == {"ephys", "imaging"}
    assert sum(k.endswith(".manifest.json") for k in referenced) == 4
    assert sum(k.endswith(".manifest.json") for k in ex.orphans) == 2
    assert any("/scan_id=8/movie.zarr/" in k for k in ex.orphans)
    shared = ex.rows["ephys.recording subject=subA session_id=1 recording_id=2"]
    assert shared == ex.rows["ephys.recording subject=subA session_id=2 recording_id=1"]


def test_a_cycle_keeps_every_referenced_object_and_collects_every_orphan(example: Any) -> None:
    ex = example
    scan = subprocess.run(
        [sys.executable, "-m", "reclaim", "scan", "--config", str(CONFIG), "--show", "1000", "--json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert scan.returncode == 0, scan.stderr
    report = json.loads(scan.stdout)["stores"][0]
    assert report["listed"]["count"] == len(ex.objects)
    assert report["referenced"]["count"] == len(ex.referenced)
    assert report["young"]["count"] == len(ex.young)
    assert {s["key"] for s in report["samples"]} == ex.orphans
    assert {s["name"]: s["covers"] for s in report["sources"]} == {
        "ephys.recording.raw": 3,  # four rows of "main", two of them share one hash
        "ephys.spike_sorting.params_file": 2,
        "ephys.spike_sorting.report": 7,
        "imaging.scan.movie(dir)": 40,  # four directories: nine files and a manifest each
        "imaging.scan.movie(file)": 1,
        "imaging.segmentation.masks": 6,
        "imaging.segmentation.summary": 5,
    }

    quarantined, purged, in_trash = cycle(ex)

    assert quarantined.quarantined[0].quarantined.count == len(ex.orphans)
    assert in_trash == expected(ex, ex.orphans)  # moved, byte-identical, and nothing else
    assert purged.purged[0].purged.count == len(ex.orphans)
    assert purged.purged[0].restored == 0
    assert files(ex.store, trash=True) == {}
    assert files(ex.store) == expected(ex, ex.referenced | ex.young)
    assert reclaim.check(CONFIG).dangling == 0
    again = reclaim.scan(CONFIG)
    assert again.candidates == 0
    assert again.stores[0].young.count == len(ex.young)


def test_deleting_rows_collects_exactly_their_objects(example: Any, pg_url: str) -> None:
    ex = example
    cycle(ex)
    # a DataJoint delete of scan 3 cascades to its segmentations; deleting recording
    # subA/1/2 cascades to its sorting, but its raw data is shared with subA/2/1
    delete(
        pg_url,
        "DELETE FROM imaging.segmentation WHERE scan_id = 3",
        "DELETE FROM imaging.scan WHERE scan_id = 3",
        "DELETE FROM ephys.spike_sorting WHERE subject = 'subA' AND session_id = 1 AND recording_id = 2",
        "DELETE FROM ephys.recording WHERE subject = 'subA' AND session_id = 1 AND recording_id = 2",
    )
    deleted = {
        "imaging.scan scan_id=3",
        "imaging.segmentation scan_id=3 method=suite2p",
        "ephys.spike_sorting subject=subA session_id=1 recording_id=2 paramset_id=0",
        "ephys.recording subject=subA session_id=1 recording_id=2",
    }
    garbage = ex.kept_by(deleted)
    movie = "_schema/imaging/scan/scan_id=3/movie.zarr"
    assert {k for k in garbage if k.startswith(movie)} == {
        *(f"{movie}/{name}" for name in populate_mod.ZARR_FILES),
        f"{movie}.manifest.json",
    }
    shared_raw = ex.rows["ephys.recording subject=subA session_id=1 recording_id=2"][0]
    assert shared_raw not in garbage
    assert len(garbage) == 10 + 2 + 1  # the directory and its manifest, masks and summary, a report

    quarantined, purged, in_trash = cycle(ex)

    assert in_trash == expected(ex, garbage)
    assert quarantined.quarantined[0].quarantined.count == len(garbage)
    assert purged.purged[0].purged.count == len(garbage)
    assert files(ex.store, trash=True) == {}
    assert files(ex.store) == expected(ex, (ex.referenced - garbage) | ex.young)
    assert reclaim.check(CONFIG).dangling == 0


def test_purge_restores_a_directory_whose_row_came_back(example: Any, pg_url: str) -> None:
    ex = example
    cycle(ex)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT subject, movie::text FROM imaging.scan WHERE scan_id = 4")
            ).one()
        delete(
            pg_url,
            "DELETE FROM imaging.segmentation WHERE scan_id = 4",
            "DELETE FROM imaging.scan WHERE scan_id = 4",
        )
        quarantined = reclaim.quarantine(CONFIG, grace=timedelta(0))
        garbage = ex.kept_by({"imaging.scan scan_id=4", "imaging.segmentation scan_id=4 method=suite2p"})
        assert quarantined.quarantined[0].quarantined.count == len(garbage) == 12
        assert files(ex.store, trash=True) == expected(ex, garbage)
        # the scan is inserted again, the same object metadata, before the purge
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO imaging.scan (scan_id, subject, movie) VALUES (4, :s, CAST(:m AS jsonb))"
                ),
                {"s": row.subject, "m": row.movie},
            )
    finally:
        engine.dispose()

    purged = reclaim.purge(CONFIG)

    movie = set(ex.rows["imaging.scan scan_id=4"])
    assert purged.purged[0].restored == len(movie) == 10  # nine files and the manifest, by the re-check
    assert purged.purged[0].purged.count == 2  # the segmentation's masks and summary
    assert files(ex.store, trash=True) == {}
    assert files(ex.store) == expected(ex, (ex.referenced - (garbage - movie)) | ex.young)
