"""Objects: ``quarantine``, ``purge``, ``collect``, ``restore``, ``recover`` and ``ensure``.

Each verb is a plan of the :class:`~reclaim.lifecycle.Collector` carried out:
``collector.carry_out(collector.plan_x(...))`` previews it in a dry run and
executes it otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.config.jsonable import to_jsonable
from reclaim.errors import ConfigError
from reclaim.lifecycle import (
    Collector,
    ConfigLike,
    Ensured,
    ProgressCallback,
    PurgeResult,
    QuarantineResult,
    RecoverResult,
    RestoreResult,
    RowRecovery,
    StoreScan,
    ensure_key,
    open_journal,
    require_restore_selection,
)

__all__ = ["LifecycleReport", "collect", "ensure", "purge", "quarantine", "recover", "restore"]


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
    progress: ProgressCallback | None = None,
) -> LifecycleReport:
    """Phase 1: scan each store and quarantine its candidates (``move`` to trash or ``mark``).

    Every store is scanned and guarded before the first object of any store
    moves: an error or a ``max_fraction`` breach anywhere aborts the whole run
    (:class:`~reclaim.errors.UnsafeToProceed`, exit 7). ``max_fraction``
    overrides the configured share for a known backlog. Report-only stores are
    scanned and never touched.
    """
    options = {"stores": stores, "max_fraction": max_fraction, "grace": grace}
    with Collector.open(config, command="quarantine", options=options, dry_run=dry_run) as c:
        step = c.plan_quarantine(stores, grace=grace, max_fraction=max_fraction, show=show, progress=progress)
        outcome = c.carry_out(step)
        c.counts["scanned"] = {s.store: {"candidates": s.candidates.count} for s in outcome.scans}
        return LifecycleReport(
            "quarantine",
            dry_run,
            c.run_id,
            scans=outcome.scans,
            quarantined=outcome.quarantined,
            recovered=c.recovered,
        )


def purge(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    dry_run: bool = False,
    due_before: datetime | None = None,
    older_than: timedelta | None = None,
    progress: ProgressCallback | None = None,
) -> LifecycleReport:
    """Phase 2: purge quarantined objects past their grace, re-checking each against every source now.

    Objects referenced again are restored instead. A dry run counts what is due
    and how many the re-check would restore. For a deliberate earlier purge,
    ``due_before`` purges the entries due by that time (instead of now) and
    ``older_than`` those quarantined at least that long ago, whatever their due
    time; both are re-checked and journaled like any purge, and recorded in
    the run's options. ``progress`` hears of each store's purge. Raises
    ``ConfigError`` when both are given or ``older_than`` is negative.
    """
    if due_before is not None and older_than is not None:
        raise ConfigError("give --due-before or --older-than, not both", field="--older-than")
    if older_than is not None and older_than < timedelta(0):
        raise ConfigError("must not be negative", field="--older-than", value=older_than)
    cutoff = datetime.now(UTC) - older_than if older_than is not None else None
    options: dict[str, Any] = {"stores": stores}
    if due_before is not None:
        options["due_before"] = due_before
    if cutoff is not None:
        options["quarantined_before"] = cutoff
    with Collector.open(config, command="purge", options=options, dry_run=dry_run) as c:
        step = c.plan_purge(stores, due_before=due_before, quarantined_before=cutoff, progress=progress)
        purged = c.carry_out(step)
        return LifecycleReport("purge", dry_run, c.run_id, purged=purged, recovered=c.recovered)


def collect(
    config: ConfigLike,
    *,
    stores: Sequence[str] | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
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
    progress: ProgressCallback | None = None,
    user: str | None = None,
) -> LifecycleReport:
    """Bring quarantined objects back: by key (``store`` required when several stores exist), by the
    run that quarantined them, by store, by quarantine time (``since``) or by key glob (``match``).

    With ``purged``, bring back purged objects instead, selected the same way,
    from the newest noncurrent version a versioned S3 bucket keeps of each (see
    :func:`reclaim.lifecycle.restore_purged`); keys whose version is gone are
    reported as ``missing``. A key given by name whose purged entry has expired
    from the journal (``retention``) is restored from the bucket's versions
    alone, if no object is stored at it. Raises :class:`ConfigError` for a
    store that keeps no versions (not S3).

    Raises :class:`~reclaim.errors.UnknownItem` (exit 8) for a key that has no
    quarantined entry (with ``purged``: no purged entry and an object stored at
    the key) or a run id that does not exist, before anything is restored.
    """
    require_restore_selection(keys, store, run_id, since, match)
    options = {"keys": list(keys), "store": store, "run": run_id, "since": since, "match": match}
    if purged:
        options["purged"] = True
    with Collector.open(config, command="restore", options=options, dry_run=dry_run, user=user) as c:
        step = c.plan_restore(
            keys=keys, store=store, run_id=run_id, since=since, match=match, purged=purged, progress=progress
        )
        restored = c.carry_out(step)
        return LifecycleReport("restore", dry_run, c.run_id, restored=restored, recovered=c.recovered)


def recover(config: ConfigLike) -> LifecycleReport:
    """Finish or roll back whatever a killed run left in flight (also done by every mutating command)."""
    with Collector.open(config, command="recover", options={}, dry_run=False) as c:
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
