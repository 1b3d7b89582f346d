"""The lease as a fence: tokens refuse a stale holder's journal writes; ensure() checks the object.

The paused-process attacks are in ``test_paused_collector.py``; these are the
guards one at a time, each shown by a test that fails without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reclaim import api
from reclaim.catalog import Catalog, Journal, Lease, Leases, State, open_catalog
from reclaim.catalog.archive import NewRow, RowState
from reclaim.errors import CatalogError, LeaseLost, LockHeld, ReclaimError
from reclaim.lifecycle import Ensured

from .archive import Archive, make_archive

ORPHANS = [f"blobs/orphan/{i:02d}" for i in range(4)]


def _archive(tmp_path: Path, url: str, mode: str) -> Archive:
    archive = make_archive(tmp_path, url, catalog_url=url, mode=mode)
    for key in ORPHANS:
        archive.put(key, key.encode())
    return archive


@pytest.fixture
def marked(tmp_path: Path, db_url: str) -> Iterator[Archive]:
    """A ``mark``-mode archive, catalog and references on each dialect, its orphans quarantined."""
    archive = _archive(tmp_path, db_url, "mark")
    api.quarantine(archive.config_path)
    yield archive
    archive.dispose()


@pytest.fixture
def catalog(marked: Archive) -> Iterator[Catalog]:
    catalog = open_catalog(marked.config.catalog)
    yield catalog
    catalog.dispose()


def _taken_over(catalog: Catalog) -> tuple[Lease, Lease]:
    """An old holder whose lease was broken and taken by a new one; the old one's clock still says valid."""
    leases = Leases(catalog)
    old = leases.acquire("old")
    leases.break_lease(force=True)
    new = leases.acquire("new")
    assert new.fence > old.fence
    assert not old.lost  # nothing told the old holder yet: only the database knows
    return old, new


def test_a_journal_write_after_a_takeover_is_refused(catalog: Catalog) -> None:
    journal = Journal(catalog)
    entry = journal.active("main", ORPHANS[0])
    assert entry is not None
    assert entry.state is State.QUARANTINED
    old, new = _taken_over(catalog)

    with pytest.raises(LeaseLost, match="newer fencing token"):
        journal.fenced(old).transition(entry, State.PURGING)
    with pytest.raises(LeaseLost):
        journal.fenced(old).transition_many([entry], State.PURGING)
    assert journal.get(entry.id) == entry  # unchanged

    moved = journal.fenced(new).transition(entry, State.PURGING)  # the new holder may
    assert moved is not None
    assert moved.state is State.PURGING


def test_a_row_archive_write_after_a_takeover_is_refused(catalog: Catalog) -> None:
    row = NewRow("assets", "assets", "[1]", '{"id": 1}')
    expires = datetime.now(UTC) + timedelta(days=1)
    (kept,) = catalog.archive.add([row], run_id=1, state=RowState.ARCHIVING, expires_at=expires)
    old, new = _taken_over(catalog)

    stale = catalog.archive.fenced(old)
    with pytest.raises(LeaseLost):
        stale.add([row], run_id=1, state=RowState.ARCHIVING, expires_at=expires)
    with pytest.raises(LeaseLost):
        stale.confirm([kept], run_id=1)
    (record,) = catalog.archive.in_flight()
    assert (record.id, record.state) == (kept, RowState.ARCHIVING)  # unchanged, and nothing added
    assert catalog.archive.fenced(new).confirm([kept], run_id=2) == 1


def test_a_lease_is_not_taken_over_before_its_holder_stopped(marked: Archive) -> None:
    """Expired is not enough: a taker waits until the holder's margin has passed too."""
    catalog = open_catalog(marked.config.catalog)
    try:
        short = Leases(catalog, ttl=timedelta(seconds=3))
        holder = short.acquire("paused")
        while not holder.lost:  # the holder gives up a margin before its expiry, by its own clock
            time.sleep(0.05)
        info = short.show()
        assert info.expires_at is not None
        assert info.safe_at is not None
        assert info.safe_at - info.expires_at == holder.margin
        with pytest.raises(LockHeld):
            short.acquire("taker")  # not expired yet
        time.sleep(holder.margin.total_seconds() + 0.1)  # expired now, but within the margin
        taker = short.acquire("taker")  # waits out the margin, then takes it
        assert short.show().token == taker.token
        assert taker.fence == holder.fence + 1
        assert taker.acquired_at > info.safe_at
        short.release(taker)
    finally:
        catalog.dispose()


def test_ensure_answers_gone_for_a_marked_object_missing_from_its_key(marked: Archive) -> None:
    store = marked.store()
    store.delete([ORPHANS[0]])  # taken by something else while quarantined
    marked.reference(ORPHANS[0])
    assert api.ensure(marked.config_path, "main", ORPHANS[0]) is Ensured.GONE
    catalog = open_catalog(marked.config.catalog)
    try:
        entry = Journal(catalog).latest("main", ORPHANS[0])
        assert entry is not None
        assert entry.state is State.PURGED
        assert entry.note == "object missing when claimed by ensure"
    finally:
        catalog.dispose()
    # the writer uploads it again, and from then on it is present
    store.write(ORPHANS[0], b"again")
    assert api.ensure(marked.config_path, "main", ORPHANS[0]) is Ensured.PRESENT


