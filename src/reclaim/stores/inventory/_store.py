"""The inventory store: an S3 store whose listing comes from its newest S3 Inventory report.

:class:`InventoryStore` wraps the live :class:`~reclaim.stores.s3.S3Store`.
Its listing (``list``, ``list_pages``) reads the report chosen once for the
store's life (:meth:`InventoryStore.report`, see :mod:`._manifest`), sorted out
of core (:mod:`._sort`), in byte order of the keys, as a LIST would give it,
so the scan's merge takes it unchanged. Everything else (``stat``,
``stat_many``, ``move``, ``delete``, versioned restore) goes to the live
store: what is quarantined, purged or restored is always the bucket as it is.

A report is a snapshot, so it is a :class:`~reclaim.stores.base.SnapshotStore`:

- its pages (:class:`InventoryPage`) answer ``verify``: the keys the scan
  found unreferenced are looked up in the bucket *now* (``stat_many``:
  batched, a listing of their range where they are dense); a key gone since
  the report is vanished, one whose size, ETag or mtime differ from the
  report's, or that was modified after the report was taken, is *changed*:
  never a candidate. A candidate carries the live size, mtime and ETag;
- :meth:`InventoryStore.listed_as_of` is the instant the report was taken,
  which the scan uses as its ``now`` for the age threshold: an object is a
  candidate only if it was already ``min_age`` old when the report was taken;
- an object that is not in the report is never listed, so never a candidate.

:meth:`InventoryStore.split_points` gives key-range boundaries of about equal
numbers of keys, from the report's own key distribution (for partitioned runs).
"""

from __future__ import annotations

import builtins
import math
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from reclaim.errors import StoreError
from reclaim.stores._delegate import StoreDelegate, VersionedDelegate
from reclaim.stores._pages import PAGE_SIZE, KeyPage, ListedPage
from reclaim.stores._walk import check_listing_args
from reclaim.stores.base import ObjectInfo, Store
from reclaim.stores.inventory._manifest import Report, find_report, parse_location
from reclaim.stores.inventory._read import KeyFilter, read_report
from reclaim.stores.inventory._sort import RUN_ROWS, Chunk, DuplicateKey, sorted_rows
from reclaim.stores.s3 import S3Store

if TYPE_CHECKING:
    from reclaim.stores.base import SnapshotStore, VersionedStore

__all__ = ["DEFAULT_MAX_AGE", "InventoryPage", "InventoryStore"]

DEFAULT_MAX_AGE: Final = timedelta(hours=48)
#: keys sampled from the report to choose split points
_SAMPLE: Final = 20_000


class InventoryPage(ListedPage):
    """A page of a report: keys, with the report's sizes, mtimes and ETags; ``verify`` asks the bucket."""

    __slots__ = ("_etags", "_index", "_live", "_mtimes", "_sizes", "_store")

    def __init__(
        self,
        store: InventoryStore,
        keys: list[str],
        sizes: list[int | None],
        mtimes: list[float | None],
        etags: list[str | None],
    ) -> None:
        super().__init__(keys)
        self._store = store
        self._sizes = sizes
        self._mtimes = mtimes
        self._etags = etags
        self._index: dict[str, int] | None = None
        self._live: dict[str, ObjectInfo | None] = {}

    @property
    def sizes_listed(self) -> bool:  # type: ignore[override]
        """Whether the report carried every key's size."""
        return None not in self._sizes

    def listed(self, key: str) -> ObjectInfo:
        """What the report says of ``key`` (one of :attr:`keys`)."""
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys)}
        i = self._index[key]
        return ObjectInfo(key, self._sizes[i], self._mtimes[i], self._etags[i])

    snapshot = True

    def verify_together(self, items: Sequence[tuple[KeyPage, list[str]]]) -> list[list[str]]:
        """Look the keys of these pages up in the bucket now (one ``stat_many``); the changed keys of each.

        After this, :meth:`info` of each key answers from the bucket: ``None``
        for a key gone since the report. A key changed when its live size,
        ETag or mtime (to the second: a report and a HEAD round differently)
        differ from the report's, or it was modified at or after the instant
        the report was taken. Raises :class:`StoreError` when the bucket
        cannot be asked.
        """
        pages = [page for page, _ in items]
        if not all(isinstance(page, InventoryPage) and page._store is self._store for page in pages):
            raise TypeError("pages of different listings cannot be verified together")
        wanted = [key for _, keys in items for key in keys]
        live = self._store.live.stat_many(wanted, span=_span(items)) if wanted else {}
        taken = self._store.listed_as_of().timestamp()
        out: list[list[str]] = []
        for page, keys in items:
            assert isinstance(page, InventoryPage)
            changed = []
            for key in keys:
                now = live.get(key)
                page._live[key] = now
                if now is not None and _differs(page.listed(key), now, taken):
                    changed.append(key)
            out.append(changed)
        return out

    def info(self, key: str) -> ObjectInfo | None:
        """The bucket's answer for a verified key; else the report's (the bucket's where it has no mtime)."""
        if key in self._live:
            return self._live[key]
        return super().info(key)

    def _stat(self, key: str) -> ObjectInfo:
        return self._store.live.stat(key)


