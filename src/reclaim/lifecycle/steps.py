"""The steps of a run as plans: each holds its concrete work, previewed or executed once.

A step is planned through a :class:`~reclaim.lifecycle.collector.Collector`,
which gives it the complete source set of every store (archived rows
included), the store policies, the lease check and the run record. Planning
does the reading and the guarding (a scan, the due entries, the rows
selected); ``preview()`` shows what the plan holds, ``execute()`` carries it
out. Either may be called once; a second call raises
:class:`~reclaim.errors.PlanSpent`.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reclaim.catalog import ArchivedRow, Entry, Journal, State, pk_text
from reclaim.config.jsonable import to_jsonable
from reclaim.errors import ConfigError, PlanSpent, UnknownItem, UnsafeToProceed
from reclaim.lifecycle.datasize import data_sizer
from reclaim.lifecycle.follow import Followed, follow_pending, owned_entries, purge_expiring, restore_owned
from reclaim.lifecycle.progress import ProgressLike, last_listing
from reclaim.lifecycle.purge import PurgePlan, PurgeResult, plan_purge
from reclaim.lifecycle.quarantine import QuarantinePlan, QuarantineResult, plan_quarantine
from reclaim.lifecycle.restore import RestoreResult, restore_entries, restore_purged
from reclaim.lifecycle.restore_rows import RowRestorePlan, RowRestoreResult, plan_row_restore
from reclaim.lifecycle.rows import CollectionResult, CollectionScan, collect_collection, scan_collection
from reclaim.lifecycle.scan import StoreScan
from reclaim.lifecycle.spool import discard_on_error
from reclaim.lifecycle.strays import releaser
from reclaim.lifecycle.unreferenced import Watch
from reclaim.lifecycle.versioned import require_purgeable, require_quarantinable
from reclaim.stores import is_versioned

if TYPE_CHECKING:
    from reclaim.lifecycle.collector import Collector

__all__ = [
    "ExpireOutcome",
    "ExpireStep",
    "ProgressCallback",
    "PurgeStep",
    "QuarantineOutcome",
    "QuarantineStep",
    "RestoreStep",
    "RowRestoreOutcome",
    "RowRestoreStep",
    "RowsOutcome",
    "RowsStep",
    "require_restore_selection",
    "require_row_selection",
]

ProgressCallback = ProgressLike
"""What ``progress`` takes: a :class:`~reclaim.lifecycle.progress.Progress` or ``(store, listed)``."""


class _Once:
    """A plan's run-once guard."""

    _spent = False
    _what = "plan"
    progress: ProgressLike = None
    """Where the step reports what it has done (see :mod:`reclaim.lifecycle.progress`)."""

    def _spend(self) -> None:
        if self._spent:
            raise PlanSpent(f"this {self._what} plan was carried out already; plan again")
        self._spent = True


# -- quarantine ---------------------------------------------------------------------------


@dataclass
class QuarantineOutcome:
    """The scans of a quarantine step and, when executed, what each store's quarantine did."""

    scans: list[StoreScan]
    quarantined: list[QuarantineResult] = field(default_factory=list)


