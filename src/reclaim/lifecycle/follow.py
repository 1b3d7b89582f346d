"""Objects follow their rows (``objects = "follow"``): quarantined, restored and purged with them.

A ``follow`` collection owns the objects its rows reference through the store
reference sources that read its table. Archiving a row records the objects it
owns as *pending* links (``row_objects``, in the archive's own transaction;
see :mod:`reclaim.catalog.links`). Then, once the rows are gone from their
table:

1. :func:`follow_pending` quarantines each pending object in the store's mode
   (never in a report-only store, never one younger than the store's
   ``min_age``, outside its ``include`` or matched by its ``exclude``),
   with the whole quarantine protocol (intent, re-check, stat, move or mark,
   confirm: :func:`~reclaim.lifecycle.quarantine.plan_quarantine_of`). The
   re-check counts every live reference and every restorable archived row,
   except the rows that own the object themselves (:class:`UnownedSource`):
   an object another row, live or archived, references stays live and its
   link is dropped. An object quarantined already (another row owns it) is
   linked to that entry. Each link then names its journal entry.
2. While the row can be restored the normal purge never takes its objects
   (:meth:`~reclaim.catalog.journal.Journal.due`, invariant 6), whatever the
   store's grace; :func:`restore_owned` brings them back, before the row is
   inserted again.
3. When the row's retention ends, :func:`purge_expiring` purges its objects
   that no row still restorable owns, re-checked like any purge (an object
   referenced again is restored instead); only then can the row expire.

A run killed between archiving a row and quarantining its objects leaves
pending links (and perhaps journal entries in flight, or QUARANTINED but not
linked yet): ``recover`` settles the journal first and then runs
:func:`follow_pending`, which finishes the job (linking what is quarantined
already). Every step keeps every byte: an object is live, or quarantined
with a journal entry that a restore of its row finds by its key.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reclaim.catalog import ArchivedRow, Entry, State
from reclaim.catalog.links import ObjectLink
from reclaim.lifecycle.archived import ArchivedSource
from reclaim.lifecycle.faults import FOLLOW_POINTS, fault
from reclaim.lifecycle.purge import PurgePlan, PurgeResult
from reclaim.lifecycle.quarantine import plan_quarantine_of
from reclaim.lifecycle.restore import RestoreResult, restore_entries
from reclaim.lifecycle.scan import Tally, excluded_keys
from reclaim.lifecycle.spool import EntrySpool
from reclaim.lifecycle.trust import Refused, trusted
from reclaim.references import ReferenceSource, referenced_now

if TYPE_CHECKING:
    from reclaim.lifecycle.collector import Collector

__all__ = [
    "FOLLOW_POINTS",
    "Followed",
    "UnownedSource",
    "follow_pending",
    "owned_entries",
    "purge_expiring",
    "restore_owned",
]


@dataclass
class Followed:
    """What following one collection's rows did to their objects."""

    quarantined: Tally = field(default_factory=Tally)
    kept: int = 0
    """Objects left live: another row references them, they are younger than the store's
    ``min_age``, gone or changed, their store is report-only, or reclaim may not act on their key
    (outside ``include``, excluded, inside the trash)."""
    linked: int = 0
    """Objects quarantined already (another row owns them): linked to that entry."""


