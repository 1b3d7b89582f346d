"""The journal is checked, not trusted (issue 10, finding 5), and one bad key never stops collection (6).

A hand-edited catalog row whose trash key names a live referenced object, or
whose key leaves the store root, is refused by purge, restore, recover and
``ensure`` and reported by ``check``; an orphan whose key no backend or
journal can hold is reported and skipped by quarantine and ``run``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reclaim import api
from reclaim.errors import StoreError

from .archive import Archive, make_archive

LIVE = "blobs/live"
ORPHAN = "blobs/orphan"
PAYLOAD = b"the live object, referenced by a committed row"


def catalog_sql(archive: Archive, statement: str, **params: object) -> None:
    url = archive.config.catalog.url
    assert url is not None
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def digest(archive: Archive, key: str) -> str:
    return hashlib.sha256(archive.store().read(key)).hexdigest()


def quarantined_orphan(archive: Archive, *, moved: bool = True) -> None:
    archive.put(LIVE, PAYLOAD)
    archive.reference(LIVE)
    archive.put(ORPHAN)
    report = api.quarantine(archive.config_path)
    assert report.quarantined[0].quarantined.count == 1
    assert archive.store().exists("_trash/" + ORPHAN) == moved


@pytest.fixture
def archive(tmp_path: Path, sqlite_url: str) -> Iterator[Archive]:
    a = make_archive(tmp_path, sqlite_url)
    yield a
    a.dispose()


def attack_trash_key(archive: Archive) -> None:
    """Point the quarantined orphan's trash key at the live referenced key (a hand-edited catalog)."""
    catalog_sql(archive, "UPDATE reclaim_objects SET trash_key = :live", live=LIVE)


def assert_live_untouched(archive: Archive, before: str) -> None:
    assert archive.store().exists(LIVE)
    assert digest(archive, LIVE) == before


def test_purge_refuses_a_trash_key_naming_a_live_object(archive: Archive) -> None:
    quarantined_orphan(archive)
    before = digest(archive, LIVE)
    attack_trash_key(archive)

    check = api.check(archive.config_path)
    journal = check.stores[0].journal
    assert journal is not None
    assert journal.inconsistent_count == 1
    assert "expected '_trash/blobs/orphan'" in journal.inconsistent[0]
    assert check.findings >= 1

    dry = api.purge(archive.config_path, dry_run=True)
    assert (dry.purged[0].due, dry.purged[0].refused.count) == (0, 1)
    report = api.purge(archive.config_path)
    result = report.purged[0]
    assert result.purged.count == 0
    assert result.refused.count == 1
    assert LIVE in result.refused.samples[0]
    assert_live_untouched(archive, before)
    assert archive.store().exists("_trash/" + ORPHAN)  # the entry and its object are left as they are


def test_restore_and_ensure_refuse_it_too(archive: Archive) -> None:
    quarantined_orphan(archive)
    before = digest(archive, LIVE)
    attack_trash_key(archive)
    # restore would move the live object to the orphan's key
    report = api.restore(archive.config_path, keys=[ORPHAN], store="main")
    assert report.restored["main"].restored == 0
    assert report.restored["main"].refused.count == 1
    assert not archive.store().exists(ORPHAN)
    assert_live_untouched(archive, before)
    with pytest.raises(StoreError, match="inconsistent"):
        api.ensure(archive.config_path, "main", ORPHAN)
    assert_live_untouched(archive, before)


@pytest.mark.parametrize("state", ["PURGING", "RESTORING", "QUARANTINING"])
def test_recover_refuses_an_inconsistent_entry_in_flight(archive: Archive, state: str) -> None:
    quarantined_orphan(archive)
    before = digest(archive, LIVE)
    attack_trash_key(archive)
    catalog_sql(archive, "UPDATE reclaim_objects SET state = :state", state=state)
    report = api.recover(archive.config_path)
    assert [r.refused.count for r in report.recovered] == [1]
    assert_live_untouched(archive, before)
    assert not archive.store().exists(ORPHAN)
    # left in flight for the operator, and said so by check
    journal = api.check(archive.config_path).stores[0].journal
    assert journal is not None
    assert (journal.in_flight, journal.inconsistent_count) == (1, 1)


