"""``reclaim check``: the reverse merge, ``references - listing``.

Each reference becomes one or two *probes* in key order: an exact reference
is present when the listing holds its key; a prefix reference when the
listing holds its key or any key under ``key + "/"``. Probes and the listing
are walked once, like a merge join; the listing cursor only moves forward
past keys smaller than the current probe, which no later probe can need.
References whose objects are missing (dangling) are reported per source with
sample rows; a reference whose object sits in quarantine is reported apart, as
restorable, with the command that restores it. Nothing is ever "fixed".

A store listed from a snapshot (an S3 Inventory report,
:class:`~reclaim.stores.base.SnapshotStore`) is merged the same way, and a
reference the snapshot does not hold is then looked up in the store itself
before it is called dangling (its object may have been written since the
report); the trash is always listed live.
"""

from __future__ import annotations

import heapq
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reclaim.catalog import CorruptRow, Entry, Journal, State
from reclaim.errors import StoreError
from reclaim.lifecycle.progress import Progress, ProgressLike, as_progress
from reclaim.lifecycle.trust import entry_problem
from reclaim.lifecycle.versioned import versioned_store
from reclaim.references import Reference, ReferenceSource
from reclaim.stores import Store
from reclaim.stores.base import SnapshotStore

#: listed keys between two progress reports
_PROGRESS_EVERY = 1000

__all__ = [
    "Dangling",
    "JournalCheck",
    "QuarantinedReference",
    "SourceCheck",
    "StoreCheck",
    "check_journal",
    "check_store",
]


@dataclass(frozen=True, slots=True)
class Dangling:
    """A reference whose object is missing."""

    source: str
    key: str
    value: str
    row: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class QuarantinedReference:
    """A reference whose object is not at its key because it is quarantined: restorable."""

    source: str
    key: str
    value: str
    row: dict[str, object] | None
    restore: str
    """The command that brings the object back."""


@dataclass(slots=True)
class SourceCheck:
    """Per reference source: references read, those dangling, and those whose object is quarantined."""

    name: str
    database: str
    references: int = 0
    dangling: int = 0
    samples: list[Dangling] = field(default_factory=list)
    quarantined: int = 0
    quarantined_samples: list[QuarantinedReference] = field(default_factory=list)
    dangling_policy: str = "report"
    """The source's ``dangling`` setting: ``ignore`` counts missing objects as ``expected_missing``."""
    expected_missing: int = 0
    """With ``dangling = "ignore"``: references whose object is missing, as expected (never a finding)."""


@dataclass
class StoreCheck:
    """The result of checking one store."""

    store: str
    url: str
    started_at: datetime
    listed: int = 0
    sources: list[SourceCheck] = field(default_factory=list)
    journal: JournalCheck | None = None
    """The journal against the store (``None`` when the catalog is not initialised)."""
    finished_at: datetime | None = None

    @property
    def dangling(self) -> int:
        """Dangling references over all sources."""
        return sum(s.dangling for s in self.sources)

    @property
    def quarantined(self) -> int:
        """References over all sources whose objects are quarantined (restorable)."""
        return sum(s.quarantined for s in self.sources)

    @property
    def expected_missing(self) -> int:
        """Missing objects of sources with ``dangling = "ignore"``: expected, not findings."""
        return sum(s.expected_missing for s in self.sources)

    @property
    def findings(self) -> int:
        """Dangling references, references to quarantined objects, plus journal findings."""
        return self.dangling + self.quarantined + (self.journal.findings if self.journal else 0)


class _Outcome:
    """Shared by the probes of one reference: found once any probe finds it."""

    __slots__ = ("found", "pending", "ref", "source")

    def __init__(self, ref: Reference, source: int, pending: int) -> None:
        self.ref = ref
        self.source = source
        self.found = False
        self.pending = pending


def _probes(
    sources: Sequence[ReferenceSource],
) -> Iterator[tuple[str, bool, _Outcome]]:
    """Yield ``(position, startswith, outcome)`` probes in non-decreasing position order."""
    merged = heapq.merge(*[_tagged(s, i) for i, s in enumerate(sources)])
    deferred: list[tuple[str, int, _Outcome]] = []  # (position, tiebreak, outcome) for prefix probes
    serial = 0
    for key, index, ref in merged:
        while deferred and deferred[0][0] <= key:
            position, _, outcome = heapq.heappop(deferred)
            yield position, True, outcome
        if sources[index].is_prefix:
            outcome = _Outcome(ref, index, pending=2)
            dirform = key if key.endswith("/") else key + "/"
            serial += 1
            heapq.heappush(deferred, (dirform, serial, outcome))
            yield key, False, outcome
        else:
            yield key, False, _Outcome(ref, index, pending=1)
    while deferred:
        position, _, outcome = heapq.heappop(deferred)
        yield position, True, outcome


