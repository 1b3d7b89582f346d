"""The command line, run as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import reclaim
from cli.runner import reclaim as reclaim_cli
from config.samples import minimal_config
from reclaim.errors import ConfigError


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return reclaim_cli(*args, cwd=cwd, columns=200, env=env)


def test_demo_reports_every_kind_of_object(tmp_path: Path) -> None:
    result = run("demo", str(tmp_path / "demo"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    store = data["scan"]["stores"][0]
    assert store["listed"]["count"] == 87
    assert store["referenced"]["count"] == 60
    assert store["candidates"]["count"] == 18
    assert store["young"]["count"] == 5
    assert store["excluded"]["count"] == 4
    by_source = {s["name"]: s for s in store["sources"]}
    assert by_source["assets"]["rows"] == 43
    assert by_source["assets"]["covers"] == 40
    assert by_source["zarr"]["covers"] == 10  # 8 chunks + 2 manifest sidecars
    assert by_source["recordings"]["rows"] == 10  # the row for another store is filtered out
    dangling = {s["name"]: s["dangling"] for s in data["check"]["stores"][0]["sources"]}
    assert dangling == {"assets": 3, "zarr": 0, "recordings": 0}
    assert data["check"]["stores"][0]["sources"][0]["samples"][0]["row"]["id"] >= 41
    # then one cycle: the four abandoned uploads archived, the 18 candidates quarantined, nothing purged
    cycle = data["cycle"]
    assert [(c["collection"], c["archived"]) for c in cycle["collections"]] == [("uploads", 4)]
    assert [q["quarantined"]["count"] for q in cycle["quarantined"]] == [18]
    assert [p["due"] for p in cycle["purged"]] == [0]


def test_demo_human_output_names_next_commands(tmp_path: Path) -> None:
    result = run("demo", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "candidates" in result.stdout
    assert "18" in result.stdout
    assert "reclaim status --config" in result.stdout
    assert "archived and deleted 4 rows" in result.stdout
    assert "dangling references" in result.stdout


def test_scan_and_check_on_demo_config(tmp_path: Path) -> None:
    archive = reclaim.sample.build_demo_archive(tmp_path / "demo")
    scan = run("scan", "--config", str(archive.config_path), "--show", "3", "--json", cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    samples = json.loads(scan.stdout)["stores"][0]["samples"]
    assert len(samples) == 3
    assert all(s["key"].startswith(("blobs/", "zarr/")) for s in samples)
    check = run("check", "--config", str(archive.config_path), "--fail-on-findings", cwd=tmp_path)
    assert check.returncode == 5
    assert "dangling" in check.stdout


def test_init_writes_a_valid_commented_config(tmp_path: Path) -> None:
    result = run("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "reclaim.toml").read_text()
    assert text.count("#") > 20
    config = reclaim.load_config(tmp_path / "reclaim.toml")
    assert "blobs" in config.stores
    assert (tmp_path / "reclaim-catalog.sqlite").exists()
    again = run("init", cwd=tmp_path)
    assert again.returncode == 0
    assert "left as it is" in again.stdout


@pytest.mark.parametrize(
    ("config", "code", "fragment"),
    [
        ('[stores.s]\nurl = "/tmp"\nmin_age = "soon"\n', 2, "stores.s.min_age"),
        ("[stores.s\n", 2, "not valid TOML"),
    ],
)
def test_config_errors_exit_2(tmp_path: Path, config: str, code: int, fragment: str) -> None:
    path = tmp_path / "reclaim.toml"
    path.write_text(config)
    result = run("scan", "--config", str(path), cwd=tmp_path)
    assert result.returncode == code
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_exits_3_without_password(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    path = tmp_path / "reclaim.toml"
    path.write_text(
        minimal_config(
            db_url="postgresql+psycopg://gc:${APP_DB_PASSWORD}@127.0.0.1:1/app",
            db='connect_timeout = "2s"',
            store_url=f"file://{store}",
        )
    )
    result = run("scan", "--config", str(path), cwd=tmp_path, env={"APP_DB_PASSWORD": "pa55-w0rd-x"})
    assert result.returncode == 3
    assert "app.assets.blob_key" in result.stderr
    assert "pa55-w0rd-x" not in result.stderr + result.stdout


def test_unknown_store_is_a_config_error(tmp_path: Path) -> None:
    archive = reclaim.sample.build_demo_archive(tmp_path / "demo")
    with pytest.raises(ConfigError, match="no store named 'nope'"):
        reclaim.scan(archive.config_path, stores=["nope"])
    result = run("scan", "--config", str(archive.config_path), "--store", "nope", cwd=tmp_path)
    assert result.returncode == 2
