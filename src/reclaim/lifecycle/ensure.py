"""``ensure``: the writer's claim on a key it reuses (invariant 5).

A writer that reuses an existing object (deduplicated content) commits its row
and then calls ``ensure(store, key)``:

- no active journal entry: the object is either at its key (``present``) or
  gone (``gone``: a purge took it; the writer uploads it again);
- QUARANTINED: claim it by compare-and-set (QUARANTINED -> RESTORING), move it
  back, confirm RESTORED (``restored``). A purge claims with the same
  compare-and-set, so exactly one of the two wins. The answer is checked
  against the store, never taken from the journal alone: in ``move`` mode the
  object must be back at its key; in ``mark`` mode it must still be at its key
  and be the object that was quarantined (same ETag, else same size and
  mtime); in ``versioned`` mode its delete marker is deleted and the version
  quarantined must be current again. An object that is missing is recorded
  PURGED, one that was replaced RESTORED with a note, and both answer
  ``gone``: the writer uploads again;
- in flight (QUARANTINING, PURGING, RESTORING): a collector is acting on it
  right now; wait until the entry settles, then decide as above. The
  collector re-checks references after recording its intent, so it sees the
  writer's committed row and restores the object itself, or the entry becomes
  QUARANTINED and the claim takes it.

Needs no lease: claims and collectors coordinate through the journal alone.
"""

from __future__ import annotations

import time
from enum import StrEnum

from reclaim.catalog import Entry, Journal, State
from reclaim.errors import StoreError
from reclaim.lifecycle.restore import finish_restore
from reclaim.lifecycle.trust import Refused, entry_problem
from reclaim.stores import Store

__all__ = ["Ensured", "ensure_key"]

_IN_FLIGHT = {State.QUARANTINING, State.PURGING, State.RESTORING}


class Ensured(StrEnum):
    """What ``ensure`` found."""

    PRESENT = "present"
    """The object is at its key."""
    RESTORED = "restored"
    """It was quarantined and has just been restored to its key."""
    GONE = "gone"
    """It is not in the store (purged, or never there): upload it again."""


def ensure_key(
    store: Store, journal: Journal, key: str, *, timeout: float = 60.0, trash_prefix: str = "_trash/"
) -> Ensured:
    """Make sure ``key`` stays available to a writer that has committed a reference to it.

    Raises :class:`StoreError` when a collector keeps the key in flight for
    longer than ``timeout`` seconds (the writer should retry; ``reclaim
    recover`` settles entries a killed collector left behind), and when the
    key's entry is inconsistent (see :mod:`reclaim.lifecycle.trust`): nothing
    is moved then, and ``reclaim check`` reports the entry.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        entry = journal.active(store.name, key)
        if entry is not None and (problem := entry_problem(entry, trash_prefix)) is not None:
            Refused().add(store.name, key, f"journal entry {entry.id}: {problem}", doing="ensure")
            raise StoreError(store.name, f"journal entry {entry.id} is inconsistent: {problem}", key=key)
        if entry is None:
            return Ensured.PRESENT if store.exists(key) else Ensured.GONE
        if entry.state is State.QUARANTINED:
            claimed = journal.transition(entry, State.RESTORING, note="claimed by ensure")
            if claimed is not None:
                if claimed.mode == "mark":
                    return _claim_marked(store, journal, claimed)
                outcome = finish_restore(store, journal, claimed, run_id=None)
                if outcome == "missing":
                    return Ensured.GONE
                if outcome == "kept_newer" and claimed.mode == "versioned":
                    return Ensured.GONE  # another version is served: not the writer's to vouch for
                return Ensured.RESTORED
            continue  # lost the compare-and-set: look again
        if entry.state in _IN_FLIGHT:
            if time.monotonic() > deadline:
                raise StoreError(
                    store.name,
                    f"still {entry.state.value} after {timeout:.0f}s; retry, or run 'reclaim recover' "
                    "if the collector was killed",
                    key=key,
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
            continue
        return (
            Ensured.PRESENT if store.exists(key) else Ensured.GONE
        )  # pragma: no cover - active is never terminal


def _claim_marked(store: Store, journal: Journal, entry: Entry) -> Ensured:
    """Settle a claimed (RESTORING) ``mark`` entry by what is at its key now."""
    try:
        info = store.stat(entry.key)
    except FileNotFoundError:
        journal.transition(entry, State.PURGED, note="object missing when claimed by ensure")
        return Ensured.GONE
    if entry.etag is not None and info.etag is not None:
        same = info.etag == entry.etag
    else:
        same = info.mtime == entry.mtime and (entry.size is None or info.size == entry.size)
    if not same:
        # the key holds another object than the one quarantined: not the writer's to vouch for
        journal.transition(entry, State.RESTORED, note="replaced since quarantine; claimed by ensure")
        return Ensured.GONE
    journal.transition(entry, State.RESTORED, note="claimed by ensure")
    return Ensured.RESTORED
