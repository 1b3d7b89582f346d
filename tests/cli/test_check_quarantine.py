"""``reclaim check`` tells a reference to a quarantined object from a dangling one."""

from __future__ import annotations

import json
import shlex
import sqlite3
from pathlib import Path

from cli.runner import reclaim


def test_a_reference_to_a_quarantined_object_is_restorable_not_dangling(tmp_path: Path) -> None:
    built = reclaim("demo", str(tmp_path / "demo"), "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    demo = tmp_path / "demo"
    config = str(demo / "reclaim.toml")
    before = json.loads(reclaim("check", "-c", config, "--json", cwd=tmp_path).stdout)
    trash = demo / "store" / "_trash"
    key = sorted(str(p.relative_to(trash)) for p in trash.rglob("*") if p.is_file())[0]
    # a writer reuses the quarantined key without calling ensure(): the row now points at it
    with sqlite3.connect(demo / "archive.sqlite") as db:
        db.execute("INSERT INTO assets (path, blob_key) VALUES ('sub-99/reused.nwb', ?)", (key,))

    result = reclaim("check", "-c", config, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dangling"] == before["dangling"]  # the dangling ones are still the demo's
    assert report["quarantined"] == 1
    assets = next(s for s in report["stores"][0]["sources"] if s["name"] == "assets")
    assert assets["quarantined"] == 1
    sample = assets["quarantined_samples"][0]
    assert sample["key"] == key
    assert sample["restore"] == f"reclaim restore {shlex.quote(key)} --store main"
    assert key not in [d["key"] for d in assets["samples"]]
    assert reclaim("check", "-c", config, "--fail-on-findings", cwd=tmp_path).returncode == 5

    human = reclaim("check", "-c", config, cwd=tmp_path)
    assert "quarantined, restorable" in human.stdout
    assert f"reclaim restore {shlex.quote(key)} --store main" in human.stdout

    # the command it prints works, and afterwards the reference is simply present
    restored = reclaim(*shlex.split(sample["restore"])[1:], "-c", config, cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    after = json.loads(reclaim("check", "-c", config, "--json", cwd=tmp_path).stdout)
    assert after["quarantined"] == 0
    assert after["dangling"] == before["dangling"]
