"""A store listing in pages: runs of keys in byte order, sizes and mtimes on demand.

The scan classifies a listing a page at a time (set and bisect operations over
a page's keys, see :mod:`reclaim.references.merge`), and needs a size and an
mtime only for the keys that turn out to be unreferenced. A :class:`KeyPage`
carries the keys as a plain list and answers :meth:`KeyPage.info` for the few
keys that need it:

- :class:`InfoPage` wraps objects a listing already described
  (:meth:`Store.list` of an object store carries size and mtime with every key);
  a key the listing left without them is asked of :meth:`Store.stat`.
- A local directory lists pages of its own (``LocalStore.list_pages``): the
  keys of one directory's run of files, with the directory still open, so that
  ``info`` is an ``fstatat`` relative to it (no path resolved, no symlink
  followed) and only the keys that need one are stat'ed.

:func:`list_pages` gives the pages of any store: its own where it has them,
else its ``list()`` cut into pages. Memory is one page (plus what the store's
walk holds), never the number of keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Protocol, runtime_checkable

from reclaim.stores.base import ObjectInfo, Store

__all__ = ["PAGE_SIZE", "InfoPage", "KeyPage", "ListedPage", "PagedStore", "list_pages", "verify_pages"]

PAGE_SIZE = 1000
"""Keys per page where the store does not choose (an S3 ``ListObjectsV2`` page holds 1,000)."""


class KeyPage:
    """A run of listed keys, strictly increasing; :meth:`info` reads one key's size and mtime."""

    __slots__ = ("keys",)

    sizes_listed = False
    """Whether the listing carried every key's size (then :meth:`bytes_of` costs no I/O)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def info(self, key: str) -> ObjectInfo | None:
        """Size and mtime of ``key`` (one of :attr:`keys`); ``None`` if it vanished since it was listed.

        Raises :class:`~reclaim.errors.StoreError` when it cannot be read.
        """
        raise NotImplementedError

    snapshot = False
    """Whether the page comes from a snapshot (an inventory report) whose keys :func:`verify_pages`
    checks against the store now; such pages stay valid while later ones are read, so the scan
    may hold several and verify them together."""

    def verify(self, keys: list[str]) -> list[str]:
        """Check ``keys`` (unreferenced keys of this page) against the store now; those that changed.

        A live listing describes the store as it is, so there is nothing to
        check (the default: none changed). A snapshot's page (an inventory
        report) asks the store and from then on answers :meth:`info` for
        ``keys`` as the store does now; a changed key is never a candidate.
        """
        return verify_pages([(self, keys)])[0]

    def verify_together(self, items: Sequence[tuple[KeyPage, list[str]]]) -> list[list[str]]:
        """:meth:`verify` of several pages of the same listing (this one among them) in one batch."""
        return [[] for _ in items]

    def bytes_of(self, keys: Iterable[str]) -> int | None:
        """The total size of ``keys`` (keys of this page); ``None`` when a size is unknown.

        Where the listing did not carry sizes this reads each one (``stat``),
        so the scan asks only when referenced bytes are wanted. A key that
        vanished counts 0 bytes.
        """
        total = 0
        for key in keys:
            info = self.info(key)
            if info is None:
                continue
            if info.size is None:
                return None
            total += info.size
        return total


class ListedPage(KeyPage):
    """A page whose listing described its keys (:meth:`listed`); what it left out is asked of the store."""

    __slots__ = ()

    def listed(self, key: str) -> ObjectInfo:
        """What the listing said of ``key`` (one of :attr:`keys`)."""
        raise NotImplementedError

    def _stat(self, key: str) -> ObjectInfo:
        """``Store.stat`` of the store listed (``FileNotFoundError`` for a key gone)."""
        raise NotImplementedError

    def info(self, key: str) -> ObjectInfo | None:
        """The listing's size and mtime of ``key``, or ``Store.stat``'s where the listing left them out."""
        info = self.listed(key)
        if info.size is not None and info.mtime is not None:
            return info
        try:
            return self._stat(key)
        except FileNotFoundError:
            return None

    def bytes_of(self, keys: Iterable[str]) -> int | None:
        """The total listed size of ``keys`` (``None`` if one is unknown): no I/O."""
        total = 0
        for key in keys:
            size = self.listed(key).size
            if size is None:
                return None
            total += size
        return total


class InfoPage(ListedPage):
    """A page of objects a listing described; missing sizes or mtimes are read with ``Store.stat``."""

    __slots__ = ("_by_key", "_infos", "_store")

    def __init__(self, infos: list[ObjectInfo], store: Store) -> None:
        super().__init__([info.key for info in infos])
        self._infos = infos
        self._store = store
        self._by_key: dict[str, ObjectInfo] | None = None

    @property
    def sizes_listed(self) -> bool:  # type: ignore[override]
        """Whether every object of the page came with its size."""
        return all(info.size is not None for info in self._infos)

    def listed(self, key: str) -> ObjectInfo:
        """What the listing said of ``key``."""
        if self._by_key is None:
            self._by_key = {info.key: info for info in self._infos}
        return self._by_key[key]

    def _stat(self, key: str) -> ObjectInfo:
        return self._store.stat(key)


@runtime_checkable
class PagedStore(Protocol):
    """A store that lists in pages of its own (a local directory: one directory's run of files)."""

    def list_pages(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[KeyPage]:
        """The pages of ``list(prefix, skip=skip)``, in order; a page is valid until the next is asked for."""
        ...


def list_pages(
    store: Store,
    prefix: str = "",
    *,
    skip: Sequence[str] = (),
    start_after: str | None = None,
    end_before: str | None = None,
) -> Iterator[KeyPage]:
    """The listing of ``store`` under ``prefix`` as pages of keys in byte order (errors as ``Store.list``).

    A page is only valid until the next one is asked for (a local page reads
    sizes through its directory's open descriptor). ``start_after`` and
    ``end_before`` (exclusive) restrict it to a key range, listed with the
    store's own range listing (a worker of a distributed run scans one range).
    """
    if start_after is None and end_before is None and isinstance(store, PagedStore):
        return store.list_pages(prefix, skip=skip)
    if start_after is None and end_before is None:
        return _batched(store, store.list(prefix, skip=skip))
    return _batched(store, store.list(prefix, skip=skip, start_after=start_after, end_before=end_before))


def verify_pages(items: Sequence[tuple[KeyPage, list[str]]]) -> list[list[str]]:
    """Verify the unreferenced keys of several pages of one listing at once; the changed keys of each.

    One batch of requests for all of them (a snapshot store asks ``stat_many``
    once), so sparse candidates spread over many pages cost a request each,
    many in flight, rather than a round trip per page. Pages of a live
    listing have nothing to verify. Raises ``StoreError`` when the store
    cannot be asked.
    """
    if not items:
        return []
    return items[0][0].verify_together(items)


def _batched(store: Store, listing: Iterator[ObjectInfo]) -> Iterator[KeyPage]:
    while infos := list(islice(listing, PAGE_SIZE)):
        yield InfoPage(infos, store)
