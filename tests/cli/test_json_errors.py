"""Under ``--json`` an error is JSON on stdout with its documented exit code (cron keeps stdout).

Exit 9 is checked in ``tests/rows/test_cli_rows.py`` and exit 12 in
``tests/lifecycle/test_paused_collector.py``, where those situations are built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lifecycle.archive import Archive, make_archive
from reclaim.catalog import Leases, open_catalog


def _reclaim(archive: Archive, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "reclaim", *args, "--json", "--config", str(archive.config_path)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in ("RECLAIM_FAULT", "RECLAIM_PAUSE")},
        timeout=120,
        check=False,
    )
    assert done.stdout, f"nothing on stdout (stderr: {done.stderr})"
    document = json.loads(done.stdout)
    assert set(document) == {"error"}, document
    assert document["error"]["exit_code"] == done.returncode
    assert document["error"]["message"]
    return done.returncode, document["error"]


@pytest.fixture
def archive(tmp_path: Path, sqlite_url: str) -> Archive:
    archive = make_archive(tmp_path, sqlite_url)
    for i in range(4):
        archive.put(f"blobs/{i}")
    return archive


def _edit(archive: Archive, old: str, new: str) -> None:
    text = archive.config_path.read_text()
    assert old in text
    archive.config_path.write_text(text.replace(old, new, 1))


def _set_url(archive: Archive, table: str, url: str) -> None:
    """Point the ``url`` of the TOML table ``[table]`` at ``url``."""
    text = archive.config_path.read_text()
    archive.config_path.write_text(
        re.sub(rf"(\[{re.escape(table)}\]\nurl = )\"[^\"]*\"", rf'\1"{url}"', text)
    )


def test_configuration_error(archive: Archive) -> None:
    _edit(archive, 'min_age = "1d"', 'min_age = "soon"')
    code, error = _reclaim(archive, "scan")
    assert (code, error["type"]) == (2, "ConfigError")
    assert error["field"] == "stores.main.min_age"


def test_reference_source_error(archive: Archive) -> None:
    _set_url(archive, "databases.app", "postgresql+psycopg://u@127.0.0.1:1/x")
    code, error = _reclaim(archive, "scan")
    assert (code, error["type"]) == (3, "SourceError")
    assert "source" in error


def test_store_error(archive: Archive, tmp_path: Path) -> None:
    _edit(archive, f'url = "{archive.store_url}"', f'url = "file://{tmp_path / "no-such-store"}"')
    code, error = _reclaim(archive, "scan")
    assert (code, error["type"], error["store"]) == (4, "StoreError", "main")


def test_catalog_error(tmp_path: Path, archive: Archive) -> None:
    _set_url(archive, "catalog", f"sqlite:///{tmp_path / 'never-made.sqlite'}")
    code, error = _reclaim(archive, "status")
    assert (code, error["type"]) == (6, "CatalogError")


def test_a_guard_that_refuses(archive: Archive) -> None:
    _edit(archive, "max_fraction = 1.0", "max_fraction = 0.1")
    code, error = _reclaim(archive, "quarantine")
    assert (code, error["type"]) == (7, "UnsafeToProceed")
    assert all(archive.store().exists(f"blobs/{i}") for i in range(4))


def test_an_unknown_key(archive: Archive) -> None:
    code, error = _reclaim(archive, "restore", "blobs/never", "--store", "main")
    assert (code, error["type"]) == (8, "UnknownItem")


def test_the_lease_held_by_another(archive: Archive) -> None:
    catalog = open_catalog(archive.config.catalog)
    try:
        leases = Leases(catalog)
        held = leases.acquire("someone-else")
        code, error = _reclaim(archive, "quarantine")
        assert (code, error["type"]) == (11, "LockHeld")
        assert "someone-else" in error["holder"]
        leases.release(held)
    finally:
        catalog.dispose()