class QuarantineStep(_Once):
    """Every store scanned and guarded; executing quarantines the candidates of each ``collect`` store.

    An error or a ``max_fraction`` breach in any store stops the planning
    before the first object of any store moves. Report-only stores are scanned
    and never touched.
    """

    _what = "quarantine"

    def __init__(
        self, collector: Collector, plans: list[QuarantinePlan], progress: ProgressLike = None
    ) -> None:
        self._collector = collector
        self._plans = plans
        self._progress = progress

    @classmethod
    def plan(
        cls,
        c: Collector,
        names: Sequence[str],
        grace: timedelta | None,
        max_fraction: float | None,
        show: int,
        progress: ProgressCallback | None,
    ) -> QuarantineStep:
        plans: list[QuarantinePlan] = []
        with discard_on_error(plans):
            for name in names:
                policy = c.policy(name)
                require_quarantinable(
                    c.session.store(name),
                    mode=c.mode(name),
                    action=policy.action,
                    purge=policy.purge,
                    grace=policy.grace if grace is None else grace,
                )
                plans.append(
                    plan_quarantine(
                        c.session.store(name),
                        c.sources(name),
                        action=policy.action,
                        mode=c.mode(name),
                        min_age=policy.min_age,
                        grace=policy.grace if grace is None else grace,
                        max_fraction=policy.max_fraction if max_fraction is None else max_fraction,
                        trash_prefix=policy.trash_prefix,
                        exclude=policy.exclude,
                        show=show,
                        progress=progress,
                        expected=last_listing(c.catalog, name),
                        released=c.session.released(name),
                        watch=c.watch("store", name) if policy.age == "unreferenced" else None,
                    )
                )
                c.record("listed", name, plans[-1].scan.listed.count)  # the next listing's total
        return cls(c, plans, progress)

    @property
    def scans(self) -> list[StoreScan]:
        """The scan of every store, in the order planned."""
        return [plan.scan for plan in self._plans]

    def preview(self) -> QuarantineOutcome:
        """The scans (candidates per store); nothing moves."""
        self._spend()
        self._drop()
        return QuarantineOutcome(self.scans)

    def execute(self) -> QuarantineOutcome:
        """Quarantine the candidates of every ``collect`` store, one store after the other."""
        self._spend()
        c = self._collector
        assert c.run_id is not None
        outcome = QuarantineOutcome(self.scans)
        try:
            for plan in self._plans:
                if plan.scan.action != "collect":
                    plan.discard()
                    continue
                result = plan.execute(
                    c.journal,
                    run_id=c.run_id,
                    check_lease=c.check_lease,
                    progress=self._progress,
                    on_quarantined=functools.partial(c.archive.consume_released, plan.store.name),
                )
                outcome.quarantined.append(result)
                c.record("quarantined", result.store, result)
        finally:
            self._drop()
        return outcome

    def _drop(self) -> None:
        _discard_unused(self._plans)


def _discard_unused(plans: Sequence[QuarantinePlan] | Sequence[PurgePlan]) -> None:
    """Discard every plan not executed: its spool is closed now, not when it is collected."""
    for plan in plans:
        if not plan.used:
            plan.discard()


# -- purge --------------------------------------------------------------------------------


class PurgeStep(_Once):
    """The due entries of every store; executing purges them, re-checked against every source."""

    _what = "purge"

    def __init__(self, collector: Collector, plans: list[PurgePlan], progress: ProgressLike = None) -> None:
        self._collector = collector
        self._plans = plans
        self._progress = progress

    @classmethod
    def plan(
        cls,
        c: Collector,
        names: Sequence[str],
        due_before: datetime | None,
        quarantined_before: datetime | None,
        progress: ProgressLike = None,
    ) -> PurgeStep:
        for name in names:
            # the bucket must still expire what a lifecycle purge leaves to it, and no sooner than grace
            require_purgeable(c.session.store(name), purge=c.policy(name).purge, grace=c.policy(name).grace)
        plans: list[PurgePlan] = []
        with discard_on_error(plans):
            for name in names:
                policy = c.policy(name)
                plans.append(
                    plan_purge(
                        c.session.store(name),
                        c.sources(name),
                        c.journal,
                        now=due_before,
                        trash_prefix=policy.trash_prefix,
                        quarantined_before=quarantined_before,
                        progress=progress,
                        lifecycle=policy.purge == "lifecycle",
                    )
                )
        return cls(c, plans, progress)

    def preview(self) -> list[PurgeResult]:
        """Per store: due, would purge (count and bytes), would restore, refused."""
        self._spend()
        try:
            return [plan.preview() for plan in self._plans]
        finally:
            self._drop()

    def execute(self) -> list[PurgeResult]:
        """Purge every store's due entries (see :mod:`reclaim.lifecycle.purge`)."""
        self._spend()
        c = self._collector
        assert c.run_id is not None
        results = []
        try:
            for plan in self._plans:
                result = plan.execute(
                    c.journal, run_id=c.run_id, check_lease=c.check_lease, progress=self._progress
                )
                results.append(result)
                c.record("purged", result.store, result)
        finally:
            self._drop()
        return results

    def _drop(self) -> None:
        _discard_unused(self._plans)


# -- restore of objects -------------------------------------------------------------------


