"""Progress: the reporter's numbers, and what real lifecycle runs report through it.

The reporter's clock is injected where the numbers (rate, time left) are the
thing under test; the runs use the real clock and are checked on what they
counted (totals known up front, done == total at the end, never going back),
never on how fast they went.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import reclaim
from lifecycle.archive import Archive, make_archive
from reclaim.catalog import Journal, open_catalog
from reclaim.lifecycle import Session, plan_quarantine
from reclaim.lifecycle.progress import (
    NO_PROGRESS,
    LogLines,
    Reporter,
    Snapshot,
    as_progress,
    last_listing,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A view that keeps every snapshot it is shown."""

    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []

    def show(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)

    def steps(self, phase: str, subject: str) -> list[list[Snapshot]]:
        """The snapshots of each step of ``phase`` on ``subject``, in order."""
        by_id: dict[int, list[Snapshot]] = {}
        for s in self.snapshots:
            if (s.phase, s.subject) == (phase, subject):
                by_id.setdefault(s.id, []).append(s)
        return [by_id[i] for i in sorted(by_id)]

    def only(self, phase: str, subject: str) -> list[Snapshot]:
        (step,) = self.steps(phase, subject)
        return step


def test_done_total_rate_and_time_left_on_a_given_clock() -> None:
    clock = FakeClock()
    seen = Recorder()
    reporter = Reporter([seen], refresh=0, clock=clock)
    step = reporter.step("scan", "blobs", 1_000_000, unit="listed", estimated=True)
    clock.now += 2
    step.advance(100_000)
    s = seen.snapshots[-1]
    assert (s.done, s.total, s.fraction, s.rate, s.eta) == (100_000, 1_000_000, 0.1, 50_000, 18.0)
    assert s.describe() == "scan blobs: 100,000/~1,000,000 listed (10%), 50,000/s, about 18 s left"
    assert s.to_dict() == {
        "phase": "scan",
        "store": "blobs",
        "unit": "listed",
        "done": 100_000,
        "total": 1_000_000,
        "estimated": True,
        "rate": 50_000.0,
        "eta_seconds": 18.0,
        "elapsed_seconds": 2.0,
        "finished": False,
    }
    clock.now += 38
    step.update(1_200_000)  # the store grew past the last run's listing: the total is unknown again
    s = seen.snapshots[-1]
    assert (s.done, s.total, s.eta) == (1_200_000, None, None)
    assert s.describe() == "scan blobs: 1,200,000 listed, 30,000/s"
    step.done()
    last = seen.snapshots[-1]
    assert last.finished
    assert (last.done, last.total, last.eta) == (1_200_000, 1_200_000, 0.0)
    assert last.describe() == "scan blobs: 1,200,000/1,200,000 listed in 40 s, 30,000/s"


def test_batches_count_in_full_once_over_and_item_by_item_within() -> None:
    clock = FakeClock()
    seen = Recorder()
    step = Reporter([seen], refresh=0, clock=clock).step("quarantine", "blobs", 1200)
    step.batch(500)
    for _ in range(3):
        step.advance()  # three moves of the first batch
    assert seen.snapshots[-1].done == 3
    step.batch(500)  # the first batch is over: its 497 others (referenced again, changed) count now
    assert seen.snapshots[-1].done == 500
    step.advance(900)  # never past the batch's end
    assert seen.snapshots[-1].done == 1000
    step.batch(200)
    step.done()
    assert [s.done for s in seen.snapshots if s.finished] == [1200]
    dones = [s.done for s in seen.snapshots]
    assert dones == sorted(dones)


def test_views_are_refreshed_at_most_every_refresh_and_always_at_start_and_end() -> None:
    clock = FakeClock()
    seen = Recorder()
    step = Reporter([seen], refresh=1.0, clock=clock).step("purge", "blobs", 10)
    for _ in range(5):
        step.advance()  # no time passes: not shown
    clock.now += 1
    step.advance()
    step.done()
    assert [(s.done, s.finished) for s in seen.snapshots] == [(0, False), (6, False), (6, True)]


