"""Restore: bring quarantined objects back, and the move-back step shared by purge and recover.

Every restore claims its entry by compare-and-set (QUARANTINED -> RESTORING)
before touching the object, so a restore and a purge can never both act on
one entry (invariant 5). The move back never overwrites: if a writer stored a
new object at the key meanwhile, the new object wins and the trash copy is
left for ``reclaim check`` to report.

:func:`restore_entries` works a batch (``batch_size``, 500 by default) at a
time, like quarantine: one compare-and-set transaction claims the batch, the
objects move back (through the store's batch mover, see
:mod:`reclaim.lifecycle.moves`), and one transaction per outcome confirms
them (:func:`finish_restores`, which purge uses for what its re-check found
referenced). A ``versioned`` entry's object comes back by deleting its delete
marker (:func:`~reclaim.lifecycle.versioned.unhide`, 1000 a request): the
same version is current again, no copy; a key uploaded again since keeps the
new version. A crash in between leaves RESTORING entries that ``recover``
finishes with :func:`finish_restore`, one at a time.

Purged objects of a bucket that keeps versions come back with
:func:`restore_purged`: each is a new journal episode (a ``mark`` intent, then
RESTORED once the newest noncurrent version is copied back to the key), so the
journal's latest entry of the key says where it is. A crash in between leaves
the intent QUARANTINING, which recovery settles as RESTORED (mark mode moves
nothing); running the restore again copies the version if it was not copied.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from reclaim.catalog import Entry, Journal, LeaseCheck, State
from reclaim.errors import StoreError
from reclaim.lifecycle.faults import fault
from reclaim.lifecycle.moves import batch_mover
from reclaim.lifecycle.progress import ProgressLike, as_progress, size_of
from reclaim.lifecycle.trust import Refused, trusted
from reclaim.lifecycle.versioned import unhide
from reclaim.stores import Store, VersionedStore

__all__ = ["RestoreResult", "finish_restore", "finish_restores", "restore_entries", "restore_purged"]

ProgressCallback = Callable[[str, int], None]
#: entries restored per batch, unless told otherwise
BATCH = 500
_KEPT_NEWER_NOTE = "key re-uploaded; trash copy left in place"
_MISSING_NOTE = "trash copy missing at restore"
#: the notes of a ``versioned`` entry's outcomes, by outcome
_VERSIONED_NOTES = {
    "kept_newer": "key re-uploaded; the quarantined version stays noncurrent",
    "missing": "no version served at restore (the version is gone, or the key deleted again)",
}


def _note(entry: Entry, outcome: str) -> str | None:
    if entry.mode == "versioned":
        return _VERSIONED_NOTES.get(outcome)
    return {"kept_newer": _KEPT_NEWER_NOTE, "missing": _MISSING_NOTE}.get(outcome)


@dataclass
class RestoreResult:
    """What a restore did."""

    restored: int = 0
    restored_bytes: int = 0
    lost_race: int = 0
    """Entries another process claimed first (a purge or another restore)."""
    missing: list[str] = field(default_factory=list)
    """Keys whose trash copy was gone (deleted by hand) and that are not at their key either."""
    kept_newer: list[str] = field(default_factory=list)
    """Keys re-uploaded while quarantined (or after being purged): the new object stays.

    Of a quarantined key the trash copy is left as a stray; of a purged key the
    noncurrent version stays in the bucket."""
    refused: Refused = field(default_factory=Refused)
    """Entries the journal holds inconsistently (a bad key or trash key): nothing was moved."""


def finish_restore(store: Store, journal: Journal, entry: Entry, *, run_id: int | None) -> str:
    """Move a RESTORING entry's object back to its key and confirm RESTORED.

    Returns ``restored``, ``kept_newer`` (the key was occupied: the newer object
    stays) or ``missing`` (neither copy exists: recorded as PURGED with a note).
    Idempotent: running it again after a crash finds the object at its key.
    A ``versioned`` entry's marker is deleted instead (see :func:`unhide`).
    """
    outcome = "restored"
    if entry.mode == "versioned":
        outcome = unhide(store, [entry])[0]
        fault("restore.after-move")
        to = State.PURGED if outcome == "missing" else State.RESTORED
        journal.transition(entry, to, run_id=run_id, note=_note(entry, outcome))
        fault("restore.after-confirm")
        return outcome
    if entry.mode == "move" and entry.trash_key is not None:
        try:
            store.move(entry.trash_key, entry.key)
        except FileExistsError:
            outcome = "kept_newer"
        except FileNotFoundError:
            if not store.exists(entry.key):
                fault("restore.after-move")
                journal.transition(entry, State.PURGED, run_id=run_id, note=_MISSING_NOTE)
                return "missing"
    fault("restore.after-move")
    journal.transition(entry, State.RESTORED, run_id=run_id, note=_note(entry, outcome))
    fault("restore.after-confirm")
    return outcome


def finish_restores(
    store: Store, journal: Journal, entries: Sequence[Entry], *, run_id: int | None
) -> list[str]:
    """:func:`finish_restore` for a batch of RESTORING entries: each one's outcome, in order.

    The objects move back first (``restore.after-move`` once per object), then
    one transaction per outcome confirms them (``restore.after-confirm`` once
    per batch). A crash in between leaves RESTORING entries, which
    :func:`finish_restore` settles later (it finds each object at its key).
    """
    hidden = [entry for entry in entries if entry.mode == "versioned"]
    unhidden = dict(zip((e.id for e in hidden), unhide(store, hidden), strict=True))
    outcomes: list[str] = []
    with batch_mover(store) as move:
        for entry in entries:
            if entry.id in unhidden:
                outcomes.append(unhidden[entry.id])
                continue
            outcome = "restored"
            if entry.mode == "move" and entry.trash_key is not None:
                try:
                    move(entry.trash_key, entry.key)
                except FileExistsError:
                    outcome = "kept_newer"
                except FileNotFoundError:
                    if not store.exists(entry.key):
                        outcome = "missing"
            fault("restore.after-move")
            outcomes.append(outcome)
    done = list(zip(entries, outcomes, strict=True))
    # one transaction per outcome (and mode: the notes differ)
    for versioned in (False, True):
        mine = [(e, o) for e, o in done if (e.mode == "versioned") is versioned]
        for outcome, to in (
            ("missing", State.PURGED),
            ("restored", State.RESTORED),
            ("kept_newer", State.RESTORED),
        ):
            group = [e for e, o in mine if o == outcome]
            if group:
                journal.transition_many(group, to, run_id=run_id, note=_note(group[0], outcome))
    if entries:
        fault("restore.after-confirm")
    return outcomes


def restore_entries(
    store: Store,
    journal: Journal,
    entries: Iterable[Entry],
    *,
    run_id: int | None,
    trash_prefix: str,
    match: str | None = None,
    check_lease: LeaseCheck | None = None,
    progress: ProgressLike = None,
    batch_size: int = BATCH,
) -> RestoreResult:
    """Restore each QUARANTINED entry in ``entries`` (optionally only keys matching the ``match`` glob).

    ``batch_size`` entries at a time (see the module docstring). Reports to
    ``progress`` (phase ``restore``, one item per entry looked at).

    Entries the journal holds inconsistently are refused and counted in
    ``refused`` (see :mod:`reclaim.lifecycle.trust`): a trash key that is not
    ``trash_prefix + key`` could name a live object, which must not be moved.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    result = RestoreResult()
    step = as_progress(progress).step("restore", store.name, size_of(entries))
    given = iter(entries)
    while batch := list(itertools.islice(given, batch_size)):
        step.advance(len(batch))
        batch = trusted(batch, trash_prefix=trash_prefix, refused=result.refused, doing="restore")
        if match is not None:
            batch = [entry for entry in batch if fnmatch.fnmatchcase(entry.key, match)]
        if check_lease is not None:
            check_lease()
        claimed = [entry for entry in journal.transition_many(batch, State.RESTORING, run_id=run_id) if entry]
        result.lost_race += len(batch) - len(claimed)
        if claimed:
            fault("restore.after-claim")
        for entry, outcome in zip(
            claimed, finish_restores(store, journal, claimed, run_id=run_id), strict=True
        ):
            if outcome == "missing":
                result.missing.append(entry.key)
                continue
            if outcome == "kept_newer":
                result.kept_newer.append(entry.key)
            result.restored += 1
            result.restored_bytes += entry.size or 0
    step.done()
    return result