class RestoreStep(_Once):
    """The selected entries of each store; executing brings their objects back."""

    _what = "restore"

    def __init__(
        self, collector: Collector, selected: dict[str, list[Entry]], match: str | None, purged: bool
    ) -> None:
        self._collector = collector
        self._selected = selected
        self._match = match
        self._purged = purged
        self._unjournaled: dict[str, list[str]] = {}
        """With ``purged``: keys asked for by name that have no PURGED entry (expired from the journal)."""

    @classmethod
    def plan(
        cls,
        c: Collector,
        keys: Sequence[str],
        store: str | None,
        run_id: int | None,
        since: datetime | None,
        match: str | None,
        purged: bool,
    ) -> RestoreStep:
        require_restore_selection(keys, store, run_id, since, match)
        names = c.session.store_names([store] if store else None)
        if keys and len(names) > 1:
            raise ConfigError("restoring by key needs --store (several stores are configured)")
        if run_id is not None and c.catalog.get_run(run_id) is None:
            raise UnknownItem(f"run {run_id} does not exist (see 'reclaim runs')", run=run_id)
        if purged:
            for name in names:
                if not is_versioned(c.session.store(name)):
                    raise ConfigError(
                        f"store {name!r}: restoring purged objects needs a versioned S3 bucket "
                        "(they come back from the noncurrent version the bucket keeps)"
                    )
        state, adjective = (State.PURGED, "purged") if purged else (State.QUARANTINED, "quarantined")
        selected: dict[str, list[Entry]] = {}
        unjournaled: dict[str, list[str]] = {}
        for name in names:
            entries = _select_all(c.journal, name, (state,), keys or None, run_id, since)
            if keys:
                found = {e.key for e in entries}
                missing = [k for k in keys if k not in found]
                live = [k for k in missing if c.session.store(name).exists(k)] if purged else missing
                if live:
                    # a key with an object stored at it is not purged, whatever its versions
                    raise UnknownItem(
                        f"store {name!r}: no {adjective} object with key {live[0]!r}",
                        store=name,
                        key=live[0],
                    )
                if missing:
                    # the journal entry expired (retention): the bucket's versions of the key decide
                    unjournaled[name] = [k for k in dict.fromkeys(missing) if _matches(k, match)]
            selected[name] = [e for e in entries if _matches(e.key, match)]
        step = cls(c, selected, match, purged)
        step._unjournaled = unjournaled
        return step

    def preview(self) -> dict[str, RestoreResult]:
        """Per store: how many objects (one per key) and bytes would come back."""
        self._spend()
        out = {}
        for name, entries in self._selected.items():
            # one per key: a purged key may have several episodes
            sizes = {e.key: e.size or 0 for e in entries}
            sizes |= {key: sizes.get(key, 0) for key in self._unjournaled.get(name, ())}
            out[name] = RestoreResult(restored=len(sizes), restored_bytes=sum(sizes.values()))
        return out

    def execute(self) -> dict[str, RestoreResult]:
        """Restore the selected entries of every store, the lease checked before each."""
        self._spend()
        c = self._collector
        out = {}
        for name, entries in self._selected.items():
            if self._purged:
                result = restore_purged(
                    c.session.store(name),
                    c.journal,
                    entries,
                    run_id=c.run_id,
                    trash_prefix=c.policy(name).trash_prefix,
                    match=self._match,
                    check_lease=c.check_lease,
                    progress=self.progress,
                    unjournaled=self._unjournaled.get(name, ()),
                )
            else:
                result = restore_entries(
                    c.session.store(name),
                    c.journal,
                    entries,
                    run_id=c.run_id,
                    trash_prefix=c.policy(name).trash_prefix,
                    match=self._match,
                    check_lease=c.check_lease,
                    progress=self.progress,
                )
            out[name] = result
            c.record("restored", name, result)
        return out


def require_restore_selection(
    keys: Sequence[str], store: str | None, run_id: int | None, since: datetime | None, match: str | None
) -> None:
    """Raise :class:`ConfigError` unless the restore selects something (never "everything" by default)."""
    if not (keys or store or run_id is not None or since or match):
        raise ConfigError("say what to restore: keys, --store, --run, --since or --match")


def require_row_selection(
    collection: str | None, pks: Sequence[str], run_id: int | None, since: datetime | None
) -> None:
    """Raise :class:`ConfigError` unless a row restore selects something (and keys with their collection)."""
    if not (collection or run_id is not None or since):
        raise ConfigError("say which rows to restore: --collection, --run or --since")
    if pks and not collection:
        raise ConfigError("restoring rows by primary key needs --collection")