def test_a_mark_entry_whose_key_leaves_the_store_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    archive = make_archive(tmp_path, sqlite_url, mode="mark")
    (tmp_path / "outside").write_bytes(PAYLOAD)  # beside the store root, not in it
    quarantined_orphan(archive, moved=False)
    for key in ("../outside", "/etc/passwd", "_trash/blobs/x"):
        catalog_sql(archive, "UPDATE reclaim_objects SET key = :key", key=key)
        report = api.purge(archive.config_path)
        assert report.purged[0].refused.count == 1, key
        journal = api.check(archive.config_path).stores[0].journal
        assert journal is not None
        assert journal.inconsistent_count == 1
    assert (tmp_path / "outside").read_bytes() == PAYLOAD
    archive.dispose()


def test_the_cli_reports_the_refusal_and_exits_0(archive: Archive) -> None:
    quarantined_orphan(archive)
    before = digest(archive, LIVE)
    attack_trash_key(archive)
    cfg = str(archive.config_path)
    purge = cli("purge", "--config", cfg)
    assert purge.returncode == 0, purge.stderr
    assert "1 inconsistent journal entries" in purge.stdout
    check = cli("check", "--config", cfg, "--fail-on-findings")
    assert check.returncode == 5
    assert "inconsistent" in check.stdout
    assert_live_untouched(archive, before)


def test_the_trash_key_attack_on_a_postgresql_catalog(tmp_path: Path, pg_url: str) -> None:
    archive = make_archive(tmp_path, pg_url, catalog_url=pg_url)
    try:
        quarantined_orphan(archive)
        before = digest(archive, LIVE)
        attack_trash_key(archive)
        journal = api.check(archive.config_path).stores[0].journal
        assert journal is not None
        assert journal.inconsistent_count == 1
        assert api.purge(archive.config_path).purged[0].refused.count == 1
        assert api.run(archive.config_path).purged[0].refused.count == 1
        assert_live_untouched(archive, before)
    finally:
        archive.dispose()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args], capture_output=True, text=True, timeout=120, check=False
    )


# -- finding 6: one bad key must not stop collection -------------------------------------------

# a key of 1,205 characters in segments a filesystem holds (each under 255 bytes)
LONG = "blobs/long/" + "/".join(["x" * 200] * 6)
# a key that fits, whose trash key ('_trash/' + key) does not
NEARLY = "blobs/n/" + "/".join(["y" * 200] * 6)[: 1024 - len("blobs/n/")]


@pytest.mark.parametrize("mode", ["move", "mark"])
def test_a_key_too_long_is_reported_and_skipped(tmp_path: Path, sqlite_url: str, mode: str) -> None:
    archive = make_archive(tmp_path, sqlite_url, mode=mode)
    assert len(LONG) > 1024
    assert len(NEARLY) == 1024
    for key in (LONG, NEARLY, ORPHAN):
        archive.put(key)
    for _ in range(2):  # the next run too: nothing stops collection for good
        report = api.run(archive.config_path)
        q = report.quarantined[0]
        bad = 2 if mode == "move" else 1
        assert q.bad_keys.count == bad
        assert any(LONG[:40] in sample for sample in q.bad_keys.samples)
        assert "expired" in api.runs(archive.config_path)[0].counts  # the expiry step ran
    store = archive.store()
    assert store.exists(LONG)
    assert store.exists(NEARLY) == (mode == "move")
    # grace is 0: the first run quarantined the orphan, the second purged it
    assert not store.exists(ORPHAN)
    assert not store.exists("_trash/" + ORPHAN)
    result = cli("quarantine", "--config", str(archive.config_path))
    assert result.returncode == 0, result.stderr
    assert "cannot hold" in result.stdout
    archive.dispose()


def test_a_trash_key_too_long_for_s3_is_skipped(
    tmp_path: Path, sqlite_url: str, s3_bucket: str, s3_options: dict[str, object]
) -> None:
    archive = make_archive(
        tmp_path,
        sqlite_url,
        store_url=f"s3://{s3_bucket}/",
        storage_options=s3_options,
        mode="move",
        min_age="0",
    )
    key = "k/" + "z" * 1020  # 1,022 bytes: S3 holds it, but not '_trash/' + it
    archive.put(key)
    archive.put(ORPHAN)
    report = api.run(archive.config_path)
    assert report.quarantined[0].bad_keys.count == 1
    assert report.quarantined[0].quarantined.count == 1
    assert archive.store().exists(key)
    archive.dispose()