@dataclass
class UnownedSource(ArchivedSource):
    """Restorable archived rows' references, except where the row owns the object itself.

    A row that owns an object (a pending link, or one whose entry keeps the
    object quarantined) holds it through its link, which its restore follows:
    it must not keep its own object live.
    """

    store: str = ""

    def lookup(self, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` some restorable archived row references without owning it."""
        assert self.archive is not None
        wanted = self._wanted(keys)
        pairs = {
            (row_id, key)
            for value, row_id in self.archive.holders(self.table_name, self.selector, wanted)
            for key in wanted[value]
        }
        owned = self.archive.links.owners(self.store, pairs)
        return {key for _, key in pairs - owned}


def _by_store(page: Sequence[ObjectLink]) -> dict[str, list[ObjectLink]]:
    """The links of ``page`` grouped by store, in the page's order within each."""
    by_store: dict[str, list[ObjectLink]] = {}
    for link in page:
        by_store.setdefault(link.store, []).append(link)
    return by_store


def unowned_sources(sources: Sequence[ReferenceSource], store: str) -> list[ReferenceSource]:
    """``sources`` with each archived-rows source replaced by its :class:`UnownedSource`."""
    out: list[ReferenceSource] = []
    for source in sources:
        if isinstance(source, ArchivedSource) and not isinstance(source, UnownedSource):
            out.append(
                UnownedSource(
                    name=source.name,
                    config=source.config,
                    engine=source.engine,
                    database=source.database,
                    archive=source.archive,
                    table_name=source.table_name,
                    selector=source.selector,
                    store=store,
                )
            )
        else:
            out.append(source)
    return out


# -- quarantine -------------------------------------------------------------------------------


def follow_pending(c: Collector, *, collection: str | None = None) -> dict[str, Followed]:
    """Quarantine the objects of pending links (of ``collection``, or all); per collection, what happened.

    Links of a store no longer configured are dropped (the object stays where
    it is). Raises what the quarantine raises (a source or store error, a lost
    lease); what was done stays in a defined state, and the rest pending.
    """
    assert c.run_id is not None
    links = c.archive.links
    outcome: dict[str, Followed] = {}
    after = 0
    while page := links.pending(collection=collection, after_id=after):
        after = page[-1].id
        c.check_lease()
        for store, group in _by_store(page).items():
            if store not in c.config.stores:
                links.drop([link.id for link in group])
                continue
            _follow_store(c, store, group, outcome)
    return outcome


def _follow_store(c: Collector, name: str, group: list[ObjectLink], outcome: dict[str, Followed]) -> None:
    assert c.run_id is not None
    policy, store = c.policy(name), c.session.store(name)
    keys = list(dict.fromkeys(link.key for link in group))
    # a report-only store is never touched; keys a scan could not list are never taken
    usable = _in_scope(keys, policy.include, policy.exclude) if policy.action == "collect" else []
    active = _active(c, name, usable)
    sources = unowned_sources(c.sources(name), name)
    # referenced by another row now: left live without a journal episode (the plan re-checks the
    # rest after recording its intents, which is the check that decides)
    referenced = referenced_now(sources, [key for key in usable if key not in active])
    todo = [key for key in usable if key not in active and key not in referenced]
    present = store.stat_many(todo)
    # a key the store does not hold (an upload never finished) is neither quarantined nor kept
    missing = {key for key in todo if key not in present}
    # never too young (invariant 1): an object written since the store's min_age may be a writer's
    # new upload at a reused key, whose row is not committed yet
    threshold = (datetime.now(UTC) - policy.min_age).timestamp()
    old = [
        info
        for key in todo
        if (info := present.get(key)) and info.mtime is not None and info.mtime < threshold
    ]
    plan = plan_quarantine_of(
        store,
        sources,
        old,
        mode=c.mode(name),
        grace=policy.grace,
        trash_prefix=policy.trash_prefix,
    )
    plan.execute(c.journal, run_id=c.run_id, check_lease=c.check_lease)
    fault("follow.after-quarantine")
    quarantined = {e.key: e for e in _select(c, name, keys, (State.QUARANTINED,))}
    attach = [(link.id, quarantined[link.key].id) for link in group if link.key in quarantined]
    c.archive.links.attach(attach)
    c.archive.links.drop([link.id for link in group if link.key not in quarantined])
    fault("follow.after-link")
    newly = {key: quarantined[key] for key in set(todo) & set(quarantined)}
    counted: set[str] = set()
    for link in group:  # each object counted once, for the first collection that owns it
        followed = outcome.setdefault(link.collection, Followed())
        if link.key in counted or link.key in missing:
            continue
        counted.add(link.key)
        if link.key in newly:
            followed.quarantined.add(newly[link.key].size)
        elif link.key in quarantined:
            followed.linked += 1
        else:
            followed.kept += 1


def _in_scope(keys: list[str], include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The keys a scan could list as candidates (invariant 8): inside ``include``, not excluded."""
    if include:
        keys = [key for key in keys if key.startswith(tuple(include))]
    dropped = set(excluded_keys(exclude, keys))
    return [key for key in keys if key not in dropped]


def _active(c: Collector, store: str, keys: list[str]) -> dict[str, Entry]:
    """The active journal entry of each of ``keys`` that has one."""
    active = (State.QUARANTINING, State.QUARANTINED, State.PURGING, State.RESTORING)
    return {entry.key: entry for entry in _select(c, store, keys, active)}


def _select(c: Collector, store: str, keys: Sequence[str], states: Sequence[State]) -> list[Entry]:
    found: list[Entry] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found += c.journal.select(store=store, states=states, keys=chunk, limit=max(1, len(chunk)))
    return found


# -- restore ----------------------------------------------------------------------------------


def owned_entries(c: Collector, rows: Sequence[ArchivedRow]) -> dict[str, list[Entry]]:
    """Per store, the QUARANTINED entries holding objects that ``rows`` own (found by key)."""
    by_store: dict[str, list[str]] = {}
    for link in c.archive.links.of_rows([row.id for row in rows]):
        if link.store in c.config.stores:
            by_store.setdefault(link.store, []).append(link.key)
    return {
        store: _select(c, store, list(dict.fromkeys(keys)), (State.QUARANTINED,))
        for store, keys in by_store.items()
    }


def restore_owned(c: Collector, row: ArchivedRow) -> dict[str, RestoreResult]:
    """Bring back the objects ``row`` owns, before the row itself (objects first: see the module docstring).

    An object comes back byte-identical: moved back from the trash (``move``),
    or simply released (``mark``: it never left). Raises what the restore raises.
    """
    results: dict[str, RestoreResult] = {}
    for store, entries in owned_entries(c, [row]).items():
        if not entries:
            continue
        policy = c.policy(store)
        results[store] = restore_entries(
            c.session.store(store),
            c.journal,
            entries,
            run_id=c.run_id,
            trash_prefix=policy.trash_prefix,
            check_lease=c.check_lease,
        )
    fault("rows-restore.after-objects")
    return results


# -- expiry -----------------------------------------------------------------------------------


def purge_expiring(c: Collector, now: datetime, *, dry_run: bool) -> dict[str, PurgeResult]:
    """Purge the objects of rows whose retention ended by ``now``, then drop those rows' links.

    An object that a row still restorable (and not expiring) owns is left to
    that row; a pending link or one whose object is back in service is just
    dropped. The purge re-checks every object (an object referenced again is
    restored), through :class:`UnownedSource` so that the expiring rows do not
    keep their own objects. A link whose object is still quarantined after
    the purge (a staging key taken, a race lost) stays, and so does its row,
    until a later expiry. ``dry_run`` previews the purge and changes nothing.
    """
    results: dict[str, PurgeResult] = {}
    links = c.archive.links
    after = 0
    while page := links.expiring(now, after_id=after):
        after = page[-1].id
        c.check_lease()
        for store, group in _by_store(page).items():
            if store not in c.config.stores:
                continue  # its objects cannot be purged or checked: the row stays until it is configured
            result = _purge_store(c, store, group, now, dry_run=dry_run)
            total = results.setdefault(store, PurgeResult(store))
            _add(total, result)
    return results


def _purge_store(
    c: Collector, name: str, group: list[ObjectLink], now: datetime, *, dry_run: bool
) -> PurgeResult:
    policy, store = c.policy(name), c.session.store(name)
    keys = list(dict.fromkeys(link.key for link in group))
    held = c.archive.links.held(name, keys, now=now)
    alone = [key for key in keys if key not in held]
    quarantined = {e.key: e for e in _select(c, name, alone, (State.QUARANTINED,))}
    refused = Refused()
    doomed = trusted(quarantined.values(), trash_prefix=policy.trash_prefix, refused=refused, doing="expire")
    spool = EntrySpool()
    spool.add(sorted(doomed, key=lambda entry: entry.id))
    plan = PurgePlan(store, unowned_sources(c.sources(name), name), now, spool, policy.trash_prefix, refused)
    if dry_run:
        preview = plan.preview()
        plan.discard()
        return preview
    assert c.run_id is not None
    result = plan.execute(c.journal, run_id=c.run_id, check_lease=c.check_lease)
    fault("expire.after-purge")
    still = {e.key for e in _select(c, name, keys, (State.QUARANTINING, State.QUARANTINED, State.PURGING))}
    # the link goes once its object is purged, back in service, or owned by a row that stays
    c.archive.links.drop([link.id for link in group if link.key not in still or link.key in held])
    return result


def _add(total: PurgeResult, result: PurgeResult) -> None:
    total.due += result.due
    total.purged.count += result.purged.count
    if total.purged.bytes is not None:
        total.purged.bytes = None if result.purged.bytes is None else total.purged.bytes + result.purged.bytes
    total.restored += result.restored
    total.changed += result.changed
    total.lost_race += result.lost_race
