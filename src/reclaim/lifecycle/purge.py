"""Phase 2: purge quarantined objects whose grace has passed, after re-checking them.

:func:`plan_purge` reads the due entries once, spools them to a scratch file
(memory stays flat; see :class:`~reclaim.lifecycle.spool.EntrySpool`) and
checks each against the journal's rules (:mod:`reclaim.lifecycle.trust`).
:meth:`PurgePlan.preview` re-checks the spooled list against every source
(once, kept in the spool) and shows what a run would do with exactly that
list; :meth:`PurgePlan.execute` carries it out once, a batch
(``batch_size``, 5000 by default) at a time, each step for the whole batch
before the next, with a constant number of catalog transactions per batch:

1. claim them: compare-and-set QUARANTINED -> PURGING, one transaction (a
   concurrent ``ensure`` or restore that claimed an entry first wins, and so
   does any change since planning: the purge skips it);
2. re-check every reference source *now* (invariant 4), one query per source
   for the batch: a key referenced again is restored (PURGING -> RESTORING
   -> RESTORED). This is the re-check that decides, made after the claim;
   a real run does not re-check at planning as well; a key a writer uploaded
   again meanwhile keeps the new object, and the superseded trash copy is deleted;
3. ``mark`` mode: an object whose ETag/mtime changed since quarantine is live
   again (a writer replaced it) and is left alone (``stat_many``: one
   listing of the range on S3);
4. delete the rest, checking the lease before every request (one key at a
   time locally, 1000 keys per DeleteObjects on S3), then confirm PURGING ->
   PURGED. In ``mark`` mode on a store that renames atomically (a local
   directory) each object is first moved to ``trash_prefix + key`` and
   deleted only if the lease still holds after the move; otherwise it is
   moved back. A collector paused past its lease at any instant therefore
   deletes nothing live when it resumes: the side effect it may still make
   after its last check is a rename that it undoes (see "The lease" in the
   README for the one window left on stores without a rename).
   ``versioned`` mode: a key that serves an object again (uploaded again, or
   its marker deleted by hand) is live and left alone (one
   ``ListObjectVersions`` of the range); for the others the recorded version
   is deleted, then the delete marker (``DeleteObjects`` with version ids,
   1000 a request, the lease checked before each), so a crash in between
   leaves the key hidden, never served half-purged. With ``purge =
   "lifecycle"`` nothing is deleted: the entries are recorded PURGED with a
   note, and the bucket's noncurrent-version expiry (checked when the purge
   is planned, see :mod:`reclaim.lifecycle.versioned`) deletes the versions.

A crash after step 1 leaves PURGING entries: ``recover`` returns those whose
object still exists to QUARANTINED (the re-check will be redone) and marks
those already deleted as PURGED.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reclaim.catalog import Entry, Journal, LeaseCheck, State
from reclaim.errors import LeaseLost, PlanSpent
from reclaim.lifecycle.faults import fault
from reclaim.lifecycle.moves import Delete, Move, batch_deleter, batch_mover
from reclaim.lifecycle.progress import NULL_STEP, ProgressLike, Step, as_progress
from reclaim.lifecycle.restore import finish_restores
from reclaim.lifecycle.scan import Tally
from reclaim.lifecycle.spool import EntrySpool
from reclaim.lifecycle.trust import Refused, trusted
from reclaim.lifecycle.versioned import LIFECYCLE_NOTE, REQUEST, hidden, versioned_store
from reclaim.references import ReferenceSource, referenced_now
from reclaim.stores import Store
from reclaim.stores.partitioned import KeyRange

__all__ = ["PurgePlan", "PurgeResult", "plan_purge"]

#: due entries per batch, unless the plan is given another size
BATCH = 5000
#: keys per delete request where each request is a round trip (S3's DeleteObjects takes 1000)
_DELETE_REQUEST = 1000


@dataclass
class PurgeResult:
    """What purging one store did (or, for a dry run, would do)."""

    store: str
    due: int = 0
    purged: Tally = field(default_factory=Tally)
    restored: int = 0
    """Referenced again at the re-check, so restored."""
    changed: int = 0
    """``mark`` mode: replaced since quarantine, so left live."""
    lost_race: int = 0
    """Claimed first by ``ensure`` or a restore."""
    refused: Refused = field(default_factory=Refused)
    """Entries the journal holds inconsistently (a bad key or trash key): left alone, never deleted."""


@dataclass
class PurgePlan:
    """The entries of one store due for purge, spooled: ``preview`` shows them, ``execute`` purges them."""

    store: Store
    sources: Sequence[ReferenceSource]
    now: datetime
    spool: EntrySpool
    trash_prefix: str = "_trash/"
    """The store's trash prefix: where ``mark`` objects are staged before their delete (atomic renames)."""
    refused: Refused = field(default_factory=Refused)
    quarantined_before: datetime | None = None
    """Only entries quarantined at or before this time (``purge --older-than``), whatever their due time."""
    batch_size: int = BATCH
    """Due entries per batch: each step acts on a whole batch, in a constant number of transactions."""
    lifecycle: bool = False
    """``purge = "lifecycle"``: ``versioned`` entries are left to the bucket's noncurrent-version expiry."""
    _preview: PurgeResult | None = None
    _step: Step = field(default=NULL_STEP, repr=False)
    _used: bool = False

    @property
    def due(self) -> int:
        """How many entries the plan holds (due, and consistent in the journal)."""
        return self.spool.count

    @property
    def used(self) -> bool:
        """Whether the plan was executed or discarded (a plan is used once)."""
        return self._used

    def preview(self) -> PurgeResult:
        """What a dry run reports for exactly the planned entries: due, would purge, would restore, refused.

        The first call re-checks every planned key against the sources (one
        query per source per batch) and keeps the answer in the spool; a
        real run re-checks after its claim instead (see the module docstring).
        Like execution, it stats the ``mark`` objects that would be deleted: one
        replaced since quarantine is counted as ``changed`` (left live), never as
        would purge.
        """
        if self._used:
            raise PlanSpent("this purge plan was carried out already; plan again")
        if self._preview is None:
            would_purge = Tally()
            would_restore = would_keep = 0
            for batch in self.spool.batches(self.batch_size):
                entries = [entry for entry, _ in batch]
                referenced = referenced_now(self.sources, [entry.key for entry in entries])
                again = [entry.id for entry in entries if entry.key in referenced]
                self.spool.mark_referenced(again, True)
                self.spool.mark_referenced([e.id for e in entries if e.key not in referenced], False)
                would_restore += len(again)
                doomed = [entry for entry in entries if entry.key not in referenced]
                # what execute does next: a mark object a writer replaced since quarantine stays live
                changed = self._changed([entry for entry in doomed if entry.mode == "mark"])
                would_keep += len(changed)
                for entry in doomed:
                    if entry.id not in changed:
                        would_purge.add(entry.size)
            self._preview = PurgeResult(
                self.store.name,
                due=self.due,
                purged=would_purge,
                restored=would_restore,
                changed=would_keep,
                refused=self.refused,
            )
        return self._preview

    def discard(self) -> None:
        """Drop the plan without acting (dry run)."""
        self._used = True
        self.spool.close()

    def execute(
        self, journal: Journal, *, run_id: int, check_lease: LeaseCheck, progress: ProgressLike = None
    ) -> PurgeResult:
        """Purge every planned entry (see the module docstring); a plan runs once.

        Reports to ``progress`` (phase ``purge``). Raises
        :class:`~reclaim.errors.PlanSpent` when the plan was executed or
        discarded already, :class:`~reclaim.errors.LeaseLost` (via
        ``check_lease``) when the lease is lost, and source or store errors;
        entries already handled stay in a defined journal state.
        """
        if self._used:
            raise PlanSpent("this purge plan was carried out already; plan again")
        self._used = True
        result = PurgeResult(self.store.name, due=self.due, refused=self.refused)
        self._step = as_progress(progress).step("purge", self.store.name, self.due)
        try:
            for batch in self.spool.batches(self.batch_size):
                check_lease()
                self._step.batch(len(batch))
                self._batch([entry for entry, _ in batch], journal, run_id, result, check_lease)
        finally:
            self.spool.close()
        self._step.done()
        return result

    def _batch(
        self, batch: list[Entry], journal: Journal, run_id: int, result: PurgeResult, check_lease: LeaseCheck
    ) -> None:
        mine = journal.transition_many(batch, State.PURGING, run_id=run_id)
        claimed = [entry for entry in mine if entry is not None]
        result.lost_race += len(batch) - len(claimed)  # claimed first by ensure() or a restore
        fault("purge.after-claim")
        # re-check after the claim: a writer whose ensure() found the entry QUARANTINED
        # claimed it first; any other reference committed before this point is seen here
        referenced = referenced_now(self.sources, [e.key for e in claimed])
        fault("purge.after-recheck")
        again = [entry for entry in claimed if entry.key in referenced]
        restoring = journal.transition_many(again, State.RESTORING, run_id=run_id, note="referenced at purge")
        restored = [entry for entry in restoring if entry is not None]
        outcomes = finish_restores(self.store, journal, restored, run_id=run_id)
        # a writer uploaded the key again (a deduplicating writer found it missing): the row
        # references the new object, so the trash copy is superseded
        superseded = [
            entry.trash_key
            for entry, outcome in zip(restored, outcomes, strict=True)
            if outcome == "kept_newer" and entry.mode == "move" and entry.trash_key is not None
        ]
        if superseded:
            check_lease()
            self.store.delete(superseded)
        result.restored += len(again)
        doomed = [entry for entry in claimed if entry.key not in referenced]
        changed = self._changed([entry for entry in doomed if entry.mode == "mark"])
        changed |= self._served([entry for entry in doomed if entry.mode == "versioned"])
        if changed:
            left = [entry for entry in doomed if entry.id in changed]
            journal.transition_many(left, State.RESTORED, run_id=run_id, note="changed since quarantine")
            result.changed += len(left)
            doomed = [entry for entry in doomed if entry.id not in changed]
        expiring = [entry for entry in doomed if entry.mode == "versioned" and self.lifecycle]
        if expiring:  # the bucket's noncurrent-version expiry deletes them (checked at planning)
            doomed = [entry for entry in doomed if not (entry.mode == "versioned" and self.lifecycle)]
        self._delete_versions([entry for entry in doomed if entry.mode == "versioned"], check_lease)
        kept, replaced = self._delete([entry for entry in doomed if entry.mode != "versioned"], check_lease)
        if kept:  # left in place: purged by a later purge, after a new re-check
            back = [entry for entry in doomed if entry.id in kept]
            journal.transition_many(back, State.QUARANTINED, run_id=run_id, note="staging key occupied")
        if replaced:
            left = [entry for entry in doomed if entry.id in replaced]
            journal.transition_many(left, State.RESTORED, run_id=run_id, note="changed since quarantine")
            result.changed += len(left)
        doomed = [entry for entry in doomed if entry.id not in kept and entry.id not in replaced]
        fault("purge.after-delete")
        journal.transition_many(doomed, State.PURGED, run_id=run_id)
        journal.transition_many(expiring, State.PURGED, run_id=run_id, note=LIFECYCLE_NOTE)
        for entry in doomed + expiring:
            result.purged.add(entry.size)
        fault("purge.after-confirm")

    def _delete(self, doomed: list[Entry], check_lease: LeaseCheck) -> tuple[set[int], set[int]]:
        """Delete the objects of ``doomed``, the lease checked before every request.

        Returns the ids of the ``mark`` entries whose object was left in place
        (its staging key was taken) and of those found replaced once staged.
        """
        staged = self.store.atomic_move and bool(self.trash_prefix)
        direct = [
            e.trash_key if e.mode == "move" and e.trash_key else e.key
            for e in doomed
            if e.mode == "move" or not staged
        ]
        step = _DELETE_REQUEST if self.store.parallel_io else 1
        kept: set[int] = set()
        replaced: set[int] = set()
        marked = [entry for entry in doomed if entry.mode != "move"] if staged else []
        with batch_deleter(self.store) as delete:
            for start in range(0, len(direct), step):
                check_lease()
                fault("purge.checked")
                delete(direct[start : start + step])
                self._step.advance(len(direct[start : start + step]))
            if not marked:
                return kept, replaced
            with batch_mover(self.store) as move:
                for entry in marked:
                    outcome = self._delete_staged(entry, check_lease, move, delete)
                    if outcome == "kept":
                        kept.add(entry.id)
                    elif outcome == "replaced":
                        replaced.add(entry.id)
        return kept, replaced

    def _delete_staged(self, entry: Entry, check_lease: LeaseCheck, move: Move, delete: Delete) -> str:
        """Move a ``mark`` object aside, and delete it only if the lease held across the move.

        The rename is the one side effect a paused collector may make after its
        last check; finding the lease lost after it, the collector renames the
        object back (never over a newer one) before it stops. Returns
        ``deleted`` (or already gone), ``kept`` (the staging key holds
        something else: nothing is deleted, the entry goes back to QUARANTINED)
        or ``replaced`` (the staged object is not the one quarantined: a writer
        stored a new one; it is moved back and stays live).
        """
        staged = self.trash_prefix + entry.key
        check_lease()
        fault("purge.checked")
        try:
            move(entry.key, staged)
        except FileNotFoundError:
            return "deleted"  # already gone: the confirm records it as purged
        except FileExistsError:
            # never delete in place: the key may hold a writer's new upload by now, and the stray
            # at the staging key is another collector's (check reports it)
            return "kept"
        try:
            check_lease()
        except LeaseLost:
            # ignoring a failure is safe: recover moved it back already, or a writer stored a new
            # object at the key (the staged copy stays in the trash, where check reports it)
            with contextlib.suppress(FileNotFoundError, FileExistsError):
                move(staged, entry.key)
            raise
        self._step.advance()
        if self._replaced(entry, staged):
            with contextlib.suppress(FileNotFoundError, FileExistsError):
                move(staged, entry.key)
            return "replaced"
        delete([staged])
        return "deleted"

    def _replaced(self, entry: Entry, staged: str) -> bool:
        """Whether the object staged for ``entry`` is another than the one quarantined (ETag, else mtime)."""
        try:
            info = self.store.stat(staged)
        except FileNotFoundError:
            return False  # gone already: nothing to delete
        if entry.etag is not None and info.etag is not None:
            return info.etag != entry.etag
        return info.mtime != entry.mtime

    def _served(self, hidden_entries: list[Entry]) -> set[int]:
        """The ids of ``versioned`` entries whose key serves an object again (uploaded again): live."""
        still = hidden(self.store, hidden_entries)
        return {entry.id for entry in hidden_entries if entry.id not in still}

    def _delete_versions(self, entries: list[Entry], check_lease: LeaseCheck) -> None:
        """Delete the recorded versions, then the delete markers, 1000 a request, each after a lease check.

        Versions first: a crash (or a failed request) between the two leaves
        keys hidden by their marker, never an old version served again.
        """
        if not entries:
            return
        store = versioned_store(self.store)
        versions = [(entry.key, entry.version_id) for entry in entries if entry.version_id is not None]
        markers = [(entry.key, entry.marker_id) for entry in entries if entry.marker_id is not None]
        for start in range(0, len(versions), REQUEST):
            check_lease()
            fault("purge.checked")
            store.delete_versions(versions[start : start + REQUEST])
            self._step.advance(len(versions[start : start + REQUEST]))
        fault("purge.after-versions")
        for start in range(0, len(markers), REQUEST):
            check_lease()
            fault("purge.checked")
            store.delete_versions(markers[start : start + REQUEST])

    def _changed(self, marked: list[Entry]) -> set[int]:
        """The ids of ``mark`` entries whose object a writer replaced since quarantine (ETag, else mtime)."""
        now = self.store.stat_many([entry.key for entry in marked])
        changed: set[int] = set()
        for entry in marked:
            info = now.get(entry.key)
            if info is None:
                continue  # already gone: purging it records what happened
            if entry.etag is not None and info.etag is not None:
                if info.etag != entry.etag:
                    changed.add(entry.id)
            elif info.mtime != entry.mtime:
                changed.add(entry.id)
        return changed


