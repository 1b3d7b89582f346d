"""The lease: one collector at a time (DESIGN.md, invariant 7).

Mutating commands hold the catalog's one lease row, ``collector``, which
records who holds it (holder, host, pid, run), since when, the last heartbeat
and when it expires. Like restic's lock it is a lease, not a flag:

- taking it is a compare-and-set ``UPDATE ... WHERE token IS NULL OR
  expires_at < now``, so two collectors can never both take it;
- the holder renews it (:meth:`Leases.heartbeat`) well before it expires;
  :meth:`Leases.keep` does so from a background thread;
- a heartbeat that finds another token, or fails, loses the lease, and
  :meth:`Lease.check` (called before every side effect) raises
  :class:`~reclaim.errors.LeaseLost` from then on;
- **self-fencing**: :meth:`Lease.check` also raises once ``ttl - margin`` has
  passed on this process's monotonic clock since the last *confirmed* renewal
  was sent. A process that was paused (SIGSTOP, a VM migration, a long GC) and
  resumes finds its clock past that point and stops before its next side
  effect, whatever its heartbeat thread does after waking up;
- **takeover waits out the holder**: the row records ``safe_at``, the expiry
  plus the margin (database clock). Nobody takes the lease over, or settles
  the entries its holder left in flight, before ``safe_at``: by then the
  holder stopped by its own rule, ``2 * margin`` earlier, as long as the
  holder's clock and the database's do not drift apart by more than the
  margin over one ttl (clocks that tick at the same rate; a wall-clock step
  does not matter to the holder, which measures a duration);
- **fencing tokens**: ``fence`` grows by one every time the lease changes
  hands. Journal writes made under a lease (:meth:`Lease.guard`) lock the
  lease row (shared) in their own transaction and are refused when it holds
  another token or a newer fence, so a stale collector cannot change the
  journal even in the instant between its last check and its write;
- **progress**: the holder keeps its latest progress snapshot
  (:meth:`Lease.report_progress`: phase, store, objects done...) and the next
  heartbeat writes it into the row (``progress``, JSON), where the dashboard
  reads it; it costs no extra catalog write;
- a stale lease (past ``safe_at``, or its holder certainly died) is taken over
  by the next collector or broken explicitly (:meth:`Leases.break_lease`); a
  live one only with ``force``.

Like restic, a collector need not wait for the expiry of a lease whose holder
it knows to be dead. The row records the holder's ``identity`` (Linux boot id,
PID namespace, pid and process start time); a collector in the same boot and
PID namespace that finds no such process any more (or a zombie, or another
process that reused the pid) takes the lease over at once. Anywhere else (other
machines, other containers even with the same host name, no ``/proc``) or when
unsure, the lease lasts until it expires: a wrong guess would let two
collectors run at once.

"Now" is the database server's clock wherever it has one (PostgreSQL,
MariaDB/MySQL), so collectors on hosts whose clocks disagree still agree on
whether a lease expired. SQLite catalogs are local files, whose clock is the host's.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from reclaim.catalog._entry import CorruptRow
from reclaim.catalog.runs import dumps_redacted
from reclaim.catalog.tables import LEASE_NAME
from reclaim.errors import CatalogError, LeaseLost, LockHeld

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog

__all__ = ["DEFAULT_TTL", "MARGIN_SHARE", "Lease", "LeaseCheck", "LeaseInfo", "Leases", "margin_of"]

LeaseCheck = Callable[[], None]
"""What a step calls before every side effect: raises LeaseLost once the lease is gone (``Lease.check``)."""

log = logging.getLogger(__name__)

#: how long a lease lives without a heartbeat
DEFAULT_TTL: Final = timedelta(minutes=5)
#: the share of the ttl a holder gives up at the end of its lease, and a taker waits past its expiry
MARGIN_SHARE: Final = 0.2
#: attempts at breaking a lease that keeps changing under us
_BREAK_ATTEMPTS: Final = 5
#: what releasing a lease writes: nobody holds it
_FREE: Final[dict[str, Any]] = {
    "holder": None,
    "host": None,
    "pid": None,
    "token": None,
    "run_id": None,
    "acquired_at": None,
    "heartbeat_at": None,
    "expires_at": None,
    "identity": None,
    "safe_at": None,
    "progress": None,
}
#: the id of the current boot: random per boot, so different on every machine
_BOOT_ID: Final = Path("/proc/sys/kernel/random/boot_id")


def margin_of(ttl: timedelta) -> timedelta:
    """The self-fencing margin of a lease of ``ttl``: a fifth of it.

    A holder stops acting ``margin`` before its lease expires (by its own
    clock), and nobody takes the lease over until ``margin`` after it expired
    (by the database's). The ``2 * margin`` between the two absorbs clock rate
    drift and the moment between a holder's last check and its side effect.
    """
    return ttl * MARGIN_SHARE


def _stamp(moment: datetime | None) -> str:
    return "?" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


@dataclass(frozen=True)
class LeaseInfo:
    """The lease row as read at one moment (``holder`` is ``None`` when nobody holds it)."""

    holder: str | None
    host: str | None
    pid: int | None
    token: str | None
    run_id: int | None
    acquired_at: datetime | None
    heartbeat_at: datetime | None
    expires_at: datetime | None
    identity: str | None = None
    fence: int = 0
    safe_at: datetime | None = None
    """From when the holder can no longer act by its own rule (expiry plus its margin)."""
    progress: dict[str, Any] | None = None
    """The holder's latest progress snapshot, as of its last heartbeat (``None``: none reported)."""

    def stale(self, now: datetime) -> bool:
        """Whether the lease may be taken at ``now``: free, its holder can no longer act, or is gone.

        An expired lease is not stale yet: until ``safe_at`` its holder may be
        between its last check and a side effect.
        """
        if self.holder is None or self.token is None:
            return True
        return self.past_safe(now) or self.holder_gone()

    def past_safe(self, now: datetime) -> bool:
        """Whether ``now`` is past the moment the holder stopped acting (``safe_at``, else the expiry)."""
        until = self.safe_at if self.safe_at is not None else self.expires_at
        return until is not None and until < now

    def holder_gone(self) -> bool:
        """Whether the holder is certainly dead: it ran in this boot and PID namespace, and is gone.

        Like restic's stale-lock rule, but a host name is not enough (containers
        and cloned machines share them): the recorded boot id and PID namespace
        must be this process's, and then ``/proc`` is authoritative. A zombie
        counts as dead; a pid reused by another process is told apart by its
        start time. ``False`` whenever this cannot be known for sure.
        """
        if self.token is None or self.identity is None:
            return False
        parts = self.identity.split(" ")
        here = _machine()
        if len(parts) != 4 or here is None or (parts[0], parts[1]) != here or not parts[2].isdigit():
            return False
        process = _process(int(parts[2]))
        if process is None:
            return True
        state, started = process
        return state in ("Z", "X") or started != parts[3]

    def describe(self) -> str:
        """Who holds the lease, for people: ``user@host pid N since T, expires T (run R)``."""
        if self.holder is None:
            return "nobody"
        text = f"{self.holder}@{self.host or '?'} pid {self.pid if self.pid is not None else '?'}"
        text += f" since {_stamp(self.acquired_at)}, expires {_stamp(self.expires_at)}"
        if self.safe_at is not None:
            text += f" (taken over after {_stamp(self.safe_at)})"
        if self.run_id is not None:
            text += f" (run {self.run_id})"
        return text


class Lease:
    """The lease as held by this process: its token, and whether it is still ours.

    Made by :meth:`Leases.acquire` or :meth:`Leases.keep`. Call :meth:`check`
    before every side effect.
    """

    def __init__(
        self,
        *,
        token: str,
        holder: str,
        host: str,
        pid: int,
        run_id: int | None,
        acquired_at: datetime,
        expires_at: datetime,
        ttl: timedelta,
        deadline: float,
        fence: int = 0,
        table: sa.Table | None = None,
        previous: LeaseInfo | None = None,
    ) -> None:
        self.token: Final = token
        self.fence: Final = fence
        #: the lease this one took over (a holder that died or stopped without releasing it), if any
        self.previous: Final = previous
        self._table = table
        self.holder: Final = holder
        self.host: Final = host
        self.pid: Final = pid
        self.run_id: Final = run_id
        self.acquired_at: Final = acquired_at
        self.ttl: Final = ttl
        self._guard = threading.Lock()
        self._expires_at = expires_at
        self._deadline = deadline
        self._lost: str | None = None
        self._progress: str | None = None

    def __repr__(self) -> str:
        state = f"lost: {self._lost}" if self._lost else f"expires {_stamp(self.expires_at)}"
        return f"Lease({self.describe()!r}, {state})"

    def describe(self) -> str:
        """``user@host pid N since T``: this holder, for messages."""
        return f"{self.holder}@{self.host} pid {self.pid} since {_stamp(self.acquired_at)}"

    @property
    def expires_at(self) -> datetime:
        """When the lease expires unless renewed, as of the last heartbeat (database clock)."""
        with self._guard:
            return self._expires_at

    @property
    def lost(self) -> bool:
        """Whether the lease is no longer ours (broken, taken over, released or possibly expired)."""
        with self._guard:
            return self._lost_now() is not None

    def check(self) -> None:
        """Raise :class:`~reclaim.errors.LeaseLost` unless the lease is still certainly ours.

        Once lost, always lost: a run that lost its lease stops, and the next
        run recovers what it left in flight.
        """
        with self._guard:
            reason = self._lost_now()
        if reason is not None:
            raise LeaseLost(
                self.describe(),
                f"the lease held by {self.describe()} was lost ({reason}); stopping before the next "
                "change. Another collector may run now; 'reclaim recover' (or the next run) finishes "
                "what this one left in flight",
            )

    def report_progress(self, snapshot: Mapping[str, Any]) -> None:
        """Keep ``snapshot`` (JSON-ready: phase, store, objects done...) for the next heartbeat to write.

        Only the latest snapshot is kept; nothing is written here, so reporting
        progress as often as wanted costs no catalog transaction. Strings in it
        are redacted like the audit log's (no secret reaches the catalog).
        Raises ``TypeError`` or ``ValueError`` when it cannot be encoded as JSON.
        """
        text = dumps_redacted(snapshot)
        with self._guard:
            self._progress = text

    def _pending_progress(self) -> str | None:
        with self._guard:
            return self._progress

    @property
    def margin(self) -> timedelta:
        """How long before its expiry this holder stops acting (:func:`margin_of`)."""
        return margin_of(self.ttl)

    def guard(self, connection: sa.Connection) -> None:
        """Fence one catalog transaction: raise :class:`~reclaim.errors.LeaseLost` unless it is still ours.

        Called first in every journal write transaction made under the lease.
        Checks the clock (:meth:`check`), then reads the lease row with a
        shared lock, held until the transaction ends: a takeover (which updates
        the row) waits for it, and a write after a takeover sees the new token
        or fence and is refused. SQLite catalogs serialise write transactions
        (``BEGIN IMMEDIATE``), which gives the same.
        """
        self.check()
        if self._table is None:
            return
        table = self._table
        query = sa.select(table.c.token, table.c.fence).where(table.c.name == LEASE_NAME)
        if connection.dialect.name != "sqlite":
            query = query.with_for_update(read=True)
        row = connection.execute(query).first()
        if row is None or row.token != self.token or int(row.fence) != self.fence:
            self._lose("another collector took it over (a newer fencing token holds the lease)")
            self.check()

    def _lost_now(self) -> str | None:
        if self._lost is None and time.monotonic() >= self._deadline:
            self._lost = (
                f"no successful heartbeat within its ttl {self.ttl} less the margin {self.margin}, "
                "so it may have expired (was the process paused?)"
            )
        return self._lost

    def _renewed(self, expires_at: datetime, deadline: float) -> None:
        with self._guard:
            # a renewal confirmed after the deadline passed does not revive the lease: a paused
            # process that wakes up stops, even if its heartbeat thread runs before it does
            if self._lost_now() is None:
                self._expires_at = expires_at
                self._deadline = deadline

    def _lose(self, reason: str) -> None:
        with self._guard:
            if self._lost is None:
                self._lost = reason


class Leases:
    """The lease of one catalog: take, renew, release, show and break it."""

    def __init__(self, catalog: Catalog, *, ttl: timedelta = DEFAULT_TTL) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"the lease ttl must be positive, not {ttl}")
        self._catalog = catalog
        self._table = catalog.tables.lease
        self._ttl = ttl
        self._margin = margin_of(ttl)

    def __repr__(self) -> str:
        return f"Leases({self._catalog!r}, ttl={self._ttl})"

    @property
    def ttl(self) -> timedelta:
        """How long a lease lives without a heartbeat."""
        return self._ttl

    def acquire(self, holder: str, *, run_id: int | None = None) -> Lease:
        """Take the lease for ``holder`` (a user or command name) if nobody holds it or it is stale.

        A lease that expired but whose holder may still act (before its
        ``safe_at``) is waited out, at most its margin, with a log line saying
        so; then taken. Raises :class:`~reclaim.errors.LockHeld` naming the
        holder, with how to break a stale lease, when another collector holds
        it; and :class:`~reclaim.errors.CatalogError` on database errors or a
        catalog without its lease row.
        """
        try:
            return self._acquire(holder, run_id)
        except LockHeld:
            wait = self._margin_left()
            if wait is None:
                raise
        log.warning(
            "the catalog lease expired but its holder may still act for %.1fs (its margin); waiting", wait
        )
        time.sleep(wait)
        return self._acquire(holder, run_id)

    def _margin_left(self) -> float | None:
        """Seconds until an expired lease's holder can no longer act; ``None`` unless it expired."""
        with self._catalog.begin() as connection:
            now = _database_now(connection)
            info = self._read(connection)
        if info.token is None or info.expires_at is None or info.safe_at is None:
            return None
        if not info.expires_at < now <= info.safe_at:
            return None
        # bounded: safe_at is at most one margin (a fifth of the holder's ttl) past the expiry
        return (info.safe_at - now).total_seconds() + 0.05

    def _acquire(self, holder: str, run_id: int | None) -> Lease:
        lease = self._table
        token = secrets.token_hex(16)
        host = socket.gethostname()[:255]
        pid = os.getpid()
        started = time.monotonic()
        with self._catalog.begin() as connection:
            now = _database_now(connection)
            expires_at = now + self._ttl
            before = self._read(connection)
            values: dict[str, Any] = {
                "holder": holder[:255],
                "host": host,
                "pid": pid,
                "token": token,
                "run_id": run_id,
                "acquired_at": now,
                "heartbeat_at": now,
                "expires_at": expires_at,
                "identity": _identity(),
                "safe_at": expires_at + self._margin,
                "fence": lease.c.fence + 1,
                "progress": None,
            }
            # an expired lease is not free until its holder can no longer act (safe_at)
            free = sa.or_(
                lease.c.token.is_(None),
                lease.c.safe_at < now,
                sa.and_(lease.c.safe_at.is_(None), lease.c.expires_at < now),
            )
            statement = lease.update().where(lease.c.name == LEASE_NAME, free).values(**values)
            taken = connection.execute(statement).rowcount == 1
            if not taken:
                current = self._read(connection)
                if current.holder_gone():
                    # take over a dead local process's lease, compare-and-set on its token
                    takeover = lease.update().where(
                        lease.c.name == LEASE_NAME, lease.c.token == current.token
                    )
                    taken = connection.execute(takeover.values(**values)).rowcount == 1
                    if taken:
                        log.warning("took over the lease of a dead process: %s", current.describe())
            fence = 0
            if taken:
                mine = sa.select(lease.c.fence).where(lease.c.name == LEASE_NAME, lease.c.token == token)
                fence = int(connection.execute(mine).scalar_one())
        if not taken:
            raise self._held(self.show())
        log.info("took the catalog lease for %s@%s pid %d until %s", holder, host, pid, _stamp(expires_at))
        return Lease(
            token=token,
            holder=holder[:255],
            host=host,
            pid=pid,
            run_id=run_id,
            acquired_at=now,
            expires_at=expires_at,
            ttl=self._ttl,
            deadline=started + (self._ttl - self._margin).total_seconds(),
            fence=fence,
            table=lease,
            previous=before if before.token is not None else None,
        )

    def heartbeat(self, lease: Lease) -> None:
        """Extend ``lease`` by the ttl from now.

        Raises :class:`~reclaim.errors.LeaseLost` when the lease is no longer
        ours (broken, taken over, released, or lost before), and
        :class:`~reclaim.errors.CatalogError` on database errors.
        """
        lease.check()
        table = self._table
        started = time.monotonic()
        progress = lease._pending_progress()
        with self._catalog.begin() as connection:
            now = _database_now(connection)
            expires_at = now + self._ttl
            values: dict[str, Any] = {
                "heartbeat_at": now,
                "expires_at": expires_at,
                "safe_at": expires_at + self._margin,
            }
            if progress is not None:
                values["progress"] = progress
            statement = (
                table.update()
                .where(table.c.name == LEASE_NAME, table.c.token == lease.token)
                .values(**values)
            )
            renewed = connection.execute(statement).rowcount == 1
        if not renewed:
            lease._lose("it was broken or taken over by another collector")
            lease.check()
        lease._renewed(expires_at, started + (self._ttl - self._margin).total_seconds())

    def release(self, lease: Lease) -> None:
        """Give ``lease`` up; does nothing when it is no longer ours.

        Raises :class:`~reclaim.errors.CatalogError` on database errors (the
        lease then expires after its ttl).
        """
        table = self._table
        lease._lose("it was released")
        with self._catalog.begin() as connection:
            statement = (
                table.update().where(table.c.name == LEASE_NAME, table.c.token == lease.token).values(**_FREE)
            )
            released = connection.execute(statement).rowcount == 1
        if released:
            log.info("released the catalog lease of %s", lease.describe())

    def show(self) -> LeaseInfo:
        """The lease as it is now. Raises :class:`~reclaim.errors.CatalogError`."""
        with self._catalog.begin() as connection:
            return self._read(connection)

    def break_lease(self, *, force: bool = False) -> LeaseInfo | None:
        """Clear a stale lease (or, with ``force``, a live one); return what was broken.

        Returns ``None`` when nobody held the lease. Raises
        :class:`~reclaim.errors.LockHeld` when the lease is live and ``force`` is
        not given: breaking the lease of a running collector lets a second one
        start beside it (the first stops at its next heartbeat, up to a third
        of the ttl later). Only the lease that was read is cleared, never one
        taken in between.
        """
        table = self._table
        for _ in range(_BREAK_ATTEMPTS):
            with self._catalog.begin() as connection:
                now = _database_now(connection)
                try:
                    info = self._read(connection)
                except CorruptRow:
                    if not force:
                        raise
                    # a row no collector could have written: clearing it is the way out
                    statement = table.update().where(table.c.name == LEASE_NAME).values(**_FREE)
                    connection.execute(statement)
                    log.warning("cleared a corrupt catalog lease row (forced)")
                    return None
                if info.token is None:
                    return None
                if not force and not info.stale(now):
                    raise self._held(info)
                statement = (
                    table.update()
                    .where(table.c.name == LEASE_NAME, table.c.token == info.token)
                    .values(**_FREE)
                )
                broken = connection.execute(statement).rowcount == 1
            if broken:
                log.warning("broke the catalog lease of %s%s", info.describe(), " (forced)" if force else "")
                return info
        raise CatalogError(
            f"catalog {self._catalog.url}: the lease changed hands {_BREAK_ATTEMPTS} times while breaking it"
        )

    def keep(
        self,
        holder: str,
        *,
        run_id: int | None = None,
        interval: timedelta | None = None,
    ) -> AbstractContextManager[Lease]:
        """Hold the lease for the ``with`` block, renewing it every ``interval`` (default: ttl / 3).

        The heartbeat runs in a daemon thread; when one fails (the lease was
        broken, or the database failed) the lease is marked lost and
        :meth:`Lease.check` raises :class:`~reclaim.errors.LeaseLost`. Leaving
        the block stops the thread and releases the lease. Raises
        :class:`~reclaim.errors.LockHeld` when another collector holds it.
        """
        every = self._ttl / 3 if interval is None else interval
        if not timedelta(0) < every < self._ttl:
            raise ValueError(f"the heartbeat interval must be positive and below the ttl {self._ttl}")
        return self._keep(holder, run_id, every)

    @contextmanager
    def _keep(self, holder: str, run_id: int | None, every: timedelta) -> Iterator[Lease]:
        lease = self.acquire(holder, run_id=run_id)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every.total_seconds()):
                try:
                    self.heartbeat(lease)
                except LeaseLost:
                    log.error("lost the catalog lease of %s", lease.describe())
                    return
                except Exception as exc:
                    lease._lose(f"a heartbeat failed: {exc}")
                    log.error("lost the catalog lease of %s: a heartbeat failed: %s", lease.describe(), exc)
                    return

        thread = threading.Thread(target=beat, name=f"reclaim-lease-{lease.token[:8]}", daemon=True)
        thread.start()
        try:
            yield lease
        finally:
            stop.set()
            thread.join(timeout=self._ttl.total_seconds())
            try:
                self.release(lease)
            except CatalogError as exc:
                # ignoring this is safe: the lease expires after its ttl
                log.warning("could not release the catalog lease (it expires by itself): %s", exc)

    # -- plumbing ------------------------------------------------------------------------

    def _read(self, connection: sa.Connection) -> LeaseInfo:
        table = self._table
        row = connection.execute(sa.select(table).where(table.c.name == LEASE_NAME)).mappings().first()
        if row is None:
            raise CatalogError(
                f"catalog {self._catalog.url}: the lease row {LEASE_NAME!r} is missing; run 'reclaim init'"
            )
        try:
            pid = None if row["pid"] is None else int(row["pid"])
            run_id = None if row["run_id"] is None else int(row["run_id"])
            fence = int(row["fence"] or 0)
        except (TypeError, ValueError, OverflowError):
            raise CorruptRow(
                f"catalog {self._catalog.url}: the lease row holds impossible values "
                f"(pid {row['pid']!r}, run {row['run_id']!r}, fence {row['fence']!r}); "
                "break it with 'reclaim lock --break --force' once no collector runs"
            ) from None
        return LeaseInfo(
            holder=row["holder"],
            host=row["host"],
            pid=pid,
            token=row["token"],
            run_id=run_id,
            acquired_at=row["acquired_at"],
            heartbeat_at=row["heartbeat_at"],
            expires_at=row["expires_at"],
            identity=row["identity"],
            fence=fence,
            safe_at=row["safe_at"],
            progress=_progress(row.get("progress")),
        )

    def _held(self, info: LeaseInfo) -> LockHeld:
        who = info.describe()
        return LockHeld(
            who,
            f"the catalog lease is held by {who}; only one collector may change the archive at a time. "
            "If that collector has died, its lease expires by itself; to go on earlier, break it with "
            "'reclaim lock --break' once expired, or 'reclaim lock --break --force' if you are sure "
            "the holder is gone",
        )