def _span(items: Sequence[tuple[KeyPage, list[str]]]) -> int:
    """How many report keys lie from the first key asked for to the last (the pages are consecutive)."""
    first: int | None = None
    last = 0
    offset = 0
    for page, keys in items:
        if keys:
            if first is None:
                first = offset + bisect_left(page.keys, keys[0])
            last = offset + bisect_left(page.keys, keys[-1])
        offset += len(page.keys)
    return 0 if first is None else last - first + 1


def _differs(listed: ObjectInfo, live: ObjectInfo, taken: float) -> bool:
    if live.mtime is not None and live.mtime >= taken:
        return True  # modified after the report was taken: the report does not describe it
    if listed.size is not None and live.size is not None and listed.size != live.size:
        return True
    if listed.etag is not None and live.etag is not None and listed.etag.strip('"') != live.etag.strip('"'):
        return True
    return (
        listed.mtime is not None
        and live.mtime is not None
        and math.floor(listed.mtime) != math.floor(live.mtime)
    )


class InventoryStore(StoreDelegate, VersionedDelegate):
    """The S3 store ``store`` listed from the S3 Inventory reports at ``location`` (see the module docstring).

    ``location`` is the report's folder, ``s3://<dest-bucket>/<prefix>/<source-bucket>/<config-id>/``;
    a report older than ``max_age`` is refused. ``include`` limits the
    listing to those key prefixes. ``run_rows`` rows are sorted in memory
    before a run is spilled to ``tempdir``. Raises :class:`StoreError` for a
    location that is not of that shape or not of the store's bucket.
    """

    atomic_move = False
    _store: S3Store

    def __init__(
        self,
        store: S3Store,
        location: str,
        *,
        max_age: timedelta = DEFAULT_MAX_AGE,
        include: Sequence[str] = (),
        run_rows: int = RUN_ROWS,
        tempdir: str | None = None,
    ) -> None:
        try:
            bucket, prefix = parse_location(location)
        except ValueError as exc:
            raise StoreError(store.name, f"invalid inventory location: {exc}") from None
        source = prefix.rstrip("/").split("/")
        if len(source) < 2 or source[-2] != store.bucket:
            raise StoreError(
                store.name,
                f"the inventory location {location!r} is not of bucket {store.bucket!r}: its path must end "
                f"in /{store.bucket}/<config-id>/",
            )
        if max_age <= timedelta(0):
            raise StoreError(store.name, "max_inventory_age must be positive")
        check_listing_args("", list(include), None, None)
        self._store = store
        self._versioned = store
        self.name = store.name
        self.url = store.url
        self.location = location
        self.max_age = max_age
        self.include = tuple(sorted(set(include)))
        self.run_rows = run_rows
        self.tempdir = tempdir
        self._client = store.bucket_client(bucket, prefix)
        self._report: Report | None = None

    # -- the snapshot -------------------------------------------------------

    @property
    def live(self) -> S3Store:
        """The bucket itself, for what must be known as it is now."""
        return self._store

    def report(self) -> Report:
        """The report this store lists from: the newest complete one, checked, chosen once.

        Raises :class:`StoreError` naming the file when there is none, it is
        older than ``max_age`` or its manifest does not check out.
        """
        if self._report is None:
            self._report = find_report(self._client, self._store.bucket, max_age=self.max_age)
        return self._report

    def listed_as_of(self) -> datetime:
        """The instant the listing describes: when the report began scanning the bucket."""
        return self.report().taken_at

    # -- listing ----------------------------------------------------------

    def list(
        self,
        prefix: str = "",
        *,
        skip: Sequence[str] = (),
        start_after: str | None = None,
        end_before: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """The report's objects under ``prefix`` in key byte order, with the report's size, mtime and ETag.

        Arguments as for any store (validated at once, ``ValueError``). Raises
        :class:`StoreError` (while iterating) when the report is refused or a
        data file fails its checks.
        """
        check_listing_args(prefix, skip, start_after, end_before)
        return self._objects(
            KeyFilter(self._store.prefix, prefix, tuple(skip), self.include, start_after, end_before)
        )

    def _objects(self, keys: KeyFilter) -> Iterator[ObjectInfo]:
        for chunk in self._chunks(keys, PAGE_SIZE):
            yield from map(ObjectInfo, *chunk)

    def list_pages(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[KeyPage]:
        """The pages of ``list(prefix, skip=skip)``: :class:`InventoryPage` objects of ``PAGE_SIZE`` keys."""
        check_listing_args(prefix, skip, None, None)
        keys = KeyFilter(self._store.prefix, prefix, tuple(skip), self.include)
        return (InventoryPage(self, *chunk) for chunk in self._chunks(keys, PAGE_SIZE))

    def _chunks(self, keys: KeyFilter, rows: int) -> Iterator[Chunk]:
        report = self.report()
        batches = read_report(self._client, report, keys, tempdir=self.tempdir)
        try:
            yield from sorted_rows(batches, chunk_rows=rows, run_rows=self.run_rows, tempdir=self.tempdir)
        except DuplicateKey as exc:
            raise StoreError(
                self.name, f"inventory report {report.url}: {exc}; refusing to list from it"
            ) from None
        except (pa.ArrowException, OSError) as exc:
            raise StoreError(self.name, f"sorting inventory report {report.url} failed: {exc}") from None

    def split_points(self, n: int, prefix: str = "") -> builtins.list[str]:
        """At most ``n - 1`` increasing keys cutting the report's keys under ``prefix`` into ``n`` ranges.

        The ranges ``k < b1``, ``b1 <= k < b2``, ..., ``bm <= k`` hold about
        the same number of keys (the boundaries are quantiles of an even
        sample of the report, read once, unsorted). Fewer boundaries come
        back when the report has fewer distinct keys. Raises ``ValueError``
        for ``n < 1`` and :class:`StoreError` as :meth:`list`.
        """
        if n < 1:
            raise ValueError("split_points needs n >= 1")
        check_listing_args(prefix, (), None, None)
        if n == 1:
            return []
        keys = KeyFilter(self._store.prefix, prefix, (), self.include)
        sample: builtins.list[str] = []
        stride = 1
        seen = 0
        for batch in read_report(self._client, self.report(), keys, tempdir=self.tempdir):
            column = batch.column(0)
            first = (-seen) % stride
            sample.extend(column.slice(first).to_pylist()[::stride])
            seen += batch.num_rows
            while len(sample) > 2 * _SAMPLE:
                sample = sample[::2]  # an even sample at twice the stride
                stride *= 2
        sample.sort()
        points: builtins.list[str] = []
        for i in range(1, n):
            if not sample:
                break
            point = sample[min(len(sample) - 1, i * len(sample) // n)]
            if (not points or point > points[-1]) and point > sample[0]:
                points.append(point)
        return points

    # -- the live store (stat, read, move, delete, versions: the delegates' methods) ----

    def close(self) -> None:
        """Close the live store and forget the report (a store used again picks the newest anew)."""
        self._report = None
        self._store.close()

    def __repr__(self) -> str:
        return f"InventoryStore({self._store!r}, {self.location!r})"


if TYPE_CHECKING:  # checked by mypy: the capabilities the inventory store has
    _snapshot: type[SnapshotStore] = InventoryStore
    _versioned: type[VersionedStore] = InventoryStore
    _store: type[Store] = InventoryStore
