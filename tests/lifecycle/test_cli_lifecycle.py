"""The lifecycle commands as an operator runs them: real processes, JSON, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import reclaim


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def test_quarantine_status_restore_runs_on_the_demo(tmp_path: Path) -> None:
    archive = reclaim.sample.build_demo_archive(tmp_path / "demo")
    reclaim.init(archive.config_path)
    cfg = str(archive.config_path)
    dry = run("quarantine", "--config", cfg, "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["scans"][0]["candidates"]["count"] == 18
    assert (
        json.loads(run("status", "--config", cfg, "--json", cwd=tmp_path).stdout)["stores"][0]["summary"][
            "quarantined"
        ]
        == 0
    )

    done = run("quarantine", "--config", cfg, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["quarantined"][0]["quarantined"]["count"] == 18
    assert report["quarantined"][0]["mode"] == "move"
    status = json.loads(run("status", "--config", cfg, "--json", cwd=tmp_path).stdout)
    assert status["stores"][0]["summary"]["quarantined"] == 18
    assert status["lease"]["holder"] is None

    human = run("status", "--config", cfg, cwd=tmp_path)
    assert "quarantined" in human.stdout
    assert "lease: free" in human.stdout

    purge = run("purge", "--config", cfg, "--dry-run", "--json", cwd=tmp_path)
    assert json.loads(purge.stdout)["purged"][0]["due"] == 0  # grace is 7 days in the demo

    unknown = run("restore", "blobs/nope", "--store", "main", "--config", cfg, cwd=tmp_path)
    assert unknown.returncode == 8
    assert "blobs/nope" in unknown.stderr
    assert run("runs", "999", "--config", cfg, cwd=tmp_path).returncode == 8

    restored = run("restore", "--store", "main", "--match", "zarr/*", "--config", cfg, "--json", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["restored"]["main"]["restored"] == 3

    runs = json.loads(run("runs", "--config", cfg, "--json", cwd=tmp_path).stdout)
    assert [r["command"] for r in runs] == ["restore", "restore", "quarantine"]
    assert [r["status"] for r in runs] == ["succeeded", "aborted", "succeeded"]
    assert "no quarantined object" in runs[1]["error"]

    lock = run("lock", "--config", cfg, cwd=tmp_path)
    assert lock.returncode == 0
    assert "free" in lock.stdout


def test_collect_warns(tmp_path: Path) -> None:
    archive = reclaim.sample.build_demo_archive(tmp_path / "demo")
    reclaim.init(archive.config_path)
    result = run("collect", "--config", str(archive.config_path), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "without a grace period" in result.stderr
    assert "would quarantine 18 objects" in result.stdout


def test_max_fraction_exit_code(tmp_path: Path) -> None:
    archive = reclaim.sample.build_demo_archive(tmp_path / "demo")
    reclaim.init(archive.config_path)
    result = run("quarantine", "--config", str(archive.config_path), "--max-fraction", "0.05", cwd=tmp_path)
    assert result.returncode == 7
    assert "nothing was moved" in result.stderr


def test_a_dry_run_cycle_reports_the_same_purge_counts_as_json_and_as_text(tmp_path: Path) -> None:
    archive = reclaim.sample.build_demo_archive(tmp_path / "demo")
    config = archive.config_path
    config.write_text(config.read_text().replace('grace = "7d"', 'grace = "0s"'))
    reclaim.init(config)
    cfg = str(config)
    assert run("quarantine", "--config", cfg, cwd=tmp_path).returncode == 0
    text = run("run", "--config", cfg, "--dry-run", cwd=tmp_path)
    as_json = run("run", "--config", cfg, "--dry-run", "--json", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert as_json.returncode == 0, as_json.stderr
    [purged] = json.loads(as_json.stdout)["purged"]
    assert purged["due"] == 18
    assert purged["purged"]["count"] == 18
    assert f"would purge {purged['purged']['count']} objects" in " ".join(text.stdout.split())
