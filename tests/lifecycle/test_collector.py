"""The collector frame and its plans: each plan runs once, and a preview shows what executing does."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import reclaim
from reclaim.catalog import Leases, State
from reclaim.errors import PlanSpent
from reclaim.lifecycle import Collector
from reclaim.lifecycle.progress import NO_PROGRESS

from .archive import Archive, make_archive


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = make_archive(tmp_path, f"sqlite:///{tmp_path / 'app.sqlite'}")
    for i in range(6):
        a.put(f"orphan/{i}", b"x" * (i + 1))
    a.put("live/0")
    a.reference("live/0")
    return a


def _quarantined(a: Archive) -> None:
    reclaim.quarantine(a.config_path)


PLANS: dict[str, tuple[Callable[[Archive], None], Callable[[Collector], Any]]] = {
    "quarantine": (lambda a: None, lambda c: c.plan_quarantine()),
    "purge": (_quarantined, lambda c: c.plan_purge()),
    "restore": (_quarantined, lambda c: c.plan_restore(store="main")),
    "rows": (lambda a: None, lambda c: c.plan_rows(now=datetime.now(UTC))),
    "expire": (lambda a: None, lambda c: c.plan_expire()),
}


@pytest.mark.parametrize("step", sorted(PLANS))
@pytest.mark.parametrize("first", ["preview", "execute"])
def test_a_plan_is_carried_out_once(archive: Archive, step: str, first: str) -> None:
    before, plan = PLANS[step]
    before(archive)
    with Collector.open(archive.config_path, command="test", options={}, dry_run=False) as c:
        p = plan(c)
        getattr(p, first)()
        for again in ("preview", "execute"):
            with pytest.raises(PlanSpent, match="carried out already"):
                getattr(p, again)()
    assert PlanSpent.exit_code == 1


def test_the_quarantine_preview_is_what_executes(archive: Archive) -> None:
    with Collector.open(archive.config_path, command="test", options={}, dry_run=True) as c:
        (preview,) = c.carry_out(c.plan_quarantine()).scans
    with Collector.open(archive.config_path, command="test", options={}, dry_run=False) as c:
        outcome = c.carry_out(c.plan_quarantine())
    (done,) = outcome.quarantined
    assert preview.candidates.count == done.quarantined.count == 6
    assert preview.candidates.bytes == done.quarantined.bytes == sum(range(1, 7))


def test_the_purge_preview_is_what_executes(archive: Archive) -> None:
    reclaim.quarantine(archive.config_path)
    archive.reference("orphan/0")  # referenced again: the re-check restores it, in preview and in execution
    with Collector.open(archive.config_path, command="test", options={}, dry_run=True) as c:
        (preview,) = c.carry_out(c.plan_purge())
    assert c.run_id is None
    with Collector.open(archive.config_path, command="test", options={}, dry_run=False) as c:
        (done,) = c.carry_out(c.plan_purge())
    assert (preview.due, preview.restored) == (done.due, done.restored) == (6, 1)
    assert preview.purged.count == done.purged.count == 5
    assert preview.purged.bytes == done.purged.bytes == sum(range(2, 7))
    store = archive.store()
    assert store.exists("orphan/0")
    assert not store.exists("orphan/1")


def test_the_restore_preview_is_what_executes(archive: Archive) -> None:
    reclaim.quarantine(archive.config_path)
    with Collector.open(archive.config_path, command="test", options={}, dry_run=True) as c:
        preview = c.carry_out(c.plan_restore(store="main", match="orphan/[0-2]"))
    with Collector.open(archive.config_path, command="test", options={}, dry_run=False) as c:
        done = c.carry_out(c.plan_restore(store="main", match="orphan/[0-2]"))
    assert preview["main"].restored == done["main"].restored == 3
    assert preview["main"].restored_bytes == done["main"].restored_bytes == 1 + 2 + 3


def test_the_expire_preview_is_what_executes(archive: Archive) -> None:
    reclaim.quarantine(archive.config_path)
    reclaim.purge(archive.config_path)
    config = archive.config.model_copy(deep=True)
    # a retention of zero: every finished entry is past it
    config.stores["main"] = config.stores["main"].model_copy(
        update={"retention": config.stores["main"].grace}
    )
    with Collector.open(config, command="test", options={}, dry_run=True) as c:
        preview = c.carry_out(c.plan_expire())
    with Collector.open(config, command="test", options={}, dry_run=False) as c:
        done = c.carry_out(c.plan_expire())
        left = c.journal.select(store="main", states=(State.PURGED,))
    assert preview.entries == done.entries == {"main": 6}
    assert preview.rows == done.rows == 0
    assert left == []


def test_a_dry_run_records_no_run_and_takes_no_lease(archive: Archive) -> None:
    runs_before = len(reclaim.runs(archive.config_path))
    with Collector.open(archive.config_path, command="test", options={}, dry_run=True) as c:
        c.carry_out(c.plan_quarantine())
        c.check_lease()  # no lease to lose
        assert c.run_id is None
    assert len(reclaim.runs(archive.config_path)) == runs_before
    assert reclaim.lock(archive.config_path).holder is None
    assert reclaim.status(archive.config_path).stores[0].summary.quarantined == 0


def test_the_run_in_progress_rides_on_the_lease(archive: Archive) -> None:
    """What a run is doing reaches the lease row with its heartbeats, where the dashboard reads it."""
    with Collector.open(archive.config_path, command="test", options={}, dry_run=False) as c:
        c.carry_out(c.plan_quarantine())
        c.close_progress()  # the last snapshot, as at the end of every run
        assert c.lease is not None
        Leases(c.catalog).heartbeat(c.lease)  # what the heartbeat thread does every ttl/3
        shown = reclaim.lock(archive.config_path).progress
    assert shown is not None
    assert (shown["phase"], shown["store"], shown["done"], shown["total"]) == ("quarantine", "main", 6, 6)
    assert reclaim.lock(archive.config_path).progress is None  # released with the lease


def _open_spools() -> list[str]:
    """The purge spools this process holds open (each is unlinked at creation, kept by its descriptor)."""
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while listed
            continue
        if "reclaim-due-" in target:
            found.append(target)
    return found


class _FailingOn:
    """Progress that raises as the purge of one store starts planning (an interrupt, say)."""

    def __init__(self, subject: str) -> None:
        self.subject = subject

    def step(self, phase: str, subject: str, total: int | None = None, **kw: Any) -> Any:
        if phase == "plan purge" and subject == self.subject:
            raise KeyboardInterrupt
        return NO_PROGRESS.step(phase, subject, total, **kw)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads this process's descriptors")
def test_a_purge_step_closes_every_spool_it_does_not_execute(archive: Archive, tmp_path: Path) -> None:
    reclaim.quarantine(archive.config_path)
    (tmp_path / "other").mkdir()
    config = archive.config.model_copy(deep=True)
    config.stores["other"] = config.stores["main"].model_copy(update={"url": f"file://{tmp_path / 'other'}"})
    before = _open_spools()
    with Collector.open(config, command="test", options={}, dry_run=True) as c:
        # the second store's planning fails: the first store's spool is closed, not left to the collector
        with pytest.raises(KeyboardInterrupt):
            c.plan_purge(progress=_FailingOn("other"))
        assert _open_spools() == before
        step = c.plan_purge()
        assert len(_open_spools()) == len(before) + 2
        (main, other) = c.carry_out(step)
        assert (main.due, other.due) == (6, 0)
        assert _open_spools() == before  # a preview uses its plans up
    assert reclaim.status(archive.config_path).stores[0].summary.quarantined == 6  # nothing was purged
