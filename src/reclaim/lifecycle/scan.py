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
- ``candidate``: unreferenced and old enough.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import filterfalse, islice

from reclaim.errors import StoreError
from reclaim.lifecycle.progress import ProgressLike, as_progress
from reclaim.references import PageCoverage, ReferenceSource, upper_bound
from reclaim.stores import ObjectInfo, Store
from reclaim.stores._pages import KeyPage, list_pages

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


class Status(StrEnum):
    """What the scan decided about one listed object."""

    REFERENCED = "referenced"
    CANDIDATE = "candidate"
    YOUNG = "young"
    EXCLUDED = "excluded"
    VANISHED = "vanished"
    """Listed, then gone before its size and mtime could be read (not a candidate)."""


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
    references: int = 0
    sources: list[SourceReport] = field(default_factory=list)
    samples: list[ObjectInfo] = field(default_factory=list)
    finished_at: datetime | None = None
    referenced_bytes_measured: bool = True
    """False when the listing carried no sizes and none were asked for: ``referenced.bytes`` and
    ``listed.bytes`` are then ``None`` (not measured), never a wrong total."""

    @property
    def threshold(self) -> datetime:
        """Objects modified before this instant may be candidates."""
        return self.scan_start - self.min_age

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


@dataclass(slots=True)
class _Page:
    """One page of the listing, classified: what :func:`_classified_pages` yields."""

    page: KeyPage
    kept: list[str]
    """The page's keys outside the trash and not excluded (referenced or not)."""
    excluded: list[str]
    unreferenced: list[str]


def _classified_pages(
    store: Store,
    coverage: PageCoverage,
    *,
    trash_prefix: str,
    exclude: Sequence[str],
    prefix: str,
    progress: ProgressLike,
    expected: int | None,
) -> Iterator[_Page]:
    """List ``store`` a page at a time and split each page into excluded, referenced and unreferenced keys.

    Raises :class:`StoreError` when the listing fails or goes backwards (also
    across pages), and what the sources raise; after the last page every
    source is read to its end.
    """
    excluded_of = _exclusion_filter(exclude)
    trash_high = upper_bound(trash_prefix)
    previous: str | None = None
    listed = 0
    reported = 0
    step = as_progress(progress).step("scan", store.name, expected, unit="listed", estimated=True)
    for page in list_pages(store, prefix, skip=(trash_prefix,)):
        keys = page.keys
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
        yield _Page(page, keys, excluded, coverage.unreferenced(keys))
    coverage.drain()
    step.update(listed)
    step.done()


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
    threshold = (scan_start - min_age).timestamp()
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
) -> StoreScan:
    """Scan one store read-only and count, a page at a time, what :func:`classify` decides.

    ``show`` keeps that many candidate samples; ``on_candidate`` is called with
    every candidate (quarantine spools them). ``referenced_bytes`` measures the
    bytes of referenced objects where the listing does not carry them (a
    ``stat`` per object on a local directory); without it their bytes are
    reported as not measured there. ``progress`` and ``expected`` are
    :func:`classify`'s. Raises what :func:`classify` raises.
    """
    start = scan_start or datetime.now(UTC)
    report = StoreScan(
        store=store.name,
        url=store.url,
        action=action,
        scan_start=start,
        min_age=min_age,
        max_fraction=max_fraction,
        sources=[SourceReport(s.name, s.database) for s in sources],
    )
    threshold = (start - min_age).timestamp()
    coverage = PageCoverage(sources)
    # counted in locals, not with Tally.add: this loop runs for every unreferenced key
    samples = report.samples
    candidates = young = excluded = vanished = referenced = 0
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
    )
    for item in pages:
        info_of = item.page.info
        for key in item.excluded:
            excluded += 1
            info = info_of(key)
            if info is not None and excluded_size is not None:  # gone since listed: no bytes left
                excluded_size = None if info.size is None else excluded_size + info.size
        for info in map(info_of, item.unreferenced):
            if info is None:
                vanished += 1  # listed, gone before its size and mtime could be read
                continue
            assert info.mtime is not None
            size = info.size
            if info.mtime >= threshold:
                young += 1  # invariant 1: modified at or after scan_start - min_age
                if young_size is not None:
                    young_size = None if size is None else young_size + size
                continue
            candidates += 1
            if candidate_size is not None:
                candidate_size = None if size is None else candidate_size + size
            if len(samples) < show:
                samples.append(info)
            if on_candidate is not None:
                on_candidate(info)
        count = len(item.kept) - len(item.unreferenced)
        referenced += count
        if count and referenced_size is not None:
            if item.page.sizes_listed or referenced_bytes:
                unreferenced = set(item.unreferenced)
                size = item.page.bytes_of(filterfalse(unreferenced.__contains__, item.kept))
                referenced_size = None if size is None else referenced_size + size
            else:
                measured = False
                referenced_size = None
    report.candidates = Tally(candidates, candidate_size)
    report.young = Tally(young, young_size)
    report.excluded = Tally(excluded, excluded_size)
    report.vanished = Tally(vanished, 0)
    report.referenced.count = referenced
    report.referenced.bytes = referenced_size
    report.referenced_bytes_measured = measured
    parts = (report.referenced, report.candidates, report.young, report.excluded, report.vanished)
    report.listed.count = sum(t.count for t in parts)
    sizes = [t.bytes for t in parts]
    report.listed.bytes = None if None in sizes else sum(b for b in sizes if b is not None)
    for source_report, source, covers in zip(report.sources, sources, coverage.covers, strict=True):
        source_report.covers = covers
        source_report.rows = source.counters.rows
        source_report.foreign = source.counters.foreign
        report.references += source.counters.rows
    report.finished_at = datetime.now(UTC)
    return report
