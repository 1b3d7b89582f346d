"""The incremental quarantine: only the keys the triggers queued, instead of the whole listing.

Planning, per ``collect`` store (nothing changes):

1. refuse unless the queue triggers are installed, current, for every
   reference source of the store (``reclaim incremental install``), and unless
   a full scan of the store succeeded within its ``full_scan_every`` (the
   safety net: strays, and whatever no trigger saw, are found only by it);
2. read the store's queue in batches (by id); each batch's distinct keys,
   with the sidecar keys they covered, are
   - skipped when the store could never list them (inside the trash,
     excluded, outside ``include``, a key the store cannot hold),
   - ``stat``-ed in one ``stat_many``: a key with no object is done,
   - kept queued when the object is younger than ``min_age`` (the next cycle
     looks again; invariant 1),
   - re-checked against every reference source exactly (one point lookup per
     source for the batch, archived rows' references included): a key still
     referenced by another row is done;
   what is left is a candidate, spooled to disk (each key once);
3. ``max_fraction`` is checked against the store's size at its last full
   scan (a queue flooded by a mass delete stops the cycle, as a full scan's
   guard would).

Executing quarantines the candidates through the normal quarantine
(:class:`~reclaim.lifecycle.quarantine.QuarantinePlan`: intent in the
journal, re-check after the intent, a second ``stat``, move or mark,
confirm), then deletes the queue rows it processed, by id: a row queued for
the same key meanwhile stays for the next cycle. A crash between the two
leaves queue rows, which the next cycle reads again (their keys are active in
the journal already): garbage, never damage. Grace, the purge re-check and
restores are those of every quarantined object.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reclaim.catalog import Catalog
from reclaim.errors import UnsafeToProceed
from reclaim.lifecycle.progress import ProgressLike, as_progress, last_listing
from reclaim.lifecycle.quarantine import QuarantinePlan, QuarantineResult
from reclaim.lifecycle.scan import StoreScan, Tally
from reclaim.lifecycle.spool import CandidateSpool, discard_on_error
from reclaim.lifecycle.steps import _Once
from reclaim.lifecycle.trust import key_problem
from reclaim.references import ReferenceSource, referenced_now
from reclaim.references.triggers import Queue, QueuedKey, trigger_set, unsupported
from reclaim.stores import Store

if TYPE_CHECKING:
    from reclaim.lifecycle.collector import Collector

__all__ = [
    "IncrementalOutcome",
    "IncrementalScan",
    "IncrementalStep",
    "last_full_scan",
    "require_triggers",
]

#: queue rows read per batch (a ``stat_many`` and one lookup per source each)
QUEUE_BATCH = 2000
#: full-scan commands: their successful runs record ``counts["listed"][store]``
_FULL_SCANS = ("run", "quarantine", "collect")
_RUNS_PER_PAGE = 200


@dataclass
class IncrementalScan:
    """What the incremental planning saw in one store's queue."""

    store: str
    action: str
    last_full_scan: datetime
    queued: int = 0
    """Queue rows read."""
    keys: int = 0
    """Distinct keys looked at (sidecar keys included)."""
    missing: int = 0
    """No object at the key: nothing to collect."""
    referenced: int = 0
    """Still referenced (by another row, or an archived one)."""
    young: Tally = field(default_factory=Tally)
    """Younger than ``min_age``: left queued for a later cycle."""
    skipped: int = 0
    """In the trash, excluded, outside ``include``, or a key the store cannot hold."""
    candidates: Tally = field(default_factory=Tally)
    kept_queued: int = 0
    """Queue rows left for a later cycle (their key's object is young)."""


@dataclass
class IncrementalOutcome:
    """The incremental scans and, when executed, each store's quarantine and the rows dequeued."""

    scans: list[IncrementalScan]
    quarantined: list[QuarantineResult] = field(default_factory=list)
    dequeued: dict[str, int] = field(default_factory=dict)