def _progress(text: Any) -> dict[str, Any] | None:
    """The progress snapshot of a lease row; ``None`` when there is none or it is not a JSON object.

    Unlike the lease's own columns, a garbled snapshot is no reason to stop anything: it is shown
    as missing.
    """
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _database_now(connection: sa.Connection) -> datetime:
    """The database server's current time (UTC), or this host's for SQLite."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        value = connection.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
    elif dialect in ("mysql", "mariadb"):
        value = connection.execute(sa.select(sa.func.utc_timestamp(6))).scalar_one()
    else:
        return datetime.now(UTC)
    if isinstance(value, str):  # pragma: no cover - drivers return datetimes
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):  # pragma: no cover
        raise CatalogError(f"the database returned {value!r} as the current time")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _machine() -> tuple[str, str] | None:
    """This boot's id and this process's PID namespace; ``None`` without Linux's ``/proc``."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip(), os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process(pid: int) -> tuple[str, str] | None:
    """State and start time (clock ticks after boot) of process ``pid``; ``None`` when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", "?")  # unknown, so taken as alive: that only makes us wait for the expiry
    # the command name may hold spaces and parentheses; the fields follow the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def _identity() -> str | None:
    """``boot-id pid-namespace pid start-time`` of this process; ``None`` where that is unknown."""
    machine = _machine()
    process = _process(os.getpid())
    if machine is None or process is None:
        return None
    return f"{machine[0]} {machine[1]} {os.getpid()} {process[1]}"
