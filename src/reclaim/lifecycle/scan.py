"""The streaming merge scan: ``listing - references``, one pass, a page at a time, flat memory.

The store is listed in byte order in pages (:func:`~reclaim.stores._pages.list_pages`:
an S3 page, a local directory's run of files) and each page is classified at
once against the references up to its last key
(:class:`~reclaim.references.PageCoverage`: set and ``bisect`` operations over
the page, no object per key). Each listed key is classified exactly once:

- ``excluded``: under an ``exclude`` glob (never a candidate, invariant 8);
- ``referenced``: covered by a reference (exact, prefix or sidecar);
- ``young``: unreferenced but modified at or after ``scan_start - min_age``
  (invariant 1: objects written during the scan are never candidates);
- ``candidate``: unreferenced and old enough;
- ``stray`` (only for a store with ``strays = "report"``): a candidate that no
  row collection released (:mod:`reclaim.catalog.released`), asked per page of
  candidates in one set-based lookup; reported, never spooled nor touched;
- ``changed`` (a snapshot listing only): unreferenced, but the live object is
  not the one the snapshot describes (see below): never a candidate.

A store that lists from a snapshot (:class:`~reclaim.stores.base.SnapshotStore`:
an S3 Inventory report) is handled with two more rules. Every page's
unreferenced keys are verified against the store now before they are
classified (:func:`~reclaim.stores._pages.verify_pages`: the pages are held
until about :data:`VERIFY_KEYS` unreferenced keys or :data:`VERIFY_PAGES`
pages are pending, then verified with one ``stat_many``, so sparse candidates
cost a request each, many in flight, not a round trip per page): a key gone since the
snapshot is ``vanished``, one modified since (size, ETag or mtime differ, or
modified after the snapshot was taken) is ``changed``, and the others are
judged by what the store says now. And the age threshold is counted from the
snapshot's instant, not from the scan's start (``now`` is the earlier of the
two): an object the snapshot saw when it was younger than ``min_age`` is too
young, whatever its age now. An object the snapshot does not hold is never
listed, so never a candidate.

Size and mtime are read only for the keys that need them: unreferenced and
excluded keys (candidates, too young, samples, their bytes). A local listing
carries no size, so the bytes of referenced objects are measured only on
request (``referenced_bytes``, ``reclaim scan --referenced-bytes``: a
``stat`` per object); otherwise the report says they were not measured
(:attr:`StoreScan.referenced_bytes_measured`, and ``bytes`` is ``None``)
rather than show a wrong total. An object store's listing carries sizes, so
there they are always counted. The trash prefix is pruned from the listing
and cut out of every page again. Each page must continue the byte order of
the one before (a listing that goes backwards aborts: the merge would
otherwise miss references). Any listing or source error propagates: a scan is
complete or an error (invariant 2), and every source is read to its end so
that its ordering and emptiness checks always run.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import filterfalse, islice

from reclaim.errors import StoreError
from reclaim.lifecycle.progress import ProgressLike, as_progress
from reclaim.lifecycle.unreferenced import Watch
from reclaim.references import KeySpan, PageCoverage, ReferenceSource, upper_bound
from reclaim.stores import ObjectInfo, Store
from reclaim.stores._pages import KeyPage, list_pages, verify_pages
from reclaim.stores.base import SnapshotStore
from reclaim.stores.partitioned import KeyRange

__all__ = [
    "Classified",
    "SourceReport",
    "Status",
    "StoreScan",
    "Tally",
    "classify",
    "excluded_keys",
    "scan_store",
]

#: listed keys between two progress reports (a report per key would cost more than the key)
_PROGRESS_EVERY = 1000
#: a snapshot listing's unreferenced keys verified in one batch (pages are held until then)
VERIFY_KEYS = 2000
#: the most pages of a snapshot listing held for one verification batch (bounds the memory held)
VERIFY_PAGES = 100


class Status(StrEnum):
    """What the scan decided about one listed object."""

    REFERENCED = "referenced"
    CANDIDATE = "candidate"
    YOUNG = "young"
    EXCLUDED = "excluded"
    VANISHED = "vanished"
    """Listed, then gone before its size and mtime could be read (not a candidate)."""
    CHANGED = "changed"
    """In a snapshot listing, but modified since the snapshot (not a candidate)."""


@dataclass(frozen=True, slots=True)
class Classified:
    """One listed object and the scan's verdict on it.

    ``info`` has the size and mtime of unreferenced and excluded objects;
    a referenced object's carries them only where the listing did.
    """

    info: ObjectInfo
    status: Status


@dataclass(slots=True)
class Tally:
    """A count and the bytes behind it (``bytes`` is ``None`` when the listing did not say)."""

    count: int = 0
    bytes: int | None = 0

    def add(self, size: int | None) -> None:
        """Count one object of ``size`` bytes (``None``: unknown, makes the byte total unknown)."""
        self.count += 1
        if size is None:
            self.bytes = None
        elif self.bytes is not None:
            self.bytes += size


@dataclass(slots=True)
class SourceReport:
    """Per reference source: rows read, values for other stores, objects it covers."""

    name: str
    database: str
    rows: int = 0
    foreign: int = 0
    covers: int = 0


@dataclass
class StoreScan:
    """The result of scanning one store."""

    store: str
    url: str
    action: str
    scan_start: datetime
    min_age: timedelta
    max_fraction: float
    listed: Tally = field(default_factory=Tally)
    referenced: Tally = field(default_factory=Tally)
    candidates: Tally = field(default_factory=Tally)
    young: Tally = field(default_factory=Tally)
    excluded: Tally = field(default_factory=Tally)
    vanished: Tally = field(default_factory=Tally)
    strays: Tally = field(default_factory=Tally)
    """With ``strays = "report"``: unreferenced, old enough, released by no row; never touched."""
    stray_policy: str = "collect"
    """The store's ``strays`` setting: ``report`` splits strays from the candidates."""
    stray_samples: list[ObjectInfo] = field(default_factory=list)
    changed: Tally = field(default_factory=Tally)
    """Unreferenced objects of a snapshot listing that changed since the snapshot (never candidates)."""
    listed_as_of: datetime | None = None
    """When the listing's snapshot was taken (an S3 Inventory report); ``None``: a live listing."""
    references: int = 0
    sources: list[SourceReport] = field(default_factory=list)
    samples: list[ObjectInfo] = field(default_factory=list)
    finished_at: datetime | None = None
    referenced_bytes_measured: bool = True
    """False when the listing carried no sizes and none were asked for: ``referenced.bytes`` and
    ``listed.bytes`` are then ``None`` (not measured), never a wrong total."""

    @property
    def threshold(self) -> datetime:
        """Objects modified before this instant may be candidates (counted from a snapshot's date)."""
        return _now_of(self.scan_start, self.listed_as_of) - self.min_age

    @property
    def fraction(self) -> float:
        """Candidates as a share of the listed objects."""
        return self.candidates.count / self.listed.count if self.listed.count else 0.0

    @property
    def over_max_fraction(self) -> bool:
        """Whether candidates exceed ``max_fraction`` (quarantine refuses to proceed then)."""
        return self.fraction > self.max_fraction


