"""Fenced by token: journal writes made for a lease that another process holds.

A coordinator that spreads a run over workers (``reclaim.distributed``) keeps
the lease itself: it takes it, renews it and releases it. Its workers never
touch the lease row; each is given the lease's ``token`` and ``fence`` and
writes the journal through a :class:`TokenFence`, which refuses every write
once the lease is not that one any more:

- :meth:`TokenFence.guard` runs first in each journal write transaction (as
  :meth:`~reclaim.catalog.lease.Lease.guard` does for the holder): it reads the
  lease row with a shared lock held until the transaction ends and raises
  :class:`~reclaim.errors.LeaseLost` unless the row still holds the token and
  the fence, and the database's clock is still before the lease's expiry less
  its margin (``safe_at - expires_at``; the holder stops acting at that point
  too). A takeover or a break updates the row, so it waits for the write, and
  every write after it is refused: the guard and the write commit together, or
  neither happens;
- :meth:`TokenFence.check`, called before every side effect on a store, reads
  the row the same way (no lock) at most every :data:`RECHECK` seconds and
  never trusts a reading past the point where the lease, as read, stops;
- once refused, always refused: a worker whose coordinator lost the lease
  changes nothing more, and the next run recovers what it left in flight.

The fence holds no connection between calls and never renews the lease: a
coordinator that stops renewing (killed, paused) stops its workers too.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, NoReturn, Protocol

import sqlalchemy as sa

from reclaim.catalog.lease import _database_now
from reclaim.catalog.tables import LEASE_NAME
from reclaim.errors import LeaseLost

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog

__all__ = ["RECHECK", "Fence", "TokenFence"]

#: seconds a worker trusts a reading of the lease row before its next side effect reads it again
RECHECK: Final = 2.0


class Fence(Protocol):
    """What fences a journal's writes: a held :class:`~reclaim.catalog.lease.Lease`, or a token."""

    def guard(self, connection: sa.Connection) -> None:
        """Raise :class:`~reclaim.errors.LeaseLost` unless the transaction of ``connection`` may write."""
        ...

    def check(self) -> None:
        """Raise :class:`~reclaim.errors.LeaseLost` unless side effects may still be made."""
        ...

    def describe(self) -> str:
        """Whose lease this is, for messages."""
        ...


class TokenFence:
    """A lease held elsewhere (by a coordinator), named by its token and fence; see the module docstring."""

    def __init__(self, catalog: Catalog, *, token: str, fence: int, holder: str = "the coordinator") -> None:
        if not token:
            raise ValueError("a token fence needs the lease's token")
        self._catalog = catalog
        self._table = catalog.tables.lease
        self.token: Final = token
        self.fence: Final = fence
        self.holder: Final = holder
        self._guard = threading.Lock()
        self._lost: str | None = None
        self._trusted_until = 0.0  # monotonic; a reading is trusted until then

    def __repr__(self) -> str:
        return f"TokenFence({self.describe()!r}, fence {self.fence})"

    def describe(self) -> str:
        """``the coordinator's lease (token abcd1234…)``: the token is shortened, never shown whole."""
        return f"{self.holder}'s lease (token {self.token[:8]}…)"

    @property
    def lost(self) -> bool:
        """Whether a write or a check was refused already (then every later one is too)."""
        with self._guard:
            return self._lost is not None

    def guard(self, connection: sa.Connection) -> None:
        """Fence one catalog write transaction (see the module docstring); raises ``LeaseLost``."""
        self._raise_if_lost()
        self._verify(connection, lock=True)

    def check(self) -> None:
        """Raise ``LeaseLost`` unless the lease, as read at most :data:`RECHECK` seconds ago, holds."""
        self._raise_if_lost()
        if time.monotonic() < self._trusted_until:
            return
        with self._catalog.begin() as connection:
            self._verify(connection, lock=False)

    def _verify(self, connection: sa.Connection, *, lock: bool) -> None:
        table = self._table
        query = sa.select(table.c.token, table.c.fence, table.c.expires_at, table.c.safe_at).where(
            table.c.name == LEASE_NAME
        )
        if lock and connection.dialect.name != "sqlite":
            query = query.with_for_update(read=True)
        read_at = time.monotonic()
        row = connection.execute(query).first()
        now = _database_now(connection)
        if row is None or row.token != self.token or int(row.fence or 0) != self.fence:
            self._lose("the lease was broken or taken over (a newer fencing token holds it)")
        if row.expires_at is None:
            self._lose("nobody holds the lease")
        expires_at = _aware(row.expires_at)
        safe_at = _aware(row.safe_at) if row.safe_at is not None else expires_at
        stops_at = expires_at - (safe_at - expires_at)  # the holder stops acting a margin before expiry
        left = (stops_at - now).total_seconds()
        if left <= 0:
            self._lose("the coordinator stopped renewing it: it expired, or is about to")
        with self._guard:
            self._trusted_until = read_at + min(left, RECHECK)

    def _raise_if_lost(self) -> None:
        with self._guard:
            reason = self._lost
        if reason is not None:
            raise self._refusal(reason)

    def _refusal(self, reason: str) -> LeaseLost:
        return LeaseLost(
            self.describe(),
            f"{self.describe()} no longer holds ({reason}); this worker stops before its next "
            "change. The next run (or 'reclaim recover') finishes what it left in flight",
        )

    def _lose(self, reason: str) -> NoReturn:
        with self._guard:
            if self._lost is None:
                self._lost = reason
            reason = self._lost
        raise self._refusal(reason)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