def test_ensure_answers_gone_for_a_marked_object_replaced_at_its_key(marked: Archive) -> None:
    store = marked.store()
    path = Path(marked.store_url.removeprefix("file://")) / ORPHANS[1]
    store.write(ORPHANS[1], b"another object")
    os.utime(path, (1_000_000, 1_000_000))
    marked.reference(ORPHANS[1])
    assert api.ensure(marked.config_path, "main", ORPHANS[1]) is Ensured.GONE
    assert store.read(ORPHANS[1]) == b"another object"  # left alone
    # the one still the quarantined object is vouched for
    marked.reference(ORPHANS[2])
    assert api.ensure(marked.config_path, "main", ORPHANS[2]) is Ensured.RESTORED


_HOLD_ROW_LOCK = """
import os, signal, sys
import sqlalchemy as sa
import reclaim
from reclaim.catalog import open_catalog
catalog = open_catalog(reclaim.load_config(sys.argv[1]).catalog)
objects = catalog.tables.objects
with catalog.engine.connect() as connection:
    transaction = connection.begin()
    connection.execute(sa.select(objects).with_for_update())  # every journal row, as a batch would
    print("locked", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)  # paused while holding the row locks
    transaction.rollback()
"""


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_ensure_does_not_hang_behind_a_paused_transaction(
    tmp_path: Path, dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "mysql_url")
    archive = _archive(tmp_path, url, "mark")
    api.quarantine(archive.config_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_ROW_LOCK, str(archive.config_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        archive.reference(ORPHANS[0])
        # the claim waits for the row lock at most its own timeout, then says why
        with pytest.raises(CatalogError, match=r"(?i)lock"):
            api.ensure(archive.config_path, "main", ORPHANS[0], timeout=2)
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.communicate(timeout=60)
        archive.dispose()
    # once the holder is gone the claim goes through
    assert api.ensure(archive.config_path, "main", ORPHANS[0]) is Ensured.RESTORED


def test_a_resumed_holder_gives_up_even_if_its_heartbeat_runs_first(marked: Archive) -> None:
    """A renewal confirmed after the holder's deadline passed does not revive the lease."""
    catalog = open_catalog(marked.config.catalog)
    try:
        leases = Leases(catalog, ttl=timedelta(seconds=3))
        lease = leases.acquire("paused")
        time.sleep((leases.ttl - lease.margin).total_seconds() + 0.1)  # "paused" past the deadline
        with pytest.raises(ReclaimError):
            leases.heartbeat(lease)  # nobody took it over, but the holder may not go on
        with pytest.raises(LeaseLost):
            lease.check()
    finally:
        catalog.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_recover_is_not_blocked_for_long_by_a_paused_transaction(
    tmp_path: Path, dialect: str, request: pytest.FixtureRequest
) -> None:
    """The server ends the paused holder's transaction (idle in transaction), releasing its row locks."""
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "mysql_url")
    archive = _archive(tmp_path, url, "move")
    env = {k: v for k, v in os.environ.items() if k != "RECLAIM_PAUSE"}
    killed = subprocess.run(
        [sys.executable, "-m", "reclaim", "quarantine", "--config", str(archive.config_path)],
        env={**env, "RECLAIM_FAULT": "quarantine.after-move:2"},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_ROW_LOCK, str(archive.config_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        recovered = subprocess.run(
            [sys.executable, "-m", "reclaim", "recover", "--config", str(archive.config_path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
        )
        assert recovered.returncode == 0, recovered.stderr
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.communicate(timeout=60)
    catalog = open_catalog(archive.config.catalog)
    try:
        assert Journal(catalog).in_flight("main") == []
    finally:
        catalog.dispose()
        archive.dispose()


def test_a_marked_purge_never_deletes_in_place_when_its_staging_key_is_taken(marked: Archive) -> None:
    """A stray at ``_trash/<key>`` (another collector's, crashed): the object is left, re-purged later."""
    store = marked.store()
    store.write("_trash/" + ORPHANS[0], b"a stray")
    report = api.purge(marked.config_path)
    assert report.purged[0].purged.count == len(ORPHANS) - 1
    assert store.read(ORPHANS[0]) == ORPHANS[0].encode()  # left in place
    assert store.read("_trash/" + ORPHANS[0]) == b"a stray"
    catalog = open_catalog(marked.config.catalog)
    try:
        entry = Journal(catalog).active("main", ORPHANS[0])
        assert entry is not None
        assert (entry.state, entry.note) == (State.QUARANTINED, "staging key occupied")
    finally:
        catalog.dispose()


def test_a_marked_object_replaced_before_its_staging_stays_live(tmp_path: Path, sqlite_url: str) -> None:
    """The purge is stopped right before staging a key, a writer stores a new object there: it stays."""
    archive = _archive(tmp_path, sqlite_url, "mark")
    api.quarantine(archive.config_path)
    env = {k: v for k, v in os.environ.items() if k != "RECLAIM_FAULT"}
    purge = subprocess.Popen(
        [sys.executable, "-m", "reclaim", "purge", "--config", str(archive.config_path)],
        env={**env, "RECLAIM_PAUSE": "purge.checked:1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while Path(f"/proc/{purge.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert purge.poll() is None, purge.communicate()[1]
            time.sleep(0.02)
        store = archive.store()
        first = sorted(ORPHANS)[0]
        store.write(first, b"a writer's new object")  # new content, new mtime
    finally:
        purge.send_signal(signal.SIGCONT)
        _, err = purge.communicate(timeout=120)
    assert purge.returncode == 0, err
    assert store.read(first) == b"a writer's new object"
    assert not store.exists("_trash/" + first)
    catalog = open_catalog(archive.config.catalog)
    try:
        entry = Journal(catalog).latest("main", first)
        assert entry is not None
        assert (entry.state, entry.note) == (State.RESTORED, "changed since quarantine")
    finally:
        catalog.dispose()
        archive.dispose()
