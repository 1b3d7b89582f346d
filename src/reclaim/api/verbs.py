"""The mutating commands and ``status``, ``runs``, ``lock``, ``ensure`` as typed functions."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.api.collector import Collector, close_dead_run, collector, open_journal
from reclaim.api.reports import to_jsonable
from reclaim.api.session import ConfigLike
from reclaim.catalog import Entry, Journal, LeaseInfo, Leases, RunRecord, State
from reclaim.errors import ConfigError, ReclaimError
from reclaim.lifecycle import (
    Ensured,
    PurgeResult,
    QuarantineResult,
    RecoverResult,
    RestoreResult,
    StoreScan,
    ensure_key,
    plan_purge,
    plan_quarantine,
    restore_entries,
    restore_purged,
)
from reclaim.lifecycle.progress import ProgressLike, last_listing
from reclaim.lifecycle.rows import RowRecovery

__all__ = [
    "LifecycleReport",
    "UnknownItem",
    "collect",
    "ensure",
    "lock",
    "purge",
    "quarantine",
    "quarantine_stores",
    "recover",
    "restore",
    "runs",
]


class UnknownItem(ReclaimError):
    """A restore named a key or run the journal does not know."""

    exit_code = 8


@dataclass
class LifecycleReport:
    """What a quarantine, purge, collect, restore or recover run did (or would do, for a dry run)."""

    command: str
    dry_run: bool
    run_id: int | None
    scans: list[StoreScan] = field(default_factory=list)
    quarantined: list[QuarantineResult] = field(default_factory=list)
    purged: list[PurgeResult] = field(default_factory=list)
    restored: dict[str, RestoreResult] = field(default_factory=dict)
    recovered: list[RecoverResult] = field(default_factory=list)
    rows_recovered: RowRecovery | None = None
    """Archive records of row collections settled by recovery."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return dict(to_jsonable(self))


def quarantine(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    dry_run: bool = False,
    max_fraction: float | None = None,
    show: int = 0,
    grace: timedelta | None = None,
    progress: ProgressLike = None,
) -> LifecycleReport:
    """Phase 1: scan each store and quarantine its candidates (``move`` to trash or ``mark``).

    Every store is scanned and guarded before the first object of any store
    moves: an error or a ``max_fraction`` breach anywhere aborts the whole run
    (:class:`~reclaim.errors.UnsafeToProceed`, exit 7). ``max_fraction``
    overrides the configured share for a known backlog. Report-only stores are
    scanned and never touched. ``progress`` hears of each listing and each
    store's quarantine (see :mod:`reclaim.lifecycle.progress`).
    """
    options = {"stores": stores, "max_fraction": max_fraction, "grace": grace}
    with collector(config, command="quarantine", options=options, dry_run=dry_run) as c:
        report = LifecycleReport("quarantine", dry_run, c.run_id, recovered=c.recovered)
        report.scans, report.quarantined = quarantine_stores(
            c,
            c.session.store_names(stores),
            dry_run=dry_run,
            show=show,
            progress=progress,
            grace=grace,
            max_fraction=max_fraction,
        )
        c.counts["scanned"] = {s.store: {"candidates": s.candidates.count} for s in report.scans}
        return report


def quarantine_stores(
    c: Collector,
    names: Sequence[str],
    *,
    dry_run: bool,
    show: int,
    progress: ProgressLike,
    grace: timedelta | None = None,
    max_fraction: float | None = None,
) -> tuple[list[StoreScan], list[QuarantineResult]]:
    """Scan and guard every store in ``names`` first, then quarantine the candidates of each.

    An error or a ``max_fraction`` breach in any store aborts before the first
    object of any store moves. Report-only stores (and a dry run) are only scanned.
    """
    plans = []
    scans: list[StoreScan] = []
    results: list[QuarantineResult] = []
    try:
        for name in names:
            cfg = c.session.config.stores[name]
            plan = plan_quarantine(
                c.session.store(name),
                c.session.sources(name),
                action=cfg.action,
                mode=c.mode(name),
                min_age=cfg.min_age,
                grace=cfg.grace if grace is None else grace,
                max_fraction=cfg.max_fraction if max_fraction is None else max_fraction,
                trash_prefix=cfg.trash_prefix,
                exclude=cfg.exclude,
                show=show,
                progress=progress,
                expected=last_listing(c.catalog, name),
            )
            plans.append(plan)
            scans.append(plan.scan)
            c.counts.setdefault("listed", {})[name] = plan.scan.listed.count  # the next listing's total
        for plan in plans:
            if dry_run or plan.scan.action != "collect":
                plan.discard()
                continue
            assert c.run_id is not None
            result = plan.execute(c.journal, run_id=c.run_id, check_lease=c.check_lease, progress=progress)
            results.append(result)
            c.counts.setdefault("quarantined", {})[result.store] = to_jsonable(result)
    finally:
        for plan in plans:
            if not plan.used:
                plan.discard()
    return scans, results