def restore_purged(
    store: Store,
    journal: Journal,
    entries: Iterable[Entry],
    *,
    run_id: int | None,
    trash_prefix: str,
    match: str | None = None,
    check_lease: LeaseCheck | None = None,
    progress: ProgressLike = None,
    unjournaled: Sequence[str] = (),
) -> RestoreResult:
    """Bring PURGED entries back from their noncurrent version (a :class:`~reclaim.stores.VersionedStore`).

    ``unjournaled`` are keys asked for by name whose PURGED entry has expired
    from the journal (``retention``): the bucket's versions of each key decide
    alone. The newest version that is no delete marker is copied back when no
    object is stored at the key (one stored there is never overwritten); a key
    the bucket keeps no version of counts as ``missing``. Each such restore is
    journaled as a new episode like any other (size and ETag unknown).

    Each key is restored once, whatever number of its PURGED entries
    ``entries`` holds. Each restore is a new episode: a ``mark`` intent with the
    purged entry's size and ETag, then RESTORED when the version was copied
    back, RESTORED with a note (and the key in ``kept_newer``) when an object is
    stored at the key again (it is never overwritten), or PURGED again (the key
    in ``missing``) when the bucket keeps no version of it. A key that has an
    active entry already counts as ``lost_race``. Entries in other states are
    skipped. Reports to ``progress`` (phase ``restore``, one item per key).
    Raises :class:`~reclaim.errors.StoreError` when ``store`` is not a ``VersionedStore``.
    """
    if not isinstance(store, VersionedStore):
        raise StoreError(store.name, "keeps no object versions to restore from")
    result = RestoreResult()
    latest: dict[str, Entry] = {}
    for entry in trusted(entries, trash_prefix=trash_prefix, refused=result.refused, doing="restore"):
        if entry.state is not State.PURGED:
            continue
        if match is not None and not fnmatch.fnmatchcase(entry.key, match):
            continue
        if entry.key not in latest or entry.id > latest[entry.key].id:
            latest[entry.key] = entry
    wanted: dict[str, Entry | None] = dict(latest)
    for key in unjournaled:
        if key not in wanted and (match is None or fnmatch.fnmatchcase(key, match)):
            wanted[key] = None
    step = as_progress(progress).step("restore", store.name, len(wanted))
    for key, purged in wanted.items():
        step.advance()
        if check_lease is not None:
            check_lease()
        intent = journal.record_intent(
            store.name,
            key,
            mode="mark",
            trash_key=None,
            size=None if purged is None else purged.size,
            mtime=None if purged is None else purged.mtime,
            etag=None if purged is None else purged.etag,
            run_id=run_id,
        )
        if intent is None:
            result.lost_race += 1
            continue
        try:
            restored = store.restore_version(key)
        except FileExistsError:
            journal.transition(intent, State.RESTORED, run_id=run_id, note="key re-uploaded")
            result.kept_newer.append(key)
            continue
        except Exception:
            _settle_after_error(store, journal, intent, run_id=run_id)
            raise
        if not restored:
            journal.transition(intent, State.PURGED, run_id=run_id, note="no noncurrent version left")
            result.missing.append(key)
            continue
        journal.transition(intent, State.RESTORED, run_id=run_id, note="restored from a noncurrent version")
        result.restored += 1
        result.restored_bytes += _size(store, key) if purged is None else purged.size or 0
    step.done()
    return result


def _size(store: Store, key: str) -> int:
    """The size of the object just restored at ``key`` (0 if the store cannot say): for the counts."""
    try:
        return store.stat(key).size or 0
    except (FileNotFoundError, StoreError):
        return 0  # ignoring this is safe: only the reported byte count is short


def _settle_after_error(store: Store, journal: Journal, intent: Entry, *, run_id: int | None) -> None:
    """End the episode of a restore that failed as the store shows it: RESTORED if the key is back.

    If the store cannot tell either, the intent stays QUARANTINING for recovery.
    """
    try:
        back = store.exists(intent.key)
    except Exception:
        return
    if back:
        journal.transition(
            intent, State.RESTORED, run_id=run_id, note="restored; the restore reported an error"
        )
    else:
        journal.transition(
            intent, State.PURGED, run_id=run_id, note="restoring the noncurrent version failed"
        )
