"""The incremental mode's set-up: ``install``, ``uninstall`` and ``status`` of the queue triggers.

The cycle itself is :func:`reclaim.api.run` with ``incremental=True`` (see
:mod:`reclaim.lifecycle.incremental`). Installing and removing triggers
changes the application's databases, so both run in the collector's frame
(a run record, the lease; ``dry_run`` shows what would be done) and refuse,
before anything changes, a store with a source no trigger can watch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from reclaim.config.jsonable import to_jsonable
from reclaim.errors import ConfigError
from reclaim.lifecycle import Collector, ConfigLike, Session, open_journal
from reclaim.lifecycle.incremental import last_full_scan
from reclaim.references import ReferenceSource
from reclaim.references.triggers import Queue, TriggerSet, trigger_set, unsupported

__all__ = [
    "IncrementalStatus",
    "SourceTriggers",
    "StoreIncremental",
    "TriggersReport",
    "incremental_status",
    "install",
    "uninstall",
]


@dataclass
class SourceTriggers:
    """One reference source and its triggers."""

    store: str
    source: str
    database: str
    table: str | None
    triggers: list[str] = field(default_factory=list)
    state: str = "missing"
    """``installed``, ``missing``, ``stale`` (installed for another configuration), ``unsupported``,
    or, in an install or uninstall report, ``installed`` / ``removed`` (``would …`` in a dry run)."""
    reason: str | None = None


@dataclass
class TriggersReport:
    """What ``install`` or ``uninstall`` did (or, dry, would do)."""

    dry_run: bool
    run_id: int | None
    sources: list[SourceTriggers] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready data."""
        return dict(to_jsonable(self))


@dataclass
class StoreIncremental:
    """One store's readiness for the incremental cycle."""

    store: str
    full_scan_every: timedelta
    last_full_scan: datetime | None
    queued: int
    oldest_queued: datetime | None
    sources: list[SourceTriggers]

    @property
    def ready(self) -> bool:
        """Whether ``reclaim run --incremental`` would accept the store now."""
        return self.last_full_scan is not None and all(s.state == "installed" for s in self.sources)


