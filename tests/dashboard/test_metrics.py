"""Prometheus metrics: /metrics of reclaim serve and reclaim metrics --textfile, from the catalog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

import reclaim.api as api
from reclaim.dashboard import create_app

from .conftest import Demo, build_demo, cli_json


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_are_the_figures_of_status_check_and_runs(demo: Demo, client: TestClient) -> None:
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = _samples(answer.text)
    status = cli_json("status", "--config", str(demo.config))
    check = cli_json("check", "--config", str(demo.config))
    runs = cli_json("runs", "--config", str(demo.config))
    (store,) = status["stores"]
    main = (("store", "main"),)
    assert got[("reclaim_catalog_up", ())] == 1
    assert got[("reclaim_quarantined_objects", main)] == store["summary"]["quarantined"]
    assert got[("reclaim_quarantined_bytes", main)] == store["summary"]["quarantined_bytes"]
    assert got[("reclaim_oldest_quarantined_age_seconds", main)] > 0
    assert got[("reclaim_in_flight_entries", main)] == 0
    assert got[("reclaim_dangling_references", main)] == check["dangling"] > 0
    assert got[("reclaim_candidates", main)] == store["summary"]["quarantined"]  # the cycle took them all
    assert got[("reclaim_report_only_findings", ())] == status["findings"]
    (collection,) = status["collections"]
    assert got[("reclaim_archived_rows", (("collection", "uploads"),))] == collection["summary"]["archived"]
    assert got[("reclaim_archived_bytes", (("collection", "uploads"),))] == collection["summary"]["bytes"]
    (cycle,) = [r for r in runs if r["command"] == "run"]
    run = (("command", "run"),)
    started = api.runs(demo.config, run_id=cycle["id"])[0].started_at.timestamp()
    assert got[("reclaim_last_run_timestamp_seconds", run)] == started
    assert got[("reclaim_last_run_succeeded", run)] == 1
    assert got[("reclaim_last_run_outcome", (("command", "run"), ("status", "succeeded")))] == 1
    finished = api.runs(demo.config, run_id=cycle["id"])[0].finished_at
    assert finished is not None
    assert got[("reclaim_last_success_timestamp_seconds", ())] == finished.timestamp()
    assert got[("reclaim_lease_held", ())] == 0
    assert got[("reclaim_purged_bytes_total", main)] == 0


def test_purged_and_restored_counters_sum_the_audit_log(tmp_path: Path) -> None:
    demo = build_demo(tmp_path / "demo")
    with TestClient(create_app(demo.config)) as client:
        before = _samples(client.get("/metrics").text)
        restored = api.restore(demo.config, match="zarr/*")
        with pytest.warns(DeprecationWarning, match="without a grace period"):
            collected = api.collect(demo.config)
        after = _samples(client.get("/metrics").text)
        again = _samples(client.get("/metrics").text)  # read incrementally: nothing counted twice
    main = (("store", "main"),)
    purged = sum(p.purged.bytes for p in collected.purged)
    assert purged > 0
    assert (
        after[("reclaim_purged_bytes_total", main)] - before[("reclaim_purged_bytes_total", main)] == purged
    )
    assert after[("reclaim_purged_objects_total", main)] == sum(p.purged.count for p in collected.purged)
    assert after[("reclaim_restored_objects_total", main)] == restored.restored["main"].restored > 0
    assert after[("reclaim_restored_bytes_total", main)] == restored.restored["main"].restored_bytes
    counters = [k for k in after if k[0].endswith("_total")]
    assert counters
    assert {k: again[k] for k in counters} == {k: after[k] for k in counters}


def test_reclaim_metrics_writes_a_textfile_for_node_exporter(demo: Demo, tmp_path: Path) -> None:
    target = tmp_path / "reclaim.prom"
    done = subprocess.run(
        [sys.executable, "-m", "reclaim", "metrics", "--config", str(demo.config), "--textfile", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = _samples(target.read_text())
    status = api.status(demo.config)
    assert got[("reclaim_quarantined_objects", (("store", "main"),))] == status.stores[0].summary.quarantined
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reclaim.prom"]  # written atomically, nothing left


def test_reclaim_metrics_fails_loudly_without_a_catalog(tmp_path: Path) -> None:
    config = tmp_path / "reclaim.toml"
    config.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path / "nothing.sqlite"}"\n')
    target = tmp_path / "reclaim.prom"
    done = subprocess.run(
        [sys.executable, "-m", "reclaim", "metrics", "--config", str(config), "--textfile", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 6
    assert "does not exist" in " ".join(done.stderr.split())  # the terminal width may wrap the message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reclaim.toml"]
