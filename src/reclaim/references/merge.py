"""The ordered merge of reference sources and the coverage test of listed keys.

Every source yields its keys in byte order; :func:`merge_sources` merges them
with a heap (``heapq.merge``) into one ordered stream tagged with the source
index. :class:`Coverage` walks that stream alongside a store listing, like a
merge join, and answers for each listed key (asked in non-decreasing order)
which reference covers it, if any.

A reference covers a key when

- it is an exact reference and equals the key;
- it is a prefix reference (a directory object) ``r`` and the key equals ``r``
  or starts with ``r + "/"`` (``r`` itself when it ends with ``/``);
- it has a sidecar suffix ``s`` and the key equals ``r + s``.

Every key a reference covers starts with the reference, so only references
that are string prefixes of the current key matter. They form a chain (each a
prefix of the next) kept on a small stack: a reference that is not a prefix of
the current key can never be a prefix of a later, larger key, and is dropped.
A reference under an active prefix reference is collapsed into it, so each
key is tested against at most one covering prefix. Memory is the depth of the
chain, never the number of references.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import filterfalse, repeat

from reclaim.references.databases import dialect_of
from reclaim.references.prefetch import prefetched
from reclaim.references.sources import ReferenceSource
from reclaim.references.span import KeySpan

__all__ = ["Coverage", "CoveringReference", "PageCoverage", "merge_sources", "upper_bound"]


def merge_sources(sources: Sequence[ReferenceSource]) -> Iterator[tuple[str, int]]:
    """Merge the key streams of ``sources`` into one ordered stream of ``(key, source index)``."""
    streams = [zip(source.keys(), repeat(index), strict=False) for index, source in enumerate(sources)]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams)


class CoveringReference:
    """A reference on the chain: the key it starts from and what it covers."""

    __slots__ = ("dirform", "exact", "key", "prefix", "sidecars", "sources")

    def __init__(self, key: str, source: int, prefix: bool, sidecars: tuple[str, ...]) -> None:
        self.key = key
        self.exact = not prefix
        self.prefix = prefix
        self.dirform = key if key.endswith("/") else key + "/"
        self.sidecars = sidecars
        self.sources = [source]

    def add(self, source: int, prefix: bool, sidecars: tuple[str, ...]) -> None:
        """Fold another reference to the same key (from another source) into this one."""
        if source not in self.sources:
            self.sources.append(source)
        if prefix:
            self.prefix = True
        else:
            self.exact = True
        if sidecars:
            self.sidecars = tuple(dict.fromkeys(self.sidecars + sidecars))

    def covers(self, key: str) -> bool:
        """Whether this reference keeps ``key`` (which starts with ``self.key``)."""
        if key == self.key:
            return True
        if self.prefix and key.startswith(self.dirform):
            return True
        return any(key == self.key + suffix for suffix in self.sidecars)

    def covers_all_under(self, key: str) -> bool:
        """Whether every key starting with ``key`` is covered (so ``key`` can be collapsed)."""
        return self.prefix and key.startswith(self.dirform)


class Coverage:
    """Answers "which reference covers this key?" for keys asked in non-decreasing order."""

    def __init__(self, sources: Sequence[ReferenceSource]) -> None:
        self._sources = sources
        self._prefix = [s.is_prefix for s in sources]
        self._sidecars = [s.sidecars for s in sources]
        self._stream = merge_sources(sources)
        self._next: tuple[str, int] | None = next(self._stream, None)
        self._chain: list[CoveringReference] = []

    def covering(self, key: str) -> CoveringReference | None:
        """The reference that covers ``key``, or ``None``; keys must not decrease between calls."""
        upcoming = self._next
        if upcoming is not None and upcoming[0] <= key:
            stream = self._stream
            while upcoming is not None and upcoming[0] <= key:
                self._push(upcoming[0], upcoming[1])
                upcoming = next(stream, None)
            self._next = upcoming
        chain = self._chain
        while chain and not key.startswith(chain[-1].key):
            chain.pop()
        for entry in reversed(chain):
            if entry.covers(key):
                return entry
        return None

    def drain(self) -> None:
        """Read the rest of every source, so that its ordering and emptiness checks run."""
        if self._next is not None:
            for _ in self._stream:
                pass  # reading is the point: each source checks its order and emptiness as it goes
            self._next = None

    def _push(self, ref: str, source: int) -> None:
        chain = self._chain
        while chain and not ref.startswith(chain[-1].key):
            chain.pop()
        prefix = self._prefix[source]
        sidecars = self._sidecars[source]
        if chain:
            top = chain[-1]
            if top.key == ref:
                top.add(source, prefix, sidecars)
                return
            if any(entry.covers_all_under(ref) for entry in chain):
                return  # collapsed: a prefix reference already covers everything under ``ref``
        chain.append(CoveringReference(ref, source, prefix, sidecars))


# -- the page-at-a-time coverage ------------------------------------------------


def upper_bound(prefix: str) -> str | None:
    """The smallest string above every string that starts with ``prefix`` (``None``: there is none).

    Keys starting with ``prefix`` are exactly the keys ``k`` with
    ``prefix <= k < upper_bound(prefix)``, a contiguous run of a sorted page.
    """
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


_SERVERS = frozenset({"postgresql", "mysql"})
"""Dialects whose sources are read ahead in a thread: a server works while the listing goes on."""


def _read_ahead(source: ReferenceSource, span: KeySpan | None) -> Iterator[list[str]]:
    """``source``'s pages, read ahead (:func:`~reclaim.references.prefetch.prefetched`) on a server."""
    pages = source.key_pages(span)
    engine = getattr(source, "engine", None)  # a source of another kind (tests' in-memory ones) has none
    if engine is not None and dialect_of(engine) in _SERVERS:
        return prefetched(pages, name=source.name)
    return pages