def _tagged(source: ReferenceSource, index: int) -> Iterator[tuple[str, int, Reference]]:
    for ref in source.references():
        yield ref.key, index, ref


def check_store(
    store: Store,
    sources: Sequence[ReferenceSource],
    *,
    trash_prefix: str,
    show: int = 5,
    journal: Journal | None = None,
    progress: ProgressLike = None,
    expected: int | None = None,
) -> StoreCheck:
    """Find references of ``store`` whose objects are missing.

    With ``journal``, a missing object that is quarantined (its exact key) is
    counted as ``quarantined`` with its ``reclaim restore`` command, not as
    dangling; one journal lookup per missing reference. A missing object of a
    source with ``dangling = "ignore"`` is counted as ``expected_missing``,
    never as dangling (no finding). The listing reports
    to ``progress`` (phase ``check``), ``expected`` being the estimated
    number of objects (the last run's listing). Raises
    :class:`StoreError` when the listing fails or goes backwards and
    :class:`~reclaim.errors.SourceError` when a source fails.
    """
    report = StoreCheck(
        store=store.name,
        url=store.url,
        started_at=datetime.now(UTC),
        sources=[SourceCheck(s.name, s.database, dangling_policy=s.config.dangling) for s in sources],
    )
    listing = store.list("", skip=(trash_prefix,))
    step = as_progress(progress).step("check", store.name, expected, unit="listed", estimated=True)
    current: str | None = None
    exhausted = False

    def advance_to(position: str) -> str | None:
        """Move the listing to the first key >= ``position`` and return it (None at the end)."""
        nonlocal current, exhausted
        while not exhausted and (current is None or current < position):
            previous = current
            item = next(listing, None)
            if item is None:
                exhausted = True
                current = None
                return None
            current = item.key
            if previous is not None and current <= previous:
                raise StoreError(
                    store.name, f"the listing is not in byte order: {current!r} after {previous!r}"
                )
            report.listed += 1
            if report.listed % _PROGRESS_EVERY == 0:
                step.update(report.listed)
        return current

    live = store.live if isinstance(store, SnapshotStore) else None
    for position, startswith, outcome in _probes(sources):
        if not outcome.found:
            key = advance_to(position)
            if key is not None and (key.startswith(position) if startswith else key == position):
                outcome.found = True
        outcome.pending -= 1
        if outcome.pending == 0:
            source_report = report.sources[outcome.source]
            source_report.references += 1
            if not outcome.found and live is not None:
                # the snapshot may predate the object: ask the store itself before calling it dangling
                outcome.found = _present(live, outcome.ref.key, sources[outcome.source].is_prefix)
            if not outcome.found and _quarantined(journal, store.name, outcome.ref.key):
                source_report.quarantined += 1
                if len(source_report.quarantined_samples) < show:
                    ref = outcome.ref
                    command = f"reclaim restore {shlex.quote(ref.key)} --store {shlex.quote(store.name)}"
                    sample = QuarantinedReference(source_report.name, ref.key, ref.value, ref.row, command)
                    source_report.quarantined_samples.append(sample)
            elif not outcome.found and source_report.dangling_policy == "ignore":
                source_report.expected_missing += 1  # e.g. an upload row whose object never came
            elif not outcome.found:
                source_report.dangling += 1
                if len(source_report.samples) < show:
                    ref = outcome.ref
                    source_report.samples.append(Dangling(source_report.name, ref.key, ref.value, ref.row))
    for _ in listing:
        report.listed += 1
        if report.listed % _PROGRESS_EVERY == 0:
            step.update(report.listed)
    step.update(report.listed)
    step.done()
    report.finished_at = datetime.now(UTC)
    return report


def _present(store: Store, key: str, is_prefix: bool) -> bool:
    """Whether ``store`` holds ``key`` now (or, for a prefix reference, any key under ``key/``)."""
    try:
        if store.exists(key):
            return True
        if not is_prefix:
            return False
        under = key if key.endswith("/") else key + "/"
        return next(iter(store.list(under)), None) is not None
    except ValueError:
        return False  # a reference no valid key can name is dangling


def _quarantined(journal: Journal | None, store: str, key: str) -> bool:
    entry = journal.active(store, key) if journal is not None else None
    return entry is not None and entry.state is State.QUARANTINED