def plan_purge(
    store: Store,
    sources: Sequence[ReferenceSource],
    journal: Journal,
    *,
    trash_prefix: str,
    now: datetime | None = None,
    quarantined_before: datetime | None = None,
    batch_size: int = BATCH,
    tempdir: str | None = None,
    progress: ProgressLike = None,
    key_range: KeyRange | None = None,
    lifecycle: bool = False,
) -> PurgePlan:
    """Spool the entries due now (read once, ``batch_size`` at a time); change nothing.

    Entries the journal holds inconsistently (see :mod:`reclaim.lifecycle.trust`)
    are counted in ``refused``, not in ``due``: the purge leaves them alone.
    Nothing is re-checked here: :meth:`PurgePlan.preview` re-checks the
    planned list for a dry run, :meth:`PurgePlan.execute` after its claim.

    ``now`` is the moment due times are compared with: an operator who wants an
    earlier purge passes a later one (``purge --due-before``). With
    ``quarantined_before``, the entries quarantined by then are due whatever
    their due time (``purge --older-than``). Either way every entry is
    re-checked and journaled like any other. Reading the due entries reports
    to ``progress`` (phase ``plan purge``, without a total: they are counted
    as they are read). With ``key_range`` only the due entries whose key is in
    that range are planned (one worker's part of a distributed run). With
    ``lifecycle`` (``purge = "lifecycle"``), the ``versioned`` entries are left
    to the bucket's noncurrent-version expiry; the caller checks that the
    bucket has one first (:func:`~reclaim.lifecycle.versioned.require_versioning`). Raises
    ``ValueError`` when ``batch_size`` is below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    moment = now or datetime.now(UTC)
    if quarantined_before is not None:
        moment = _EVERY_DUE_TIME
    refused = Refused()
    spool = EntrySpool(tempdir=tempdir)
    try:
        step = as_progress(progress).step("plan purge", store.name, unit="due")
        after = 0
        while batch := journal.due(store.name, moment, limit=batch_size, after_id=after):
            after = batch[-1].id
            if key_range is not None and not key_range.whole:
                batch = [entry for entry in batch if entry.key in key_range]
            batch = trusted(batch, trash_prefix=trash_prefix, refused=refused, doing="purge (plan)")
            selected = _selected(batch, quarantined_before)
            spool.add(selected)
            step.advance(len(selected))
    except BaseException:
        spool.close()
        raise
    step.done()
    return PurgePlan(
        store, sources, moment, spool, trash_prefix, refused, quarantined_before, batch_size, lifecycle
    )


#: a due time later than any entry's: with ``quarantined_before`` the quarantine time decides
_EVERY_DUE_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def _selected(batch: list[Entry], quarantined_before: datetime | None) -> list[Entry]:
    if quarantined_before is None:
        return batch
    return [entry for entry in batch if entry.created_at <= quarantined_before]
