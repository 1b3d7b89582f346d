"""The two-phase collector for DataJoint pipelines, in ``dj.gc``'s shape: ``*schemas`` and ``store_name``.

Each call discovers the schemas afresh (:mod:`reclaim.datajoint.build`), so a
table added since the last run is covered without any configuration change,
and runs reclaim's own plans on the configuration it built. ``quarantine`` and
``purge`` compare the schemas' definitions after the scan with those before
it: a definition changed during the run aborts it before anything moves.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from reclaim.api import LifecycleReport, ScanReport, StatusReport
from reclaim.api import restore as _restore
from reclaim.api import scan as _scan
from reclaim.api import status as _status
from reclaim.catalog import open_catalog
from reclaim.config import Config
from reclaim.config.model import CatalogConfig, DatabaseConfig, StoreConfig
from reclaim.datajoint.build import DATABASE, Pipeline, build_pipeline, database_url, store_location
from reclaim.datajoint.discovery import UnmappedAttribute, fingerprint
from reclaim.datajoint.settings import config as gc_config
from reclaim.errors import ConfigError
from reclaim.lifecycle import Collector

__all__ = [
    "QuarantineStats",
    "collect",
    "configuration",
    "purge",
    "quarantine",
    "quarantine_stats",
    "restore",
    "scan",
    "status",
]


def _pipeline(
    schemas: Sequence[Any], store_name: str | None, dj_config: Any | None, grace: timedelta | None = None
) -> Pipeline:
    return build_pipeline(schemas, store_name, settings=gc_config, dj_config=dj_config, grace=grace)


def configuration(*schemas: Any, store_name: str | None = None, dj_config: Any | None = None) -> Config:
    """The :class:`reclaim.Config` these schemas and ``dj.config`` amount to (nothing is changed)."""
    return _pipeline(schemas, store_name, dj_config).config


def ensure_catalog(config: Config) -> None:
    """Create or upgrade the catalog in the pipeline's database (its own schema or database).

    Raises :class:`~reclaim.errors.CatalogError` for a catalog newer than this reclaim (by
    ``upgrade()``) or a database that cannot be reached.
    """
    catalog_config = config.catalog
    assert catalog_config.url is not None
    url = sa.make_url(catalog_config.url)
    if url.get_backend_name() in ("mysql", "mariadb") and url.database:
        engine = sa.create_engine(url.set(database=None))
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{url.database}`")
        finally:
            engine.dispose()
    catalog = open_catalog(catalog_config)
    try:
        # a catalog already at the head needs no migration run (Alembic's import and walk
        # cost more than the rest of a small collection); any other revision goes through upgrade()
        if catalog.revision() != catalog.head():
            catalog.upgrade()
    finally:
        catalog.dispose()


def _unchanged(pipeline: Pipeline, before: str) -> None:
    if fingerprint(pipeline.schemas) != before:
        names = ", ".join(str(s.database) for s in pipeline.schemas)
        raise UnmappedAttribute(names, None, None, "a table definition changed during the run")


def _prepared(
    schemas: Sequence[Any], store_name: str | None, dj_config: Any | None, grace: timedelta | None = None
) -> tuple[Pipeline, str]:
    """The schemas' fingerprint, then their pipeline, with the catalog ready in their database."""
    before = fingerprint(schemas)
    pipeline = _pipeline(schemas, store_name, dj_config, grace)
    ensure_catalog(pipeline.config)  # a dry run records its run too
    return pipeline, before


def _quarantine(
    pipeline: Pipeline,
    before: str,
    *,
    dry_run: bool,
    grace: timedelta | None,
    max_fraction: float | None = None,
    show: int = 0,
) -> LifecycleReport:
    options = {"stores": list(pipeline.stores), "max_fraction": max_fraction, "datajoint": True}
    with Collector.open(pipeline.config, command="quarantine", options=options, dry_run=dry_run) as c:
        step = c.plan_quarantine(pipeline.stores, grace=grace, max_fraction=max_fraction, show=show)
        _unchanged(pipeline, before)
        outcome = c.carry_out(step)
        c.counts["scanned"] = {s.store: {"candidates": s.candidates.count} for s in outcome.scans}
        return LifecycleReport(
            "quarantine", dry_run, c.run_id, scans=outcome.scans, quarantined=outcome.quarantined
        )


