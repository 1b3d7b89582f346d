"""The least (or greatest) value of a column among some rows, read as the first entry of an index.

``SELECT min(c) FROM t WHERE a = ? AND b = ?`` is answered from an index on
(a, b, c) only when the database sees that index as the best for the whole
query: SQLite's planner, without statistics on a new index (a catalog is never
``ANALYZE``-d), may pick another index that starts with (a, b) and read every
row of that range; and it reads a ``min`` from an index only when it is the
query's one aggregate. ``ORDER BY c LIMIT 1`` names the order the index must
give, on every dialect; ``c IS NOT NULL`` keeps ``min``'s meaning (NULLs are
skipped) and the databases' differing places for NULLs out of it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["first_value"]


def first_value(
    column: sa.Column[Any], *where: sa.ColumnElement[bool], last: bool = False
) -> sa.ScalarSelect[Any]:
    """``min(column)`` (``max`` with ``last``) over the rows matching ``where``, as a scalar subquery."""
    order = column.desc() if last else column.asc()
    return sa.select(column).where(*where, column.is_not(None)).order_by(order).limit(1).scalar_subquery()
