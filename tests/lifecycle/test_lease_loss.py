"""A run whose lease is lost stops before its next side effect, and nothing is half-done."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from reclaim import api
from reclaim.catalog import Journal, Leases, State, open_catalog
from reclaim.errors import LeaseLost

from .archive import make_archive
from .processes import LEASE_LOST, start, wait_stopped, wait_until_stale, with_lease_ttl

# enough objects that quarantining them outlasts the heartbeat interval (1 s) many times over,
# however fast the batched journal makes it: the run must be stopped partway
N = 20_000


def test_breaking_the_lease_stops_a_running_quarantine(tmp_path: Path, pg_url: str) -> None:
    archive = make_archive(tmp_path, pg_url, catalog_url=pg_url)
    config_text = archive.config_path.read_text().replace("[catalog]\n", '[catalog]\nlease_ttl = "3s"\n', 1)
    archive.config_path.write_text(config_text)
    root = Path(archive.store_url.removeprefix("file://"))
    old = time.time() - 30 * 86400
    keys = [f"blobs/{i % 50:02d}/{i:05d}" for i in range(N)]
    for key in keys:  # test data written directly: the store under test is not what builds it
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    catalog = open_catalog(archive.config.catalog)
    broke: list[str] = []

    def breaker() -> None:
        leases = Leases(catalog)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if leases.show().holder is not None:
                journal = Journal(catalog)
                while not journal.summary("main").quarantined and time.monotonic() < deadline:
                    time.sleep(0.05)
                info = leases.break_lease(force=True)
                broke.append(info.holder if info else "")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=breaker)
    thread.start()
    try:
        with pytest.raises(LeaseLost):
            api.quarantine(archive.config_path)
    finally:
        thread.join()
    assert broke, "the lease was never seen held"
    journal = Journal(catalog)
    done = journal.summary("main").quarantined
    assert 0 < done < N, f"the run should have stopped partway, quarantined {done} of {N}"
    assert api.runs(archive.config_path)[0].status == "aborted"
    api.recover(archive.config_path)
    assert journal.in_flight("main") == []
    store = archive.store()
    for key in keys[::97]:
        entry = journal.latest("main", key)
        if entry is not None and entry.state is State.QUARANTINED:
            assert store.exists("_trash/" + key)
            assert not store.exists(key)
        else:
            assert store.exists(key)
    catalog.dispose()
    archive.dispose()


def test_a_purge_that_loses_its_lease_midway_deletes_nothing_after(tmp_path: Path, sqlite_url: str) -> None:
    """The lease check before every delete request: a purge paused past its lease deletes no more.

    A real ``reclaim purge`` stops itself (``RECLAIM_PAUSE=purge.checked:4``)
    after its fourth lease check, the one guarding the fourth delete; its lease
    (ttl 3s, the least) runs out while it is stopped. Resumed, it makes the one
    delete that check allowed, then the next check fails: exit 12, and every
    later object is still in the trash, bytes intact, and comes back with
    ``recover`` as QUARANTINED.
    """
    archive = make_archive(tmp_path, sqlite_url, mode="move")
    with_lease_ttl(archive, "3s")
    keys = [f"blobs/purge/{i:02d}" for i in range(12)]
    try:
        for key in keys:
            archive.put(key, key.encode())
        api.quarantine(archive.config_path)
        store = archive.store()
        assert all(store.exists("_trash/" + key) for key in keys)
        before = 4
        paused = start(archive, "purge", "--json", pause=f"purge.checked:{before}")
        try:
            wait_stopped(paused)
            wait_until_stale(archive)  # past the holder's own deadline too: its next check fails
        finally:
            paused.send_signal(signal.SIGCONT)
            out, err = paused.communicate(timeout=180)
        assert paused.returncode == LEASE_LOST, f"exit {paused.returncode}: {err}"
        assert json.loads(out)["error"]["type"] == "LeaseLost"
        left = [key for key in keys if store.exists("_trash/" + key)]
        assert len(left) == len(keys) - before, f"deleted after the lease was lost: {set(keys) - set(left)}"
        assert all(store.read("_trash/" + key) == key.encode() for key in left)

        recovered = api.recover(archive.config_path)
        assert recovered is not None
        catalog = open_catalog(archive.config.catalog)
        try:
            journal = Journal(catalog)
            assert journal.in_flight("main") == []
            states = {key: journal.latest("main", key).state for key in keys}  # type: ignore[union-attr]
        finally:
            catalog.dispose()
        assert sorted(key for key, state in states.items() if state is State.QUARANTINED) == left
        assert sum(state is State.PURGED for state in states.values()) == before
    finally:
        archive.dispose()
