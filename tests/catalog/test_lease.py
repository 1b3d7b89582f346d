"""The collector lease on SQLite, PostgreSQL and MariaDB: take, renew, lose, release and break it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import reclaim.catalog.lease as lease_module
from reclaim.catalog import LEASE_NAME, Catalog, Lease, LeaseInfo, Leases
from reclaim.catalog._entry import CorruptRow
from reclaim.catalog.lease import MARGIN_SHARE, margin_of
from reclaim.errors import CatalogError, LeaseLost, LockHeld, ReclaimError

from .helpers import open_tracked

TTL = timedelta(minutes=5)


@pytest.fixture
def leases(catalog: Catalog) -> Leases:
    return Leases(catalog)


def _expire_now(catalog: Catalog) -> None:
    """Make the lease look expired, as if its holder had died a while ago."""
    table = catalog.tables.lease
    with catalog.begin() as connection:
        connection.execute(
            table.update()
            .where(table.c.name == LEASE_NAME)
            .values(
                expires_at=datetime.now(UTC) - timedelta(minutes=2),
                safe_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )


def _wait_until_lost(lease: Lease, within: float) -> float:
    """Seconds until ``lease.check()`` raises; fails after ``within`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            lease.check()
        except LeaseLost:
            return time.monotonic() - started
        time.sleep(0.02)
    pytest.fail(f"the lease was still held after {within} s")


def test_nobody_holds_a_new_catalog_lease(leases: Leases) -> None:
    info = leases.show()
    assert info == LeaseInfo(None, None, None, None, None, None, None, None)
    assert info.stale(datetime.now(UTC))
    assert info.describe() == "nobody"


def test_acquire_records_the_holder_and_an_expiry(leases: Leases) -> None:
    before = datetime.now(UTC)
    lease = leases.acquire("alice", run_id=7)
    info = leases.show()

    assert (info.holder, info.host, info.pid, info.token, info.run_id) == (
        "alice",
        socket.gethostname(),
        os.getpid(),
        lease.token,
        7,
    )
    assert info.acquired_at is not None
    assert info.expires_at is not None
    assert before - timedelta(seconds=5) <= info.acquired_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert info.acquired_at.utcoffset() == timedelta(0)
    assert info.heartbeat_at == info.acquired_at
    assert info.expires_at == info.acquired_at + TTL == lease.expires_at
    assert not info.stale(datetime.now(UTC))
    # expired is not stale yet: until safe_at (expiry + margin) the holder may still be acting
    assert info.safe_at == info.expires_at + TTL * MARGIN_SHARE
    assert not info.stale(info.expires_at + timedelta(microseconds=1))
    assert info.stale(info.safe_at + timedelta(microseconds=1))
    assert not lease.lost
    lease.check()
    assert f"alice@{socket.gethostname()} pid {os.getpid()} since " in info.describe()
    assert info.describe().endswith(" (run 7)")


def test_a_second_acquire_raises_lock_held_naming_the_holder(db_url: str, catalogs: list[Catalog]) -> None:
    first = open_tracked(catalogs, db_url)
    first.upgrade()
    Leases(first).acquire("alice")
    second = open_tracked(catalogs, db_url)  # another collector, with its own connections

    with pytest.raises(LockHeld) as caught:
        Leases(second).acquire("bob")

    assert caught.value.holder.startswith(f"alice@{socket.gethostname()} pid {os.getpid()} since ")
    assert "expires" in caught.value.holder
    assert "reclaim lock --break" in str(caught.value)
    assert caught.value.exit_code == 11
    assert Leases(second).show().holder == "alice"


def test_concurrent_acquires_let_exactly_one_collector_in(db_url: str, catalogs: list[Catalog]) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    rivals = [Leases(open_tracked(catalogs, db_url)) for _ in range(4)]
    start = threading.Barrier(len(rivals))
    outcomes: list[object] = []

    def rival(number: int) -> None:
        start.wait(timeout=60)
        try:
            outcomes.append(rivals[number].acquire(f"collector-{number}"))
        except LockHeld as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=rival, args=(number,)) for number in range(len(rivals))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    winners = [outcome for outcome in outcomes if isinstance(outcome, Lease)]
    assert len(outcomes) == len(rivals)
    assert len(winners) == 1
    assert Leases(setup).show().token == winners[0].token


def test_an_expired_lease_can_be_taken_by_another_collector(leases: Leases, catalog: Catalog) -> None:
    old = leases.acquire("alice")
    _expire_now(catalog)

    new = leases.acquire("bob", run_id=2)

    info = leases.show()
    assert (info.holder, info.token, info.run_id) == ("bob", new.token, 2)
    with pytest.raises(LeaseLost, match="broken or taken over"):
        leases.heartbeat(old)
    assert old.lost
    leases.release(old)  # releasing a lost lease leaves the new holder alone
    assert leases.show().token == new.token
    leases.heartbeat(new)


def test_a_lease_expires_by_itself_after_its_ttl(db_url: str, catalogs: list[Catalog]) -> None:
    catalog = open_tracked(catalogs, db_url)
    catalog.upgrade()
    short = Leases(catalog, ttl=timedelta(seconds=1))
    lease = short.acquire("alice")
    acquired = time.monotonic()  # after the acquisition's transaction: its ttl started before this
    with pytest.raises(LockHeld):
        short.acquire("bob")

    # without heartbeats the holder stops by itself, a margin before the others may take over:
    # its own deadline, on its monotonic clock, falls within the ttl less the margin (read from
    # the clock, not timed: a loaded machine only makes the poll below see it later)
    assert lease._deadline <= acquired + (short.ttl - margin_of(short.ttl)).total_seconds()
    _wait_until_lost(lease, within=30)
    assert time.monotonic() >= lease._deadline  # never lost before its deadline either
    with pytest.raises(LeaseLost, match="no successful heartbeat"):
        lease.check()
    time.sleep(margin_of(short.ttl).total_seconds() + 0.1)  # the database clock has passed the expiry
    taken = short.acquire("bob")  # waits out the rest of the margin
    assert datetime.now(UTC) >= lease.expires_at + margin_of(short.ttl) - timedelta(milliseconds=50)
    assert short.show().token == taken.token


def test_heartbeat_extends_the_expiry(leases: Leases) -> None:
    lease = leases.acquire("alice")
    before = leases.show()
    time.sleep(0.05)

    leases.heartbeat(lease)

    after = leases.show()
    assert after.expires_at is not None
    assert before.expires_at is not None
    assert after.expires_at > before.expires_at
    assert after.heartbeat_at == after.expires_at - TTL
    assert after.acquired_at == before.acquired_at
    assert lease.expires_at == after.expires_at


def test_a_heartbeat_after_the_lease_was_broken_raises_lease_lost(leases: Leases) -> None:
    lease = leases.acquire("alice")
    broken = leases.break_lease(force=True)
    assert broken is not None
    assert broken.token == lease.token

    with pytest.raises(LeaseLost) as caught:
        leases.heartbeat(lease)

    assert caught.value.exit_code == 12
    assert isinstance(caught.value, ReclaimError)
    assert caught.value.holder.startswith("alice@")
    assert lease.lost
    with pytest.raises(LeaseLost):
        lease.check()
    assert leases.show().holder is None  # the lost heartbeat did not take it back


def test_break_refuses_a_live_lease_without_force(leases: Leases) -> None:
    assert leases.break_lease() is None  # nobody holds it: nothing to break
    lease = leases.acquire("alice")

    with pytest.raises(LockHeld, match="alice@"):
        leases.break_lease()
    assert leases.show().token == lease.token

    broken = leases.break_lease(force=True)
    assert broken is not None
    assert broken.holder == "alice"
    assert leases.show().holder is None


def test_break_clears_a_stale_lease_without_force(leases: Leases, catalog: Catalog) -> None:
    leases.acquire("alice", run_id=3)
    _expire_now(catalog)

    broken = leases.break_lease()

    assert broken is not None
    assert (broken.holder, broken.run_id) == ("alice", 3)
    # nobody holds it; the fencing token stays, and the next holder's is newer
    assert leases.show() == LeaseInfo(None, None, None, None, None, None, None, None, fence=1)
    assert leases.acquire("bob").fence == 2


def test_release_frees_the_lease_and_the_released_lease_is_no_longer_ours(leases: Leases) -> None:
    lease = leases.acquire("alice")
    leases.release(lease)
    assert leases.show().holder is None
    assert lease.lost
    with pytest.raises(LeaseLost, match="released"):
        lease.check()
    with pytest.raises(LeaseLost):
        leases.heartbeat(lease)
    leases.release(lease)  # twice is fine
    leases.acquire("bob")


def test_a_catalog_without_its_lease_row_is_a_catalog_error(leases: Leases, catalog: Catalog) -> None:
    with catalog.begin() as connection:
        connection.execute(sa.delete(catalog.tables.lease))
    with pytest.raises(CatalogError, match="run 'reclaim init'"):
        leases.acquire("alice")
    with pytest.raises(CatalogError, match="missing"):
        leases.show()


def test_invalid_ttl_and_interval_are_refused(leases: Leases, catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="ttl"):
        Leases(catalog, ttl=timedelta(0))
    with pytest.raises(ValueError, match="interval"):
        leases.keep("alice", interval=TTL)
    with pytest.raises(ValueError, match="interval"):
        leases.keep("alice", interval=timedelta(0))
    assert leases.show().holder is None


# -- keep(): the heartbeat thread -------------------------------------------------------------


def test_keep_heartbeats_in_the_background_and_releases_on_exit(db_url: str, catalogs: list[Catalog]) -> None:
    catalog = open_tracked(catalogs, db_url)
    catalog.upgrade()
    leases = Leases(catalog, ttl=timedelta(seconds=2))

    with leases.keep("alice", run_id=9, interval=timedelta(seconds=0.2)) as lease:
        first = leases.show()
        assert (first.holder, first.run_id, first.token) == ("alice", 9, lease.token)
        time.sleep(2.5)  # longer than the ttl: only heartbeats keep it alive
        later = leases.show()
        lease.check()
        assert not lease.lost
        assert first.expires_at is not None
        assert later.expires_at is not None
        assert later.expires_at > first.expires_at + timedelta(seconds=1.5)
        assert first.heartbeat_at is not None
        assert later.heartbeat_at is not None
        assert later.heartbeat_at > first.heartbeat_at
        with pytest.raises(LockHeld):
            Leases(open_tracked(catalogs, db_url)).acquire("bob")

    assert leases.show().holder is None
    assert lease.lost
    assert not [t for t in threading.enumerate() if t.name.startswith("reclaim-lease-")]


def test_keep_notices_a_forced_break_within_about_one_interval(db_url: str, catalogs: list[Catalog]) -> None:
    catalog = open_tracked(catalogs, db_url)
    catalog.upgrade()
    interval = 0.3
    leases = Leases(catalog, ttl=timedelta(seconds=30))
    operator = Leases(open_tracked(catalogs, db_url))  # someone else, from outside

    with leases.keep("alice", interval=timedelta(seconds=interval)) as lease:
        lease.check()
        operator.break_lease(force=True)
        waited = _wait_until_lost(lease, within=10 * interval)
        assert waited <= interval + 1.0
        with pytest.raises(LeaseLost, match="broken or taken over"):
            lease.check()
        bob = operator.acquire("bob")

    # leaving the block did not release bob's lease
    assert operator.show().token == bob.token


def test_keep_marks_the_lease_lost_when_a_heartbeat_fails(
    leases: Leases, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(lease: Lease) -> None:
        raise CatalogError("catalog sqlite:///x: a catalog transaction failed: server closed the connection")

    with leases.keep("alice", interval=timedelta(seconds=0.1)) as lease:
        monkeypatch.setattr(leases, "heartbeat", unreachable)
        _wait_until_lost(lease, within=5)
        with pytest.raises(LeaseLost, match=r"a heartbeat failed: .*server closed the connection"):
            lease.check()
    monkeypatch.undo()
    assert leases.show().holder is None  # released all the same


def test_keep_raises_lock_held_when_another_collector_holds_it(leases: Leases) -> None:
    held = leases.acquire("alice")
    with pytest.raises(LockHeld, match="alice@"), leases.keep("bob"):
        pytest.fail("entered the block without the lease")
    assert leases.show().token == held.token


# -- holders that died ------------------------------------------------------------------------

HOLD = """
import sys, time
from reclaim.catalog import Leases, open_catalog
from reclaim.config import CatalogConfig

catalog = open_catalog(CatalogConfig(url=sys.argv[1]))
Leases(catalog).acquire("crashing")
catalog.dispose()
print("held", flush=True)
time.sleep(120)
"""


def test_the_lease_of_a_killed_collector_on_this_machine_is_taken_over_at_once(
    leases: Leases, db_url: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held", holder.stderr
        alive = leases.show()
        assert (alive.holder, alive.pid) == ("crashing", holder.pid)
        assert not alive.holder_gone()
        with pytest.raises(LockHeld, match="crashing@"):
            leases.acquire("alice")
        with pytest.raises(LockHeld):
            leases.break_lease()

        holder.send_signal(signal.SIGKILL)
        time.sleep(0.2)  # not reaped yet: a zombie, which never renews its lease either
        assert leases.show().holder_gone()
        lease = leases.acquire("alice")
    finally:
        holder.kill()
        holder.communicate(timeout=30)  # reaps it and closes its pipes

    info = leases.show()
    assert (info.holder, info.token) == ("alice", lease.token)
    assert info.expires_at is not None
    assert not info.stale(datetime.now(UTC))  # its own, live lease
    leases.heartbeat(lease)


def _info(identity: str | None) -> LeaseInfo:
    now = datetime.now(UTC)
    return LeaseInfo("bob", "elsewhere", 1, "token", None, now, now, now + TTL, identity)


def test_only_a_provably_dead_holder_counts_as_gone() -> None:
    own = lease_module._identity()
    if own is None:  # pragma: no cover - Linux test machines have /proc
        pytest.skip("no /proc: dead holders are only ever detected on Linux")
    boot, namespace, pid, started = own.split(" ")
    assert int(pid) == os.getpid()
    assert not _info(own).holder_gone()  # this very process
    assert not _info(None).holder_gone()  # written by a reclaim that recorded no identity
    assert not _info("garbage").holder_gone()
    # another machine (or a reboot since): /proc here says nothing about it
    assert not _info(f"another-boot {namespace} 999999999 1").holder_gone()
    # another PID namespace (a container) on this machine, even with the same host name
    assert not _info(f"{boot} pid:[1] 999999999 1").holder_gone()
    # here, and gone; or here, and the pid now belongs to a process that started later
    assert _info(f"{boot} {namespace} 999999999 1").holder_gone()
    assert _info(f"{boot} {namespace} {pid} {int(started) - 1}").holder_gone()
    assert not LeaseInfo(None, None, None, None, None, None, None, None, own).holder_gone()


def test_a_corrupt_lease_row_is_a_catalog_error_that_force_clears(leases: Leases, catalog: Catalog) -> None:
    if catalog.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite stores text in an integer column")
    leases.acquire("alice", run_id=3)
    with catalog.begin() as connection:
        connection.exec_driver_sql("UPDATE reclaim_lease SET run_id = 'BOGUS'")
    with pytest.raises(CorruptRow, match="impossible values"):
        leases.show()
    with pytest.raises(CorruptRow):
        leases.break_lease()
    assert leases.break_lease(force=True) is None
    assert leases.show().token is None
    leases.acquire("bob")
