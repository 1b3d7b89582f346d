"""The streaming merge scan: ``listing - references``, one pass, flat memory.

The store is listed in byte order and walked alongside the ordered merge of
its reference sources (:class:`~reclaim.references.Coverage`). Each listed key
is classified exactly once:

- ``excluded``: under an ``exclude`` glob (never a candidate, invariant 8);
- ``referenced``: covered by a reference (exact, prefix or sidecar);
- ``young``: unreferenced but modified at or after ``scan_start - min_age``
  (invariant 1: objects written during the scan are never candidates);
- ``candidate``: unreferenced and old enough.

Size and mtime are fetched (a ``stat``) only for unreferenced keys whose
listing did not carry them. The trash prefix is pruned from the listing.
Any listing or source error propagates: a scan is complete or an error
(invariant 2), and every source is read to its end so that its ordering and
emptiness checks always run.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from reclaim.errors import StoreError
from reclaim.lifecycle.progress import ProgressLike, as_progress
from reclaim.references import Coverage, CoveringReference, ReferenceSource
from reclaim.stores import ObjectInfo, Store

__all__ = [
    "Classified",
    "SourceReport",
    "Status",
    "StoreScan",
    "Tally",
    "classify",
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
    """One listed object and the scan's verdict on it."""

    info: ObjectInfo
    status: Status
    covering: CoveringReference | None = None


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


def _exclusion_matcher(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    if not patterns:
        return None
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
    return lambda key: regex.match(key) is not None


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

    The listing reports to ``progress`` (phase ``scan``), ``expected`` being
    the estimated number of objects (the last run's listing).

    Raises :class:`StoreError` when the listing fails or goes backwards and
    :class:`~reclaim.errors.SourceError` when a source fails, goes backwards or
    is empty while its table is not; nothing is yielded as complete after an error.
    """
    threshold = (scan_start - min_age).timestamp()
    excluded = _exclusion_matcher(exclude)
    coverage = Coverage(sources)
    previous: str | None = None
    listed = 0
    step = as_progress(progress).step("scan", store.name, expected, unit="listed", estimated=True)
    for info in store.list(prefix, skip=(trash_prefix,)):
        key = info.key
        if previous is not None and key <= previous:
            raise StoreError(store.name, f"the listing is not in byte order: {key!r} came after {previous!r}")
        previous = key
        listed += 1
        if listed % _PROGRESS_EVERY == 0:
            step.update(listed)
        if key.startswith(trash_prefix):
            continue  # invariant 8: nothing in the trash is ever a candidate
        if excluded is not None and excluded(key):
            yield Classified(info, Status.EXCLUDED)
            continue
        covering = coverage.covering(key)
        if covering is not None:
            yield Classified(info, Status.REFERENCED, covering)
            continue
        if info.mtime is None or info.size is None:
            try:
                info = store.stat(key)
            except FileNotFoundError:
                yield Classified(info, Status.VANISHED)
                continue
        assert info.mtime is not None
        status = Status.CANDIDATE if info.mtime < threshold else Status.YOUNG
        yield Classified(info, status)
    coverage.drain()
    step.update(listed)
    step.done()


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
) -> StoreScan:
    """Scan one store read-only and count what :func:`classify` decides.

    ``show`` keeps that many candidate samples; ``on_candidate`` is called with
    every candidate (quarantine spools them); ``progress`` and ``expected``
    are :func:`classify`'s. Raises what :func:`classify` raises.
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
    tallies = {
        Status.REFERENCED: report.referenced,
        Status.CANDIDATE: report.candidates,
        Status.YOUNG: report.young,
        Status.EXCLUDED: report.excluded,
        Status.VANISHED: report.vanished,
    }
    for item in classify(
        store,
        sources,
        scan_start=start,
        min_age=min_age,
        trash_prefix=trash_prefix,
        exclude=exclude,
        progress=progress,
        expected=expected,
    ):
        report.listed.add(item.info.size)
        tallies[item.status].add(item.info.size)
        if item.covering is not None:
            for index in item.covering.sources:
                report.sources[index].covers += 1
        elif item.status is Status.CANDIDATE:
            if len(report.samples) < show:
                report.samples.append(item.info)
            if on_candidate is not None:
                on_candidate(item.info)
    for source_report, source in zip(report.sources, sources, strict=True):
        source_report.rows = source.counters.rows
        source_report.foreign = source.counters.foreign
        report.references += source.counters.rows
    report.finished_at = datetime.now(UTC)
    return report