def _matches(key: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(key, pattern)


def _select_all(
    journal: Journal,
    store: str,
    states: Sequence[State],
    keys: Sequence[str] | None,
    run_id: int | None,
    since: datetime | None,
) -> list[Entry]:
    out: list[Entry] = []
    after = 0
    while batch := journal.select(
        store=store, states=states, keys=keys, run_id=run_id, since=since, after_id=after
    ):
        out.extend(batch)
        after = batch[-1].id
    return out


# -- row collections ----------------------------------------------------------------------


@dataclass
class RowsOutcome:
    """What collecting the row collections did: results of ``collect`` ones, scans of the others.

    A preview holds a scan of every collection (what would be archived).
    """

    collections: list[CollectionResult] = field(default_factory=list)
    scans: list[CollectionScan] = field(default_factory=list)


class RowsStep(_Once):
    """Every collection, referencing tables first (an ``Asset`` before the ``AssetBlob`` it points at)."""

    _what = "row collection"

    def __init__(self, collector: Collector, order: list[str], now: datetime, show: int) -> None:
        self._collector = collector
        self.order = order
        self._now = now
        self._show = show

    @classmethod
    def plan(cls, c: Collector, now: datetime, show: int) -> RowsStep:
        tables = c.session.collections()  # reflects and validates every collection
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
        return cls(c, order, now, show)

    def preview(self) -> RowsOutcome:
        """A scan of every collection: candidate rows and their archived size."""
        self._spend()
        return RowsOutcome(scans=[self._scan(name) for name in self.order])

    def execute(self) -> RowsOutcome:
        """Archive and delete the candidates of every ``collect`` collection; count report-only ones.

        A collection with ``age = "unreferenced"`` is first scanned whole (its
        clock recorded, page by page), then collected by that clock.
        """
        self._spend()
        c = self._collector
        assert c.run_id is not None
        outcome = RowsOutcome()
        for name in self.order:
            ct = c.session.collection(name)
            if ct.config.action == "report":
                outcome.scans.append(self._scan(name))
                continue
            watch = self._watch(name)
            if watch is not None:
                scan_collection(ct, c.archive, now=self._now, progress=self.progress, watch=watch)
            result = collect_collection(
                ct,
                c.archive,
                run_id=c.run_id,
                now=self._now,
                shared=c.session.shares_catalog(name),
                check_lease=c.check_lease,
                show=self._show,
                progress=self.progress,
                watch=watch,
                sizer=data_sizer(c.config, ct, c.session.store),
            )
            if ct.follows:
                # the archived rows' objects, in the same run (and any a killed run left pending)
                followed = follow_pending(c, collection=name).get(name, Followed())
                result.objects = followed.quarantined.count
                result.objects_bytes = followed.quarantined.bytes
                result.objects_kept = followed.kept
            outcome.collections.append(result)
            c.record("collections", name, result)
        return outcome

    def _watch(self, name: str) -> Watch | None:
        c = self._collector
        if c.config.collections[name].age != "unreferenced":
            return None
        return c.watch("collection", name, now=self._now)

    def _scan(self, name: str) -> CollectionScan:
        c = self._collector
        ct = c.session.collection(name)
        scan = scan_collection(
            ct,
            c.archive,
            now=self._now,
            show=self._show,
            progress=self.progress,
            watch=self._watch(name),
            sizer=data_sizer(c.config, ct, c.session.store),
        )
        if ct.config.action == "report":
            reported: dict[str, object] = {
                "rows": scan.candidates,
                "row_bytes": scan.row_bytes,
                "data_bytes": scan.data_bytes,
            }
            if scan.samples:
                reported["samples"] = scan.samples
            c.record("reported", name, reported)
        return scan


@dataclass
class RowRestoreOutcome:
    """What a restore of archived rows did (or would do)."""

    selected: int
    result: RowRestoreResult


class RowRestoreStep(_Once):
    """Archived rows selected, with the rows they reference that were archived too, in order."""

    _what = "row restore"

    def __init__(self, collector: Collector, selected: int, plan: RowRestorePlan) -> None:
        self._collector = collector
        self._selected = selected
        self._plan = plan

    @classmethod
    def plan(
        cls,
        c: Collector,
        collection: str | None,
        pks: Sequence[str],
        run_id: int | None,
        since: datetime | None,
    ) -> RowRestoreStep:
        require_row_selection(collection, pks, run_id, since)
        names = c.session.collection_names([collection] if collection else None)
        if run_id is not None and c.catalog.get_run(run_id) is None:
            raise UnknownItem(f"run {run_id} does not exist (see 'reclaim runs')", run=run_id)
        selected: list[ArchivedRow] = []
        for name in names:
            if pks:
                for pk in pks:
                    found = c.archive.select(collection=name, pk=_pk_spelling(pk), run_id=run_id, since=since)
                    if not found:
                        raise UnknownItem(
                            f"collection {name!r}: no archived row with primary key {pk}",
                            collection=name,
                            pk=pk,
                        )
                    selected += found
            else:
                selected += c.archive.select(collection=name, run_id=run_id, since=since)
        tables = c.session.collections()
        shared = {name: c.session.shares_catalog(name) for name in tables}
        plan = plan_row_restore(selected, tables, c.archive, shared=shared)
        _refuse_purged_objects(c, plan.rows)
        return cls(c, len(selected), plan)

    def preview(self) -> RowRestoreOutcome:
        """The rows that would be inserted again, per collection, and the objects they own."""
        self._spend()
        result = self._plan.preview()
        for store, entries in owned_entries(self._collector, self._plan.rows).items():
            if entries:
                result.objects[store] = len(entries)
        return RowRestoreOutcome(self._selected, result)

    def execute(self) -> RowRestoreOutcome:
        """Insert every planned row again, the lease checked before each, the objects it owns first."""
        self._spend()
        c = self._collector
        assert c.run_id is not None
        objects: dict[str, int] = {}

        def restore_objects(row: ArchivedRow) -> None:
            for store, restored in restore_owned(c, row).items():
                objects[store] = objects.get(store, 0) + restored.restored

        result = self._plan.execute(
            c.archive,
            run_id=c.run_id,
            check_lease=c.check_lease,
            progress=self.progress,
            before=restore_objects,
        )
        result.objects = objects
        c.counts["rows_restored"] = to_jsonable(result)
        return RowRestoreOutcome(self._selected, result)


def _refuse_purged_objects(c: Collector, rows: Sequence[ArchivedRow]) -> None:
    """Refuse (:class:`UnsafeToProceed`) a row whose owned object its expiry purged already.

    Its retention ended and the cycle that expires it was stopped between the
    purge of its objects and the row's expiry: restored, the row would point
    at nothing. The next cycle expires it.
    """
    for link in c.archive.links.of_rows([row.id for row in rows]):
        if link.entry_id is None or link.store not in c.config.stores:
            continue
        entry = c.journal.get(link.entry_id)
        if entry is None or entry.state is not State.PURGED or c.journal.active(link.store, link.key):
            continue
        row = next(r for r in rows if r.id == link.row_id)
        raise UnsafeToProceed(
            f"collection {row.collection!r}: archived row {row.pk} is past its retention and its object "
            f"{link.key!r} (store {link.store!r}) was purged at its expiry; nothing was restored",
            collection=row.collection,
        )


def _pk_spelling(pk: str) -> str:
    """``5`` or ``a,b`` as the archive spells primary keys (a JSON list is taken as it is)."""
    if pk.startswith("["):
        return pk
    return pk_text(pk.split(","))


# -- expiry -------------------------------------------------------------------------------


@dataclass
class ExpireOutcome:
    """Archived rows past their retention, and finished journal entries past their store's, per store."""

    rows: int = 0
    entries: dict[str, int] = field(default_factory=dict)
    objects: dict[str, PurgeResult] = field(default_factory=dict)
    """Per store, the purge of the objects that rows past their retention owned (``follow``)."""


class ExpireStep(_Once):
    """Forget what is past its retention: archived rows (their objects purged first), finished entries."""

    _what = "expiry"

    def __init__(self, collector: Collector) -> None:
        self._collector = collector

    def preview(self) -> ExpireOutcome:
        """How many archived rows and journal entries would be deleted now."""
        self._spend()
        c = self._collector
        now = datetime.now(UTC)
        outcome = ExpireOutcome(rows=c.archive.expirable(now))
        outcome.objects = purge_expiring(c, now, dry_run=True)
        for name, policy in c.config.stores.items():
            outcome.entries[name] = c.journal.expirable(now - policy.retention, store=name)
        return outcome

    def execute(self) -> ExpireOutcome:
        """Delete them (active entries and records in flight are never deleted)."""
        self._spend()
        c = self._collector
        now = datetime.now(UTC)
        # the objects rows past their retention own are purged (re-checked) before the rows expire;
        # the keys the expired rows held are released: collected, never reported as strays
        objects = purge_expiring(c, now, dry_run=False)
        outcome = ExpireOutcome(rows=c.archive.expire(now, release=releaser(c.config)), objects=objects)
        for name, policy in c.config.stores.items():
            outcome.entries[name] = c.journal.expire(now - policy.retention, store=name)
        c.counts["expired"] = {"rows": outcome.rows, "entries": outcome.entries}
        if objects:
            c.counts["expired"]["objects"] = {name: to_jsonable(result) for name, result in objects.items()}
        return outcome