@dataclass
class IncrementalStatus:
    """Every store's triggers, queue and last full scan."""

    stores: list[StoreIncremental]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready data (``ready`` included)."""
        out = dict(to_jsonable(self))
        for shown, store in zip(out["stores"], self.stores, strict=True):
            shown["ready"] = store.ready
        return out


def _watched(session: Session, names: Sequence[str], prefix: str) -> list[TriggerSet]:
    """The trigger sets of every source of ``names``; :class:`ConfigError` naming any no trigger can watch."""
    sets: list[TriggerSet] = []
    refused: list[str] = []
    for name in names:
        sources = session.databases.sources(name)
        for index, source in enumerate(sources):
            reason = unsupported(source)
            if reason is not None:
                refused.append(f"stores.{name}.references[{index}] ({source.name}): {reason}")
                continue
            source.validate()
            sets.append(trigger_set(name, source, prefix))
    if refused:
        raise ConfigError(
            "no trigger can watch these reference sources, so the incremental mode cannot cover them "
            f"(nothing was installed): {'; '.join(refused)}; leave such stores to the full scan",
            field="references",
        )
    return sets


def _queue(source: ReferenceSource, prefix: str) -> Queue:
    return Queue(source.engine, prefix, label=f"{source.database}:{prefix}queue")


def install(
    config: ConfigLike, *, stores: Sequence[str] | None = None, dry_run: bool = False
) -> TriggersReport:
    """Install the queue triggers on every reference source of every store (or ``stores``).

    Raises :class:`ConfigError` naming every source no trigger can watch
    (query sources, JSON paths, decoders, prefix references) before anything
    is installed, and :class:`~reclaim.errors.SourceError` when a database
    refuses the DDL. Installing again replaces a source's triggers.
    """
    options = {"stores": list(stores or []), "action": "install"}
    with Collector.open(config, command="incremental", options=options, dry_run=dry_run, recover=False) as c:
        prefix = c.config.catalog.table_prefix
        sets = _watched(c.session, c.session.store_names(stores), prefix)
        report = TriggersReport(dry_run, c.run_id)
        by_database: dict[str, list[TriggerSet]] = defaultdict(list)
        for item in sets:
            by_database[item.source.database].append(item)
            report.sources.append(
                SourceTriggers(
                    item.store,
                    item.source.name,
                    item.source.database,
                    item.table,
                    list(item.triggers),
                    "would install" if dry_run else "installed",
                )
            )
        if not dry_run:
            for items in by_database.values():
                c.check_lease()
                _queue(items[0].source, prefix).install(items)
            c.record("triggers", "installed", len(sets))
        return report


def uninstall(
    config: ConfigLike, *, stores: Sequence[str] | None = None, dry_run: bool = False
) -> TriggersReport:
    """Remove the queue triggers reclaim installed for every store (or ``stores``), and their queue rows.

    Every configured database is looked at, so triggers of sources no longer
    configured go too; the queue and registry tables go with the last store.
    """
    options = {"stores": list(stores or []), "action": "uninstall"}
    with Collector.open(config, command="incremental", options=options, dry_run=dry_run, recover=False) as c:
        prefix = c.config.catalog.table_prefix
        names = c.session.store_names(stores) if stores else None
        report = TriggersReport(dry_run, c.run_id)
        for database in c.config.databases:
            engine = c.session.databases.engine(database)
            queue = Queue(engine, prefix, label=f"{database}:{prefix}queue")
            if dry_run:
                removed = [i for i in queue.installed() if names is None or i.store in names]
            elif names is None:
                c.check_lease()
                removed = queue.uninstall(None)
            else:
                removed = []
                for name in names:
                    c.check_lease()
                    removed += queue.uninstall(name)
            report.sources += [
                SourceTriggers(
                    i.store,
                    i.source,
                    database,
                    i.table,
                    list(i.triggers),
                    "would remove" if dry_run else "removed",
                )
                for i in removed
            ]
        c.record("triggers", "removed", len(report.sources))
        return report


def incremental_status(config: ConfigLike, *, stores: Sequence[str] | None = None) -> IncrementalStatus:
    """Per store: each source's triggers, the queue's depth, the last full scan; changes nothing."""
    with open_journal(config) as (session, catalog, _journal):
        prefix = session.config.catalog.table_prefix
        out: list[StoreIncremental] = []
        for name in session.store_names(stores):
            policy = session.config.stores[name]
            sources: list[SourceTriggers] = []
            queued = 0
            oldest: datetime | None = None
            queues: dict[str, Queue] = {}
            for source in session.databases.sources(name):
                reason = unsupported(source)
                table = source.config.table
                if reason is not None:
                    sources.append(
                        SourceTriggers(name, source.name, source.database, table, [], "unsupported", reason)
                    )
                    continue
                expected = trigger_set(name, source, prefix)
                if source.database not in queues:
                    queues[source.database] = queue = _queue(source, prefix)
                    if queue.exists():
                        count, first = queue.depth(name)
                        queued += count
                        if first is not None and (oldest is None or first < oldest):
                            oldest = first
                found = {i.source: i for i in queues[source.database].installed() if i.store == name}.get(
                    source.name
                )
                state = "missing"
                if found is not None and found.present:
                    state = "installed" if found.fingerprint == expected.fingerprint else "stale"
                sources.append(
                    SourceTriggers(name, source.name, source.database, table, list(expected.triggers), state)
                )
            since = datetime.now(UTC) - policy.full_scan_every
            full = last_full_scan(catalog, name, since=since)
            out.append(StoreIncremental(name, policy.full_scan_every, full, queued, oldest, sources))
        return IncrementalStatus(out)
