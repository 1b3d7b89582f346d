"""``reclaim run`` (one scheduled cycle) and the restore of archived rows.

One cycle, inside the collector frame (lease, run record, object recovery):

1. settle archive records a killed run left in flight (rows live or archived;
   done by the collector frame, as for every mutating command);
2. purge what is due in every store (re-checked against the references now);
3. collect rows, collection by collection, referencing tables first (an
   ``Asset`` before the ``AssetBlob`` it points at), and report-only
   collections are only counted;
4. quarantine new candidates of every store (report-only stores only counted);
5. expire archived rows past their retention and finished journal entries past
   their store's retention.

Everything is guarded before anything changes: every collection is reflected
and validated and every store's sources are checked first, so a bad config
fails the cycle before step 2. The run record carries per-collection and
per-store counts and bytes, and the report-only findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclaim.api.collector import Collector, collector
from reclaim.api.reports import to_jsonable
from reclaim.api.session import ConfigLike
from reclaim.api.verbs import UnknownItem, quarantine_stores
from reclaim.catalog import ArchivedRow, pk_text
from reclaim.errors import ConfigError
from reclaim.lifecycle import PurgeResult, QuarantineResult, RecoverResult, StoreScan, plan_purge
from reclaim.lifecycle.progress import ProgressLike
from reclaim.lifecycle.restore_rows import RowRestoreResult, plan_row_restore
from reclaim.lifecycle.rows import (
    CollectionResult,
    CollectionScan,
    RowRecovery,
    collect_collection,
    scan_collection,
)

__all__ = ["CycleReport", "RowsReport", "collection_order", "restore_rows", "run"]


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
    expired_rows: int = 0
    expired_entries: dict[str, int] = field(default_factory=dict)

    @property
    def findings(self) -> int:
        """Candidates of report-only collections and stores: what an operator should look at."""
        rows = sum(s.candidates for s in self.collection_scans if s.action == "report")
        objects = sum(s.candidates.count for s in self.scans if s.action == "report")
        return rows + objects

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        out = dict(to_jsonable(self))
        out["findings"] = self.findings
        return out


def collection_order(c: Collector) -> list[str]:
    """Collections with referencing tables before the tables they reference."""
    tables = c.session.collections()
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name in path:  # done, or a cycle of references
            return
        table = tables[name].qualified
        for other, ct in tables.items():  # everything referencing this table goes first
            if other != name and table in ct.referenced_tables:
                visit(other, (*path, name))
        order.append(name)

    for name in tables:
        visit(name, ())
    return order


def run(
    config: ConfigLike, *, dry_run: bool = False, show: int = 0, progress: ProgressLike = None
) -> CycleReport:
    """One scheduled cycle (see the module docstring); ``progress`` hears of every step."""
    with collector(config, command="run", options={"show": show}, dry_run=dry_run) as c:
        report = CycleReport(dry_run, c.run_id, recovered=c.recovered, rows_recovered=c.rows_recovered)
        now = datetime.now(UTC)
        order = collection_order(c)  # reflects and validates every collection first
        sources = {name: c.session.sources(name) for name in c.session.config.stores}
        _purge(c, report, sources, dry_run, progress)
        _collect_rows(c, report, order, now, show, dry_run, progress)
        _quarantine(c, report, show, dry_run, progress)
        if not dry_run:
            finished = datetime.now(UTC)
            report.expired_rows = c.archive.expire(finished)
            for name, cfg in c.session.config.stores.items():
                report.expired_entries[name] = c.journal.expire(finished - cfg.retention, store=name)
            c.counts["expired"] = {"rows": report.expired_rows, "entries": report.expired_entries}
            c.counts["findings"] = report.findings
        return report


def _purge(
    c: Collector, report: CycleReport, sources: dict[str, Any], dry_run: bool, progress: ProgressLike
) -> None:
    for name, cfg in c.session.config.stores.items():
        if cfg.action != "collect":
            continue
        store = c.session.store(name)
        plan = plan_purge(store, sources[name], c.journal, trash_prefix=cfg.trash_prefix, progress=progress)
        if dry_run:
            report.purged.append(plan.preview())
            continue
        assert c.run_id is not None
        result = plan.execute(c.journal, run_id=c.run_id, check_lease=c.check_lease, progress=progress)
        report.purged.append(result)
        c.counts.setdefault("purged", {})[name] = to_jsonable(result)


def _collect_rows(
    c: Collector,
    report: CycleReport,
    order: Sequence[str],
    now: datetime,
    show: int,
    dry_run: bool,
    progress: ProgressLike,
) -> None:
    archive = c.archive
    for name in order:
        ct = c.session.collection(name)
        if dry_run or ct.config.action == "report":
            scan = scan_collection(ct, archive, now=now, show=show, progress=progress)
            report.collection_scans.append(scan)
            if ct.config.action == "report":
                c.counts.setdefault("reported", {})[name] = {"rows": scan.candidates, "bytes": scan.bytes}
                if scan.samples:
                    c.counts["reported"][name]["samples"] = scan.samples
            continue
        assert c.run_id is not None
        result = collect_collection(
            ct,
            archive,
            run_id=c.run_id,
            now=now,
            shared=c.session.shares_catalog(name),
            check_lease=c.check_lease,
            show=show,
            progress=progress,
        )
        report.collections.append(result)
        c.counts.setdefault("collections", {})[name] = to_jsonable(result)


def _quarantine(c: Collector, report: CycleReport, show: int, dry_run: bool, progress: ProgressLike) -> None:
    # the sources are built again: rows archived above count as references now
    names = list(c.session.config.stores)
    report.scans, report.quarantined = quarantine_stores(
        c, names, dry_run=dry_run, show=show, progress=progress
    )
    for scan in report.scans:
        if scan.action == "report":
            counted = {"objects": scan.candidates.count, "bytes": scan.candidates.bytes}
            c.counts.setdefault("reported", {})[f"store:{scan.store}"] = counted


@dataclass
class RowsReport:
    """What a restore of archived rows did (or would do)."""

    dry_run: bool
    run_id: int | None
    selected: int
    result: RowRestoreResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        out = dict(to_jsonable(self))
        out["restored_total"] = self.result.total
        return out


def restore_rows(
    config: ConfigLike,
    *,
    collection: str | None = None,
    pks: Sequence[str] = (),
    run_id: int | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: ProgressLike = None,
) -> RowsReport:
    """Insert archived rows again: by collection, primary key (with ``collection``), run or archive time.

    Rows they reference that were archived too are restored first. Raises
    :class:`~reclaim.errors.RowConflict` (exit 9) when a primary key is held by
    a live row again, before anything is restored, and :class:`UnknownItem`
    for a primary key or run the archive does not know. ``progress`` hears of
    the rows inserted.
    """
    if not (collection or run_id is not None or since):
        raise ConfigError("say which rows to restore: --collection, --run or --since")
    if pks and not collection:
        raise ConfigError("restoring rows by primary key needs --collection")
    options = {"collection": collection, "pks": list(pks), "run": run_id, "since": since, "rows": True}
    with collector(config, command="restore", options=options, dry_run=dry_run) as c:
        names = c.session.collection_names([collection] if collection else None)
        if run_id is not None and c.catalog.get_run(run_id) is None:
            raise UnknownItem(f"run {run_id} does not exist (see 'reclaim runs')")
        archive = c.archive
        selected: list[ArchivedRow] = []
        for name in names:
            if pks:
                for pk in pks:
                    found = archive.select(collection=name, pk=_pk_spelling(pk), run_id=run_id, since=since)
                    if not found:
                        raise UnknownItem(f"collection {name!r}: no archived row with primary key {pk}")
                    selected += found
            else:
                selected += archive.select(collection=name, run_id=run_id, since=since)
        tables = c.session.collections()
        shared = {name: c.session.shares_catalog(name) for name in tables}
        plan = plan_row_restore(selected, tables, archive, shared=shared)
        if dry_run:
            return RowsReport(True, None, len(selected), plan.preview())
        assert c.run_id is not None
        result = plan.execute(archive, run_id=c.run_id, check_lease=c.check_lease, progress=progress)
        c.counts["rows_restored"] = to_jsonable(result)
        return RowsReport(False, c.run_id, len(selected), result)


def _pk_spelling(pk: str) -> str:
    """``5`` or ``a,b`` as the archive spells primary keys (a JSON list is taken as it is)."""
    if pk.startswith("["):
        return pk
    return pk_text(pk.split(","))
