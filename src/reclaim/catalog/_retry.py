"""Catalog writes that the database may abort to break a deadlock, retried a few times.

A deadlock (PostgreSQL ``40P01``, a serialization failure ``40001``, MariaDB/MySQL
error 1213) rolls the whole transaction back, so running the same work again in
a new transaction is safe: nothing of the aborted attempt remains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

import sqlalchemy as sa

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog

__all__ = ["write_retrying"]

#: attempts of a write that the database aborted as a deadlock
DEADLOCK_ATTEMPTS: Final = 5
# PostgreSQL: deadlock_detected, serialization_failure; MariaDB/MySQL: ER_LOCK_DEADLOCK
_PG_RETRY: Final = frozenset({"40P01", "40001"})
_MYSQL_RETRY: Final = frozenset({1213})

_T = TypeVar("_T")


class _Deadlock(Exception):
    """The database aborted the transaction to break a deadlock; nothing was written."""


def write_retrying(catalog: Catalog, work: Callable[[sa.Connection], _T]) -> _T:
    """Run ``work`` in a transaction of its own, again when the database broke a deadlock with it.

    Raises :class:`~reclaim.errors.CatalogError` for any other database error,
    and for a deadlock on the last attempt.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with catalog.begin() as connection, _deadlocks(attempt < DEADLOCK_ATTEMPTS):
                return work(connection)
        except _Deadlock:
            # retrying is safe: the aborted transaction changed nothing
            continue
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _deadlocks(retry: bool) -> Iterator[None]:
    """Turn a deadlock or serialization failure into :class:`_Deadlock` when it may be retried."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if retry and _is_deadlock(exc):
            raise _Deadlock from None
        raise


def _is_deadlock(exc: sa.exc.DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_RETRY:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_RETRY
