"""A run whose lease is lost stops before its next side effect, and nothing is half-done."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from reclaim import api
from reclaim.catalog import Journal, Leases, State, open_catalog
from reclaim.errors import LeaseLost

from .archive import make_archive

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