@dataclass
class JournalCheck:
    """The journal against the store: what the trash holds and what the journal says it holds."""

    store: str
    in_flight: int = 0
    """Entries a killed run left in flight (``reclaim recover`` settles them)."""
    strays: list[str] = field(default_factory=list)
    """Objects in the trash that no QUARANTINED entry accounts for."""
    missing: list[str] = field(default_factory=list)
    """QUARANTINED entries whose object is gone (trash copy in ``move`` mode, the key in ``mark`` mode)."""
    stray_count: int = 0
    missing_count: int = 0
    inconsistent: list[str] = field(default_factory=list)
    """Active entries purge, restore and recover refuse (``key: why``): a bad key, a wrong trash key."""
    inconsistent_count: int = 0

    @property
    def findings(self) -> int:
        """Strays, missing quarantined objects, entries in flight and inconsistent entries."""
        return self.stray_count + self.missing_count + self.in_flight + self.inconsistent_count


def check_journal(
    store: Store, journal: Journal, *, trash_prefix: str, show: int = 5, progress: ProgressLike = None
) -> JournalCheck:
    """Compare the journal with the store: strays in the trash, quarantined objects gone, entries in flight.

    Reports only; nothing is moved or deleted. The trash listing and the
    lookup of each quarantined object report to ``progress`` (phases
    ``check trash`` and ``check quarantined``). Raises :class:`StoreError`
    when the store cannot be listed.
    """
    report = JournalCheck(store.name)
    try:
        _check_entries(report, store, journal, trash_prefix, show, as_progress(progress))
    except CorruptRow as exc:
        # reported, not raised: finding such rows is what check is for
        report.inconsistent_count += 1
        report.inconsistent.append(f"the journal cannot be read past a corrupt row: {exc}")
    return report


def _check_entries(
    report: JournalCheck, store: Store, journal: Journal, trash_prefix: str, show: int, progress: Progress
) -> None:
    in_flight = journal.in_flight(store.name)
    report.in_flight = len(in_flight)
    for flying in in_flight:
        _inconsistent(report, flying, trash_prefix, show)
    trash = progress.step("check trash", store.name, unit="listed")
    # the trash as it is now: a snapshot of it would show what was moved since as strays
    lister = store.live if isinstance(store, SnapshotStore) else store
    for info in lister.list(trash_prefix):
        trash.advance()
        try:
            entry = journal.active(store.name, info.key[len(trash_prefix) :])
        except CorruptRow as exc:
            report.inconsistent_count += 1
            if len(report.inconsistent) < show:
                report.inconsistent.append(f"{info.key[:200]}: {exc}")
            continue
        if entry is None or entry.state is not State.QUARANTINED or entry.trash_key != info.key:
            report.stray_count += 1
            if len(report.strays) < show:
                report.strays.append(info.key)
    trash.done()
    looked_up = progress.step("check quarantined", store.name, unit="entries")
    after = 0
    while batch := journal.select(store=store.name, states=(State.QUARANTINED,), after_id=after):
        after = batch[-1].id
        looked_up.batch(len(batch))
        for entry in batch:
            looked_up.advance()
            if _inconsistent(report, entry, trash_prefix, show):
                continue  # never touched by reclaim, so not looked up in the store either
            if not _kept(store, entry):
                report.missing_count += 1
                if len(report.missing) < show:
                    report.missing.append(entry.key)
    looked_up.done()


def _kept(store: Store, entry: Entry) -> bool:
    """Whether the object of a QUARANTINED entry is where its mode keeps it.

    ``move``: its trash key; ``mark``: its key; ``versioned``: the recorded
    version, kept by the bucket (noncurrent, under the delete marker).
    """
    if entry.mode == "versioned":
        versions = versioned_store(store).versions(entry.key)
        return any(v.version_id == entry.version_id and not v.delete_marker for v in versions)
    where = entry.trash_key if entry.mode == "move" and entry.trash_key else entry.key
    return store.exists(where)


def _inconsistent(report: JournalCheck, entry: Entry, trash_prefix: str, show: int) -> bool:
    """Count ``entry`` as an inconsistency when the lifecycle steps would refuse it."""
    problem = entry_problem(entry, trash_prefix)
    if problem is None:
        return False
    report.inconsistent_count += 1
    if len(report.inconsistent) < show:
        report.inconsistent.append(f"{entry.key[:200]}: journal entry {entry.id} ({entry.state}): {problem}")
    return True
