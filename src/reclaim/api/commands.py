"""The read-only commands as typed functions; the CLI is a thin adapter over them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from reclaim.api.files import catalog_file_exists
from reclaim.api.reports import CheckReport, ScanReport
from reclaim.api.session import ConfigLike, Session
from reclaim.catalog import Catalog, Journal, open_catalog
from reclaim.errors import CatalogError
from reclaim.lifecycle import check_journal, check_store, scan_store
from reclaim.lifecycle.progress import ProgressLike, last_listing
from reclaim.lifecycle.rows import scan_collection

__all__ = ["check", "scan"]

#: what ``progress`` parameters take: a :class:`~reclaim.lifecycle.progress.Progress` or ``(store, listed)``
ProgressCallback = ProgressLike


def scan(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    collections: Sequence[str] | None = None,
    show: int = 0,
    progress: ProgressLike = None,
) -> ScanReport:
    """List each store and merge it with its reference sources; count each collection's candidate rows.

    Changes nothing. Returns per store and per source: objects listed,
    referenced, candidates, too young and excluded, with counts and bytes, and
    up to ``show`` sample candidates; per collection: rows, candidates, their
    archived size, and rows kept because archived rows reference them. With
    ``stores`` or ``collections`` only those are scanned. Raises
    :class:`~reclaim.errors.ConfigError`, :class:`~reclaim.errors.SourceError`,
    :class:`~reclaim.errors.StoreError` or
    :class:`~reclaim.errors.CollectionError`; on any error no partial report is
    returned (fail closed). ``progress`` hears of each listing (its estimated
    total: the last run's listing of the store) and of each collection's scan.
    """
    started = datetime.now(UTC)
    everything = not stores and not collections
    with Session(config) as session:
        catalog = _catalog_if_initialised(session)
        try:
            if catalog is not None:
                session.attach(catalog.archive, catalog.engine)
            return _scan(session, catalog, stores, collections, everything, show, progress, started)
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
    progress: ProgressLike,
    started: datetime,
) -> ScanReport:
    rows = []
    if everything or collections:
        now = datetime.now(UTC)
        for name in session.collection_names(collections):
            ct = session.collection(name)
            rows.append(scan_collection(ct, session.archive, now=now, show=show, progress=progress))
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
                )
            )
    return ScanReport(started_at=started, finished_at=datetime.now(UTC), stores=results, collections=rows)


def check(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    show: int = 5,
    progress: ProgressLike = None,
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
        finally:
            if catalog is not None:
                catalog.dispose()
    return CheckReport(started_at=started, finished_at=datetime.now(UTC), stores=results)


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
