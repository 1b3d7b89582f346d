"""Restore: bring quarantined objects back, and the move-back step shared by purge and recover.

Every restore claims its entry by compare-and-set (QUARANTINED -> RESTORING)
before touching the object, so a restore and a purge can never both act on
one entry (invariant 5). The move back never overwrites: if a writer stored a
new object at the key meanwhile, the new object wins and the trash copy is
left for ``reclaim check`` to report.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from reclaim.catalog import Entry, Journal, State
from reclaim.lifecycle.faults import fault
from reclaim.stores import Store

__all__ = ["RestoreResult", "finish_restore", "restore_entries"]

LeaseCheck = Callable[[], None]


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
    """Keys re-uploaded while quarantined: the new object stays, the trash copy is left as a stray."""


def finish_restore(store: Store, journal: Journal, entry: Entry, *, run_id: int | None) -> str:
    """Move a RESTORING entry's object back to its key and confirm RESTORED.

    Returns ``restored``, ``kept_newer`` (the key was occupied: the newer object
    stays) or ``missing`` (neither copy exists: recorded as PURGED with a note).
    Idempotent: running it again after a crash finds the object at its key.
    """
    outcome = "restored"
    if entry.mode == "move" and entry.trash_key is not None:
        try:
            store.move(entry.trash_key, entry.key)
        except FileExistsError:
            outcome = "kept_newer"
        except FileNotFoundError:
            if not store.exists(entry.key):
                fault("restore.after-move")
                journal.transition(entry, State.PURGED, run_id=run_id, note="trash copy missing at restore")
                return "missing"
    fault("restore.after-move")
    note = "key re-uploaded; trash copy left in place" if outcome == "kept_newer" else None
    journal.transition(entry, State.RESTORED, run_id=run_id, note=note)
    fault("restore.after-confirm")
    return outcome


def restore_entries(
    store: Store,
    journal: Journal,
    entries: Iterable[Entry],
    *,
    run_id: int | None,
    match: str | None = None,
    check_lease: LeaseCheck | None = None,
) -> RestoreResult:
    """Restore each QUARANTINED entry in ``entries`` (optionally only keys matching the ``match`` glob)."""
    result = RestoreResult()
    for entry in entries:
        if match is not None and not fnmatch.fnmatchcase(entry.key, match):
            continue
        if check_lease is not None:
            check_lease()
        claimed = journal.transition(entry, State.RESTORING, run_id=run_id)
        if claimed is None:
            result.lost_race += 1
            continue
        fault("restore.after-claim")
        outcome = finish_restore(store, journal, claimed, run_id=run_id)
        if outcome == "missing":
            result.missing.append(entry.key)
            continue
        if outcome == "kept_newer":
            result.kept_newer.append(entry.key)
        result.restored += 1
        result.restored_bytes += entry.size or 0
    return result
