"""``reclaim incremental …`` and ``reclaim run --incremental`` as a user runs them (real processes)."""

from __future__ import annotations

import json
from collections.abc import Callable

from cli.runner import reclaim

from .world import World


def test_install_status_run_and_uninstall_on_the_command_line(
    sqlite_url: str, build: Callable[..., World]
) -> None:
    world = build(sqlite_url)
    config = ["--config", str(world.config_path)]
    world.put("a/1")
    world.sql("INSERT INTO assets (id, blob_key) VALUES (1, 'a/1')")

    refused = reclaim("run", "--incremental", "--json", *config, cwd=world.root)
    assert refused.returncode == 7, refused.stderr
    assert json.loads(refused.stdout)["error"]["type"] == "UnsafeToProceed"

    installed = reclaim("incremental", "install", "--json", *config, cwd=world.root)
    assert installed.returncode == 0, installed.stderr
    assert [s["state"] for s in json.loads(installed.stdout)["sources"]] == ["installed", "installed"]
    assert reclaim("run", *config, cwd=world.root).returncode == 0  # the full scan

    world.sql("DELETE FROM assets")
    status = reclaim("incremental", "status", "--json", *config, cwd=world.root)
    [store] = json.loads(status.stdout)["stores"]
    assert (store["ready"], store["queued"]) == (True, 1)

    dry = reclaim("incremental", "run", "--dry-run", *config, cwd=world.root)
    assert dry.returncode == 0, dry.stderr
    assert "would quarantine 1 object" in dry.stdout
    done = reclaim("run", "--incremental", "--json", *config, cwd=world.root)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["quarantined"][0]["quarantined"]["count"] == 1
    assert report["dequeued"] == {"main": 1}
    assert not world.there("a/1")

    removed = reclaim("incremental", "uninstall", *config, cwd=world.root)
    assert removed.returncode == 0, removed.stderr
    assert world.reclaim_objects() == {"triggers": set(), "functions": set(), "tables": set()}