def purge(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    dry_run: bool = False,
    due_before: datetime | None = None,
    older_than: timedelta | None = None,
    progress: ProgressLike = None,
) -> LifecycleReport:
    """Phase 2: purge quarantined objects past their grace, re-checking each against every source now.

    Objects referenced again are restored instead. A dry run counts what is due
    and how many the re-check would restore. For a deliberate earlier purge,
    ``due_before`` purges the entries due by that time (instead of now) and
    ``older_than`` those quarantined at least that long ago, whatever their due
    time; both are re-checked and journaled like any purge, and recorded in
    the run's options. ``progress`` hears of each store's re-check and purge.
    Raises ``ConfigError`` when both are given or ``older_than`` is negative.
    """
    if due_before is not None and older_than is not None:
        raise ConfigError("give --due-before or --older-than, not both", field="--older-than")
    if older_than is not None and older_than < timedelta(0):
        raise ConfigError("must not be negative", field="--older-than", value=older_than)
    started = datetime.now(UTC)
    cutoff = started - older_than if older_than is not None else None
    options: dict[str, Any] = {"stores": stores}
    if due_before is not None:
        options["due_before"] = due_before
    if cutoff is not None:
        options["quarantined_before"] = cutoff
    with collector(config, command="purge", options=options, dry_run=dry_run) as c:
        report = LifecycleReport("purge", dry_run, c.run_id, recovered=c.recovered)
        for name in c.session.store_names(stores):
            trash = c.session.config.stores[name].trash_prefix
            plan = plan_purge(
                c.session.store(name),
                c.session.sources(name),
                c.journal,
                now=due_before,
                trash_prefix=trash,
                quarantined_before=cutoff,
                progress=progress,
            )
            if dry_run:
                report.purged.append(plan.preview())
                continue
            assert c.run_id is not None
            result = plan.execute(c.journal, run_id=c.run_id, check_lease=c.check_lease, progress=progress)
            report.purged.append(result)
            c.counts.setdefault("purged", {})[name] = to_jsonable(result)
        return report


def collect(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    dry_run: bool = False,
    progress: ProgressLike = None,
) -> LifecycleReport:
    """Quarantine then purge at once (grace 0): for tests and small setups only.

    Emits a :class:`DeprecationWarning`: the two-phase form (``quarantine`` now,
    ``purge`` after ``grace``) is the one that gives writers time to claim.
    """
    warnings.warn(
        "collect() purges without a grace period; use quarantine() and purge() on a schedule instead",
        DeprecationWarning,
        stacklevel=2,
    )
    first = quarantine(config, stores=stores, dry_run=dry_run, grace=timedelta(0), progress=progress)
    if dry_run:
        first.command = "collect"
        return first
    second = purge(config, stores=stores, progress=progress)
    return LifecycleReport(
        "collect",
        False,
        second.run_id,
        scans=first.scans,
        quarantined=first.quarantined,
        purged=second.purged,
        recovered=first.recovered + second.recovered,
    )


