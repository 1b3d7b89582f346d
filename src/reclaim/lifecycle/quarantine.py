"""Phase 1: quarantine the candidates of one store, as a plan and then its execution.

:func:`plan_quarantine` scans the store (the streaming merge), spools the
candidates to a scratch file and applies the fail-closed guards (``action``,
``max_fraction``). A dry run stops there. :meth:`QuarantinePlan.execute`
quarantines each candidate with intent before action (invariant 3):

1. record a QUARANTINING journal entry (at most one active entry per key,
   enforced by the catalog);
2. re-check every reference source *now*: a key referenced since the scan is
   left alone (its entry closed as RESTORED);
3. ``stat`` again: an object replaced or removed since the scan is left alone;
4. ``move`` mode: rename the object into the trash (never over an existing
   object); ``mark`` mode: nothing moves;
5. confirm: compare-and-set QUARANTINING -> QUARANTINED with ``due_at = now + grace``.

A crash between any two steps leaves an in-flight entry that ``recover``
finishes or rolls back by looking at where the object is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from reclaim.catalog import Entry, Journal, State
from reclaim.errors import UnsafeToProceed
from reclaim.lifecycle.faults import fault
from reclaim.lifecycle.scan import StoreScan, Tally, scan_store
from reclaim.lifecycle.spool import CandidateSpool
from reclaim.references import ReferenceSource, referenced_now
from reclaim.stores import ObjectInfo, Store

__all__ = ["QuarantinePlan", "QuarantineResult", "plan_quarantine"]

LeaseCheck = Callable[[], None]
_BATCH = 500


@dataclass
class QuarantineResult:
    """What quarantining one store did."""

    store: str
    mode: str
    quarantined: Tally = field(default_factory=Tally)
    referenced_again: int = 0
    changed: int = 0
    vanished: int = 0
    already_active: int = 0


@dataclass
class QuarantinePlan:
    """The candidates of one store, counted and guarded; ``execute`` acts on them once."""

    store: Store
    sources: Sequence[ReferenceSource]
    scan: StoreScan
    spool: CandidateSpool
    mode: str
    trash_prefix: str
    grace: timedelta
    workers: int = 8
    _used: bool = False

    def execute(self, journal: Journal, *, run_id: int, check_lease: LeaseCheck) -> QuarantineResult:
        """Quarantine every spooled candidate (see the module docstring); a plan runs once.

        Raises :class:`~reclaim.errors.LeaseLost` (via ``check_lease``) when the
        lease is lost, and source or store errors; items already handled stay in
        a defined journal state.
        """
        if self._used:
            raise RuntimeError("a quarantine plan is executed once")
        self._used = True
        result = QuarantineResult(self.store.name, self.mode)
        try:
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="quarantine") as pool:
                for batch in self.spool.batches(_BATCH):
                    check_lease()
                    self._batch(batch, journal, run_id, result, pool, check_lease)
        finally:
            self.spool.close()
        return result

    @property
    def used(self) -> bool:
        """Whether the plan was executed or discarded (a plan is used once)."""
        return self._used

    def discard(self) -> None:
        """Drop the plan without acting (dry run)."""
        self._used = True
        self.spool.close()

    def _batch(
        self,
        batch: list[ObjectInfo],
        journal: Journal,
        run_id: int,
        result: QuarantineResult,
        pool: ThreadPoolExecutor,
        check_lease: LeaseCheck,
    ) -> None:
        name = self.store.name
        intents: list[tuple[ObjectInfo, Entry]] = []
        for info in batch:
            trash_key = self.trash_prefix + info.key if self.mode == "move" else None
            entry = journal.record_intent(
                name,
                info.key,
                mode=self.mode,
                trash_key=trash_key,
                size=info.size,
                mtime=info.mtime,
                etag=info.etag,
                run_id=run_id,
            )
            if entry is None:
                result.already_active += 1  # quarantined already, or claimed by a restore
                continue
            intents.append((info, entry))
        fault("quarantine.after-intent")
        # re-check after recording intent: a writer whose ensure() ran before the intent
        # committed its row before it, so its reference is seen here
        referenced = referenced_now(self.sources, [info.key for info, _ in intents])
        fault("quarantine.after-recheck")
        todo = []
        for info, entry in intents:
            if info.key in referenced:
                journal.transition(entry, State.RESTORED, run_id=run_id, note="referenced at quarantine")
                result.referenced_again += 1
            else:
                todo.append((info, entry))
        check_lease()
        outcomes = pool.map(lambda item: self._one(item[0], item[1], journal, run_id, check_lease), todo)
        for (info, _), outcome in zip(todo, outcomes, strict=True):
            if outcome == "quarantined":
                result.quarantined.add(info.size)
            elif outcome == "changed":
                result.changed += 1
            else:
                result.vanished += 1

    def _one(
        self, info: ObjectInfo, entry: Entry, journal: Journal, run_id: int, check_lease: LeaseCheck
    ) -> str:
        check_lease()  # a run that lost its lease stops before its next side effect
        store = self.store
        try:
            now = store.stat(info.key)
        except FileNotFoundError:
            journal.transition(entry, State.RESTORED, run_id=run_id, note="vanished before quarantine")
            return "vanished"
        if now.mtime != info.mtime or (info.etag is not None and now.etag != info.etag):
            journal.transition(entry, State.RESTORED, run_id=run_id, note="changed since the scan")
            return "changed"
        if self.mode == "move":
            assert entry.trash_key is not None
            try:
                store.move(info.key, entry.trash_key)
            except FileNotFoundError:
                journal.transition(entry, State.RESTORED, run_id=run_id, note="vanished before quarantine")
                return "vanished"
            except FileExistsError:
                # ignoring this is safe: the object stays live; check reports the stray trash copy
                journal.transition(entry, State.RESTORED, run_id=run_id, note="trash key already occupied")
                return "changed"
        fault("quarantine.after-move")
        due = datetime.now(UTC) + self.grace
        journal.transition(entry, State.QUARANTINED, run_id=run_id, due_at=due)
        fault("quarantine.after-confirm")
        return "quarantined"


def plan_quarantine(
    store: Store,
    sources: Sequence[ReferenceSource],
    *,
    action: str,
    mode: str,
    min_age: timedelta,
    grace: timedelta,
    max_fraction: float,
    trash_prefix: str,
    exclude: Sequence[str] = (),
    show: int = 0,
    tempdir: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> QuarantinePlan:
    """Scan ``store``, spool its candidates and apply the guards; change nothing.

    Raises :class:`UnsafeToProceed` when candidates exceed ``max_fraction`` of
    the store, and whatever the scan raises (fail closed: no plan, no moves).
    A store whose ``action`` is ``report`` gets a plan with nothing to do.
    """
    spool = CandidateSpool(tempdir=tempdir)
    try:
        report = scan_store(
            store,
            sources,
            action=action,
            min_age=min_age,
            max_fraction=max_fraction,
            trash_prefix=trash_prefix,
            exclude=exclude,
            show=show,
            progress=progress,
            on_candidate=spool.add if action == "collect" else None,
        )
        if action == "collect" and report.over_max_fraction:
            raise UnsafeToProceed(
                f"store {store.name!r}: {report.candidates.count:,} candidates are {report.fraction:.1%} of "
                f"{report.listed.count:,} objects, above max_fraction {max_fraction:.1%}; nothing was moved. "
                "If this backlog is expected, rerun with --max-fraction set above that share."
            )
    except BaseException:
        spool.close()
        raise
    return QuarantinePlan(store, sources, report, spool, mode, trash_prefix, grace)