def _purge(pipeline: Pipeline, before: str, *, dry_run: bool, cutoff: datetime | None) -> LifecycleReport:
    options: dict[str, Any] = {"stores": list(pipeline.stores), "datajoint": True}
    if cutoff is not None:
        options["quarantined_before"] = cutoff
    with Collector.open(pipeline.config, command="purge", options=options, dry_run=dry_run) as c:
        step = c.plan_purge(pipeline.stores, quarantined_before=cutoff)
        _unchanged(pipeline, before)
        purged = c.carry_out(step)
        return LifecycleReport("purge", dry_run, c.run_id, purged=purged, recovered=c.recovered)


def quarantine(
    *schemas: Any,
    store_name: str | None = None,
    dry_run: bool = True,
    max_fraction: float | None = None,
    show: int = 0,
    dj_config: Any | None = None,
    grace_seconds: float | None = None,
) -> LifecycleReport:
    """Phase 1: move (or mark) every unreferenced object of the schemas' managed subtrees.

    ``dry_run=True`` (the default, as ``dj.gc``'s) scans and reports only.
    Raises :class:`~reclaim.datajoint.discovery.UnmappedAttribute` for anything
    it cannot map or a definition changed during the run, and whatever
    :func:`reclaim.quarantine` raises; nothing moves then.
    """
    grace = timedelta(seconds=grace_seconds) if grace_seconds is not None else None
    pipeline, before = _prepared(schemas, store_name, dj_config, grace)
    return _quarantine(pipeline, before, dry_run=dry_run, grace=grace, max_fraction=max_fraction, show=show)


def purge(
    *schemas: Any,
    store_name: str | None = None,
    grace_seconds: float | None = None,
    dry_run: bool = True,
    dj_config: Any | None = None,
) -> LifecycleReport:
    """Phase 2: delete quarantined objects past their grace, each re-checked against every table now.

    ``grace_seconds`` purges what was quarantined at least that long ago
    instead of waiting for each item's own due time. Objects referenced again
    (a row inserted meanwhile, also by a table added since the quarantine) are
    restored; a key DataJoint uploaded again keeps the new file.
    """
    if grace_seconds is not None and grace_seconds < 0:
        raise ConfigError("must not be negative", field="grace_seconds", value=grace_seconds)
    pipeline, before = _prepared(schemas, store_name, dj_config)
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds) if grace_seconds is not None else None
    return _purge(pipeline, before, dry_run=dry_run, cutoff=cutoff)


def collect(
    *schemas: Any, store_name: str | None = None, dry_run: bool = True, dj_config: Any | None = None
) -> LifecycleReport:
    """Deprecated one-shot form, like ``dj.gc.collect``: quarantine then purge with grace 0.

    Emits a :class:`DeprecationWarning`: the two-phase form gives writers the
    grace period to reuse a file; this one does not. The schemas are
    discovered once for both runs; each run still checks after its scan that
    no definition changed since, and the purge re-checks every file against
    the tables as they are then.
    """
    warnings.warn(
        "reclaim.datajoint.collect() purges without a grace period; call quarantine() now and "
        "purge() after the grace period instead",
        DeprecationWarning,
        stacklevel=2,
    )
    pipeline, before = _prepared(schemas, store_name, dj_config, timedelta(0))
    first = _quarantine(pipeline, before, dry_run=dry_run, grace=timedelta(0))
    if dry_run:
        first.command = "collect"
        return first
    second = _purge(pipeline, before, dry_run=False, cutoff=datetime.now(UTC))
    return LifecycleReport(
        "collect",
        False,
        second.run_id,
        scans=first.scans,
        quarantined=first.quarantined,
        purged=second.purged,
    )


