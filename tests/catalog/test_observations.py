"""Observations of scans and checks, the lease's progress snapshot, and the paged queries of the dashboard."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import reclaim.api as api
from reclaim.catalog import (
    Catalog,
    Entry,
    Intent,
    Journal,
    Leases,
    State,
    browse,
    latest_observation,
    open_catalog,
)
from reclaim.config import load_config, register_secret
from reclaim.sample import build_demo_archive

from .helpers import open_tracked


def test_a_heartbeat_writes_the_latest_progress_snapshot(catalog: Catalog) -> None:
    leases = Leases(catalog)
    lease = leases.acquire("alice", run_id=None)
    try:
        lease.report_progress({"phase": "listing", "store": "blobs", "objects": 10})
        lease.report_progress({"phase": "listing", "store": "blobs", "objects": 2_000})
        assert leases.show().progress is None  # kept until the next heartbeat: no write of its own
        leases.heartbeat(lease)
        assert leases.show().progress == {"phase": "listing", "store": "blobs", "objects": 2_000}
        leases.heartbeat(lease)  # nothing new reported: the snapshot stays
        assert leases.show().progress == {"phase": "listing", "store": "blobs", "objects": 2_000}
        register_secret("Zq9-PROGRESS-SECRET")
        lease.report_progress({"phase": "purging", "note": "s3://u:Zq9-PROGRESS-SECRET@host/x"})
        leases.heartbeat(lease)
        shown = leases.show().progress
        assert shown is not None
        assert "Zq9" not in str(shown)
    finally:
        leases.release(lease)
    assert leases.show().progress is None  # released: nobody's progress
    taken = leases.acquire("bob")
    try:
        assert leases.show().progress is None  # a new holder starts without the old snapshot
    finally:
        leases.release(taken)


def test_progress_that_is_not_json_is_refused_when_reported(catalog: Catalog) -> None:
    leases = Leases(catalog)
    lease = leases.acquire("alice")
    try:
        with pytest.raises(ValueError, match="Out of range float values"):
            lease.report_progress({"rate": float("nan")})
    finally:
        leases.release(lease)


def test_scan_and_check_record_observations_only_into_an_existing_catalog(tmp_path: Path) -> None:
    archive = build_demo_archive(tmp_path / "demo")
    catalog_file = archive.directory / "reclaim-catalog.sqlite"
    assert not catalog_file.exists()
    api.scan(archive.config_path)
    api.check(archive.config_path)
    assert not catalog_file.exists()  # a read-only command never creates the catalog

    api.init(archive.config_path)
    scanned = api.scan(archive.config_path, show=3)
    api.scan(archive.config_path, stores=["main"])
    checked = api.check(archive.config_path)
    cycle = api.run(archive.config_path)
    catalog = open_catalog(load_config(archive.config_path).catalog)
    try:
        latest = latest_observation(catalog, "check")
        assert latest is not None
        assert latest.report["dangling"] == checked.dangling
        assert latest.scope == "all"
        newest = latest_observation(catalog, "scan")
        assert newest is not None
        assert newest.report["run_id"] == cycle.run_id  # the cycle's own listing
        series = browse.observations_since(catalog, "scan", datetime.now(UTC) - timedelta(hours=1))
        assert [o.scope for o in series] == ["all", "partial", "all"]
        assert series[0].report == json.loads(json.dumps(scanned.to_dict()))
        assert len(series[0].report["stores"][0]["samples"]) == 3
    finally:
        catalog.dispose()


def _entries(catalog: Catalog, keys: list[str]) -> list[Entry]:
    journal = Journal(catalog)
    recorded = journal.record_intents("blobs", [Intent(k, size=len(k)) for k in keys], mode="mark", run_id=1)
    entries = [e for e in recorded if e is not None]
    due = datetime.now(UTC) + timedelta(days=7)
    moved = journal.transition_many(entries, State.QUARANTINED, run_id=1, due_at=due)
    return [e for e in moved if e is not None]


def test_paging_visits_every_entry_once_and_globs_match_byte_for_byte(catalog: Catalog) -> None:
    keys = [f"k/{n:03d}" for n in range(25)] + ["K/000", "k/a_b", "k/a%b", "k/[x]"]
    _entries(catalog, keys)
    seen: list[str] = []
    before = None
    while True:
        page = browse.page_entries(catalog, store="blobs", states=[State.QUARANTINED], before=before, limit=7)
        seen += [e.key for e in page]
        if len(page) < 7:
            break
        before = page[-1].id
    assert sorted(seen) == sorted(keys)
    assert len(seen) == len(set(seen))

    def glob(pattern: str) -> list[str]:
        return sorted(e.key for e in browse.page_entries(catalog, key_glob=pattern, limit=100))

    assert glob("K/*") == ["K/000"]  # case matters
    assert glob("k/a_b") == ["k/a_b"]  # LIKE's wildcards are plain characters in a glob
    assert glob("k/a%b") == ["k/a%b"]
    assert glob("k/[[]x]") == ["k/[x]"]
    assert glob("k/00?") == [f"k/00{n}" for n in range(10)]
    assert len(glob("k/0[01]*")) == 20
    newest = max(
        (e for e in browse.page_entries(catalog, limit=100) if e.key[:4] in ("k/00", "k/01")),
        key=lambda e: e.id,
    )
    assert browse.page_entries(catalog, key_glob="k/0[01]*", limit=3)[0].key == newest.key


def test_runs_are_paged_newest_first_and_read_incrementally(db_url: str, catalogs: list[Catalog]) -> None:
    catalog = open_tracked(catalogs, db_url)
    catalog.upgrade()
    ids = [catalog.start_run("run" if n % 2 else "purge", {}, dry_run=False) for n in range(9)]
    for run_id in ids[:-1]:
        catalog.finish_run(run_id, "succeeded", {"n": run_id})
    page = browse.page_runs(catalog, limit=4)
    assert [r.id for r in page] == ids[::-1][:4]
    older = browse.page_runs(catalog, limit=4, before=page[-1].id)
    assert [r.id for r in older] == ids[::-1][4:8]
    assert [r.id for r in browse.page_runs(catalog, command="purge", status="succeeded", limit=10)] == [
        i for n, i in enumerate(ids[:-1]) if n % 2 == 0
    ][::-1]
    assert [r.id for r in browse.runs_after(catalog, ids[5])] == ids[6:]
