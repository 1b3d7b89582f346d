"""The cycle: ``reclaim run``, one scheduled cycle as a composition of the collector's plans.

Inside the collector frame (lease, run record, recovery of objects and of
archive records a killed run left in flight):

1. everything is guarded before anything changes: every collection is
   reflected and validated and every store's sources are checked, so a bad
   config fails the cycle before step 2;
2. purge what is due in every ``collect`` store (re-checked against the
   references now);
3. collect rows, collection by collection, referencing tables first (an
   ``Asset`` before the ``AssetBlob`` it points at); report-only collections
   are only counted;
4. quarantine new candidates of every store (report-only stores only
   counted); planned after step 3, so rows archived there count as
   references;
5. expire archived rows past their retention (the objects a ``follow`` row
   owns are purged first, re-checked) and finished journal entries past their
   store's retention.

With ``incremental``, step 4 looks only at the keys the queue triggers
recorded (:mod:`reclaim.lifecycle.incremental`) instead of listing every
store, and refuses a store without current triggers or without a full scan
within its ``full_scan_every``.

The run record carries per-collection and per-store counts and bytes, and the
report-only findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclaim.api.inspection import ScanReport, observe
from reclaim.catalog import record_scan
from reclaim.config.jsonable import to_jsonable
from reclaim.lifecycle import (
    CollectionResult,
    CollectionScan,
    Collector,
    ConfigLike,
    IncrementalScan,
    ProgressCallback,
    PurgeResult,
    QuarantineResult,
    RecoverResult,
    RowRecovery,
    StoreScan,
)

__all__ = ["CycleReport", "observe_listing", "record_findings", "run"]


@dataclass
class CycleReport:
    """What one ``reclaim run`` did (or, for a dry run, would do)."""

    dry_run: bool
    run_id: int | None
    recovered: list[RecoverResult] = field(default_factory=list)
    rows_recovered: RowRecovery = field(default_factory=RowRecovery)
    purged: list[PurgeResult] = field(default_factory=list)
    collections: list[CollectionResult] = field(default_factory=list)
    collection_scans: list[CollectionScan] = field(default_factory=list)
    """Report-only collections, and every collection on a dry run."""
    scans: list[StoreScan] = field(default_factory=list)
    quarantined: list[QuarantineResult] = field(default_factory=list)
    incremental: list[IncrementalScan] | None = None
    """With ``incremental``: what each store's queue held (``scans`` is empty then)."""
    dequeued: dict[str, int] = field(default_factory=dict)
    """With ``incremental``: queue rows processed and deleted, per store."""
    expired_rows: int = 0
    """Archived rows deleted past their retention (a dry run: that would be)."""
    expired_entries: dict[str, int] = field(default_factory=dict)
    """Per store, finished journal entries deleted past its retention (a dry run: that would be)."""
    expired_objects: dict[str, PurgeResult] = field(default_factory=dict)
    """Per store, the purge of objects that rows past their retention owned (``objects = "follow"``)."""

    @property
    def findings(self) -> int:
        """Candidates of report-only collections and stores: what an operator should look at."""
        rows = sum(s.candidates for s in self.collection_scans if s.action == "report")
        objects = sum(s.candidates.count for s in self.scans if s.action == "report")
        return rows + objects + self.strays

    @property
    def strays(self) -> int:
        """Objects no row collection released, in stores with ``strays = "report"``: never touched."""
        return sum(s.strays.count for s in self.scans)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        out = dict(to_jsonable(self))
        out["findings"] = self.findings
        out["strays"] = self.strays
        return out


def run(
    config: ConfigLike,
    *,
    dry_run: bool = False,
    show: int = 0,
    incremental: bool = False,
    progress: ProgressCallback | None = None,
) -> CycleReport:
    """One scheduled cycle (see the module docstring); ``incremental``: only the queued keys.

    Raises :class:`~reclaim.errors.UnsafeToProceed` (with ``incremental``) for
    a store whose triggers are missing or whose last full scan is too old.
    """
    options = {"show": show, "incremental": True} if incremental else {"show": show}
    with Collector.open(config, command="run", options=options, dry_run=dry_run) as c:
        started = datetime.now(UTC)
        report = CycleReport(dry_run, c.run_id, recovered=c.recovered, rows_recovered=c.rows_recovered)
        c.validate()
        report.purged = c.carry_out(c.plan_purge(skip_report_only=True, progress=progress))
        rows = c.carry_out(c.plan_rows(now=datetime.now(UTC), show=show, progress=progress))
        report.collections, report.collection_scans = rows.collections, rows.scans
        if incremental:
            # planned after the rows step, as the full quarantine: rows archived there count
            step = c.carry_out(c.plan_incremental(progress=progress))
            report.incremental, report.quarantined = step.scans, step.quarantined
            report.dequeued = step.dequeued
        else:
            quarantined = c.carry_out(c.plan_quarantine(show=show, progress=progress))
            report.scans, report.quarantined = quarantined.scans, quarantined.quarantined
        record_findings(c, report.scans)
        expired = c.carry_out(c.plan_expire())
        report.expired_rows, report.expired_entries = expired.rows, expired.entries
        report.expired_objects = expired.objects
        c.counts["findings"] = report.findings
        if not c.dry_run and not incremental:
            observe_listing(c, report, started)
        return report


def record_findings(c: Collector, scans: Sequence[StoreScan]) -> None:
    """Put in the run record what each report-only store would collect, and the strays stores report."""
    for scan in scans:
        if scan.action == "report":
            c.record(
                "reported",
                f"store:{scan.store}",
                {"objects": scan.candidates.count, "bytes": scan.candidates.bytes},
            )
        if scan.stray_policy == "report":
            c.record("strays", scan.store, _strays(scan))


def observe_listing(c: Collector, report: CycleReport, started: datetime) -> None:
    """Record the cycle's listing for the dashboard: what it listed, kept and found, per store."""
    seen = ScanReport(started, datetime.now(UTC), stores=report.scans, collections=report.collection_scans)
    observe(record_scan, c.catalog, {**seen.to_dict(), "run_id": c.run_id}, partial=False)


def _strays(scan: StoreScan) -> dict[str, object]:
    """A store's strays as the run record keeps them: count, bytes and the samples shown."""
    out: dict[str, object] = {"objects": scan.strays.count, "bytes": scan.strays.bytes}
    if scan.stray_samples:
        out["samples"] = [info.key for info in scan.stray_samples]
    return out
