"""Partitioned listing: disjoint key ranges listed concurrently, yielded in key order.

A single ``ListObjectsV2`` stream waits one round trip per page of 1000 keys.
Independent key ranges can be listed at the same time (DESIGN.md "Scanning at
scale"); because the ranges are disjoint and ordered, yielding range 0
completely, then range 1, and so on *is* the ordered listing: no heap is needed.

- **Ranges.** Boundaries ``b1 < b2 < ... < bm`` make the ranges ``k < b1``,
  ``b1 <= k < b2``, ..., ``bm <= k``: every key falls in exactly one range, so
  nothing is dropped or listed twice, whatever the boundaries are (keys equal
  to a boundary included). A store lists a range with ``start_after`` (which
  is exclusive) set just below the boundary, and keys below it are dropped.
- **Default boundaries** come from one delimiter listing of the first level
  under the prefix (``store.first_level(prefix)`` of a
  :class:`~reclaim.stores.base.PartitionableStore`: common prefixes and keys
  with ``Delimiter="/"``), descending while that level is a single directory,
  then split into ``partitions`` groups of about the same number of entries.
  With fewer than two entries, or a store that is not a
  ``PartitionableStore``, the listing is a single stream.
- **Bounded memory.** Each range has a producer thread (a bounded pool) that
  fills a queue of at most ``prefetch_pages`` pages; a producer whose queue is
  full waits for the consumer.
- **Fail closed.** An error in any producer stops all producers and raises
  ``StoreError`` in the consumer at its next page, never a short listing.
  Closing the generator early stops the producers and waits for their threads.

The S3 store uses this when opened with the storage option ``list_partitions``
(an int, default 1: a single stream).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from reclaim.errors import StoreError
from reclaim.stores._walk import check_listing_args
from reclaim.stores.base import ObjectInfo, PartitionableStore

__all__ = [
    "KeyRange",
    "RangeLister",
    "choose_boundaries",
    "default_boundaries",
    "just_below",
    "list_partitioned",
    "range_bounds",
]

#: the most producer threads one partitioned listing runs at a time
MAX_WORKERS = 32
#: objects per page a producer hands to the consumer when neither caller nor store says
DEFAULT_PAGE_SIZE = 1000
#: how deep default boundaries descend through levels that are a single directory
_MAX_DESCENT = 4
_LAST_CHAR = "\U0010ffff"
_POLL = 0.05  # seconds between checks of the stop flag while waiting on a queue

RangeLister = Callable[..., Iterator[ObjectInfo]]
"""``lister(prefix, *, skip, start_after, end_before)``: one ordered key range of a store."""


class _RangeListed(Protocol):
    """What a partitioned listing needs of a store: its name and a listing of key ranges."""

    name: str

    def list(
        self,
        prefix: str = "",
        *,
        skip: Sequence[str] = (),
        start_after: str | None = None,
        end_before: str | None = None,
    ) -> Iterator[ObjectInfo]: ...


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The keys ``k`` with ``first <= k < end_before`` (``None``: unbounded on that side).

    A store's key space cut at boundaries ``b1 < ... < bm`` is the ranges of
    :func:`range_bounds`: every key falls in exactly one of them.
    """

    first: str | None = None
    end_before: str | None = None

    def __post_init__(self) -> None:
        for bound in (self.first, self.end_before):
            if bound is not None:
                check_listing_args("", (), bound, None)
                if not bound:
                    raise ValueError("an empty bound would make an empty range; use None (unbounded)")
        if self.first is not None and self.end_before is not None and self.first >= self.end_before:
            raise ValueError(f"an empty key range: {self.first!r} is not below {self.end_before!r}")

    @property
    def whole(self) -> bool:
        """Whether the range is the whole key space."""
        return self.first is None and self.end_before is None

    @property
    def start_after(self) -> str | None:
        """The exclusive ``start_after`` a store lists the range with (keys below ``first`` are dropped)."""
        return just_below(self.first) if self.first is not None else None

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if self.first is not None and key < self.first:
            return False
        return self.end_before is None or key < self.end_before

    def describe(self) -> str:
        """``[a, m)``, ``[start, m)``, ``[m, end)``: the range as an operator reads it."""
        low = repr(self.first) if self.first is not None else "start"
        high = repr(self.end_before) if self.end_before is not None else "end"
        return f"[{low}, {high})"

    @classmethod
    def split(cls, boundaries: Sequence[str]) -> list[KeyRange]:
        """The ranges that ``boundaries`` (sorted or not, duplicates ignored) cut the key space into."""
        return [cls(first, end) for first, end in range_bounds(sorted(set(boundaries)))]


class _Done:
    pass


_DONE = _Done()


