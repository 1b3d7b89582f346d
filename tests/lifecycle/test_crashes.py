"""Crash safety: a real reclaim process killed (SIGKILL) at every fault point, then recovered.

After ``reclaim recover`` every object must be in a defined place: at its key
(live, or restored), in the trash with a QUARANTINED entry, or purged while
unreferenced. Nothing referenced is ever missing, nothing is in flight, and
nothing in the trash is untracked.

The killed command is a real process; the recovery and the runs after it go
through the API in this process (the same code as the CLI's, without starting
an interpreter for each).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reclaim import api
from reclaim.catalog import Journal, State, open_catalog
from reclaim.errors import LockHeld
from reclaim.lifecycle.faults import POINTS

from .archive import Archive, make_archive

LIVE = [f"blobs/live/{i:02d}" for i in range(4)]
ORPHANS = [f"blobs/orphan/{i:02d}" for i in range(6)]


def run_reclaim(archive: Archive, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RECLAIM_FAULT"}
    if fault:
        env["RECLAIM_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args, "--config", str(archive.config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def assert_consistent(archive: Archive) -> None:
    store = archive.store()
    referenced = set(archive.referenced())
    catalog = open_catalog(archive.config.catalog)
    try:
        journal = Journal(catalog)
        assert journal.in_flight("main") == [], "recover left entries in flight"
        for key in LIVE + ORPHANS:
            entry = journal.latest("main", key)
            at_key = store.exists(key)
            in_trash = store.exists("_trash/" + key)
            if key in referenced:  # at its key, or restorable: the next purge re-check brings it back
                restorable = in_trash and entry is not None and entry.state is State.QUARANTINED
                assert at_key or restorable, f"{key} is referenced but missing"
            if entry is None or entry.state is State.RESTORED:
                assert at_key, f"{key} should be live"
            elif entry.state is State.QUARANTINED:
                assert in_trash, f"{key} is QUARANTINED but not in the trash"
                assert not at_key, f"{key} is QUARANTINED but also at its key"
            elif entry.state is State.PURGED:
                assert not in_trash, f"{key} is PURGED but still in the trash"
                assert not at_key, f"{key} is PURGED but still at its key"
                assert key not in referenced
        for info in store.list("_trash/"):
            entry = journal.active("main", info.key.removeprefix("_trash/"))
            assert entry is not None, f"untracked trash object {info.key}"
            assert entry.state is State.QUARANTINED
    finally:
        catalog.dispose()


def _archive(tmp_path: Path, db_url: str, catalog_url: str | None = None) -> Archive:
    a = make_archive(tmp_path, db_url, catalog_url=catalog_url)
    for key in LIVE + ORPHANS:
        a.put(key)
    for key in LIVE:
        a.reference(key)
    return a


@pytest.fixture
def archive(tmp_path: Path, sqlite_url: str) -> Archive:
    return _archive(tmp_path, sqlite_url)


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def any_archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    """The archive with its catalog on each dialect (beside the references, on a server)."""
    if request.param == "sqlite":
        yield _archive(tmp_path, request.getfixturevalue("sqlite_url"))
        return
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
    a = _archive(tmp_path, url, catalog_url=url)
    yield a
    a.dispose()


# per-batch points (intent, re-check, confirm) are met once per run here; after-move once per
# orphan moved: after the first, halfway, and after the last (all moved, none confirmed yet)
QUARANTINE_KILLS = [
    ("quarantine.after-intent", 1),
    ("quarantine.after-recheck", 1),
    ("quarantine.after-move", 1),
    ("quarantine.after-move", 3),
    ("quarantine.after-move", len(ORPHANS)),
    ("quarantine.after-confirm", 1),
]


def test_every_fault_point_is_exercised() -> None:
    exercised = {p for p, _ in QUARANTINE_KILLS + RESTORE_KILLS}
    exercised |= {p for p in POINTS if p.startswith("purge.")}
    assert exercised == set(POINTS)


@pytest.mark.parametrize(("point", "visit"), QUARANTINE_KILLS)
def test_killed_quarantine_is_recovered(any_archive: Archive, point: str, visit: int) -> None:
    archive = any_archive
    killed = run_reclaim(archive, "quarantine", fault=f"{point}:{visit}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    api.recover(archive.config_path)
    assert_consistent(archive)
    # the next run finishes the job
    api.quarantine(archive.config_path)
    assert_consistent(archive)
    assert all(not archive.store().exists(k) for k in ORPHANS)


@pytest.mark.parametrize("point", [p for p in POINTS if p.startswith("purge.")])
def test_killed_purge_is_recovered(any_archive: Archive, point: str) -> None:
    archive = any_archive
    api.quarantine(archive.config_path)
    archive.reference(ORPHANS[0])  # referenced again: the purge must restore it, crash or not
    killed = run_reclaim(archive, "purge", fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    api.recover(archive.config_path)
    assert_consistent(archive)
    api.purge(archive.config_path)
    assert_consistent(archive)
    assert archive.store().exists(ORPHANS[0])
    assert not any(archive.store().exists(k) for k in ORPHANS[1:])


# restore works a batch at a time: its claim and confirm are met once per batch (once here),
# its move back once per object (after the second)
RESTORE_KILLS = [("restore.after-claim", 1), ("restore.after-move", 2), ("restore.after-confirm", 1)]


@pytest.mark.parametrize(("point", "visit"), RESTORE_KILLS)
def test_killed_restore_is_recovered(archive: Archive, point: str, visit: int) -> None:
    api.quarantine(archive.config_path)
    killed = run_reclaim(archive, "restore", "--store", "main", fault=f"{point}:{visit}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    api.recover(archive.config_path)
    assert_consistent(archive)
    api.restore(archive.config_path, store="main")
    assert all(archive.store().exists(k) for k in ORPHANS)
    assert_consistent(archive)


def test_mutating_commands_recover_first(archive: Archive) -> None:
    killed = run_reclaim(archive, "quarantine", fault="quarantine.after-move:2")
    assert killed.returncode == -signal.SIGKILL
    # the killed run's lease names a process on this host that no longer exists: it is stale
    status = api.status(archive.config_path)
    assert status.lease_stale
    assert status.stores[0].summary.in_flight >= 1
    report = api.purge(archive.config_path)
    assert sum(r.total for r in report.recovered) >= 1
    assert_consistent(archive)


def test_live_collector_blocks_a_second_one(archive: Archive) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LEASE, str(archive.config_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        refused = run_reclaim(archive, "quarantine")
        assert refused.returncode == 11, refused.stderr
        assert "lock --break" in refused.stderr
        assert all(archive.store().exists(k) for k in ORPHANS)
        with pytest.raises(LockHeld):
            api.lock(archive.config_path, break_lease=True)  # a live holder's lease is not stale
        api.lock(archive.config_path, break_lease=True, force=True)
        api.quarantine(archive.config_path)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


HOLD_LEASE = """
import sys, time
import reclaim
from reclaim.catalog import Leases, open_catalog
catalog = open_catalog(reclaim.load_config(sys.argv[1]).catalog)
Leases(catalog).acquire("holder-under-test")
print("held", flush=True)
time.sleep(120)
"""
