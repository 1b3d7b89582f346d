"""Inspection: ``scan``, ``check``, ``status``, ``runs`` and ``lock``; they change nothing.

``scan`` and ``check`` need no catalog (without one, archived rows simply do
not exist yet) and never create one; ``status``, ``runs`` and ``lock`` read
it. ``lock`` with ``break_lease`` is the one write: it clears a stale lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.catalog import (
    Catalog,
    Journal,
    JournalSummary,
    LeaseInfo,
    Leases,
    RowSummary,
    RunRecord,
    open_catalog,
    record_check,
    record_scan,
)
from reclaim.catalog.files import catalog_file_exists
from reclaim.catalog.sightings import Kind
from reclaim.config import Config
from reclaim.config.jsonable import to_jsonable
from reclaim.errors import CatalogError, UnknownItem
from reclaim.lifecycle import (
    CollectionScan,
    ConfigLike,
    ProgressCallback,
    Session,
    StoreCheck,
    StoreScan,
    check_journal,
    check_store,
    close_dead_run,
    open_journal,
    scan_store,
)
from reclaim.lifecycle.datasize import data_sizer
from reclaim.lifecycle.progress import last_listing
from reclaim.lifecycle.rows import scan_collection
from reclaim.lifecycle.unreferenced import Watch

log = logging.getLogger(__name__)

__all__ = [
    "CheckReport",
    "CollectionStatus",
    "ScanReport",
    "StatusReport",
    "StoreStatus",
    "check",
    "lock",
    "observe",
    "runs",
    "scan",
    "status",
    "status_of",
]


@dataclass
class ScanReport:
    """``reclaim scan``: one :class:`StoreScan` per store."""

    started_at: datetime
    finished_at: datetime
    stores: list[StoreScan] = field(default_factory=list)
    collections: list[CollectionScan] = field(default_factory=list)

    @property
    def candidates(self) -> int:
        """Candidate objects over all stores and candidate rows over all collections."""
        return sum(s.candidates.count for s in self.stores) + sum(c.candidates for c in self.collections)

    @property
    def reported(self) -> int:
        """Candidates of report-only stores and collections (findings for ``--fail-on-findings``)."""
        objects = sum(s.candidates.count for s in self.stores if s.action == "report")
        strays = sum(s.strays.count for s in self.stores)
        return objects + strays + sum(c.candidates for c in self.collections if c.action == "report")

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        out = to_jsonable(self)
        for store_dict, store in zip(out["stores"], self.stores, strict=True):
            store_dict["threshold"] = store.threshold.isoformat()
            store_dict["fraction"] = round(store.fraction, 6)
            store_dict["over_max_fraction"] = store.over_max_fraction
        return dict(out)


@dataclass
class CheckReport:
    """``reclaim check``: dangling references per store and source."""

    started_at: datetime
    finished_at: datetime
    stores: list[StoreCheck] = field(default_factory=list)

    @property
    def dangling(self) -> int:
        """Dangling references over all stores."""
        return sum(s.dangling for s in self.stores)

    @property
    def findings(self) -> int:
        """Dangling references, strays in the trash, quarantined objects gone, entries in flight."""
        return sum(s.findings for s in self.stores)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        out = dict(to_jsonable(self))
        out["dangling"] = self.dangling
        out["findings"] = self.findings
        for store_dict, store in zip(out["stores"], self.stores, strict=True):
            store_dict["dangling"] = store.dangling
            store_dict["quarantined"] = store.quarantined
            store_dict["expected_missing"] = store.expected_missing
        out["quarantined"] = sum(store.quarantined for store in self.stores)
        out["expected_missing"] = sum(store.expected_missing for store in self.stores)
        return out


@dataclass
class StoreStatus:
    """Per store: the journal summary and when the next purge is due."""

    store: str
    mode: str
    grace: timedelta
    summary: JournalSummary
    strays: int | None = None
    """With ``strays = "report"``: the strays the last ``reclaim run`` reported (``None``: not run yet)."""
    released: int = 0
    """Keys released by expired archived rows that wait to be quarantined."""


@dataclass
class CollectionStatus:
    """Per collection: the archive summary and the last cycle's report-only findings."""

    collection: str
    action: str
    summary: RowSummary
    findings: int | None
    """Candidates of a report-only collection in the last ``reclaim run`` (``None``: not run yet)."""
    data_bytes: int | None = None
    """The data the last ``reclaim run`` archived (or, report-only, found) stands for (``None``:
    not run yet, or not measured)."""
    watched: int | None = None
    """With ``age = "unreferenced"``: rows seen unreferenced whose clock is running."""


