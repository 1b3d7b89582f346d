"""``purge --due-before`` / ``--older-than``: a deliberate earlier purge, still re-checked and journaled."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from cli.runner import reclaim


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    built = reclaim("demo", str(tmp_path / "demo"), "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    return tmp_path / "demo"


def trash_keys(demo: Path) -> list[str]:
    trash = demo / "store" / "_trash"
    return sorted(str(p.relative_to(trash)) for p in trash.rglob("*") if p.is_file())


def purged(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return dict(report["purged"][0])


def test_older_than_purges_before_grace_and_still_rechecks(demo: Path) -> None:
    config = str(demo / "reclaim.toml")
    quarantined = trash_keys(demo)
    assert len(quarantined) > 2
    assert purged(reclaim("purge", "-c", config, "--json", cwd=demo))["due"] == 0  # grace is 7 days
    assert purged(reclaim("purge", "-c", config, "--due-before", "1d", "--json", cwd=demo))["due"] == 0
    preview = purged(reclaim("purge", "-c", config, "--due-before", "8d", "--dry-run", "--json", cwd=demo))
    assert preview["due"] == len(quarantined)
    assert trash_keys(demo) == quarantined  # a dry run changes nothing

    # a writer references one of them again: the early purge must restore it, not delete it
    reused = quarantined[0]
    with sqlite3.connect(demo / "archive.sqlite") as db:
        db.execute("INSERT INTO assets (path, blob_key) VALUES ('sub-99/reused.nwb', ?)", (reused,))
    result = reclaim("purge", "-c", config, "--older-than", "0", "--json", cwd=demo)
    report = purged(result)
    assert "warning: purging before the grace period ends" in " ".join(result.stderr.split())
    assert report["due"] == len(quarantined)
    assert report["restored"] == 1
    assert report["purged"] == {"count": len(quarantined) - 1, "bytes": report["purged"]["bytes"]}  # type: ignore[index]
    assert trash_keys(demo) == []
    assert (demo / "store" / reused).is_file()
    assert not (demo / "store" / quarantined[1]).exists()

    run = json.loads(reclaim("runs", "-c", config, "--limit", "1", "--json", cwd=demo).stdout)[0]
    assert run["command"] == "purge"
    assert "quarantined_before" in run["options"]


def test_older_than_leaves_younger_quarantine_alone(demo: Path) -> None:
    config = str(demo / "reclaim.toml")
    before = trash_keys(demo)
    report = purged(reclaim("purge", "-c", config, "--older-than", "1d", "--json", cwd=demo))
    assert report["due"] == 0
    assert trash_keys(demo) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--older-than", "soon"], "--older-than"),
        (["--due-before", "next week"], "--due-before"),
        (["--due-before", "1d", "--older-than", "1d"], "not both"),
    ],
)
def test_bad_early_purge_options(demo: Path, args: list[str], fragment: str) -> None:
    result = reclaim("purge", "-c", str(demo / "reclaim.toml"), *args, cwd=demo)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_status_says_what_grace_changes_do(demo: Path) -> None:
    result = reclaim("status", "-c", str(demo / "reclaim.toml"), cwd=demo)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "due time was fixed when it was quarantined" in text
    assert "reclaim purge --older-than" in text
