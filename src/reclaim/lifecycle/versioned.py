"""S3-native quarantine (``mode = "versioned"``): what quarantine, restore, purge, recover and ensure share.

In a bucket whose versioning is enabled, quarantining a key puts a delete
marker over its current version (the key stops being served at once, the
version is kept), restoring it deletes exactly that marker (the same version
is current again: no copy, the same bytes and version id), and purging it
deletes the version and then the marker, or, with ``purge = "lifecycle"``,
leaves the version to the bucket's noncurrent-version expiry. The journal
entry records both ids: ``version_id`` with the intent (what will be hidden,
read from the bucket before the hide) and ``marker_id`` when it is confirmed.

The steps keep the protocol of the other modes (intent, re-check, lease check
before every request, confirm); this module holds the versioned parts:

- :func:`require_versioning`: the checks made before a versioned store is
  touched: the store can do it (S3), the bucket's versioning is ``Enabled``
  (a delete in a bucket that keeps no versions is a delete for good), no
  lifecycle rule expires the store's noncurrent versions before grace ends
  (that would purge without the re-check) and, with ``purge = "lifecycle"``,
  a rule expires every one of them no sooner than grace. Each refusal is a
  :class:`~reclaim.errors.ConfigError` naming the field, before anything moves;
- :func:`unhide`: restore a batch of RESTORING entries (delete their markers,
  then read which version is current);
- :func:`hidden`: whether an entry's key is still hidden (purge leaves a key
  that was uploaded again live);
- :func:`recover_versioned`: settle an in-flight entry by the versions of its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from reclaim.catalog import Entry, Journal, State
from reclaim.errors import ConfigError, StoreError
from reclaim.lifecycle.faults import fault
from reclaim.stores import Store, Version, VersionedStore

__all__ = [
    "LIFECYCLE_NOTE",
    "REQUEST",
    "hidden",
    "recover_versioned",
    "require_purgeable",
    "require_quarantinable",
    "require_versioning",
    "unhide",
    "versioned_store",
]

#: versions (or keys) per ``DeleteObjects`` request: S3's limit
REQUEST = 1000
#: the note of an entry whose purge is left to the bucket's noncurrent-version expiry
LIFECYCLE_NOTE = "purged by the bucket's noncurrent-version expiry (purge = lifecycle)"


def versioned_store(store: Store) -> VersionedStore:
    """``store`` as a :class:`~reclaim.stores.VersionedStore`; ``StoreError`` if it cannot keep versions."""
    if not isinstance(store, VersionedStore):
        raise StoreError(store.name, "mode 'versioned' needs an S3 store (a bucket that keeps versions)")
    return store


def require_versioning(store: Store, *, grace: timedelta, lifecycle: bool) -> VersionedStore:
    """Refuse (:class:`ConfigError`) a versioned store whose bucket cannot quarantine safely; see above.

    Raises :class:`~reclaim.errors.StoreError` when the bucket's settings cannot be read.
    """
    field = f"stores.{store.name}.mode"
    if not isinstance(store, VersionedStore):
        raise ConfigError("'versioned' needs an S3 store (a bucket that keeps versions)", field=field)
    status = store.versioning_status()
    if status != "Enabled":
        shown = status or "never enabled"
        raise ConfigError(
            f"'versioned' needs a bucket whose versioning is Enabled (it is {shown}): a delete there "
            "would delete for good. Enable versioning on the bucket, or use mode 'mark' or 'move'",
            field=field,
        )
    problem = store.noncurrent_expiry_problem(grace, required=lifecycle)
    if problem is not None:
        purge_field = f"stores.{store.name}.purge"
        if lifecycle:
            raise ConfigError(
                f"'lifecycle' leaves the purge to the bucket's noncurrent-version expiry, but {problem}; "
                "add a rule that expires them no sooner than grace, or use purge 'delete'",
                field=purge_field,
            )
        raise ConfigError(
            f"'versioned' keeps quarantined objects as noncurrent versions, but {problem}; "
            "lengthen the rule or shorten grace",
            field=field,
        )
    return store


def require_purgeable(store: Store, *, purge: str, grace: timedelta) -> None:
    """What a purge checks of ``store`` before its due entries are planned (every purge, in any process).

    ``purge = "lifecycle"`` leaves the versions to the bucket's noncurrent-version
    expiry: the bucket must still expire every one of them, no sooner than
    ``grace`` (:func:`require_versioning` with ``lifecycle``). Raises what it raises.
    """
    if purge == "lifecycle":
        require_versioning(store, grace=grace, lifecycle=True)


def require_quarantinable(store: Store, *, mode: str, action: str, purge: str, grace: timedelta) -> None:
    """What a quarantine checks of ``store`` before its scan (every quarantine, in any process).

    A ``collect`` store in ``versioned`` mode is refused on a bucket that keeps
    no versions, or whose rules would expire them too soon (or, with ``purge =
    "lifecycle"``, not at all): :func:`require_versioning`, before anything is
    listed or moved. Raises what it raises.
    """
    if mode == "versioned" and action == "collect":
        # refused before the scan: a bucket that keeps no versions would lose the objects
        require_versioning(store, grace=grace, lifecycle=purge == "lifecycle")


def unhide(store: Store, entries: Sequence[Entry]) -> list[str]:
    """Delete the delete markers of RESTORING ``versioned`` entries; each one's outcome, in order.

    One ``DeleteObjects`` per 1000 markers (``restore.after-unhide`` after
    each), then one reading of the keys' current versions: ``restored`` (the
    quarantined version is current again), ``kept_newer`` (another version
    is: the key was uploaded again, and stays as it is) or ``missing`` (no
    version is served: the version is gone, or another delete hides the key).
    Deleting a marker is harmless whatever happened since: a marker that is
    no longer current hides nothing.
    """
    if not entries:
        return []
    versioned = versioned_store(store)
    markers = [(e.key, e.marker_id) for e in entries if e.marker_id is not None]
    for start in range(0, len(markers), REQUEST):
        versioned.delete_versions(markers[start : start + REQUEST])
        fault("restore.after-unhide")
    now = versioned.served_versions([e.key for e in entries])
    return [_outcome(entry, now.get(entry.key)) for entry in entries]


def _outcome(entry: Entry, current: Version | None) -> str:
    if current is None:
        return "missing"
    return "restored" if current.version_id == entry.version_id else "kept_newer"


def hidden(store: Store, entries: Sequence[Entry]) -> set[int]:
    """The ids of ``entries`` whose key still serves nothing (a delete marker is current, or no version).

    A key whose current version is an object again (uploaded again, or its
    marker deleted by hand) is live: purge leaves it alone.
    """
    if not entries:
        return set()
    served = versioned_store(store).served_versions([e.key for e in entries])
    return {entry.id for entry in entries if entry.key not in served}


def recover_versioned(
    store: Store, journal: Journal, entry: Entry, *, grace: timedelta, run_id: int | None
) -> str:
    """Settle a QUARANTINING or PURGING ``versioned`` entry by the versions of its key.

    - QUARANTINING: a delete marker is current and the recorded version lies
      under it: the hide happened (the version was current when it was
      recorded, so any marker over it is younger than the intent): confirm
      QUARANTINED with that marker, grace starting now. Otherwise the hide
      did not happen, or the key was uploaded again since: roll back (RESTORED).
    - PURGING: the recorded version still exists: under a current delete
      marker, roll the purge back (QUARANTINED, re-checked again by the next
      purge); served again, the key is live (RESTORED). The version gone, its
      delete had happened after a clean re-check: delete the marker if it is
      still there, and PURGED.
    A RESTORING entry is :func:`~reclaim.lifecycle.restore.finish_restore`'s
    (it calls :func:`unhide` again: deleting a marker twice is harmless).
    Returns what :func:`~reclaim.lifecycle.recover.recover_entry` returns.
    """
    versions = versioned_store(store).versions(entry.key)
    current = next((v for v in versions if v.latest), None)
    kept = any(v.version_id == entry.version_id and not v.delete_marker for v in versions)
    if entry.state is State.QUARANTINING:
        if current is not None and current.delete_marker and kept:
            due = datetime.now(UTC) + grace
            done = journal.transition(
                entry,
                State.QUARANTINED,
                run_id=run_id,
                due_at=due,
                note="recovered",
                marker_id=current.version_id,
            )
            return "confirmed" if done else "lost_race"
        done = journal.transition(entry, State.RESTORED, run_id=run_id, note="quarantine rolled back")
        return "rolled_back" if done else "lost_race"
    if entry.state is State.PURGING:
        if kept and current is not None and current.delete_marker:
            done = journal.transition(entry, State.QUARANTINED, run_id=run_id, note="purge rolled back")
            return "rolled_back" if done else "lost_race"
        if kept:
            done = journal.transition(entry, State.RESTORED, run_id=run_id, note="served again; left live")
            return "restored" if done else "lost_race"
        if entry.marker_id is not None and any(v.version_id == entry.marker_id for v in versions):
            versioned_store(store).delete_versions([(entry.key, entry.marker_id)])
        done = journal.transition(entry, State.PURGED, run_id=run_id, note="purge completed by recover")
        return "purged" if done else "lost_race"
    return "lost_race"  # not QUARANTINING or PURGING (RESTORING is finish_restore's)