def list_partitioned(
    store: _RangeListed,
    prefix: str = "",
    *,
    skip: Sequence[str] = (),
    partitions: int = 8,
    boundaries: Sequence[str] | None = None,
    prefetch_pages: int = 4,
    page_size: int | None = None,
    lister: RangeLister | None = None,
) -> Iterator[ObjectInfo]:
    """Yield the objects under ``prefix`` in key byte order, listing key ranges concurrently.

    Each range is listed with ``store.list`` (or ``lister``) and its
    ``start_after``/``end_before``. ``boundaries`` (sorted or not, duplicates
    ignored) override the default ones, found with ``store.first_level`` where
    the store is a :class:`~reclaim.stores.base.PartitionableStore` (else the
    listing is one stream). A range hands on ``page_size`` objects at a time,
    ``prefetch_pages`` pages ahead at most (default page size: the store's
    ``max_keys`` where it is partitionable, else 1000). Raises ``ValueError``
    at once for invalid arguments; ``StoreError`` while iterating if any range
    fails.
    """
    check_listing_args(prefix, skip, None, None)
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    if prefetch_pages < 1:
        raise ValueError(f"prefetch_pages must be at least 1, not {prefetch_pages}")
    if page_size is None:
        page_size = store.max_keys if isinstance(store, PartitionableStore) else DEFAULT_PAGE_SIZE
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size}")
    list_range: RangeLister = lister if lister is not None else store.list
    if boundaries is None:
        bounds = default_boundaries(store, prefix, partitions)
    else:
        bounds = sorted(set(boundaries))
        for bound in bounds:
            check_listing_args("", (), bound, None)
            if not bound:
                raise ValueError("an empty boundary would make an empty range")
    skip = tuple(skip)
    if not bounds:
        return list_range(prefix, skip=skip, start_after=None, end_before=None)
    return _concurrent(store.name, list_range, prefix, skip, range_bounds(bounds), page_size, prefetch_pages)


def range_bounds(boundaries: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """The ``(first, end_before)`` of each range for sorted ``boundaries`` (``None``: unbounded)."""
    lows: list[str | None] = [None, *boundaries]
    highs: list[str | None] = [*boundaries, None]
    return list(zip(lows, highs, strict=True))


def choose_boundaries(entries: Sequence[str], partitions: int) -> list[str]:
    """Boundaries that split first-level ``entries`` into ``partitions`` groups of about equal size.

    Each boundary is the first entry of a group (the first group needs none).
    """
    entries = sorted(set(entries))
    groups = min(partitions, len(entries))
    if groups < 2:
        return []
    return sorted({entries[(i * len(entries)) // groups] for i in range(1, groups)})


def default_boundaries(store: object, prefix: str, partitions: int) -> list[str]:
    """Boundaries for ``partitions`` ranges from one delimiter listing (see the module docstring).

    ``[]`` (one range) for a store that is not a
    :class:`~reclaim.stores.base.PartitionableStore` or with fewer than two first-level entries.
    """
    if partitions < 2 or not isinstance(store, PartitionableStore):
        return []
    entries = store.first_level(prefix)
    for _ in range(_MAX_DESCENT):
        if len(entries) != 1 or not entries[0].endswith("/"):
            break
        entries = store.first_level(entries[0])  # a single directory: split the level below it
    return choose_boundaries(entries, partitions)


def just_below(bound: str) -> str | None:
    """A ``start_after`` below ``bound`` with (practically) no key between them; ``None``: from the start.

    Keys between the result and ``bound`` would only be listed and dropped, so
    any value below ``bound`` is correct; this one makes that waste nil.
    """
    last = ord(bound[-1])
    if last > 1:
        before = last - 1 if not 0xD800 <= last - 1 <= 0xDFFF else 0xD7FF
        candidate = bound[:-1] + chr(before) + _LAST_CHAR
        if not candidate.startswith("/"):
            return candidate
    return bound[:-1] or None


def _concurrent(
    name: str,
    list_range: RangeLister,
    prefix: str,
    skip: tuple[str, ...],
    ranges: list[tuple[str | None, str | None]],
    page_size: int,
    prefetch_pages: int,
) -> Iterator[ObjectInfo]:
    stop = threading.Event()
    failure: list[BaseException] = []
    queues: list[queue.Queue[list[ObjectInfo] | _Done]] = [queue.Queue(prefetch_pages) for _ in ranges]

    def put(q: queue.Queue[list[ObjectInfo] | _Done], item: list[ObjectInfo] | _Done) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce(index: int) -> None:
        first, end = ranges[index]
        q = queues[index]
        if stop.is_set():
            return
        listing: Iterator[ObjectInfo] | None = None
        try:
            start = just_below(first) if first is not None else None
            listing = list_range(prefix, skip=skip, start_after=start, end_before=end)
            page: list[ObjectInfo] = []
            for info in listing:
                if stop.is_set():
                    return
                if first is not None and info.key < first:
                    continue  # belongs to the range before
                page.append(info)
                if len(page) >= page_size:
                    if not put(q, page):
                        return
                    page = []
            if page and not put(q, page):
                return
            put(q, _DONE)
        except BaseException as exc:
            if not failure:
                failure.append(exc)
            stop.set()
        finally:
            if isinstance(listing, Generator):
                listing.close()  # stops a range that ended early (stop, or a full queue) and frees it

    def consume() -> Iterator[ObjectInfo]:
        pool = ThreadPoolExecutor(
            max_workers=min(len(ranges), MAX_WORKERS), thread_name_prefix="reclaim-list"
        )
        try:
            for index in range(len(ranges)):
                pool.submit(produce, index)
            for q in queues:
                while True:
                    if failure:
                        raise _as_store_error(name, failure[0])
                    try:
                        item = q.get(timeout=_POLL)
                    except queue.Empty:
                        continue
                    if isinstance(item, _Done):
                        break
                    if failure:
                        raise _as_store_error(name, failure[0])
                    yield from item
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    return consume()


def _as_store_error(name: str, exc: BaseException) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    return StoreError(name, f"partitioned listing failed: {type(exc).__name__}: {exc}")