def excluded_keys(patterns: Sequence[str], keys: list[str]) -> list[str]:
    """The ``keys`` an ``exclude`` glob of ``patterns`` matches, exactly as the scan matches them."""
    excluded = _exclusion_filter(patterns)
    return [] if excluded is None else excluded(keys)


def _exclusion_filter(patterns: Sequence[str]) -> Callable[[list[str]], list[str]] | None:
    """A function giving the keys of a page that an ``exclude`` glob matches (``*`` crosses ``/``).

    Globs of the common shapes ``*.tmp``, ``tmp/*`` and plain keys are tested
    with ``str.endswith``/``startswith``/a set, in C over the whole page; any
    other glob joins one compiled pattern (``fnmatch`` semantics, case-sensitive).
    """
    if not patterns:
        return None
    suffixes: list[str] = []
    prefixes: list[str] = []
    plain: set[str] = set()
    others: list[str] = []
    for pattern in patterns:
        body = pattern.strip("*")
        if any(c in body for c in "*?["):
            others.append(pattern)
        elif pattern == "*" * len(pattern):
            prefixes.append("")  # matches every key
        elif pattern.startswith("*") and not pattern.endswith("*"):
            suffixes.append(body)
        elif pattern.endswith("*") and not pattern.startswith("*"):
            prefixes.append(body)
        elif "*" not in pattern:
            plain.add(pattern)
        else:
            others.append(pattern)  # *x*: a substring test, left to the pattern
    tests: list[Callable[[str], object]] = []
    if suffixes:
        tests.append(operator.methodcaller("endswith", tuple(suffixes)))
    if prefixes:
        tests.append(operator.methodcaller("startswith", tuple(prefixes)))
    if plain:
        tests.append(plain.__contains__)
    if others:
        tests.append(re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in others)).match)
    if len(tests) == 1:
        [test] = tests
        return lambda keys: list(filter(test, keys))

    def excluded(keys: list[str]) -> list[str]:
        matched: set[str] = set()
        for test in tests:
            matched.update(filter(test, keys))
        return list(filter(matched.__contains__, keys)) if matched else []

    return excluded


