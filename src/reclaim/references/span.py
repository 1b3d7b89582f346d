"""A key range of a reference source: the references one range of a distributed scan needs.

A worker scanning the keys ``first <= k < end_before`` of a store needs, of
each source, exactly the references that cover some key of that range:

- an **exact** reference (no sidecars) covers only its own key: those in the range;
- a **prefix** reference ``r`` (a directory object), or an exact one with
  sidecars, covers keys that all start with ``r`` (``r``, ``r/...``,
  ``r + suffix``): it is needed when ``r < end_before`` and either
  ``r >= first`` or ``r`` is a prefix of ``first`` (an ancestor of the range's
  first key). A reference below ``first`` that is not a prefix of it can
  cover nothing at or above ``first``: every string starting with it is
  below ``first``.

:meth:`KeySpan.keep` is that rule, exact, on a sorted page of keys. The
database is asked for a superset (:meth:`KeySpan.value_bounds`: the same rule
in the space of the stored values, loosened where ``add_prefix`` makes a bound
inexact), so that a range reads its part of the table, not all of it; the
page is then cut by :meth:`keep`. Never fewer references than needed: a
missing reference would make a live object a candidate.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["KeySpan", "ValueBounds"]


@dataclass(frozen=True, slots=True)
class ValueBounds:
    """A superset of the stored values a span needs: ``low <= v < high``, or ``v`` one of ``ancestors``."""

    low: str | None
    high: str | None
    ancestors: tuple[str, ...] = ()

    def test(self) -> Callable[[str], bool]:
        """The bounds as a Python predicate on one value (for streams the database cannot filter)."""
        low, high, ancestors = self.low, self.high, frozenset(self.ancestors)

        def admitted(value: str) -> bool:
            if high is not None and value >= high:
                return False
            return low is None or value >= low or value in ancestors

        return admitted


@dataclass(frozen=True, slots=True)
class KeySpan:
    """The keys ``first <= k < end_before`` (``None``: unbounded), as a reference source reads them."""

    first: str | None = None
    end_before: str | None = None

    @property
    def whole(self) -> bool:
        """Whether the span is the whole key space (nothing to restrict)."""
        return self.first is None and self.end_before is None

    def keep(self, keys: list[str], *, spanning: bool) -> list[str]:
        """The references of the sorted page ``keys`` that cover some key of the span.

        ``spanning``: the source's references cover keys under them (a prefix
        source, or sidecars), so ancestors of ``first`` are kept as well.
        """
        high = len(keys) if self.end_before is None else bisect_left(keys, self.end_before)
        if self.first is None:
            return keys if high == len(keys) else keys[:high]
        low = bisect_left(keys, self.first, 0, high)
        if not spanning or low == 0:
            return keys if low == 0 and high == len(keys) else keys[low:high]
        ancestors = list(filter(self.first.startswith, keys[:low]))
        return ancestors + keys[low:high] if ancestors else keys[low:high]

    def count(self, keys: list[str]) -> int:
        """How many of the sorted ``keys`` lie in the span itself (each reference counted in one span)."""
        high = len(keys) if self.end_before is None else bisect_left(keys, self.end_before)
        low = 0 if self.first is None else bisect_left(keys, self.first, 0, high)
        return high - low

    def value_bounds(self, *, strip: str, add: str, spanning: bool) -> ValueBounds:
        """A superset of the stored values whose keys :meth:`keep` keeps.

        A key is ``add + value[len(strip):]`` for a value starting with
        ``strip``; that map keeps byte order, so a bound that starts with
        ``add`` maps back exactly, and one that does not is dropped (the
        superset is then larger, never smaller).
        """
        low = (
            strip + self.first[len(add) :] if self.first is not None and self.first.startswith(add) else None
        )
        high = (
            strip + self.end_before[len(add) :]
            if self.end_before is not None and self.end_before.startswith(add)
            else None
        )
        ancestors: tuple[str, ...] = ()
        if spanning and low is not None:
            assert self.first is not None
            prefixes = (self.first[:cut] for cut in range(len(add), len(self.first)))
            ancestors = tuple(dict.fromkeys(strip + p[len(add) :] for p in prefixes))
        return ValueBounds(low, high, ancestors)
