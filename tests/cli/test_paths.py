"""Paths in a config resolve against its directory, and read-only commands create no files.

Every command runs in a real process from an unrelated working directory, as
cron runs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cli.runner import reclaim as run_reclaim
from reclaim.config import parse_config
from reclaim.config.paths import resolve_paths

READ_ONLY = (["scan"], ["check"], ["status"], ["runs"], ["lock"])


def reclaim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_reclaim(*args, cwd=cwd, columns=200)


def flat(text: str) -> str:
    """Output with the console's line wrapping undone."""
    return " ".join(text.split())


def files_under(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.fixture
def relative_demo(tmp_path: Path) -> Path:
    """The demo archive with its config rewritten to relative paths; returns the config file."""
    built = reclaim("demo", str(tmp_path / "demo"), "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    config = tmp_path / "demo" / "reclaim.toml"
    text = config.read_text(encoding="utf-8")
    demo = str(tmp_path / "demo")
    text = text.replace(f"sqlite:///{demo}/archive.sqlite", "sqlite:///archive.sqlite")
    text = text.replace(f"file://{demo}/store", "store")
    assert str(tmp_path) not in text
    config.write_text(text, encoding="utf-8")
    return config


def test_every_command_uses_the_files_beside_the_config(relative_demo: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    before = files_under(relative_demo.parent)
    scan = reclaim("scan", "--config", str(relative_demo), "--json", cwd=cwd)
    assert scan.returncode == 0, scan.stderr
    store = json.loads(scan.stdout)["stores"][0]
    assert store["url"] == str(relative_demo.parent / "store")
    assert store["referenced"]["count"] > 0  # the rows of archive.sqlite beside the config were read
    assert store["listed"]["count"] > store["referenced"]["count"]
    for command in READ_ONLY:
        result = reclaim(*command, "--config", str(relative_demo), cwd=cwd)
        assert result.returncode == 0, (command, result.stderr)
    quarantined = reclaim("quarantine", "--config", str(relative_demo), "--json", cwd=cwd)
    assert quarantined.returncode == 0, quarantined.stderr
    assert json.loads(quarantined.stdout)["run_id"] is not None
    assert files_under(cwd) == set()
    assert not (relative_demo.parent / "store" / "store").exists()
    assert before <= files_under(relative_demo.parent)


def test_read_only_commands_never_create_a_catalog(relative_demo: Path, tmp_path: Path) -> None:
    catalog = relative_demo.parent / "reclaim-catalog.sqlite"
    catalog.unlink()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    scan = reclaim("scan", "--config", str(relative_demo), cwd=cwd)
    assert scan.returncode == 0, scan.stderr
    check = reclaim("check", "--config", str(relative_demo), cwd=cwd)
    assert check.returncode in (0, 5), check.stderr
    for command in (["status"], ["runs"], ["lock"]):
        result = reclaim(*command, "--config", str(relative_demo), cwd=cwd)
        assert result.returncode == 6, (command, result.stderr)
        assert str(catalog) in flat(result.stderr)
        assert "reclaim init" in result.stderr
    assert not catalog.exists()
    assert files_under(cwd) == set()


def test_the_config_init_writes_works_from_another_directory(tmp_path: Path) -> None:
    home = tmp_path / "app"
    cwd = tmp_path / "cron"
    home.mkdir()
    cwd.mkdir()
    config = home / "reclaim.toml"
    init = reclaim("init", "--config", str(config), cwd=cwd)
    assert init.returncode == 0, init.stderr
    assert (home / "reclaim-catalog.sqlite").exists()
    scan = reclaim("scan", "--config", str(config), cwd=cwd)
    # the template's sqlite:///app.sqlite is the app's database beside the config; it does not exist
    assert scan.returncode == 2, scan.stderr
    assert str(home / "app.sqlite") in flat(scan.stderr)
    assert "Traceback" not in scan.stderr
    assert files_under(cwd) == set()
    assert not (home / "app.sqlite").exists()


def test_a_missing_sqlite_directory_is_named(relative_demo: Path, tmp_path: Path) -> None:
    text = relative_demo.read_text(encoding="utf-8")
    relative_demo.write_text(text.replace("sqlite:///archive.sqlite", "sqlite:///gone/archive.sqlite"))
    result = reclaim("scan", "--config", str(relative_demo), cwd=tmp_path)
    assert result.returncode == 2
    assert f"directory {relative_demo.parent / 'gone'} does not exist" in flat(result.stderr)
    assert "databases.archive.url" in result.stderr
    assert not (relative_demo.parent / "gone").exists()


def test_init_names_a_missing_catalog_directory(tmp_path: Path) -> None:
    config = tmp_path / "reclaim.toml"
    config.write_text('[catalog]\nurl = "sqlite:///state/catalog.sqlite"\n', encoding="utf-8")
    result = reclaim("init", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert f"directory {tmp_path / 'state'} of the SQLite catalog does not exist" in flat(result.stderr)
    assert "catalog.url" in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("blobs", "{base}/blobs"),
        ("../shared/blobs", "{base}/../shared/blobs"),
        ("file:blobs", "file://{base}/blobs"),
        ("file://./blobs", "file://{base}/blobs"),
        ("/srv/blobs", "/srv/blobs"),
        ("file:///srv/blobs", "file:///srv/blobs"),
        ("memory://x", "memory://x"),
        ("s3://bucket/prefix/", "s3://bucket/prefix/"),
    ],
)
def test_store_urls_resolve_against_the_base(tmp_path: Path, url: str, expected: str) -> None:
    config = parse_config(f'[stores.s]\nurl = "{url}"\n', path=str(tmp_path / "reclaim.toml"))
    assert resolve_paths(config).stores["s"].url == expected.format(base=tmp_path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///app.sqlite", "sqlite:///{base}/app.sqlite"),
        ("sqlite+pysqlite:///db/app.sqlite?timeout=5", "sqlite+pysqlite:///{base}/db/app.sqlite?timeout=5"),
        ("sqlite:////var/app.sqlite", "sqlite:////var/app.sqlite"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_sqlite_urls_resolve_against_the_base(tmp_path: Path, url: str, expected: str) -> None:
    text = f'[catalog]\nurl = "{url}"\n[databases.d]\nurl = "{url}"\n'
    config = resolve_paths(parse_config(text, path=str(tmp_path / "reclaim.toml")))
    assert config.catalog.url == expected.format(base=tmp_path)
    assert config.databases["d"].url == expected.format(base=tmp_path)
