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
from collections.abc import Iterator, Sequence
from itertools import repeat

from reclaim.references.sources import ReferenceSource

__all__ = ["Coverage", "CoveringReference", "merge_sources"]


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
