"""``reclaim run``, ``scan``, ``restore`` and ``status`` with row collections, as a real process (SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from .world import ASSETS, DAY, UPLOADS, World, build_schema, naive


def cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args, "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_world(tmp_path: Path) -> World:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    engine = sa.create_engine(url)
    world = World(root=tmp_path, db_url=url, engine=engine, md=build_schema(engine))
    world.collections = ASSETS + UPLOADS + 'action = "report"\n'
    world.insert("versions", {"id": 1, "name": "v"})
    world.asset(1, None, age=40 * DAY)
    world.asset(2, None, age=40 * DAY)
    world.link(1, 1)
    world.insert("uploads", {"id": 7, "blob": "uploads/7", "created": naive(world.now - 9 * DAY)})
    world.put("orphan/x")
    world.write_config()
    return world


def test_scan_and_a_dry_run_show_candidates_and_change_nothing(cli_world: World) -> None:
    world = cli_world
    scan = cli(world, "scan", "--json", "--show", "3")
    assert scan.returncode == 0, scan.stderr
    data = json.loads(scan.stdout)
    assert {c["collection"]: c["candidates"] for c in data["collections"]} == {"assets": 1, "uploads": 1}
    assert data["stores"][0]["candidates"]["count"] == 1
    assert cli(world, "scan", "--fail-on-findings").returncode == 5  # the report-only upload

    dry = cli(world, "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout
    assert world.ids("assets") == [1, 2]
    assert world.objects() == ["orphan/x"]


def test_run_collects_reports_and_records_then_restore_and_status(cli_world: World) -> None:
    world = cli_world
    done = cli(world, "run", "--json", "--fail-on-findings")
    assert done.returncode == 5, done.stderr  # it ran, and the report-only upload is a finding
    data = json.loads(done.stdout)
    assert [(c["collection"], c["archived"]) for c in data["collections"]] == [("assets", 1)]
    assert data["findings"] == 1
    assert [q["quarantined"]["count"] for q in data["quarantined"]] == [1]
    assert world.ids("assets") == [1]
    assert world.ids("uploads") == [7]

    runs = json.loads(cli(world, "runs", "--json").stdout)
    cycle = next(r for r in runs if r["command"] == "run")
    assert cycle["status"] == "succeeded"
    assert cycle["counts"]["collections"]["assets"]["archived"] == 1
    assert cycle["counts"]["reported"]["uploads"]["rows"] == 1

    status = cli(world, "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert {c["collection"]: c["summary"]["archived"] for c in info["collections"]} == {
        "assets": 1,
        "uploads": 0,
    }
    assert info["findings"] == 1
    human = cli(world, "status")
    assert "report-only findings" in human.stdout

    restored = cli(world, "restore", "--collection", "assets", "2", "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["restored_total"] == 1
    assert world.ids("assets") == [1, 2]


def test_restore_errors_have_their_exit_codes(cli_world: World) -> None:
    world = cli_world
    assert cli(world, "run").returncode == 0
    unknown = cli(world, "restore", "--collection", "assets", "99")
    assert unknown.returncode == 8
    assert "no archived row with primary key 99" in unknown.stderr
    world.asset(2, None, age=DAY)
    taken = cli(world, "restore", "--collection", "assets", "2")
    assert taken.returncode == 9
    assert "exists again" in taken.stderr
    as_json = json.loads(cli(world, "restore", "--collection", "assets", "2", "--json").stdout)["error"]
    assert (as_json["type"], as_json["exit_code"], as_json["collection"]) == ("RowConflict", 9, "assets")
    no_selector = cli(world, "restore", "--rows")
    assert no_selector.returncode == 2
