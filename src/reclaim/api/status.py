"""``reclaim status``: the journal per store, the archive per collection, the lease, the last runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.api.collector import open_journal
from reclaim.api.reports import to_jsonable
from reclaim.api.session import ConfigLike
from reclaim.catalog import JournalSummary, LeaseInfo, Leases, RowSummary, RunRecord

__all__ = ["CollectionStatus", "StatusReport", "StoreStatus", "status"]


@dataclass
class StoreStatus:
    """Per store: the journal summary and when the next purge is due."""

    store: str
    mode: str
    grace: timedelta
    summary: JournalSummary


@dataclass
class CollectionStatus:
    """Per collection: the archive summary and the last cycle's report-only findings."""

    collection: str
    action: str
    summary: RowSummary
    findings: int | None
    """Candidates of a report-only collection in the last ``reclaim run`` (``None``: not run yet)."""


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


def status(config: ConfigLike, *, last_runs: int = 5) -> StatusReport:
    """Quarantined count and bytes, oldest item, next purge, items in flight; the lease; the last runs."""
    with open_journal(config) as (session, catalog, journal):
        stores = []
        for name, cfg in session.config.stores.items():
            mode = cfg.mode or "default"
            stores.append(StoreStatus(name, mode, cfg.grace, journal.summary(name)))
        lease = Leases(catalog).show()
        last_cycle = next(
            (r for r in catalog.list_runs(50) if r.command == "run" and r.status == "succeeded"), None
        )
        reported = last_cycle.counts.get("reported", {}) if last_cycle else {}
        collections = [
            CollectionStatus(
                name,
                cfg.action,
                catalog.archive.summary(name),
                reported.get(name, {}).get("rows", 0) if last_cycle and cfg.action == "report" else None,
            )
            for name, cfg in session.config.collections.items()
        ]
        return StatusReport(
            stores,
            lease,
            lease.stale(datetime.now(UTC)),
            catalog.list_runs(last_runs),
            collections,
            last_cycle.counts.get("findings") if last_cycle else None,
        )