def _now_of(scan_start: datetime, listed_as_of: datetime | None) -> datetime:
    """The ``now`` ages are counted from: the scan's start, or the snapshot's date if earlier."""
    return scan_start if listed_as_of is None else min(scan_start, listed_as_of)


def _listed_as_of(store: Store) -> datetime | None:
    return store.listed_as_of() if isinstance(store, SnapshotStore) else None


@dataclass(slots=True)
class _Page:
    """One page of the listing, classified: what :func:`_classified_pages` yields."""

    page: KeyPage
    kept: list[str]
    """The page's keys outside the trash and not excluded (referenced or not)."""
    excluded: list[str]
    unreferenced: list[str]
    """Unreferenced keys (those a snapshot listing verified unchanged, or gone)."""
    changed: list[str]
    """Unreferenced keys a snapshot listing found changed since the snapshot (never candidates)."""


def _classified_pages(
    store: Store,
    coverage: PageCoverage,
    *,
    trash_prefix: str,
    exclude: Sequence[str],
    prefix: str,
    progress: ProgressLike,
    expected: int | None,
    key_range: KeyRange | None = None,
) -> Iterator[_Page]:
    """List ``store`` a page at a time and split each page into excluded, referenced and unreferenced keys.

    With ``key_range`` only the keys of that range are listed (a worker's part
    of a distributed run); ``coverage`` reads its sources restricted to the
    same range (:class:`~reclaim.references.KeySpan`), and their ordering and
    emptiness checks run in every range.

    Raises :class:`StoreError` when the listing fails or goes backwards (also
    across pages), and what the sources raise; after the last page every
    source is read to its end.
    """
    excluded_of = _exclusion_filter(exclude)
    trash_high = upper_bound(trash_prefix)
    previous: str | None = None
    listed = 0
    reported = 0
    held: list[_Page] = []  # pages of a snapshot listing waiting for their verification batch
    pending = 0
    step = as_progress(progress).step("scan", store.name, expected, unit="listed", estimated=True)
    ranged = key_range is not None and not key_range.whole
    bounds = (key_range.start_after, key_range.end_before) if key_range is not None else (None, None)
    for page in list_pages(store, prefix, skip=(trash_prefix,), start_after=bounds[0], end_before=bounds[1]):
        keys = page.keys
        if ranged and keys:
            assert key_range is not None
            keys = _within(keys, key_range)
        if not keys:
            continue
        # one C-level pass: strictly increasing within the page and after the page before
        if (previous is not None and keys[0] <= previous) or not all(
            map(operator.lt, keys, islice(keys, 1, None))
        ):
            _out_of_order(store, previous, keys)
        previous = keys[-1]
        listed += len(keys)
        if listed - reported >= _PROGRESS_EVERY:
            reported = listed
            step.update(listed)
        low = bisect_left(keys, trash_prefix)
        if low < len(keys) and keys[low].startswith(trash_prefix):
            # invariant 8: nothing in the trash is ever a candidate (the listing pruned it already)
            high = len(keys) if trash_high is None else bisect_left(keys, trash_high, low)
            keys = keys[:low] + keys[high:]
        excluded = excluded_of(keys) if excluded_of is not None else []
        if excluded:
            dropped = set(excluded)
            keys = list(filterfalse(dropped.__contains__, keys))
        unreferenced = coverage.unreferenced(keys)
        if not page.snapshot:
            yield _Page(page, keys, excluded, unreferenced, [])  # a live listing: nothing to verify
            continue
        held.append(_Page(page, keys, excluded, unreferenced, []))
        pending += len(unreferenced)
        if pending >= VERIFY_KEYS or len(held) >= VERIFY_PAGES:
            yield from _verified(held)
            held, pending = [], 0
    yield from _verified(held)
    coverage.drain()
    step.update(listed)
    step.done()


def _verified(held: list[_Page]) -> Iterator[_Page]:
    """The held pages of a snapshot listing, their unreferenced keys checked against the store now."""
    if not any(item.unreferenced for item in held):
        yield from held
        return
    # every held page, those without unreferenced keys too: together they say how dense the keys are
    changed_of = verify_pages([(item.page, item.unreferenced) for item in held])
    for item, changed in zip(held, changed_of, strict=True):
        if changed:
            moved_on = set(changed)
            item.unreferenced = list(filterfalse(moved_on.__contains__, item.unreferenced))
            item.changed = changed
        yield item