class _IdSpool:
    """Processed queue ids (by database) and the candidate keys seen, on disk."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="reclaim-queue-", suffix=".sqlite")
        os.close(fd)
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute("CREATE TABLE done (db TEXT NOT NULL, id INTEGER NOT NULL)")
        self._conn.execute("CREATE TABLE seen (key TEXT PRIMARY KEY)")

    def done(self, db: str, ids: Sequence[int]) -> None:
        self._conn.executemany("INSERT INTO done VALUES (?, ?)", [(db, i) for i in ids])

    def first_time(self, key: str) -> bool:
        return self._conn.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,)).rowcount == 1

    def ids(self, db: str, size: int = 5000) -> list[list[int]]:
        rows = self._conn.execute("SELECT id FROM done WHERE db = ? ORDER BY id", (db,))
        out: list[list[int]] = []
        while batch := [i for (i,) in rows.fetchmany(size)]:
            out.append(batch)
        return out

    def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@dataclass
class _StorePlan:
    scan: IncrementalScan
    quarantine: QuarantinePlan
    queues: dict[str, Queue]
    ids: _IdSpool

    def discard(self) -> None:
        if not self.quarantine.used:
            self.quarantine.discard()
        self.ids.close()


def last_full_scan(catalog: Catalog, store: str, *, since: datetime) -> datetime | None:
    """When the newest successful full scan of ``store`` started, if one started after ``since``.

    A full scan is a succeeded ``run``, ``quarantine`` or ``collect`` whose
    counts record the store's listing (``counts["listed"]``); incremental runs
    record none. Runs are read newest first, a page at a time, until one
    started before ``since``.
    """
    limit = _RUNS_PER_PAGE
    while True:
        records = catalog.list_runs(limit)
        for record in records:
            started = record.started_at if record.started_at.tzinfo else record.started_at.replace(tzinfo=UTC)
            if started < since:
                return None
            listed = record.counts.get("listed")
            if (
                record.status == "succeeded"
                and record.command in _FULL_SCANS
                and isinstance(listed, dict)
                and store in listed
            ):
                return started
        if len(records) < limit:
            return None
        limit *= 4


def require_triggers(c: Collector, store: str) -> dict[str, Queue]:
    """The queue of every database holding a source of ``store``, each source's triggers current.

    Raises :class:`UnsafeToProceed` naming the sources whose triggers are
    missing, stale or impossible: a source without them lets references go
    unseen, and the cycle would believe it covered the churn.
    """
    prefix = c.config.catalog.table_prefix
    configured = c.session.databases.sources(store)
    if not configured:
        raise UnsafeToProceed(f"store {store!r} has no reference sources to watch", store=store)
    queues: dict[str, Queue] = {}
    problems: list[str] = []
    installed: dict[str, dict[str, str]] = {}
    for source in configured:
        reason = unsupported(source)
        if reason is not None:
            problems.append(f"{source.name}: {reason}")
            continue
        if source.database not in queues:
            queue = Queue(source.engine, prefix, label=f"{source.database}:{prefix}queue")
            queues[source.database] = queue
            installed[source.database] = {
                i.source: i.fingerprint for i in queue.installed() if i.store == store and i.present
            }
        expected = trigger_set(store, source, prefix).fingerprint
        found = installed[source.database].get(source.name)
        if found is None:
            problems.append(f"{source.name}: no triggers installed")
        elif found != expected:
            problems.append(f"{source.name}: its triggers were installed for another configuration")
    if problems:
        raise UnsafeToProceed(
            f"store {store!r}: the incremental cycle needs current triggers on every reference source "
            f"({'; '.join(problems)}); run 'reclaim incremental install --store {store}', or run a full "
            "scan ('reclaim run')",
            store=store,
        )
    return queues


class IncrementalStep(_Once):
    """The queued keys of every ``collect`` store, checked; executing quarantines the candidates."""

    _what = "incremental"

    def __init__(self, collector: Collector, plans: list[_StorePlan], progress: ProgressLike) -> None:
        self._collector = collector
        self._plans = plans
        self._progress = progress

    @classmethod
    def plan(
        cls, c: Collector, names: Sequence[str], now: datetime, progress: ProgressLike = None
    ) -> IncrementalStep:
        """Guard and read every store's queue (see the module docstring); raises before any change."""
        plans: list[_StorePlan] = []
        with discard_on_error(plans):
            for name in names:
                if c.policy(name).action != "collect":
                    continue
                plans.append(_plan_store(c, name, now, progress))
        return cls(c, plans, progress)

    @property
    def scans(self) -> list[IncrementalScan]:
        """What planning saw in each store's queue."""
        return [plan.scan for plan in self._plans]

    def preview(self) -> IncrementalOutcome:
        """The scans; nothing is quarantined or dequeued."""
        self._spend()
        for plan in self._plans:
            plan.discard()
        return IncrementalOutcome(self.scans)

    def execute(self) -> IncrementalOutcome:
        """Quarantine every store's candidates, then dequeue the rows processed."""
        self._spend()
        c = self._collector
        assert c.run_id is not None
        outcome = IncrementalOutcome(self.scans)
        try:
            for plan in self._plans:
                result = plan.quarantine.execute(
                    c.journal, run_id=c.run_id, check_lease=c.check_lease, progress=self._progress
                )
                outcome.quarantined.append(result)
                c.record("quarantined", result.store, result)
                dequeued = 0
                for db, queue in plan.queues.items():
                    for ids in plan.ids.ids(db):
                        c.check_lease()
                        dequeued += queue.delete(ids)
                outcome.dequeued[plan.scan.store] = dequeued
                c.record("incremental", plan.scan.store, {**_counts(plan.scan), "dequeued": dequeued})
        finally:
            for plan in self._plans:
                plan.discard()
        return outcome


