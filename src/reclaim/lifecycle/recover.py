"""Recover: finish or roll back whatever a killed run left in flight (invariant 3).

Each in-flight entry is settled by looking at where its object is; both
outcomes keep every byte:

- QUARANTINING: in ``move`` mode, the object in the trash and not at its key
  means the move happened: confirm QUARANTINED (grace starts now); otherwise
  the move did not happen: roll back to RESTORED. In ``mark`` mode nothing was
  moved: roll back to RESTORED (the next run quarantines it again).
- PURGING: if the object still exists (trash copy, or the key in ``mark``
  mode), the re-check may not have run: back to QUARANTINED, so the next purge
  re-checks it. A ``mark`` object found staged at ``trash_prefix + key`` (its
  purge was moving it aside) is moved back to its key first. If it is gone,
  the delete had happened after a clean re-check: PURGED.
- RESTORING: move the object back if it is still in the trash: RESTORED.
- ``versioned`` mode: the versions of the key decide (a delete marker over
  the recorded version means the hide happened); see
  :func:`reclaim.lifecycle.versioned.recover_versioned`.

Recover runs at the start of every mutating command, under the lease, and so
only once the previous holder can no longer act (the lease is taken over only
after its ``safe_at``): it never settles an entry a paused collector may still
be working on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from reclaim.catalog import Entry, Journal, State
from reclaim.lifecycle.restore import finish_restore
from reclaim.lifecycle.trust import Refused, trusted
from reclaim.lifecycle.versioned import recover_versioned
from reclaim.stores import Store
from reclaim.stores.partitioned import KeyRange

__all__ = ["RecoverResult", "recover_entry", "recover_store"]


@dataclass
class RecoverResult:
    """Entries settled, by outcome."""

    store: str
    confirmed: int = 0
    rolled_back: int = 0
    purged: int = 0
    restored: int = 0
    lost_race: int = 0
    refused: Refused = field(default_factory=Refused)
    """In-flight entries the journal holds inconsistently: left in flight, the object untouched."""

    @property
    def total(self) -> int:
        """Entries settled."""
        return self.confirmed + self.rolled_back + self.purged + self.restored


def recover_entry(
    store: Store,
    journal: Journal,
    entry: Entry,
    *,
    grace: timedelta,
    run_id: int | None,
    trash_prefix: str = "",
) -> str:
    """Settle one in-flight entry; returns ``confirmed``, ``rolled_back``, ``purged`` or ``restored``.

    Returns ``lost_race`` when another process settled it first (compare-and-set).
    """
    if entry.mode == "versioned" and entry.state is not State.RESTORING:
        return recover_versioned(store, journal, entry, grace=grace, run_id=run_id)
    in_trash = entry.mode == "move" and entry.trash_key is not None and store.exists(entry.trash_key)
    if entry.state is State.QUARANTINING:
        if in_trash and not store.exists(entry.key):
            due = datetime.now(UTC) + grace
            done = journal.transition(entry, State.QUARANTINED, run_id=run_id, due_at=due, note="recovered")
            return "confirmed" if done else "lost_race"
        done = journal.transition(entry, State.RESTORED, run_id=run_id, note="quarantine rolled back")
        return "rolled_back" if done else "lost_race"
    if entry.state is State.PURGING:
        still_there = in_trash if entry.mode == "move" else _marked_back(store, entry, trash_prefix)
        if still_there:
            done = journal.transition(entry, State.QUARANTINED, run_id=run_id, note="purge rolled back")
            return "rolled_back" if done else "lost_race"
        done = journal.transition(entry, State.PURGED, run_id=run_id, note="purge completed by recover")
        return "purged" if done else "lost_race"
    if entry.state is State.RESTORING:
        finish_restore(store, journal, entry, run_id=run_id)
        return "restored"
    return "lost_race"  # not in flight any more


def _marked_back(store: Store, entry: Entry, trash_prefix: str) -> bool:
    """Whether a ``mark`` object being purged is at its key, moving it back from its staging key first."""
    if store.exists(entry.key):
        return True
    if not trash_prefix or not store.atomic_move:
        return False
    try:
        store.move(trash_prefix + entry.key, entry.key)
    except FileNotFoundError:
        return False  # neither staged nor at its key: the delete had happened
    except FileExistsError:
        return True  # a writer stored a new object at the key meanwhile; the staged copy stays a stray
    return True


def recover_store(
    store: Store,
    journal: Journal,
    *,
    grace: timedelta,
    run_id: int | None,
    check_lease: Callable[[], None] | None = None,
    trash_prefix: str,
    key_range: KeyRange | None = None,
) -> RecoverResult:
    """Settle every in-flight entry of ``store`` (with ``key_range``: of the keys in that range).

    A distributed worker retried after its first attempt was killed settles
    its own range's entries this way before it scans the range again.

    Entries the journal holds inconsistently are left in flight and counted in
    ``refused`` (see :mod:`reclaim.lifecycle.trust`); ``reclaim check`` shows them.
    """
    result = RecoverResult(store.name)
    entries = journal.in_flight(store.name)
    if key_range is not None and not key_range.whole:
        entries = [entry for entry in entries if entry.key in key_range]
    for entry in trusted(entries, trash_prefix=trash_prefix, refused=result.refused, doing="recover"):
        if check_lease is not None:
            check_lease()
        outcome = recover_entry(store, journal, entry, grace=grace, run_id=run_id, trash_prefix=trash_prefix)
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result