def _within(keys: list[str], key_range: KeyRange) -> list[str]:
    """The keys of a sorted page inside ``key_range``: a range listing may start just below its first key."""
    low = bisect_left(keys, key_range.first) if key_range.first is not None else 0
    high = bisect_left(keys, key_range.end_before) if key_range.end_before is not None else len(keys)
    return keys if low == 0 and high == len(keys) else keys[low:high]


def _out_of_order(store: Store, previous: str | None, keys: list[str]) -> None:
    for key in keys:
        if previous is not None and key <= previous:
            raise StoreError(store.name, f"the listing is not in byte order: {key!r} came after {previous!r}")
        previous = key
    raise AssertionError("unreachable: the page was out of order")  # pragma: no cover


def classify(
    store: Store,
    sources: Sequence[ReferenceSource],
    *,
    scan_start: datetime,
    min_age: timedelta,
    trash_prefix: str,
    exclude: Sequence[str] = (),
    prefix: str = "",
    progress: ProgressLike = None,
    expected: int | None = None,
) -> Iterator[Classified]:
    """Yield every listed object of ``store`` with its :class:`Status`, in key order.

    The per-key view of what :func:`scan_store` counts (one object per key:
    for tests and tools, not for the scan itself). The listing reports to
    ``progress`` (phase ``scan``), ``expected`` being the estimated number of
    objects (the last run's listing).

    Raises :class:`StoreError` when the listing fails or goes backwards and
    :class:`~reclaim.errors.SourceError` when a source fails, goes backwards or
    is empty while its table is not; nothing is yielded as complete after an error.
    """
    threshold = (_now_of(scan_start, _listed_as_of(store)) - min_age).timestamp()
    coverage = PageCoverage(sources)
    pages = _classified_pages(
        store,
        coverage,
        trash_prefix=trash_prefix,
        exclude=exclude,
        prefix=prefix,
        progress=progress,
        expected=expected,
    )
    for item in pages:
        verdicts: dict[str, Classified] = {}
        for key in item.excluded:
            verdicts[key] = Classified(item.page.info(key) or ObjectInfo(key), Status.EXCLUDED)
        for key in item.changed:
            verdicts[key] = Classified(item.page.info(key) or ObjectInfo(key), Status.CHANGED)
        for key in item.unreferenced:
            info = item.page.info(key)
            if info is None:
                verdicts[key] = Classified(ObjectInfo(key), Status.VANISHED)
            else:
                assert info.mtime is not None
                status = Status.CANDIDATE if info.mtime < threshold else Status.YOUNG
                verdicts[key] = Classified(info, status)
        kept = set(item.kept)
        for key in item.page.keys:
            verdict = verdicts.get(key)
            if verdict is not None:
                yield verdict
            elif key in kept:
                yield Classified(ObjectInfo(key), Status.REFERENCED)


