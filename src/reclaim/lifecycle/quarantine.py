"""Phase 1: quarantine the candidates of one store, as a plan and then its execution.

:func:`plan_quarantine` scans the store (the streaming merge), spools the
candidates to a scratch file and applies the fail-closed guards (``action``,
``max_fraction``). A dry run stops there. :meth:`QuarantinePlan.execute`
quarantines the candidates with intent before action (invariant 3), a batch
(``batch_size``, 2000 by default) at a time, each step for the whole batch
before the next, with a constant number of catalog transactions per batch:

1. record QUARANTINING journal entries (at most one active entry per key,
   enforced by the catalog; one transaction for the batch);
2. re-check every reference source *now* (one query per source for the
   batch): a key referenced since the scan is left alone (its entry closed as
   RESTORED);
3. ``stat`` again (``stat_many``: one listing of the range on S3): an object
   replaced or removed since the scan is left alone;
4. ``move`` mode: rename each object into the trash (never over an existing
   object), several at a time where the store gains from it
   (``parallel_io``), through the store's batch mover where it has one (a
   local directory opens each directory, and creates each trash directory,
   once per batch); ``mark`` mode: nothing moves; ``versioned`` mode: put a
   delete marker over each object's current version (``DeleteObjects``
   without a version id, 1000 keys a request, the lease checked before and
   after each: a request made after the lease was lost has its markers
   deleted again before the run stops);
5. confirm: compare-and-set QUARANTINING -> QUARANTINED with ``due_at = now +
   grace``, one transaction for the batch (``versioned``: with each entry's
   delete marker id).

In ``versioned`` mode the current versions of the batch are read
(``ListObjectVersions`` of the range) before step 1 instead of the stat of
step 3, so that each intent records the version its quarantine will hide:
recovery recognises the hide by a delete marker over that version. An object
replaced between that reading and the hide is hidden with its new version
above the recorded one; restoring deletes the marker and purging deletes only
the recorded version and the marker, so the newer one is served again either
way.

A candidate's key is checked once (:func:`~reclaim.lifecycle.trust.key_problem`),
and its trash key follows from it and from the trash prefix, checked once per
plan.

Every object still goes through the steps in this order; a crash between any
two (or within one) leaves in-flight entries that ``recover`` finishes or
rolls back by looking at where each object is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from reclaim.catalog import Entry, Intent, Journal, LeaseCheck, State
from reclaim.errors import LeaseLost, PlanSpent, StoreError, UnsafeToProceed
from reclaim.lifecycle.faults import fault
from reclaim.lifecycle.moves import Move, batch_mover
from reclaim.lifecycle.progress import NULL_STEP, ProgressLike, Step, as_progress
from reclaim.lifecycle.scan import StoreScan, Tally, scan_store
from reclaim.lifecycle.spool import CandidateSpool
from reclaim.lifecycle.trust import MAX_KEY, Refused, key_problem
from reclaim.lifecycle.unreferenced import Watch
from reclaim.lifecycle.versioned import REQUEST, require_versioning, versioned_store
from reclaim.references import ReferenceSource, referenced_now
from reclaim.stores import ObjectInfo, Store
from reclaim.stores.partitioned import KeyRange

__all__ = ["QuarantinePlan", "QuarantineResult", "plan_quarantine", "plan_quarantine_of"]

#: candidates per batch, unless the plan is given another size
BATCH = 2000
_MOVED = "moved"
# why an intent was rolled back (RESTORED) instead of confirmed: the entries' notes
_VANISHED = "vanished before quarantine"
_CHANGED = "changed since the scan"
_OCCUPIED = "trash key already occupied"


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
    bad_keys: Refused = field(default_factory=Refused)
    """Candidates whose key (or trash key) the store or the journal cannot hold: reported, skipped."""


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
    batch_size: int = BATCH
    """Candidates per batch: each step acts on a whole batch, in a constant number of transactions."""
    watch: Watch | None = None
    """``age = "unreferenced"``: the clock, told which objects were quarantined (a restored one
    starts again)."""
    _used: bool = False
    _step: Step = field(default=NULL_STEP, repr=False)

    def execute(
        self,
        journal: Journal,
        *,
        run_id: int,
        check_lease: LeaseCheck,
        progress: ProgressLike = None,
        on_quarantined: Callable[[list[str]], object] | None = None,
    ) -> QuarantineResult:
        """Quarantine every spooled candidate (see the module docstring); a plan runs once.

        ``on_quarantined`` is called with the keys of each batch once they are
        QUARANTINED (the collector forgets their releases then).

        Reports to ``progress`` (phase ``quarantine``: by batch, and by move
        within one). Raises :class:`~reclaim.errors.LeaseLost` (via
        ``check_lease``) when the lease is lost, and source or store errors;
        items already handled stay in a defined journal state.
        """
        if self._used:
            raise PlanSpent("this quarantine plan was carried out already; plan again")
        self._used = True
        result = QuarantineResult(self.store.name, self.mode)
        if self.mode == "versioned" and self.scan.candidates.count:
            # every path that quarantines (a store's scan, objects following their rows, the
            # incremental cycle, a worker's range) meets this: a hide on a bucket that keeps no
            # versions would delete for good
            require_versioning(self.store, grace=self.grace, lifecycle=False)
        self._step = as_progress(progress).step("quarantine", self.store.name, self.scan.candidates.count)
        try:
            with contextlib.ExitStack() as stack:
                pool = None
                if self.mode == "move" and self.store.parallel_io:
                    # each move is several round trips; locally a rename takes microseconds
                    pool = stack.enter_context(
                        ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="quarantine")
                    )
                for batch in self.spool.batches(self.batch_size):
                    check_lease()
                    self._step.batch(len(batch))
                    done = self._batch(batch, journal, run_id, result, pool, check_lease)
                    if done and on_quarantined is not None:
                        on_quarantined(done)
        finally:
            self.spool.close()
        self._step.done()
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
        pool: ThreadPoolExecutor | None,
        check_lease: LeaseCheck,
    ) -> list[str]:
        """Quarantine one batch; the keys now QUARANTINED."""
        move = self.mode == "move"
        versioned = self.mode == "versioned"
        batch = self._usable(batch, result)
        now = self._current(batch) if versioned else None
        intents = [
            Intent(
                info.key,
                info.size,
                info.mtime,
                info.etag,
                self.trash_prefix + info.key if move else None,
                version_id=now[info.key][1] if now is not None and info.key in now else None,
            )
            for info in batch
        ]
        recorded = journal.record_intents(self.store.name, intents, mode=self.mode, run_id=run_id)
        pending = [(info, entry) for info, entry in zip(batch, recorded, strict=True) if entry is not None]
        result.already_active += len(batch) - len(pending)  # quarantined already, or claimed by a restore
        fault("quarantine.after-intent")
        # re-check after recording intent: a writer whose ensure() ran before the intent
        # committed its row before it, so its reference is seen here
        referenced = referenced_now(self.sources, [info.key for info, _ in pending])
        fault("quarantine.after-recheck")
        again = [entry for info, entry in pending if info.key in referenced]
        journal.transition_many(again, State.RESTORED, run_id=run_id, note="referenced at quarantine")
        result.referenced_again += len(again)
        check_lease()
        pending = [(info, entry) for info, entry in pending if info.key not in referenced]
        seen = None if now is None else {key: info for key, (info, _) in now.items()}
        todo = self._unchanged(pending, journal, run_id, result, seen)
        markers: dict[int, str] = {}
        if move:
            outcomes = self._move_all(todo, pool, check_lease)
        elif versioned:
            outcomes = self._hide_all(todo, check_lease, markers)
        else:
            outcomes = [_MOVED] * len(todo)  # mark: nothing moves
            fault("quarantine.after-move")
        settled = [(entry, outcome) for (_, entry), outcome in zip(todo, outcomes, strict=True)]
        self._roll_back([(entry, why) for entry, why in settled if why != _MOVED], journal, run_id, result)
        confirm = [entry for entry, outcome in settled if outcome == _MOVED]
        due = datetime.now(UTC) + self.grace
        done: list[str] = []
        confirmed = journal.transition_many(
            confirm, State.QUARANTINED, run_id=run_id, due_at=due, markers=markers
        )
        for entry in confirmed:
            if entry is not None:
                result.quarantined.add(entry.size)
                done.append(entry.key)
        fault("quarantine.after-confirm")
        if self.watch is not None:
            self.watch.forget(done)
        return done

    def _usable(self, batch: list[ObjectInfo], result: QuarantineResult) -> list[ObjectInfo]:
        """The candidates whose key, and trash key in ``move`` mode, reclaim can act on; others reported.

        Skipping is safe: an object left where it is cannot be lost. One such key
        must not stop the batch (or every later run) with an error. The trash
        key is the key below a trash prefix that is a valid key prefix, so only
        its length can fail where the key passed (the full check runs for a
        prefix that is not such).
        """
        move = self.mode == "move"
        prefix = self.trash_prefix
        plain_prefix = move and key_problem(prefix + "k", "") is None
        usable = []
        for info in batch:
            problem = key_problem(info.key, prefix)
            if problem is None and move:
                trash_key = prefix + info.key
                if plain_prefix:
                    problem = _length_problem(trash_key)
                else:
                    problem = key_problem(trash_key, "")
                if problem is not None:
                    problem = f"its trash key: {problem}"
            if problem is None:
                usable.append(info)
            else:
                result.bad_keys.add(self.store.name, info.key, problem, doing="quarantine")
        return usable

    def _unchanged(
        self,
        pending: list[tuple[ObjectInfo, Entry]],
        journal: Journal,
        run_id: int,
        result: QuarantineResult,
        seen: dict[str, ObjectInfo] | None = None,
    ) -> list[tuple[ObjectInfo, Entry]]:
        """Stat the objects again (or take ``seen``, read already); roll back those removed or replaced
        since the scan, return the others."""
        now = self.store.stat_many([info.key for info, _ in pending]) if seen is None else seen
        unchanged: list[tuple[ObjectInfo, Entry]] = []
        rolled_back: list[tuple[Entry, str]] = []
        for info, entry in pending:
            current = now.get(info.key)
            if current is None:
                rolled_back.append((entry, _VANISHED))
            elif current.mtime != info.mtime or (info.etag is not None and current.etag != info.etag):
                rolled_back.append((entry, _CHANGED))
            else:
                unchanged.append((info, entry))
        self._roll_back(rolled_back, journal, run_id, result)
        return unchanged

    def _roll_back(
        self, entries: list[tuple[Entry, str]], journal: Journal, run_id: int, result: QuarantineResult
    ) -> None:
        """Close intents whose object stays live as RESTORED, one transaction per reason (the note)."""
        for note in (_VANISHED, _CHANGED, _OCCUPIED):
            closing = [entry for entry, reason in entries if reason == note]
            journal.transition_many(closing, State.RESTORED, run_id=run_id, note=note)
            if note == _VANISHED:
                result.vanished += len(closing)
            else:
                result.changed += len(closing)

    def _current(self, batch: list[ObjectInfo]) -> dict[str, tuple[ObjectInfo, str]]:
        """``versioned``: each served key's current object and version id (keys hidden or gone left out)."""
        served = versioned_store(self.store).served_versions([info.key for info in batch])
        return {key: (ObjectInfo(key, v.size, v.mtime, v.etag), v.version_id) for key, v in served.items()}

    def _hide_all(
        self, todo: list[tuple[ObjectInfo, Entry]], check_lease: LeaseCheck, markers: dict[int, str]
    ) -> list[str]:
        """``versioned``: a delete marker over each object, 1000 a request; each one's outcome.

        Fills ``markers`` (entry id -> delete marker id). A key the bucket made
        no marker for had no current version any more: vanished. The lease is
        checked before each request and after it; lost after it, the
        request's markers are deleted again (its objects served as before)
        and the run stops: a collector paused in between must not leave
        hidden an object another collector has rolled back meanwhile.
        """
        store = versioned_store(self.store)
        by_key = {entry.key: entry for _, entry in todo}
        outcomes: dict[str, str] = {}
        keys = list(by_key)
        for start in range(0, len(keys), REQUEST):
            chunk = keys[start : start + REQUEST]
            check_lease()  # a run that lost its lease stops before its next side effect
            fault("quarantine.checked")
            made = store.hide(chunk)
            try:
                check_lease()
            except LeaseLost:
                # ignoring a failure here is safe: a marker left over hides a version that
                # restore or recover brings back; nothing is deleted
                with contextlib.suppress(StoreError):
                    store.delete_versions(list(made.items()))
                raise
            fault("quarantine.after-hide")
            for key in chunk:
                if key in made:
                    markers[by_key[key].id] = made[key]
                    outcomes[key] = _MOVED
                else:
                    outcomes[key] = _VANISHED
            self._step.advance(len(chunk))
        return [outcomes[entry.key] for _, entry in todo]

    def _move_all(
        self, todo: list[tuple[ObjectInfo, Entry]], pool: ThreadPoolExecutor | None, check_lease: LeaseCheck
    ) -> list[str]:
        """Move each object to its trash key (in ``pool`` when there is one); each one's outcome."""
        items = [(info.key, entry.trash_key) for info, entry in todo]
        if pool is not None:
            single: Move = self.store.move
            return list(pool.map(lambda item: self._move(item[0], item[1], check_lease, single), items))
        with batch_mover(self.store) as move:
            return [self._move(key, trash_key, check_lease, move) for key, trash_key in items]

    def _move(self, key: str, trash_key: str | None, check_lease: LeaseCheck, move: Move) -> str:
        """``moved``, or the note that rolls the entry back: vanished, or its trash key taken."""
        check_lease()  # a run that lost its lease stops before its next side effect
        assert trash_key is not None  # move mode records a trash key with every intent
        fault("quarantine.checked")
        try:
            move(key, trash_key)
        except FileNotFoundError:
            return _VANISHED
        except FileExistsError:
            # ignoring this is safe: the object stays live; check reports the stray trash copy
            return _OCCUPIED
        try:
            check_lease()
        except LeaseLost:
            # a collector paused between its check and the move resumes here, possibly after
            # another one rolled the intent back and a writer was told the object is present:
            # put it back (never over a newer object) before stopping
            with contextlib.suppress(FileNotFoundError, FileExistsError):
                move(trash_key, key)
            raise
        fault("quarantine.after-move")
        self._step.advance()
        return _MOVED


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
    progress: ProgressLike = None,
    expected: int | None = None,
    batch_size: int = BATCH,
    key_range: KeyRange | None = None,
    scan_start: datetime | None = None,
    released: Callable[[list[str]], set[str]] | None = None,
    watch: Watch | None = None,
) -> QuarantinePlan:
    """Scan ``store``, spool its candidates and apply the guards; change nothing.

    ``batch_size`` candidates are quarantined at a time (see the module docstring).
    The scan reports to ``progress``, ``expected`` being the estimated listing;
    ``watch`` is its clock for ``age = "unreferenced"`` (see :func:`scan_store`).
    ``key_range`` and ``scan_start`` are a distributed run's: one range of
    keys, and the instant the coordinator started the store's scan (every
    range then shares one age threshold).
    With ``released`` (``strays = "report"``) strays are counted apart and never
    spooled: nothing ever quarantines them (see :func:`~reclaim.lifecycle.scan.scan_store`).

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
            expected=expected,
            on_candidate=spool.add if action == "collect" else None,
            key_range=key_range,
            scan_start=scan_start,
            released=released,
            watch=watch,
        )
        if action == "collect" and report.over_max_fraction:
            raise UnsafeToProceed(
                f"store {store.name!r}: {report.candidates.count:,} candidates are {report.fraction:.1%} of "
                f"{report.listed.count:,} objects, above max_fraction {max_fraction:.1%}; nothing was moved. "
                "If this backlog is expected, rerun with --max-fraction set above that share.",
                store=store.name,
            )
    except BaseException:
        spool.close()
        raise
    return QuarantinePlan(
        store, sources, report, spool, mode, trash_prefix, grace, batch_size=batch_size, watch=watch
    )


def plan_quarantine_of(
    store: Store,
    sources: Sequence[ReferenceSource],
    objects: Sequence[ObjectInfo],
    *,
    mode: str,
    grace: timedelta,
    trash_prefix: str,
    tempdir: str | None = None,
    batch_size: int = BATCH,
) -> QuarantinePlan:
    """A plan that quarantines exactly ``objects`` (as stat'ed just now), with no scan of the store.

    What objects that follow their rows take (:mod:`reclaim.lifecycle.follow`):
    the caller chose them; executing the plan records intents, re-checks them
    against ``sources``, stats them again and moves or marks them exactly as
    for scanned candidates (every step, fault point and rollback of the module
    docstring).
    """
    spool = CandidateSpool(tempdir=tempdir)
    scan = StoreScan(store.name, "", "collect", datetime.now(UTC), timedelta(0), 1.0)
    try:
        for info in sorted(objects, key=lambda info: info.key):
            spool.add(info)
            scan.candidates.add(info.size)
    except BaseException:
        spool.close()
        raise
    return QuarantinePlan(store, sources, scan, spool, mode, trash_prefix, grace, batch_size=batch_size)


def _length_problem(key: str) -> str | None:
    """Why ``key`` is too long for reclaim (characters, or UTF-8 bytes); ``None`` if it is not."""
    if len(key) > MAX_KEY:
        return f"the key is {len(key):,} characters long; at most {MAX_KEY:,} are supported"
    if not key.isascii():
        size = len(key.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY:
            return f"the key is {size:,} bytes long in UTF-8; at most {MAX_KEY:,} are supported"
    return None
