"""Journal writes fenced by token: a worker of a coordinator writes only while the coordinator's lease holds.

On SQLite, PostgreSQL and MariaDB, with a real lease taken by :class:`Leases` and broken,
taken over or left to expire as an operator or a second collector would. The last test runs
the worker in a process of its own, as a distributed worker is.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reclaim.catalog import LEASE_NAME, Catalog, Journal, Lease, Leases, State
from reclaim.catalog.fence import TokenFence
from reclaim.errors import LeaseLost

STORE = "distributed-blobs"


def _intent(journal: Journal, key: str) -> Any:
    return journal.record_intent(
        STORE, key, mode="mark", trash_key=None, size=10, mtime=1.5e9, etag="e", run_id=1
    )


def _worker_journal(catalog: Catalog, lease: Lease) -> tuple[Journal, TokenFence]:
    fence = TokenFence(catalog, token=lease.token, fence=lease.fence)
    return Journal(catalog).fenced(fence), fence


def test_a_worker_writes_while_the_coordinators_lease_holds(catalog: Catalog) -> None:
    lease = Leases(catalog).acquire("coordinator", run_id=1)
    journal, fence = _worker_journal(catalog, lease)
    entry = _intent(journal, "a/1")
    assert entry is not None
    assert journal.transition(entry, State.QUARANTINED, run_id=1) is not None
    fence.check()  # no error: the lease holds
    assert Journal(catalog).active(STORE, "a/1") is not None


def test_a_broken_lease_refuses_the_workers_writes_and_they_change_nothing(catalog: Catalog) -> None:
    leases = Leases(catalog)
    lease = leases.acquire("coordinator", run_id=1)
    journal, fence = _worker_journal(catalog, lease)
    entry = _intent(journal, "a/1")
    leases.break_lease(force=True)  # reclaim lock --break --force
    with pytest.raises(LeaseLost):
        _intent(journal, "a/2")
    with pytest.raises(LeaseLost):
        journal.transition(entry, State.QUARANTINED, run_id=1)
    with pytest.raises(LeaseLost):
        fence.check()
    plain = Journal(catalog)
    assert plain.active(STORE, "a/2") is None
    current = plain.active(STORE, "a/1")
    assert current is not None
    assert current.state is State.QUARANTINING


def test_a_lease_taken_over_refuses_the_old_token(catalog: Catalog) -> None:
    leases = Leases(catalog)
    old = leases.acquire("coordinator", run_id=1)
    journal, _ = _worker_journal(catalog, old)
    leases.break_lease(force=True)
    new = leases.acquire("second collector", run_id=2)
    assert new.fence > old.fence
    with pytest.raises(LeaseLost):
        _intent(journal, "a/1")
    # the new holder's workers write
    fresh, _ = _worker_journal(catalog, new)
    assert _intent(fresh, "a/1") is not None


def test_the_right_token_with_an_old_fence_is_refused(catalog: Catalog) -> None:
    lease = Leases(catalog).acquire("coordinator", run_id=1)
    stale = Journal(catalog).fenced(TokenFence(catalog, token=lease.token, fence=lease.fence - 1))
    with pytest.raises(LeaseLost):
        _intent(stale, "a/1")
    assert Journal(catalog).active(STORE, "a/1") is None


def test_an_expired_lease_stops_its_workers_before_anyone_takes_it(catalog: Catalog) -> None:
    lease = Leases(catalog).acquire("coordinator", run_id=1)
    journal, fence = _worker_journal(catalog, lease)
    table = catalog.tables.lease
    with catalog.begin() as connection:  # the coordinator stopped renewing (killed or paused)
        connection.execute(
            table.update()
            .where(table.c.name == LEASE_NAME)
            .values(
                expires_at=datetime.now(UTC) + timedelta(seconds=5),
                safe_at=datetime.now(UTC) + timedelta(seconds=65),
            )
        )
    # within a margin (60 s here) of its expiry the holder stops acting, and so do its workers
    with pytest.raises(LeaseLost):
        _intent(journal, "a/1")
    with pytest.raises(LeaseLost):
        fence.check()
    assert Journal(catalog).active(STORE, "a/1") is None


def test_once_refused_a_worker_stays_refused(catalog: Catalog) -> None:
    leases = Leases(catalog)
    lease = leases.acquire("coordinator", run_id=1)
    journal, fence = _worker_journal(catalog, lease)
    table = catalog.tables.lease
    with catalog.begin() as connection:
        connection.execute(table.update().where(table.c.name == LEASE_NAME).values(token="someone-else"))
    with pytest.raises(LeaseLost):
        fence.check()
    with catalog.begin() as connection:  # even if the row showed the token again
        connection.execute(table.update().where(table.c.name == LEASE_NAME).values(token=lease.token))
    with pytest.raises(LeaseLost):
        _intent(journal, "a/1")
    assert fence.lost


def test_a_worker_process_is_refused_once_the_coordinator_loses_the_lease(
    pg_url: str, catalogs: list[Catalog]
) -> None:
    from .helpers import open_tracked

    catalog = open_tracked(catalogs, pg_url)
    catalog.upgrade()
    leases = Leases(catalog)
    lease = leases.acquire("coordinator", run_id=1)
    script = textwrap.dedent(
        f"""
        import sys
        from reclaim.catalog import Journal, open_catalog
        from reclaim.catalog.fence import TokenFence
        from reclaim.config.model import CatalogConfig
        from reclaim.errors import LeaseLost
        catalog = open_catalog(CatalogConfig(url={pg_url!r}))
        journal = Journal(catalog).fenced(TokenFence(catalog, token={lease.token!r}, fence={lease.fence}))
        def intent(key):
            return journal.record_intent({STORE!r}, key, mode="mark", trash_key=None, size=1,
                                         mtime=1.5e9, etag="e", run_id=1)
        assert intent("w/1") is not None
        print("wrote", flush=True)
        sys.stdin.readline()  # the coordinator's lease is broken meanwhile
        try:
            intent("w/2")
        except LeaseLost as exc:
            print("refused", exc, flush=True)
            sys.exit(12)
        sys.exit(0)
        """
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    assert worker.stdin is not None
    assert worker.stdout.readline().strip() == "wrote"
    leases.break_lease(force=True)
    worker.stdin.write("go\n")
    worker.stdin.flush()
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 12, out
    assert out.startswith("refused")
    plain = Journal(catalog)
    assert plain.active(STORE, "w/1") is not None
    assert plain.active(STORE, "w/2") is None