class _Cursor:
    """One source's pages, taken as far as the listing has come."""

    __slots__ = ("_page", "_pages", "_position")

    def __init__(self, pages: Iterator[list[str]]) -> None:
        self._pages = pages
        self._page: list[str] = []
        self._position = 0

    def take(self, last: str) -> list[str]:
        """The references ``<= last`` not taken before, in order (duplicates possible)."""
        page, position = self._page, self._position
        end = bisect_right(page, last, position)
        if end < len(page):
            self._position = end
            return page[position:end]
        taken = page[position:] if position else page
        while (fetched := next(self._pages, None)) is not None:
            end = bisect_right(fetched, last)
            if end < len(fetched):
                self._page, self._position = fetched, end
                return taken + fetched[:end] if taken else fetched[:end]
            taken = taken + fetched if taken else fetched
        self._page, self._position = [], 0
        return taken

    def drain(self) -> int:
        """Read the rest of the source (its ordering and emptiness checks run); return how many were left."""
        left = len(self._page) - self._position
        self._page, self._position = [], 0
        for page in self._pages:
            left += len(page)
        return left


class PageCoverage:
    """Which keys of a page of the listing no reference covers, a page at a time.

    Pages are asked in order (every key of a page above every key of the page
    before, as the scan checks). For each page, every source yields the
    references up to the page's last key (``_Cursor.take``); then

    - **prefix references** (directory objects) and the keys they cover form
      intervals ``[r + "/", upper_bound(r + "/"))``, cut out of the page by
      ``bisect``; an interval inside another one is dropped (collapsed, as
      in :class:`Coverage`), and intervals that reach beyond the page are kept
      for the next pages;
    - **exact references** (every reference covers its own key) are a set per
      source, intersected with the rest of the page in C;
    - **sidecar keys** ``r + s`` are a small dict kept until the listing has
      passed them.

    The verdict and the per-source counts equal :class:`Coverage`'s: a key is
    credited to the deepest reference that covers it (the interval's reference
    inside a directory object, else the exact reference, else the longest
    reference whose sidecar it is), and to every source that gave that reference.
    Memory is the references of one page plus the intervals and sidecar keys
    still ahead, never the number of references.

    With ``span`` (one key range of a distributed scan, whose pages all lie in
    it) each source reads only the references that cover some key of the span
    (:meth:`ReferenceSource.key_pages`), and the verdicts on those keys are the
    whole stream's.
    """

    def __init__(self, sources: Sequence[ReferenceSource], span: KeySpan | None = None) -> None:
        self._cursors = [_Cursor(_read_ahead(source, span)) for source in sources]
        self._prefix = [s.is_prefix for s in sources]
        self._sidecars = [s.sidecars for s in sources]
        self._special = [self._prefix[i] or bool(self._sidecars[i]) for i in range(len(sources))]
        self._any_special = any(self._special)
        self._intervals: list[tuple[str, str | None, tuple[int, ...], int]] = []
        """Directory-object intervals still ahead: ``(low, high or None, sources, len(reference))``."""
        self._sidecar_keys: dict[str, tuple[int, tuple[int, ...]]] = {}
        """Sidecar keys still ahead: key -> (length of the reference, its sources)."""
        self.covers = [0] * len(sources)
        """Per source: listed keys it keeps (credited as described in the class docstring)."""
        self.references = 0
        """References taken from the sources so far."""

    def unreferenced(self, keys: list[str]) -> list[str]:
        """The keys of ``keys`` that nothing covers, in order.

        ``keys`` is strictly increasing and above every key of the pages before.
        """
        if not keys:
            return keys
        windows = [cursor.take(keys[-1]) for cursor in self._cursors]
        self.references += sum(map(len, windows))
        if self._any_special:
            self._note_special(windows)
        rest = self._cut_intervals(keys) if self._intervals else keys
        if len(windows) == 1:
            window = windows[0]
            if window:
                hits = set(window)
                left = list(filterfalse(hits.__contains__, rest))
                self.covers[0] += len(rest) - len(left)
            else:
                left = rest
        else:
            rest_set = set(rest)
            hit: set[str] = set()
            for index, window in enumerate(windows):
                if window:
                    found = rest_set.intersection(window)
                    self.covers[index] += len(found)
                    hit |= found
            left = list(filterfalse(hit.__contains__, rest)) if hit else rest
        if self._sidecar_keys:
            if left:
                left = self._sidecar_hits(left)
            if len(self._sidecar_keys) > 64:
                # a sidecar key at or below the page's last key can match no later key
                last = keys[-1]
                self._sidecar_keys = {k: v for k, v in self._sidecar_keys.items() if k > last}
        return left

    def drain(self) -> None:
        """Read the rest of every source, so that its ordering and emptiness checks run."""
        for cursor in self._cursors:
            self.references += cursor.drain()

    # -- internals -------------------------------------------------------

    def _note_special(self, windows: list[list[str]]) -> None:
        """Record the intervals and sidecar keys of this page's prefix and sidecar references."""
        sets: list[set[str] | None] = [None] * len(windows)

        def sources_of(ref: str) -> tuple[int, ...]:
            found = []
            for index, window in enumerate(windows):
                if not window:
                    continue
                members = sets[index]
                if members is None:
                    members = sets[index] = set(window)
                if ref in members:
                    found.append(index)
            return tuple(found)

        new_intervals = False
        for index, window in enumerate(windows):
            if not window or not self._special[index]:
                continue
            sidecars = self._sidecars[index]
            prefix = self._prefix[index]
            previous = None
            for ref in window:
                if ref == previous:
                    continue
                previous = ref
                owners = sources_of(ref) if len(windows) > 1 else (0,)
                if prefix:
                    low = ref if ref.endswith("/") else ref + "/"
                    self._intervals.append((low, upper_bound(low), owners, len(ref)))
                    new_intervals = True
                for suffix in sidecars:
                    key = ref + suffix
                    known = self._sidecar_keys.get(key)
                    if known is None or known[0] < len(ref):
                        self._sidecar_keys[key] = (len(ref), owners)
        if new_intervals:
            self._normalise_intervals()

    def _normalise_intervals(self) -> None:
        """Sort the intervals and drop those inside another one.

        Of two intervals with the same low end (``a`` and ``a/``, or one
        reference from two prefix sources, which have the same sources), the
        shorter reference comes first in the stream and keeps it.
        """
        kept: list[tuple[str, str | None, tuple[int, ...], int]] = []
        for interval in sorted(self._intervals, key=lambda i: (i[0], i[3])):
            if kept and interval[0].startswith(kept[-1][0]):
                continue  # collapsed: the interval before covers everything under this one
            kept.append(interval)
        self._intervals = kept

    def _cut_intervals(self, keys: list[str]) -> list[str]:
        """The keys of ``keys`` outside every interval; credits the keys inside to the interval's sources."""
        first, last = keys[0], keys[-1]
        intervals = self._intervals
        if intervals and any(i[1] is not None and i[1] <= first for i in intervals):
            intervals = self._intervals = [i for i in intervals if i[1] is None or i[1] > first]
        pieces: list[str] = []
        start = 0
        covers = self.covers
        for low, high, owners, _length in intervals:
            if low > last:
                break
            begin = bisect_left(keys, low, start)
            end = len(keys) if high is None else bisect_left(keys, high, begin)
            if end > begin:
                for index in owners:
                    covers[index] += end - begin
                pieces.extend(keys[start:begin])
                start = end
        if start == 0:
            return keys
        pieces.extend(keys[start:])
        return pieces

    def _sidecar_hits(self, left: list[str]) -> list[str]:
        """``left`` without the sidecar keys it holds, which are credited to their reference's sources."""
        table = self._sidecar_keys
        found = list(filter(table.__contains__, left))
        if found:
            for key in found:
                for index in table[key][1]:
                    self.covers[index] += 1
            hits = set(found)
            left = list(filterfalse(hits.__contains__, left))
        return left