def scan_store(
    store: Store,
    sources: Sequence[ReferenceSource],
    *,
    action: str,
    min_age: timedelta,
    max_fraction: float,
    trash_prefix: str,
    exclude: Sequence[str] = (),
    show: int = 0,
    scan_start: datetime | None = None,
    progress: ProgressLike = None,
    expected: int | None = None,
    on_candidate: Callable[[ObjectInfo], None] | None = None,
    referenced_bytes: bool = False,
    key_range: KeyRange | None = None,
    released: Callable[[list[str]], set[str]] | None = None,
    watch: Watch | None = None,
) -> StoreScan:
    """Scan one store read-only and count, a page at a time, what :func:`classify` decides.

    ``show`` keeps that many candidate samples; ``on_candidate`` is called with
    every candidate (quarantine spools them). ``referenced_bytes`` measures the
    bytes of referenced objects where the listing does not carry them (a
    ``stat`` per object on a local directory); without it their bytes are
    reported as not measured there. ``progress`` and ``expected`` are
    :func:`classify`'s. With ``key_range`` only that range of keys is listed
    and counted (one worker's part of a distributed run), and every reference
    source reads only the references that cover some key of the range
    (:class:`~reclaim.references.KeySpan`: the database selects them, in the
    source's binary collation; a decoder's keys are cut in Python).
    With ``released`` (a store with ``strays = "report"``),
    each page's old-enough unreferenced keys are given to it at once, and those
    it does not return are strays: counted in ``strays``, never candidates, never
    given to ``on_candidate``.
    With ``watch`` (``age = "unreferenced"``) an
    unreferenced object is a candidate only when it is also old enough by
    the watch's clock (else it counts as young); each page's unreferenced
    keys are recorded, and after the last page the watch is finished (never
    after an error). Raises what :func:`classify` raises.
    """
    start = scan_start or datetime.now(UTC)
    as_of = _listed_as_of(store)  # a snapshot listing: chosen (and refused if unusable) before anything
    report = StoreScan(
        store=store.name,
        url=store.url,
        action=action,
        scan_start=start,
        min_age=min_age,
        max_fraction=max_fraction,
        sources=[SourceReport(s.name, s.database) for s in sources],
        stray_policy="report" if released is not None else "collect",
        listed_as_of=as_of,
    )
    threshold = report.threshold.timestamp()
    span = KeySpan(key_range.first, key_range.end_before) if key_range is not None else None
    coverage = PageCoverage(sources, span)
    # counted in locals, not with Tally.add: this loop runs for every unreferenced key
    samples = report.samples
    candidates = young = excluded = vanished = referenced = changed = 0
    changed_size: int | None = 0
    strays = report.strays
    stray_samples = report.stray_samples
    old: list[ObjectInfo] = []
    candidate_size: int | None = 0
    young_size: int | None = 0
    excluded_size: int | None = 0
    referenced_size: int | None = 0
    measured = True
    pages = _classified_pages(
        store,
        coverage,
        trash_prefix=trash_prefix,
        exclude=exclude,
        prefix="",
        progress=progress,
        expected=expected,
        key_range=key_range,
    )
    for item in pages:
        info_of = item.page.info
        for key in item.excluded:
            excluded += 1
            info = info_of(key)
            if info is not None and excluded_size is not None:  # gone since listed: no bytes left
                excluded_size = None if info.size is None else excluded_size + info.size
        for key in item.changed:
            changed += 1  # a snapshot listing: modified since the snapshot, never a candidate
            info = info_of(key)
            if info is not None and changed_size is not None:
                changed_size = None if info.size is None else changed_size + info.size
        infos: Iterable[ObjectInfo | None] = map(info_of, item.unreferenced)
        watched: set[str] | None = None  # age = "unreferenced": the keys unreferenced long enough
        if watch is not None:
            infos = list(infos)
            watched = watch.old_enough([info.key for info in infos if info is not None])
        for info in infos:
            if info is None:
                vanished += 1  # listed, gone before its size and mtime could be read
                continue
            assert info.mtime is not None
            size = info.size
            if info.mtime >= threshold or (watched is not None and info.key not in watched):
                # invariant 1: modified at or after scan_start - min_age (or, with age =
                # "unreferenced", not seen unreferenced by every complete scan since then)
                young += 1
                if young_size is not None:
                    young_size = None if size is None else young_size + size
                continue
            old.append(info)
        if old and released is not None:
            # one lookup for the page's candidates: those no row released are strays
            freed = released([info.key for info in old])
            for info in old:
                if info.key not in freed:
                    strays.add(info.size)
                    if len(stray_samples) < show:
                        stray_samples.append(info)
            old = [info for info in old if info.key in freed]
        for info in old:
            size = info.size
            candidates += 1
            if candidate_size is not None:
                candidate_size = None if size is None else candidate_size + size
            if len(samples) < show:
                samples.append(info)
            if on_candidate is not None:
                on_candidate(info)
        old.clear()
        count = len(item.kept) - len(item.unreferenced) - len(item.changed)
        referenced += count
        if count and referenced_size is not None:
            if item.page.sizes_listed or referenced_bytes:
                unreferenced = set(item.unreferenced).union(item.changed)
                size = item.page.bytes_of(filterfalse(unreferenced.__contains__, item.kept))
                referenced_size = None if size is None else referenced_size + size
            else:
                measured = False
                referenced_size = None
    report.candidates = Tally(candidates, candidate_size)
    report.young = Tally(young, young_size)
    report.excluded = Tally(excluded, excluded_size)
    report.vanished = Tally(vanished, 0)
    report.changed = Tally(changed, changed_size)
    report.referenced.count = referenced
    report.referenced.bytes = referenced_size
    report.referenced_bytes_measured = measured
    parts = (
        report.referenced,
        report.candidates,
        report.young,
        report.excluded,
        report.vanished,
        report.changed,
        strays,
    )
    report.listed.count = sum(t.count for t in parts)
    sizes = [t.bytes for t in parts]
    report.listed.bytes = None if None in sizes else sum(b for b in sizes if b is not None)
    for source_report, source, covers in zip(report.sources, sources, coverage.covers, strict=True):
        source_report.covers = covers
        source_report.rows = source.counters.rows
        source_report.foreign = source.counters.foreign
        report.references += source.counters.rows
    if watch is not None:
        watch.finish()  # the listing and every source were read to their end: the scan is complete
    report.finished_at = datetime.now(UTC)
    return report
