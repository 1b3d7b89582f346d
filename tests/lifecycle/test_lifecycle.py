"""Quarantine, purge, restore and status end to end on real stores and databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reclaim import api
from reclaim.catalog import Journal, Leases, State, open_catalog
from reclaim.errors import ConfigError, LockHeld, UnsafeToProceed
from reclaim.lifecycle import Ensured

from .archive import Archive, make_archive

LIVE = [f"blobs/live/{i:03d}" for i in range(6)]
ORPHANS = [f"blobs/orphan/{i:03d}" for i in range(4)]


@pytest.fixture
def archive(tmp_path: Path, sqlite_url: str) -> Iterator[Archive]:
    a = make_archive(tmp_path, sqlite_url)
    for key in LIVE + ORPHANS:
        a.put(key)
    for key in LIVE:
        a.reference(key)
    yield a
    a.dispose()


def journal_states(archive: Archive) -> dict[str, str]:
    catalog = open_catalog(archive.config.catalog)
    try:
        journal = Journal(catalog)
        return {key: e.state.value for key in LIVE + ORPHANS if (e := journal.latest("main", key))}
    finally:
        catalog.dispose()


def test_quarantine_moves_orphans_to_trash_and_purge_deletes_them(archive: Archive) -> None:
    store = archive.store()
    report = api.quarantine(archive.config_path)
    assert report.quarantined[0].quarantined.count == 4
    for key in ORPHANS:
        assert not store.exists(key)
        assert store.exists("_trash/" + key)
    assert all(store.exists(k) for k in LIVE)
    assert journal_states(archive) == dict.fromkeys(ORPHANS, "QUARANTINED")
    status = api.status(archive.config_path)
    assert status.stores[0].summary.quarantined == 4
    purge = api.purge(archive.config_path)
    assert purge.purged[0].purged.count == 4
    assert not any(store.exists("_trash/" + k) for k in ORPHANS)
    assert all(store.exists(k) for k in LIVE)
    assert journal_states(archive) == dict.fromkeys(ORPHANS, "PURGED")
    runs = api.runs(archive.config_path)
    assert [r.command for r in runs[:2]] == ["purge", "quarantine"]
    assert runs[1].counts["quarantined"]["main"]["quarantined"]["count"] == 4


def test_purge_restores_what_is_referenced_again(archive: Archive) -> None:
    store = archive.store()
    api.quarantine(archive.config_path)
    archive.reference(ORPHANS[0])  # a writer reused it without calling ensure()
    report = api.purge(archive.config_path)
    assert report.purged[0].restored == 1
    assert report.purged[0].purged.count == 3
    assert store.exists(ORPHANS[0])
    assert journal_states(archive)[ORPHANS[0]] == "RESTORED"


def test_quarantine_skips_keys_referenced_at_the_scan(archive: Archive) -> None:
    # a reference committed after the scan, before the move: test_quarantine_recheck.py
    archive.reference(ORPHANS[1])
    api.quarantine(archive.config_path)
    assert archive.store().exists(ORPHANS[1])


def test_dry_runs_change_nothing(archive: Archive) -> None:
    store = archive.store()
    q = api.quarantine(archive.config_path, dry_run=True)
    assert q.scans[0].candidates.count == 4
    assert all(store.exists(k) for k in ORPHANS)
    assert journal_states(archive) == {}
    api.quarantine(archive.config_path)
    p = api.purge(archive.config_path, dry_run=True)
    assert p.purged[0].due == 4
    assert all(store.exists("_trash/" + k) for k in ORPHANS)
    r = api.restore(archive.config_path, store="main", dry_run=True)
    assert r.restored["main"].restored == 4
    r = api.restore(archive.config_path, store="main", match="*/001", dry_run=True)
    assert r.restored["main"].restored == 1
    assert journal_states(archive) == dict.fromkeys(ORPHANS, "QUARANTINED")
    assert [r.command for r in api.runs(archive.config_path)] == ["quarantine"]


def test_restore_by_key_run_match_and_since(archive: Archive) -> None:
    store = archive.store()
    q = api.quarantine(archive.config_path)
    assert q.run_id is not None
    api.restore(archive.config_path, keys=[ORPHANS[0]], store="main")
    assert store.exists(ORPHANS[0])
    api.restore(archive.config_path, match="blobs/orphan/001")
    assert store.exists(ORPHANS[1])
    api.restore(archive.config_path, since=datetime.now(UTC) - timedelta(hours=1), match="*002")
    assert store.exists(ORPHANS[2])
    api.restore(archive.config_path, run_id=q.run_id)
    assert all(store.exists(k) for k in ORPHANS)
    assert not any(store.exists("_trash/" + k) for k in ORPHANS)
    assert journal_states(archive) == dict.fromkeys(ORPHANS, "RESTORED")


def test_restore_errors_are_clear(archive: Archive) -> None:
    api.quarantine(archive.config_path)
    with pytest.raises(api.UnknownItem, match="no quarantined object with key 'blobs/nope'"):
        api.restore(archive.config_path, keys=["blobs/nope"], store="main")
    with pytest.raises(api.UnknownItem, match="run 999 does not exist"):
        api.restore(archive.config_path, run_id=999)
    with pytest.raises(ConfigError, match="say what to restore"):
        api.restore(archive.config_path)
    assert journal_states(archive) == dict.fromkeys(ORPHANS, "QUARANTINED")


def test_trash_copy_deleted_by_hand(archive: Archive) -> None:
    store = archive.store()
    api.quarantine(archive.config_path)
    store.delete(["_trash/" + ORPHANS[0]])
    report = api.restore(archive.config_path, store="main")
    assert report.restored["main"].missing == [ORPHANS[0]]
    assert report.restored["main"].restored == 3
    assert journal_states(archive)[ORPHANS[0]] == "PURGED"


def test_reupload_during_quarantine_keeps_the_newer_object(archive: Archive) -> None:
    store = archive.store()
    api.quarantine(archive.config_path)
    store.write(ORPHANS[0], b"new content")
    report = api.restore(archive.config_path, keys=[ORPHANS[0]], store="main")
    assert report.restored["main"].kept_newer == [ORPHANS[0]]
    assert store.read(ORPHANS[0]) == b"new content"


def test_max_fraction_aborts_before_anything_moves(archive: Archive) -> None:
    with pytest.raises(UnsafeToProceed, match=r"above max_fraction 10\.0%"):
        api.quarantine(archive.config_path, max_fraction=0.1)
    assert all(archive.store().exists(k) for k in ORPHANS)
    assert journal_states(archive) == {}
    assert api.runs(archive.config_path)[0].status == "aborted"


def test_report_only_store_is_never_touched(tmp_path: Path, sqlite_url: str) -> None:
    a = make_archive(tmp_path, sqlite_url, extra='action = "report"')
    for key in ORPHANS:
        a.put(key)
    report = api.quarantine(a.config_path)
    assert report.scans[0].candidates.count == 4
    assert report.quarantined == []
    assert all(a.store().exists(k) for k in ORPHANS)
    a.dispose()


def test_second_collector_is_refused(archive: Archive) -> None:
    catalog = open_catalog(archive.config.catalog)
    leases = Leases(catalog)
    held = leases.acquire("someone-else@host pid 1")
    try:
        with pytest.raises(LockHeld, match="someone-else"):
            api.quarantine(archive.config_path)
        assert all(archive.store().exists(k) for k in ORPHANS)
    finally:
        leases.release(held)
        catalog.dispose()


def test_ensure_restores_a_quarantined_key(archive: Archive) -> None:
    store = archive.store()
    api.quarantine(archive.config_path)
    archive.reference(ORPHANS[0])
    assert api.ensure(archive.config_path, "main", ORPHANS[0]) is Ensured.RESTORED
    assert store.exists(ORPHANS[0])
    assert api.ensure(archive.config_path, "main", ORPHANS[0]) is Ensured.PRESENT
    api.purge(archive.config_path)
    assert api.ensure(archive.config_path, "main", ORPHANS[1]) is Ensured.GONE


def test_collect_warns_and_purges_at_once(archive: Archive) -> None:
    with pytest.warns(DeprecationWarning, match="quarantine"):
        report = api.collect(archive.config_path)
    assert report.purged[0].purged.count == 4
    assert not any(archive.store().exists(k) for k in ORPHANS)
    assert all(archive.store().exists(k) for k in LIVE)


def test_status_and_lock(archive: Archive) -> None:
    api.quarantine(archive.config_path)
    status = api.status(archive.config_path)
    summary = status.stores[0].summary
    assert summary.quarantined == 4
    assert summary.in_flight == 0
    assert status.lease.holder is None
    assert api.lock(archive.config_path).holder is None


def test_mark_mode_on_s3_checks_the_etag(
    tmp_path: Path, sqlite_url: str, s3_bucket: str, s3_options: dict
) -> None:
    a = make_archive(
        tmp_path, sqlite_url, store_url=f"s3://{s3_bucket}/data/", storage_options=s3_options, min_age="0"
    )
    store = a.store()
    for key in LIVE + ORPHANS:
        a.put(key)
    for key in LIVE:
        a.reference(key)
    report = api.quarantine(a.config_path)
    assert report.quarantined[0].mode == "mark"
    assert report.quarantined[0].quarantined.count == 4
    assert all(store.exists(k) for k in ORPHANS)  # mark: nothing moves
    store.write(ORPHANS[0], b"rewritten by a writer")
    purge = api.purge(a.config_path)
    assert purge.purged[0].changed == 1
    assert purge.purged[0].purged.count == 3
    assert store.read(ORPHANS[0]) == b"rewritten by a writer"
    assert not any(store.exists(k) for k in ORPHANS[1:])
    assert all(store.exists(k) for k in LIVE)
    a.dispose()


def test_states_are_a_closed_set() -> None:
    assert {s.value for s in State} == {
        "QUARANTINING",
        "QUARANTINED",
        "PURGING",
        "PURGED",
        "RESTORING",
        "RESTORED",
    }


def test_check_compares_the_journal_with_the_store(archive: Archive) -> None:
    api.quarantine(archive.config_path)
    clean = api.check(archive.config_path)
    assert clean.findings == 0
    store = archive.store()
    store.delete(["_trash/" + ORPHANS[0]])  # a trash copy deleted by hand
    store.write("_trash/blobs/unknown", b"dropped here by hand")
    report = api.check(archive.config_path)
    journal = report.stores[0].journal
    assert journal is not None
    assert journal.missing == [ORPHANS[0]]
    assert journal.strays == ["_trash/blobs/unknown"]
    assert report.findings == 2
    assert report.to_dict()["findings"] == 2
    assert all(store.exists(k) for k in LIVE)  # check never changes anything
    assert store.exists("_trash/blobs/unknown")
