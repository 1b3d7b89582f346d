"""A MySQL/MariaDB reference stream read as aggregated pages: one row per page, not one per key.

PyMySQL decodes every row in Python, which made reading 666,666 references
cost a second of CPU. Where the column compares in code point order itself
(a ``_bin`` collation of UTF-8 or ASCII, or a binary type: its index serves
the order), the stream is read instead by **keyset pagination**, one
statement per page on one connection, in one read-only transaction started
``WITH CONSISTENT SNAPSHOT`` at REPEATABLE READ (so every page reads the one
snapshot a single statement would have, whatever the session's isolation
level), each page a single row::

    SELECT GROUP_CONCAT(p.ref_key ORDER BY p.ref_order, CAST(p.ref_order AS BINARY)
                        SEPARATOR X'00'), COUNT(*), SUM(CHAR_LENGTH(p.ref_key))
    FROM (SELECT <key> AS ref_key, <column> AS ref_order FROM <table>
          WHERE <conditions> AND <column> >= :start ORDER BY <column> LIMIT :n) p

The order is the one the row stream had (``ORDER BY <column>``), ties of the
collation broken by bytes; the caller checks byte order as before.

Exactness, page by page:

- **Boundaries.** A page ends inside a run of keys the collation calls equal
  (duplicates, or ``'a'`` and ``'a '`` under PAD SPACE): the part of that run
  beyond ``LIMIT`` is in the next page. So a full page gives back its
  trailing run (every key equal to its last one by :func:`_fold`, a coarser
  equality than any ``_bin`` collation's), and the next page starts at the
  run's first key with ``>=``: every key of the run comes exactly once,
  duplicates included. A page that is one run only is read whole
  (``= :start``) and the next one starts after it (``> :start``).
- **Decoding.** The separator is NUL, which no valid key holds. The page
  must split into exactly ``COUNT(*)`` keys whose lengths add up to
  ``SUM(CHAR_LENGTH(...))``: a value holding a NUL, or a result truncated by
  ``group_concat_max_len`` (set to :data:`GROUP_CONCAT_MAX_LEN` for the
  session) or by ``max_allowed_packet``, fails that check, and the page is
  read again row by row in the same transaction; if that read does not
  return ``COUNT(*)`` rows either the stream stops with an error (fail
  closed). A page is never yielded unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Final

__all__ = ["GROUP_CONCAT_MAX_LEN", "PAGE_KEYS", "PageMismatch", "aggregated_pages"]

PAGE_KEYS: Final = 5_000
"""Keys per page: a round trip and one decoded row each (a few hundred KB of keys)."""
GROUP_CONCAT_MAX_LEN = 64 * 1024 * 1024
"""The session's ``group_concat_max_len``: well above a page of ``PAGE_KEYS`` keys of 3,072 bytes."""
SEPARATOR: Final = "\x00"


class PageMismatch(Exception):
    """A page read row by row did not return the rows the aggregate counted."""


def _fold(value: str) -> str:
    """A spelling equal for any two values a MySQL ``_bin`` collation (or a coarser one) calls equal."""
    return value.casefold().rstrip(" ")


Fetch = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
"""Runs one statement (``:name`` parameters) on the stream's connection and returns its rows."""


def aggregated_pages(
    fetch: Fetch, *, key: str, order: str, source: str, params: dict[str, Any], page_keys: int | None = None
) -> Generator[list[str], None, None]:
    """The values of ``SELECT key FROM source ORDER BY order`` as pages, each through ``fetch``.

    ``source`` is ``<table> WHERE <conditions>`` (its parameters in
    ``params``); ``order`` is the column, whose collation must compare by
    code point (an index on it serves every page). Raises
    :class:`PageMismatch` when a page cannot be read exactly.
    """
    n = page_keys or PAGE_KEYS
    fetch(f"SET SESSION group_concat_max_len = {int(GROUP_CONCAT_MAX_LEN)}", {})
    # every page reads one snapshot, whatever the session's isolation level (one statement did)
    fetch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", {})
    fetch("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", {})
    start_name = "keyset_start"
    start: str | None = None
    after = False  # the next page starts strictly after ``start`` (a run read whole)
    while True:
        if start is None:
            bound = ""
            values = dict(params)
        else:
            bound = f" AND {order} {'>' if after else '>='} :{start_name}"
            values = {**params, start_name: start}
        inner = (
            f"SELECT {key} AS ref_key, {order} AS ref_order FROM {source}{bound} ORDER BY {order} LIMIT {n}"
        )
        page = _page(fetch, inner, values)
        if not page:
            return
        if len(page) < n:
            yield page
            return
        last = _fold(page[-1])
        cut = len(page) - 1
        while cut > 0 and _fold(page[cut - 1]) == last:
            cut -= 1
        if cut > 0:
            start, after = page[cut], False
            yield page[:cut]
            continue
        # the whole page is one run of equal keys: read the run whole, go on after it
        start = page[0]
        run = _keys(
            fetch,
            f"SELECT {key} AS ref_key FROM {source} AND {order} = :{start_name} "
            f"ORDER BY {order}, CAST({order} AS BINARY)",
            {**params, start_name: start},
        )
        after = True
        if run:
            yield run


def _page(fetch: Fetch, inner: str, values: dict[str, Any]) -> list[str]:
    """One page of keys, read as one aggregated row and checked; row by row where the check fails."""
    ((joined, count, length),) = fetch(
        "SELECT GROUP_CONCAT(p.ref_key ORDER BY p.ref_order, CAST(p.ref_order AS BINARY) "
        f"SEPARATOR X'00'), COUNT(*), SUM(CHAR_LENGTH(p.ref_key)) FROM ({inner}) p",
        values,
    )
    count = int(count or 0)
    if count == 0:
        return []
    if isinstance(joined, str):
        keys = joined.split(SEPARATOR)
        if len(keys) == count and len(joined) == int(length) + count - 1:
            return keys
    # a value holding the separator, or a truncated result: this page row by row, same snapshot
    ordered = "ORDER BY p.ref_order, CAST(p.ref_order AS BINARY)"
    keys = _keys(fetch, f"SELECT p.ref_key FROM ({inner}) p {ordered}", values)
    if len(keys) != count:
        raise PageMismatch(
            f"a page read row by row returned {len(keys)} keys where its aggregate counted {count}"
        )
    return keys


def _keys(fetch: Fetch, sql: str, values: dict[str, Any]) -> list[str]:
    return [row[0] for row in fetch(sql, values) if row[0] is not None]