def _counts(scan: IncrementalScan) -> dict[str, object]:
    return {
        "queued": scan.queued,
        "keys": scan.keys,
        "missing": scan.missing,
        "referenced": scan.referenced,
        "young": scan.young.count,
        "skipped": scan.skipped,
        "candidates": scan.candidates.count,
        "kept_queued": scan.kept_queued,
        "last_full_scan": scan.last_full_scan.isoformat(),
    }


def _plan_store(c: Collector, name: str, now: datetime, progress: ProgressLike) -> _StorePlan:
    policy = c.policy(name)
    queues = require_triggers(c, name)
    since = now - policy.full_scan_every
    full = last_full_scan(c.catalog, name, since=since)
    if full is None:
        raise UnsafeToProceed(
            f"store {name!r}: no full scan succeeded within full_scan_every "
            f"({policy.full_scan_every}); the incremental cycle sees only what the triggers queued, "
            "so the full scan must run first: 'reclaim run' (or 'reclaim quarantine')",
            store=name,
        )
    sources = c.sources(name)
    store = c.session.store(name)
    scan = IncrementalScan(name, policy.action, full)
    spool = CandidateSpool()
    ids = _IdSpool()
    try:
        step = as_progress(progress).step("incremental", name, None, unit="queued")
        sidecars = sorted({s for source in sources for s in source.sidecars})
        threshold = (now - policy.min_age).timestamp()
        for db, queue in queues.items():
            after = 0
            while rows := queue.read(name, after=after, limit=QUEUE_BATCH):
                after = rows[-1].id
                scan.queued += len(rows)
                step.update(scan.queued)
                _batch(c, name, rows, db, store, sources, sidecars, threshold, scan, spool, ids)
        step.done()
        listed = last_listing(c.catalog, name) or 0
        fraction = scan.candidates.count / listed if listed else (1.0 if scan.candidates.count else 0.0)
        if fraction > policy.max_fraction:
            raise UnsafeToProceed(
                f"store {name!r}: {scan.candidates.count:,} queued candidates are {fraction:.1%} of the "
                f"{listed:,} objects its last full scan listed, above max_fraction "
                f"{policy.max_fraction:.1%}; nothing was moved (a mass delete? check it, then run a full "
                "scan with --max-fraction)",
                store=name,
            )
        report = StoreScan(
            store=name,
            url=store.url,
            action=policy.action,
            scan_start=now,
            min_age=policy.min_age,
            max_fraction=policy.max_fraction,
            candidates=scan.candidates,
        )
        plan = QuarantinePlan(store, sources, report, spool, c.mode(name), policy.trash_prefix, policy.grace)
    except BaseException:
        spool.close()
        ids.close()
        raise
    return _StorePlan(scan, plan, queues, ids)


def _batch(
    c: Collector,
    name: str,
    rows: list[QueuedKey],
    db: str,
    store: Store,
    sources: Sequence[ReferenceSource],
    sidecars: Sequence[str],
    threshold: float,
    scan: IncrementalScan,
    spool: CandidateSpool,
    ids: _IdSpool,
) -> None:
    """Decide one batch of queue rows: which keys are candidates, which rows are done."""
    policy = c.policy(name)
    covered: dict[int, list[str]] = {}
    for row in rows:
        covered[row.id] = [row.key] + [row.key + s for s in sidecars]
    keys = list(dict.fromkeys(k for ks in covered.values() for k in ks))
    scan.keys += len(keys)
    usable = []
    for key in keys:
        if _listable(key, policy.trash_prefix, policy.exclude, policy.include):
            usable.append(key)
        else:
            scan.skipped += 1
    c.check_lease()
    infos = store.stat_many(usable) if usable else {}
    scan.missing += len(usable) - len(infos)
    young: set[str] = set()
    old = []
    for key, info in infos.items():
        assert info.mtime is not None
        if info.mtime >= threshold:
            young.add(key)  # invariant 1: left queued, looked at again by a later cycle
            scan.young.add(info.size)
        else:
            old.append(key)
    referenced = referenced_now(sources, old) if old else set()
    scan.referenced += len(referenced)
    for key in old:
        if key not in referenced and ids.first_time(key):
            info = infos[key]
            scan.candidates.add(info.size)
            spool.add(info)
    done = [i for i, ks in covered.items() if not young.intersection(ks)]
    scan.kept_queued += len(covered) - len(done)
    ids.done(db, done)


def _listable(key: str, trash_prefix: str, exclude: Sequence[str], include: Sequence[str]) -> bool:
    """Whether a full scan could list ``key`` as a candidate (invariant 8)."""
    if key_problem(key, trash_prefix) is not None:
        return False
    if include and not any(key.startswith(prefix) for prefix in include):
        return False
    return not any(fnmatch.fnmatchcase(key, pattern) for pattern in exclude)
