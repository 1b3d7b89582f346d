"""``dangling = "ignore"`` on a reference source: its missing objects are expected, counted, not findings.

DANDI: an ``Upload`` row exists before its object is uploaded, and many never
are; ``check`` must not report those as dangling, while a missing blob of an
``AssetBlob`` still is. Real databases, a real local store, real commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.errors import ConfigError

from .world import DAY, World, build_schema, naive


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(reclaim.__file__).parents[1])},
        timeout=120,
        check=False,
    )


def _missing(world: World, policy: str) -> None:
    world.upload_options = f'dangling = "{policy}"'
    world.write_config()
    world.insert("uploads", {"id": 1, "blob": "uploads/never", "created": naive(world.now - DAY)})
    world.insert("uploads", {"id": 2, "blob": "uploads/done", "created": naive(world.now - DAY)})
    world.put("uploads/done")


def test_an_ignored_source_counts_its_missing_objects_as_expected(world: World) -> None:
    _missing(world, "ignore")
    world.insert("blobs", {"id": 1, "blob": "blobs/gone", "created": naive(world.now - DAY)})
    report = reclaim.check(world.config_path)
    [store] = report.stores
    by_name = {s.name: s for s in store.sources}
    uploads, blobs = by_name["app.uploads.blob"], by_name["app.blobs.blob"]
    assert (uploads.references, uploads.dangling, uploads.expected_missing) == (2, 0, 1)
    assert (blobs.dangling, blobs.expected_missing) == (1, 0)  # a source that reports still does
    assert (report.dangling, report.findings) == (1, 1)
    assert report.to_dict()["expected_missing"] == 1


def test_check_passes_when_only_ignored_sources_miss_objects(tmp_path: Path, sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    world = World(root=tmp_path, db_url=sqlite_url, engine=engine, md=build_schema(engine))
    _missing(world, "ignore")
    config = str(world.config_path)
    text = _cli("check", "-c", config, "--fail-on-findings", cwd=tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "1 missing object expected" in " ".join(text.stdout.split())
    as_json = json.loads(_cli("check", "-c", config, "--json", cwd=tmp_path).stdout)
    assert (as_json["dangling"], as_json["expected_missing"]) == (0, 1)
    world.upload_options = 'dangling = "report"'
    world.write_config()
    assert _cli("check", "-c", config, "--fail-on-findings", cwd=tmp_path).returncode == 5
    engine.dispose()


def test_a_malformed_dangling_policy_is_a_config_error(world: World) -> None:
    world.upload_options = 'dangling = "sometimes"'
    with pytest.raises(ConfigError) as caught:
        world.write_config()
    assert caught.value.field == "stores.blobs.references[1].dangling"
