"""Phase 2: purge quarantined objects whose grace has passed, after re-checking them.

For the due entries, in batches of 1000, each step for the whole batch
before the next (journal writes: one transaction per 500 entries):

1. claim them: compare-and-set QUARANTINED -> PURGING (a concurrent
   ``ensure`` or restore that claimed an entry first wins, and the purge
   skips it);
2. re-check every reference source *now* (invariant 4): a key referenced
   again is restored (PURGING -> RESTORING -> RESTORED); a key a writer
   uploaded again meanwhile keeps the new object, and the superseded trash
   copy is deleted;
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

A crash after step 1 leaves PURGING entries: ``recover`` returns those whose
object still exists to QUARANTINED (the re-check will be redone) and marks
those already deleted as PURGED.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reclaim.catalog import Entry, Journal, State
from reclaim.errors import LeaseLost
from reclaim.lifecycle.faults import fault
from reclaim.lifecycle.restore import finish_restore
from reclaim.lifecycle.scan import Tally
from reclaim.lifecycle.trust import Refused, trusted
from reclaim.references import ReferenceSource, referenced_now
from reclaim.stores import Store

__all__ = ["PurgePlan", "PurgeResult", "plan_purge"]

LeaseCheck = Callable[[], None]
_BATCH = 1000
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
    """The entries of one store due for purge now; ``execute`` purges them once."""

    store: Store
    sources: Sequence[ReferenceSource]
    now: datetime
    due: int
    would_restore: int
    trash_prefix: str = "_trash/"
    """The store's trash prefix: where ``mark`` objects are staged before their delete (atomic renames)."""
    refused: Refused = field(default_factory=Refused)
    quarantined_before: datetime | None = None
    """Only entries quarantined at or before this time (``purge --older-than``), whatever their due time."""
    would_purge: Tally = field(default_factory=Tally)
    """What the re-check at planning time left for deletion (a dry run's count and bytes)."""

    def preview(self) -> PurgeResult:
        """What a dry run reports: due, would purge (count and bytes), would restore, refused."""
        return PurgeResult(
            self.store.name,
            due=self.due,
            purged=self.would_purge,
            restored=self.would_restore,
            refused=self.refused,
        )

    def execute(self, journal: Journal, *, run_id: int, check_lease: LeaseCheck) -> PurgeResult:
        """Purge every due entry (see the module docstring)."""
        result = PurgeResult(self.store.name, due=self.due, refused=Refused())
        after = 0
        while True:
            check_lease()
            batch = journal.due(self.store.name, self.now, limit=_BATCH, after_id=after)
            if not batch:
                return result
            after = batch[-1].id
            selected = _selected(batch, self.quarantined_before)
            if selected:
                self._batch(selected, journal, run_id, result, check_lease)

    def _batch(
        self, batch: list[Entry], journal: Journal, run_id: int, result: PurgeResult, check_lease: LeaseCheck
    ) -> None:
        batch = trusted(batch, trash_prefix=self.trash_prefix, refused=result.refused, doing="purge")
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
        for entry in restoring:
            if (
                entry is not None
                and finish_restore(self.store, journal, entry, run_id=run_id) == "kept_newer"
            ):
                # the writer uploaded the key again (a deduplicating writer found it missing):
                # the row references the new object, so the trash copy is superseded
                assert entry.trash_key is not None
                self.store.delete([entry.trash_key])
        result.restored += len(again)
        doomed = [entry for entry in claimed if entry.key not in referenced]
        changed = self._changed([entry for entry in doomed if entry.mode == "mark"])
        if changed:
            left = [entry for entry in doomed if entry.id in changed]
            journal.transition_many(left, State.RESTORED, run_id=run_id, note="changed since quarantine")
            result.changed += len(left)
            doomed = [entry for entry in doomed if entry.id not in changed]
        kept, replaced = self._delete(doomed, check_lease)
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
        for entry in doomed:
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
        for start in range(0, len(direct), step):
            check_lease()
            fault("purge.checked")
            self.store.delete(direct[start : start + step])
        kept: set[int] = set()
        replaced: set[int] = set()
        if staged:
            for entry in doomed:
                if entry.mode != "move":
                    outcome = self._delete_staged(entry, check_lease)
                    if outcome == "kept":
                        kept.add(entry.id)
                    elif outcome == "replaced":
                        replaced.add(entry.id)
        return kept, replaced

    def _delete_staged(self, entry: Entry, check_lease: LeaseCheck) -> str:
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
            self.store.move(entry.key, staged)
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
                self.store.move(staged, entry.key)
            raise
        if self._replaced(entry, staged):
            with contextlib.suppress(FileNotFoundError, FileExistsError):
                self.store.move(staged, entry.key)
            return "replaced"
        self.store.delete([staged])
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
) -> PurgePlan:
    """Count the entries due and how many the re-check would restore now; change nothing.

    Entries the journal holds inconsistently (see :mod:`reclaim.lifecycle.trust`)
    are counted in ``refused``, not in ``due``: the purge leaves them alone.

    ``now`` is the moment due times are compared with: an operator who wants an
    earlier purge passes a later one (``purge --due-before``). With
    ``quarantined_before``, the entries quarantined by then are due whatever
    their due time (``purge --older-than``). Either way every entry is
    re-checked and journaled like any other.
    """
    moment = now or datetime.now(UTC)
    if quarantined_before is not None:
        moment = _EVERY_DUE_TIME
    due = 0
    would_restore = 0
    would_purge = Tally()
    after = 0
    refused = Refused()
    while batch := journal.due(store.name, moment, limit=_BATCH, after_id=after):
        after = batch[-1].id
        batch = trusted(batch, trash_prefix=trash_prefix, refused=refused, doing="purge (plan)")
        selected = _selected(batch, quarantined_before)
        due += len(selected)
        referenced = referenced_now(sources, [e.key for e in selected])
        would_restore += len(referenced)
        for entry in selected:
            if entry.key not in referenced:
                would_purge.add(entry.size)
    return PurgePlan(
        store, sources, moment, due, would_restore, trash_prefix, refused, quarantined_before, would_purge
    )


#: a due time later than any entry's: with ``quarantined_before`` the quarantine time decides
_EVERY_DUE_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def _selected(batch: list[Entry], quarantined_before: datetime | None) -> list[Entry]:
    if quarantined_before is None:
        return batch
    return [entry for entry in batch if entry.created_at <= quarantined_before]