def test_the_sink_is_throttled_and_gets_the_last_snapshot_on_close() -> None:
    clock = FakeClock()
    sunk: list[dict[str, Any]] = []
    reporter = Reporter(sink=sunk.append, sink_interval=10, clock=clock)
    step = reporter.step("collect", "assets", None, kind="collection", unit="rows")
    for _ in range(9):
        clock.now += 1
        step.advance(10)
    assert [d["done"] for d in sunk] == [0]
    clock.now += 1
    step.advance(10)
    assert [d["done"] for d in sunk] == [0, 100]
    assert sunk[-1]["collection"] == "assets"
    step.advance(5)
    reporter.close()
    assert [d["done"] for d in sunk] == [0, 100, 105]
    assert reporter.latest() == sunk[-1]


def test_a_failing_view_or_sink_never_stops_the_work(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def show(self, snapshot: Snapshot) -> None:
            raise RuntimeError("no terminal")

    def sink(document: dict[str, Any]) -> None:
        raise OSError("catalog gone")

    seen = Recorder()
    step = Reporter([Broken(), seen], sink=sink, refresh=0).step("scan", "blobs")
    step.advance(3)
    step.done()
    assert seen.snapshots[-1].done == 3
    assert "a progress view failed" in caplog.text
    assert "the progress sink failed" in caplog.text


def test_log_lines_every_interval_and_one_when_the_step_is_over(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    logger = logging.getLogger("test.progress")
    step = Reporter([LogLines(interval=30, logger=logger)], refresh=0, clock=clock).step(
        "restore", "blobs", 100
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for _ in range(10):
            clock.now += 10
            step.advance(10)
        step.done()
        idle = Reporter([LogLines(interval=30, logger=logger)], clock=clock).step("purge", "blobs", 0)
        idle.done()  # a step that did nothing logs nothing
    assert [r.getMessage() for r in caplog.records] == [
        "restore blobs: 30/100 objects (30%), 1.0/s, about 1 min 10 s left",
        "restore blobs: 60/100 objects (60%), 1.0/s, about 40 s left",
        "restore blobs: 90/100 objects (90%), 1.0/s, about 10 s left",
        "restore blobs: 100/100 objects in 1 min 40 s, 1.0/s",
    ]


def test_the_older_callback_hears_of_listings_only() -> None:
    heard: list[tuple[str, int]] = []
    progress = as_progress(lambda store, listed: heard.append((store, listed)))
    listing = progress.step("scan", "blobs")
    listing.advance(1000)
    listing.update(1500)
    listing.done()
    progress.step("quarantine", "blobs", 10).advance(10)
    assert heard == [("blobs", 1000), ("blobs", 1500), ("blobs", 1500)]
    assert as_progress(None) is NO_PROGRESS


def _objects(archive: Archive, n: int, *, referenced_every: int = 3) -> None:
    for i in range(n):
        archive.put(f"blobs/{i:05d}")
        if i % referenced_every == 0:
            archive.reference(f"blobs/{i:05d}")


def _assert_counted(step: list[Snapshot], total: int) -> None:
    """Known total from the first snapshot, done never going back, done == total at the end."""
    assert step[0].total == total
    dones = [s.done for s in step]
    assert dones == sorted(dones)
    assert step[-1].finished
    assert step[-1].done == step[-1].total == total
    assert all(s.total in (total, None) for s in step)


def test_quarantine_purge_and_restore_report_known_totals(tmp_path: Path, sqlite_url: str) -> None:
    archive = make_archive(tmp_path, sqlite_url, grace="0")
    _objects(archive, 2500)
    candidates = 2500 - len(range(0, 2500, 3))

    first = Recorder()
    report = reclaim.api.quarantine(archive.config_path, progress=Reporter([first], refresh=0))
    assert report.quarantined[0].quarantined.count == candidates
    listing = first.only("scan", "main")
    assert listing[0].total is None  # no run has listed the store yet
    assert listing[-1].finished
    assert listing[-1].done == 2500
    assert [s.done for s in listing] == sorted(s.done for s in listing)
    _assert_counted(first.only("quarantine", "main"), candidates)
    catalog = open_catalog(archive.config.catalog)
    try:
        assert last_listing(catalog, "main") == 2500
        assert last_listing(catalog, "other") is None
    finally:
        catalog.dispose()

    for i in range(2500, 2600):
        archive.put(f"blobs/{i:05d}")  # 100 more candidates
    second = Recorder()
    reclaim.api.quarantine(archive.config_path, progress=Reporter([second], refresh=0))
    listing = second.only("scan", "main")
    assert (listing[0].total, listing[0].estimated) == (2500, True)  # the last run's listing
    assert listing[-1].done == listing[-1].total == len(range(0, 2500, 3)) + 100  # the trash is skipped
    _assert_counted(second.only("quarantine", "main"), 100)

    restoring = Recorder()
    restored = reclaim.api.restore(
        archive.config_path, store="main", match="blobs/025*", progress=Reporter([restoring], refresh=0)
    )
    assert restored.restored["main"].restored == 100
    _assert_counted(restoring.only("restore", "main"), 100)  # the entries the glob selected

    checking = Recorder()
    reclaim.api.check(archive.config_path, progress=Reporter([checking], refresh=0))
    check = checking.only("check", "main")
    assert check[0].total == check[-1].done == len(range(0, 2500, 3)) + 100  # estimated, and right
    assert checking.only("check trash", "main")[-1].done == candidates
    assert checking.only("check quarantined", "main")[-1].done == candidates

    purging = Recorder()
    purged = reclaim.api.purge(archive.config_path, progress=Reporter([purging], refresh=0))
    assert purged.purged[0].purged.count == candidates
    assert purging.only("plan purge", "main")[-1].done == candidates
    _assert_counted(purging.only("purge", "main"), candidates)
    archive.dispose()


def test_a_cycle_and_a_restore_of_rows_report_every_step(tmp_path: Path) -> None:
    demo = reclaim.sample.build_demo_archive(tmp_path / "demo")
    reclaim.init(demo.config_path)
    seen = Recorder()
    cycle = reclaim.api.run(demo.config_path, progress=Reporter([seen], refresh=0))
    (uploads,) = cycle.collections
    assert uploads.archived == demo.old_uploads
    collect = seen.only("collect", uploads.collection)
    assert collect[0].kind == "collection"
    assert collect[-1].finished
    assert collect[-1].done == demo.old_uploads
    scan = seen.only("scan", "main")
    assert scan[-1].done == cycle.scans[0].listed.count
    _assert_counted(seen.only("quarantine", "main"), cycle.scans[0].candidates.count)
    assert [s.phase for s in seen.snapshots if s.finished] == [
        "plan purge",
        "purge",
        "collect",
        "scan",
        "quarantine",
    ]

    rows = Recorder()
    restored = reclaim.api.restore_rows(
        demo.config_path, run_id=cycle.run_id, progress=Reporter([rows], refresh=0)
    )
    assert restored.result.total == demo.old_uploads
    _assert_counted(rows.only("restore", uploads.collection), demo.old_uploads)


def test_candidates_left_alone_at_quarantine_still_count_once_their_batch_is_over(
    tmp_path: Path, sqlite_url: str
) -> None:
    archive = make_archive(tmp_path, sqlite_url)
    for i in range(1200):
        archive.put(f"blobs/{i:05d}")
    catalog = open_catalog(archive.config.catalog)
    try:
        with Session(archive.config_path) as session:
            plan = plan_quarantine(
                session.store("main"),
                session.sources("main"),
                action="collect",
                mode="move",
                min_age=timedelta(days=1),
                grace=timedelta(0),
                max_fraction=1.0,
                trash_prefix="_trash/",
            )
            for i in range(0, 1200, 2):
                archive.reference(f"blobs/{i:05d}")  # referenced since the scan: left where they are
            seen = Recorder()
            run_id = catalog.start_run("quarantine", {}, dry_run=False)
            result = plan.execute(
                Journal(catalog),
                run_id=run_id,
                check_lease=lambda: None,
                progress=Reporter([seen], refresh=0),
            )
    finally:
        catalog.dispose()
    assert (result.quarantined.count, result.referenced_again) == (600, 600)
    step = seen.only("quarantine", "main")
    _assert_counted(step, 1200)
    assert [s.done for s in step if s.done][:2] == [1, 2]  # moves count one by one within a batch