def _bare_config(store_name: str | None, dj_config: Any | None) -> Config:
    """Catalog and stores from ``dj.config`` and the connection, without references (restore, status)."""
    cfg = dj_config if dj_config is not None else _global_dj_config()
    backend = str(cfg["database.backend"])
    url = _connection_url(cfg, backend)
    catalog_schema = str(gc_config["gc.catalog_schema"])
    if backend == "postgresql":
        catalog = CatalogConfig(url=url, db_schema=catalog_schema)
    else:
        catalog = CatalogConfig(url=url.rstrip("/") + "/" + catalog_schema)
    names = sorted(n for n, s in dict(cfg["stores"]).items() if isinstance(s, dict))
    if store_name is not None:
        if store_name not in names:
            raise ConfigError(f"no DataJoint store {store_name!r}", field="store_name")
        names = [store_name]
    stores = {}
    for name in names:
        spec = cfg.get_store_spec(name)
        store_url, options = store_location(name, spec)
        stores[name] = StoreConfig(
            url=store_url,
            storage_options=options,
            mode=gc_config["gc.mode"],
            trash_prefix=str(gc_config["gc.trash_prefix"]),
        )
    return Config(catalog=catalog, databases={DATABASE: DatabaseConfig(url=url)}, stores=stores)


def _connection_url(cfg: Any, backend: str) -> str:
    info = {
        "host": cfg["database.host"],
        "port": cfg["database.port"],
        "user": cfg["database.user"],
        "passwd": cfg["database.password"],
        "database_name": cfg.get("database.name"),
    }
    return database_url(info, backend)


def restore(
    path_or_filter: str | None = None,
    *,
    run: int | None = None,
    store_name: str | None = None,
    dry_run: bool = False,
    dj_config: Any | None = None,
) -> LifecycleReport:
    """Bring quarantined files back: one path, a glob (``_hash/ephys/*``), every file of a ``run``,
    or every file of ``store_name``.

    Raises :class:`~reclaim.errors.UnknownItem` for a path with no quarantined
    entry or an unknown run, before anything is restored.
    """
    config = _bare_config(store_name, dj_config)
    keys: list[str] = []
    match = None
    if path_or_filter is not None:
        if any(ch in path_or_filter for ch in "*?["):
            match = path_or_filter
        else:
            keys = [path_or_filter]
    store = store_name
    if keys and store is None and len(config.stores) > 1:
        cfg = dj_config if dj_config is not None else _global_dj_config()
        store = cfg["stores"].get("default")
    return _restore(config, keys=keys, store=store, run_id=run, match=match, dry_run=dry_run)


def _global_dj_config() -> Any:
    import datajoint as dj

    return dj.config


def scan(
    *schemas: Any, store_name: str | None = None, show: int = 0, dj_config: Any | None = None
) -> ScanReport:
    """Read-only: per store, files listed in the schemas' subtrees, referenced, candidates, young."""
    pipeline = _pipeline(schemas, store_name, dj_config)
    return _scan(pipeline.config, stores=list(pipeline.stores), show=show)


def status(*, store_name: str | None = None, dj_config: Any | None = None) -> StatusReport:
    """What the catalog holds: quarantined count and bytes, oldest item, next purge, the last runs."""
    config = _bare_config(store_name, dj_config)
    ensure_catalog(config)
    return _status(config)


@dataclass(frozen=True)
class QuarantineStats:
    """How much is quarantined, since when, in which stores, and when it may be purged."""

    count: int
    bytes: int
    oldest: datetime | None
    next_purge: datetime | None
    stores: tuple[str, ...]
    in_flight: int


def quarantine_stats(report: StatusReport) -> QuarantineStats:
    """The totals of a :class:`StatusReport` over its stores."""
    summaries = [s.summary for s in report.stores]
    oldest = [s.oldest for s in summaries if s.oldest is not None]
    due = [s.next_due for s in summaries if s.next_due is not None]
    return QuarantineStats(
        count=sum(s.quarantined for s in summaries),
        bytes=sum(s.quarantined_bytes for s in summaries),
        oldest=min(oldest) if oldest else None,
        next_purge=min(due) if due else None,
        stores=tuple(s.store for s in summaries if s.quarantined or s.in_flight),
        in_flight=sum(s.in_flight for s in summaries),
    )