@dataclass
class StatusReport:
    """``reclaim status``."""

    stores: list[StoreStatus]
    lease: LeaseInfo
    lease_stale: bool
    runs: list[RunRecord]
    collections: list[CollectionStatus] = field(default_factory=list)
    findings: int | None = None
    """Report-only findings (rows and objects) of the last successful ``reclaim run``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return dict(to_jsonable(self))


def scan(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    collections: Sequence[str] | None = None,
    show: int = 0,
    progress: ProgressCallback | None = None,
    referenced_bytes: bool = False,
) -> ScanReport:
    """List each store and merge it with its reference sources; count each collection's candidate rows.

    Changes nothing. Returns per store and per source: objects listed,
    referenced, candidates, too young and excluded, with counts and bytes, and
    up to ``show`` sample candidates; per collection: rows, candidates, their
    archived size, and rows kept because archived rows reference them. With
    ``stores`` or ``collections`` only those are scanned. The bytes of
    referenced objects are counted where the listing carries sizes (object
    stores); on a local directory only with ``referenced_bytes`` (a ``stat``
    per object), else the report marks them not measured. Raises
    :class:`~reclaim.errors.ConfigError`, :class:`~reclaim.errors.SourceError`,
    :class:`~reclaim.errors.StoreError` or
    :class:`~reclaim.errors.CollectionError`; on any error no partial report is
    returned (fail closed).
    """
    started = datetime.now(UTC)
    everything = not stores and not collections
    with Session(config) as session:
        catalog = _catalog_if_initialised(session)
        try:
            if catalog is not None:
                session.attach(catalog.archive, catalog.engine)
            report = _scan(
                session, catalog, stores, collections, everything, show, progress, started, referenced_bytes
            )
            if catalog is not None:
                observe(record_scan, catalog, report.to_dict(), partial=not everything)
            return report
        finally:
            if catalog is not None:
                catalog.dispose()


def _scan(
    session: Session,
    catalog: Catalog | None,
    stores: Sequence[str] | None,
    collections: Sequence[str] | None,
    everything: bool,
    show: int,
    progress: ProgressCallback | None,
    started: datetime,
    referenced_bytes: bool = False,
) -> ScanReport:
    rows = []
    now = datetime.now(UTC)
    sightings = catalog.sightings if catalog is not None else None

    def watch(kind: Kind, name: str, min_age: timedelta, age: str) -> Watch | None:
        # read only: a scan never starts or stops a clock (see reclaim.lifecycle.unreferenced)
        return Watch(sightings, kind, name, now, min_age) if age == "unreferenced" else None

    if everything or collections:
        for name in session.collection_names(collections):
            ct = session.collection(name)
            rows.append(
                scan_collection(
                    ct,
                    session.archive,
                    now=now,
                    show=show,
                    progress=progress,
                    watch=watch("collection", name, ct.config.min_age, ct.config.age),
                    sizer=data_sizer(session.config, ct, session.store),
                )
            )
    results = []
    if everything or stores:
        for name in session.store_names(stores):
            cfg = session.config.stores[name]
            results.append(
                scan_store(
                    session.store(name),
                    session.sources(name),
                    action=cfg.action,
                    min_age=cfg.min_age,
                    max_fraction=cfg.max_fraction,
                    trash_prefix=cfg.trash_prefix,
                    exclude=cfg.exclude,
                    show=show,
                    progress=progress,
                    expected=last_listing(catalog, name),
                    referenced_bytes=referenced_bytes,
                    released=session.released(name),
                    watch=watch("store", name, cfg.min_age, cfg.age),
                )
            )
    return ScanReport(started_at=started, finished_at=datetime.now(UTC), stores=results, collections=rows)


def check(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    show: int = 5,
    progress: ProgressCallback | None = None,
) -> CheckReport:
    """Find references whose objects are missing (dangling); report only, never fix.

    Each store's listing reports to ``progress``. Raises the same errors as :func:`scan`.
    """
    started = datetime.now(UTC)
    with Session(config) as session:
        catalog = _catalog_if_initialised(session)
        journal = Journal(catalog) if catalog is not None else None
        results = []
        try:
            for name in session.store_names(stores):
                store = session.store(name)
                trash = session.config.stores[name].trash_prefix
                result = check_store(
                    store,
                    session.sources(name),
                    trash_prefix=trash,
                    show=show,
                    journal=journal,
                    progress=progress,
                    expected=last_listing(catalog, name),
                )
                if journal is not None:
                    result.journal = check_journal(
                        store, journal, trash_prefix=trash, show=show, progress=progress
                    )
                results.append(result)
            report = CheckReport(started_at=started, finished_at=datetime.now(UTC), stores=results)
            if catalog is not None:
                observe(record_check, catalog, report.to_dict(), partial=bool(stores))
        finally:
            if catalog is not None:
                catalog.dispose()
    return report


def observe(
    record: Callable[..., int], catalog: Catalog, report: dict[str, object], *, partial: bool
) -> None:
    """Leave a read-only report in the catalog for the dashboard (only into an existing catalog)."""
    try:
        record(catalog, report, partial=partial)
    except CatalogError as exc:
        # ignoring this is safe: an observation is a record of what was seen, never a reason to act
        log.warning("could not record this report in the catalog: %s", exc)


def _catalog_if_initialised(session: Session) -> Catalog | None:
    """The catalog, or ``None`` when it does not exist yet (then only references are checked)."""
    if not catalog_file_exists(session.config):
        return None  # connecting would create an empty SQLite file: a read-only command creates nothing
    catalog = open_catalog(session.config.catalog)
    try:
        catalog.require_current()
    except CatalogError:
        catalog.dispose()
        return None
    return catalog


def status(config: ConfigLike, *, last_runs: int = 5) -> StatusReport:
    """Quarantined count and bytes, oldest item, next purge, items in flight; the lease; the last runs."""
    with open_journal(config) as (session, catalog, _journal):
        return status_of(session.config, catalog, last_runs=last_runs)


def status_of(config: Config, catalog: Catalog, *, last_runs: int = 5) -> StatusReport:
    """:func:`status` read from ``catalog``, already open and current (the dashboard keeps its own open).

    The same report, by the same code, without opening the catalog and checking
    its revision again for every read.
    """
    journal = Journal(catalog)
    last_cycle = next(
        (r for r in catalog.list_runs(50) if r.command == "run" and r.status == "succeeded"), None
    )
    strays = last_cycle.counts.get("strays", {}) if last_cycle else {}
    stores = []
    for name, cfg in config.stores.items():
        mode = cfg.mode or "default"
        found = None
        if last_cycle is not None and cfg.strays == "report":
            found = int(strays.get(name, {}).get("objects", 0))
        released = catalog.archive.released_count(name)
        stores.append(StoreStatus(name, mode, cfg.grace, journal.summary(name), found, released))
    lease = Leases(catalog).show()
    reported = last_cycle.counts.get("reported", {}) if last_cycle else {}
    collected = last_cycle.counts.get("collections", {}) if last_cycle else {}
    collections = []
    for name, collection in config.collections.items():
        report_only = collection.action == "report"
        last = (reported if report_only else collected).get(name, {})
        data = last.get("data_bytes") if isinstance(last, dict) else None
        watched = None
        if collection.age == "unreferenced":
            watched = catalog.sightings.count("collection", name)
        collections.append(
            CollectionStatus(
                name,
                collection.action,
                catalog.archive.summary(name),
                reported.get(name, {}).get("rows", 0) if last_cycle and report_only else None,
                data_bytes=data if isinstance(data, int) else None,
                watched=watched,
            )
        )
    return StatusReport(
        stores,
        lease,
        lease.stale(datetime.now(UTC)),
        catalog.list_runs(last_runs),
        collections,
        last_cycle.counts.get("findings") if last_cycle else None,
    )


def runs(config: ConfigLike, *, run_id: int | None = None, limit: int = 20) -> list[RunRecord]:
    """The audit log: the run ``run_id``, or the newest ``limit`` runs."""
    with open_journal(config) as (_session, catalog, _journal):
        if run_id is not None:
            record = catalog.get_run(run_id)
            if record is None:
                raise UnknownItem(f"run {run_id} does not exist", run=run_id)
            return [record]
        return catalog.list_runs(limit)


def lock(config: ConfigLike, *, break_lease: bool = False, force: bool = False) -> LeaseInfo:
    """Show the lease; with ``break_lease`` clear it when stale (or always, with ``force``).

    Raises :class:`~reclaim.errors.LockHeld` when asked to break a live lease without ``force``.
    """
    with open_journal(config) as (_session, catalog, journal):
        leases = Leases(catalog)
        if break_lease:
            broken = leases.break_lease(force=force)
            if broken is not None and broken.run_id is not None:
                close_dead_run(catalog, journal, broken.run_id, by=None)
        return leases.show()