def restore(
    config: ConfigLike,
    *,
    keys: Sequence[str] = (),
    store: str | None = None,
    run_id: int | None = None,
    since: datetime | None = None,
    match: str | None = None,
    dry_run: bool = False,
    purged: bool = False,
    progress: ProgressLike = None,
) -> LifecycleReport:
    """Bring quarantined objects back: by key (``store`` required when several stores exist), by the
    run that quarantined them, by store, by quarantine time (``since``) or by key glob (``match``).

    With ``purged``, bring back purged objects instead, selected the same way,
    from the newest noncurrent version a versioned S3 bucket keeps of each (see
    :func:`reclaim.lifecycle.restore_purged`); keys whose version is gone are
    reported as ``missing``. Raises :class:`ConfigError` for a store that keeps
    no versions (not S3). ``progress`` hears of each store's restore.

    Raises :class:`UnknownItem` (exit 8) for a key that has no quarantined (with
    ``purged``: purged) entry or a run id that does not exist, before anything is
    restored.
    """
    if not (keys or store or run_id is not None or since or match):
        raise ConfigError("say what to restore: keys, --store, --run, --since or --match")
    options = {"keys": list(keys), "store": store, "run": run_id, "since": since, "match": match}
    if purged:
        options["purged"] = True
    state, adjective = (State.PURGED, "purged") if purged else (State.QUARANTINED, "quarantined")
    with collector(config, command="restore", options=options, dry_run=dry_run) as c:
        names = c.session.store_names([store] if store else None)
        if keys and len(names) > 1:
            raise ConfigError("restoring by key needs --store (several stores are configured)")
        if run_id is not None and c.catalog.get_run(run_id) is None:
            raise UnknownItem(f"run {run_id} does not exist (see 'reclaim runs')")
        if purged:
            for name in names:
                if getattr(c.session.store(name), "restore_version", None) is None:
                    raise ConfigError(
                        f"store {name!r}: restoring purged objects needs a versioned S3 bucket "
                        "(they come back from the noncurrent version the bucket keeps)"
                    )
        report = LifecycleReport("restore", dry_run, c.run_id, recovered=c.recovered)
        for name in names:
            entries = _select_all(
                c.journal, name, states=(state,), keys=keys or None, run_id=run_id, since=since
            )
            if keys:
                found = {e.key for e in entries}
                missing = [k for k in keys if k not in found]
                if missing:
                    raise UnknownItem(f"store {name!r}: no {adjective} object with key {missing[0]!r}")
            if dry_run:
                # one per key (a purged key may have several episodes), only keys matching the glob
                matching = {e.key: e.size or 0 for e in entries if _matches(e.key, match)}
                size = sum(matching.values())
                report.restored[name] = RestoreResult(restored=len(matching), restored_bytes=size)
                continue
            restore_step = restore_purged if purged else restore_entries
            result = restore_step(
                c.session.store(name),
                c.journal,
                entries,
                run_id=c.run_id,
                trash_prefix=c.session.config.stores[name].trash_prefix,
                match=match,
                check_lease=c.check_lease,
                progress=progress,
            )
            report.restored[name] = result
            c.counts.setdefault("restored", {})[name] = to_jsonable(result)
        return report


def _matches(key: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(key, pattern)


def _select_all(
    journal: Journal,
    store: str,
    *,
    states: Sequence[State] = (State.QUARANTINED,),
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


def recover(config: ConfigLike) -> LifecycleReport:
    """Finish or roll back whatever a killed run left in flight (also done by every mutating command)."""
    with collector(config, command="recover", options={}, dry_run=False) as c:
        return LifecycleReport(
            "recover", False, c.run_id, recovered=c.recovered, rows_recovered=c.rows_recovered
        )


def ensure(config: ConfigLike, store: str, key: str, *, timeout: float = 60.0) -> Ensured:
    """For writers reusing an existing key: call after committing the row that references it.

    Returns ``present`` (the object is at its key), ``restored`` (it was
    quarantined and is back now) or ``gone`` (purged: upload it again). Needs no
    lease and records no run; see :mod:`reclaim.lifecycle.ensure`.
    """
    with open_journal(config, lock_timeout=timeout) as (session, _catalog, journal):
        names = session.store_names([store])
        trash = session.config.stores[names[0]].trash_prefix
        return ensure_key(session.store(names[0]), journal, key, timeout=timeout, trash_prefix=trash)


def runs(config: ConfigLike, *, run_id: int | None = None, limit: int = 20) -> list[RunRecord]:
    """The audit log: the run ``run_id``, or the newest ``limit`` runs."""
    with open_journal(config) as (_session, catalog, _journal):
        if run_id is not None:
            record = catalog.get_run(run_id)
            if record is None:
                raise UnknownItem(f"run {run_id} does not exist")
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
