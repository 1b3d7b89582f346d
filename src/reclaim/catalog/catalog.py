"""Opening, creating and upgrading the catalog, and the audit log of runs.

:func:`open_catalog` turns a :class:`~reclaim.config.CatalogConfig` into a
:class:`Catalog`: an engine on the catalog database and the catalog tables
under the configured schema and table prefix. Nothing is created until
:meth:`Catalog.upgrade` (what ``reclaim init`` calls); every other command calls
:meth:`Catalog.require_current` first, so that it never runs against a catalog
that is missing or older than the code.

Every database error that escapes this module is a
:class:`~reclaim.errors.CatalogError` naming the catalog URL with its password
masked, and the cause (invariant 9: the password itself never appears).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import sqlalchemy as sa

from reclaim.catalog import runs
from reclaim.catalog._entry import CorruptRow
from reclaim.catalog._retry import write_retrying
from reclaim.catalog.archive import RowArchive
from reclaim.catalog.runs import RunRecord, RunStatus
from reclaim.catalog.sightings import Sightings
from reclaim.catalog.tables import CatalogTables, catalog_tables
from reclaim.config.model import CatalogConfig
from reclaim.config.secrets import mask_url
from reclaim.errors import CatalogError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

__all__ = ["MIGRATIONS", "REVISIONS", "Catalog", "open_catalog"]

log = logging.getLogger(__name__)

#: the directory of the catalog's Alembic environment (shipped inside the package)
MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"

#: the revisions ``migrations/versions`` ships, oldest first (a test checks them
#: against Alembic's own walk): the daily commands compare the catalog's
#: revision with these without importing Alembic, which only ``upgrade`` needs
REVISIONS: Final = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0009",
    "0010",
    "0012",
    "0013",
    "0011",
    "0014",
    "0015",
    "0016",
)

#: Alembic keeps the running migration in module globals (``alembic.context``,
#: ``alembic.op``), so one process runs one migration at a time; other processes
#: are held off by the database lock taken in ``migrations/env.py``
_ALEMBIC_LOCK: Final = threading.Lock()

#: seconds SQLite waits for another writer before giving up with "database is locked"
_SQLITE_BUSY_TIMEOUT: Final = 30
#: seconds PostgreSQL waits for the server to answer a connection attempt
_PG_CONNECT_TIMEOUT: Final = 10
#: seconds a catalog statement waits for a row lock before failing (not hanging behind a paused holder)
LOCK_TIMEOUT: Final = 30.0
#: seconds a catalog statement may run
STATEMENT_TIMEOUT: Final = 600.0
#: seconds the server lets a session sit idle inside a transaction before ending it, so that a
#: collector paused mid-transaction (SIGSTOP) cannot hold its row locks, and block everyone, for long
IDLE_IN_TRANSACTION_TIMEOUT: Final = 20.0


def _is_alembic_error(exc: BaseException) -> bool:
    """Whether ``exc`` is Alembic's ``CommandError`` (Alembic is imported only when it ran)."""
    errors = sys.modules.get("alembic.util.exc")
    return errors is not None and isinstance(exc, errors.CommandError)


def open_catalog(config: CatalogConfig, *, lock_timeout: float | None = None) -> Catalog:
    """Create an engine for the catalog described by ``config``; connects lazily.

    Every connection waits at most ``lock_timeout`` seconds (default
    :data:`LOCK_TIMEOUT`) for a lock and :data:`STATEMENT_TIMEOUT` for a
    statement, and the server ends a session idle inside a transaction for
    :data:`IDLE_IN_TRANSACTION_TIMEOUT` (PostgreSQL, MariaDB): a collector
    paused while holding row locks fails its transaction instead of blocking
    ``recover`` and writers' claims behind it. A wait that times out is a
    :class:`CatalogError` that says so.

    Raises :class:`CatalogError` when the URL is missing or malformed, its
    database driver is not installed, a schema is asked for on SQLite, or the
    table prefix is too long for the database's identifiers.
    """
    if not config.url:
        raise CatalogError("catalog.url is not set; run 'reclaim init' to write a configuration")
    shown = mask_url(config.url)
    try:
        url = sa.make_url(config.url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise CatalogError(f"catalog {shown}: not a valid SQLAlchemy database URL") from None
    backend = url.get_backend_name()
    if backend == "sqlite" and config.db_schema is not None:
        raise CatalogError(
            f"catalog {shown}: schema {config.db_schema!r} is not supported on SQLite; "
            "use table_prefix to keep the catalog apart"
        )
    try:
        tables = catalog_tables(config.db_schema, config.table_prefix, backend)
    except ValueError as exc:
        raise CatalogError(f"catalog {shown}: {exc}") from None
    try:
        waits = _Waits(LOCK_TIMEOUT if lock_timeout is None else max(0.1, lock_timeout))
        engine = sa.create_engine(url, **_engine_options(url, waits))
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        cause = _scrub(str(exc), url.password)
        raise CatalogError(f"catalog {shown}: cannot create an engine: {cause}") from None
    if backend == "sqlite":
        _sqlite_transactions(engine, write_ahead=_sqlite_writable(url))
    elif backend in ("mysql", "mariadb"):
        _mysql_timeouts(engine, waits)
    return Catalog(engine, tables, url=config.url)


class _Waits:
    """The lock, statement and idle-in-transaction limits of one catalog's connections."""

    def __init__(self, lock: float) -> None:
        self.lock = lock
        self.statement = max(STATEMENT_TIMEOUT, lock)
        self.idle = max(IDLE_IN_TRANSACTION_TIMEOUT, lock)

    def postgres_options(self) -> str:
        """The session settings of a PostgreSQL catalog connection (``options``).

        Besides the limits, every execution of a prepared statement is planned
        for its parameters (``plan_cache_mode``): psycopg prepares a statement
        from its fifth execution, and a generic plan made while the journal
        was nearly empty (a sequential scan) stays in use as it grows, so
        that each batch's lookup of ``active_hash = ANY(...)`` compared every
        row with every key of the batch.
        """
        lock, statement, idle = (int(seconds * 1000) for seconds in (self.lock, self.statement, self.idle))
        return (
            f"-c lock_timeout={lock} -c statement_timeout={statement} "
            f"-c idle_in_transaction_session_timeout={idle} -c plan_cache_mode=force_custom_plan"
        )


def _mysql_timeouts(engine: sa.Engine, waits: _Waits) -> None:
    """Bound lock waits (whole seconds, at least 1), statements and idle transactions on MariaDB/MySQL."""

    @sa.event.listens_for(engine, "connect")
    def _limits(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {max(1, round(waits.lock))}")
            cursor.execute("SELECT VERSION()")
            version = str(cursor.fetchone()[0])
            if "mariadb" in version.lower():
                cursor.execute(f"SET SESSION max_statement_time = {waits.statement:.3f}")
                cursor.execute(f"SET SESSION idle_transaction_timeout = {max(1, round(waits.idle))}")
            else:
                cursor.execute(f"SET SESSION max_execution_time = {int(waits.statement * 1000)}")
        finally:
            cursor.close()


def _engine_options(url: sa.URL, waits: _Waits) -> dict[str, Any]:
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        # archived rows and options must not leak into error messages either
        "hide_parameters": True,
    }
    backend = url.get_backend_name()
    if backend == "postgresql" and url.get_driver_name() == "psycopg":
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT
        if "application_name" not in url.query:
            connect_args["application_name"] = "reclaim"
        if "options" not in url.query:
            connect_args["options"] = waits.postgres_options()
        options["connect_args"] = connect_args
    elif backend == "sqlite":
        options["connect_args"] = {"timeout": min(_SQLITE_BUSY_TIMEOUT, waits.lock)}
    return options


def _sqlite_writable(url: sa.URL) -> bool:
    """Whether a SQLite catalog URL opens its file for writing (not ``mode=ro``, not ``immutable``)."""
    query = {key.lower(): str(value).lower() for key, value in url.query.items()}
    return query.get("mode") != "ro" and query.get("immutable") not in ("1", "true", "yes", "on")


def _sqlite_transactions(engine: sa.Engine, *, write_ahead: bool = True) -> None:
    """Make SQLite transactions real: DDL inside them, the write lock taken up front, commits durable.

    The sqlite3 driver does not begin a transaction before DDL (so a failed
    migration would leave half its tables) and begins a deferred one before DML
    (so two read-then-write transactions can deadlock on the lock upgrade). The
    catalog issues ``BEGIN IMMEDIATE`` itself instead, which serialises writers
    and lets concurrent upgrades wait for each other.

    Every connection commits with ``synchronous = FULL``: a commit returns once
    it is on disk, so an intent is durable before its object moves
    (invariant 3). A connection that may write puts the file in write-ahead-log
    mode (``journal_mode = WAL``, kept by the file; see :func:`_write_ahead_log`):
    a commit then syncs the log once, where the rollback journal synced the
    journal and the database file several times per commit, and readers (the
    dashboard, ``status``) read the last commit without waiting for a writer.
    """

    @sa.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        if write_ahead:
            _write_ahead_log(dbapi_connection)
        dbapi_connection.execute("PRAGMA synchronous = FULL")

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _write_ahead_log(dbapi_connection: Any) -> None:
    """Switch the catalog file to write-ahead-log mode, or leave it as it is where that cannot be done.

    The mode is kept by the file, so once one connection made it, every
    other one (of any process, read-only ones too) finds it so; a file
    already in WAL mode makes this a no-op. Where the switch fails (the file
    is busy beyond the connection's wait, read-only, or on a file system
    without the shared memory WAL needs), the file keeps its rollback
    journal: just as durable, only with more syncs per commit.
    """
    try:
        dbapi_connection.execute("PRAGMA journal_mode = WAL").fetchall()
    except sqlite3.Error as exc:
        log.debug("the SQLite catalog stays in its journal mode: %s", exc)


def _scrub(text: str, password: str | None) -> str:
    """Remove a literal password from ``text`` (it may not be registered as a secret)."""
    if password:
        text = text.replace(password, "***")
    return text


#: where a value read from the catalog is converted: SQLAlchemy's result processors, our column types
_CONVERTERS: Final = (f"{os.sep}sqlalchemy{os.sep}", f"{os.sep}reclaim{os.sep}catalog{os.sep}tables.py")


def _read_back(exc: BaseException) -> bool:
    """Whether ``exc`` was raised converting a value read from the database (its innermost frame)."""
    tb = exc.__traceback__
    innermost = None
    while tb is not None:
        innermost = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return innermost is not None and any(part in innermost for part in _CONVERTERS)


def _cause(exc: BaseException) -> str:
    """The driver's own message, on one line, without SQLAlchemy's boilerplate."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        text = str(exc.orig)
    elif isinstance(exc, sa.exc.StatementError):
        text = str(exc.orig) if exc.orig is not None else str(exc)
    else:
        text = str(exc)
    text = re.sub(r"\(Background on this error at: [^)]*\)", "", text)
    return " ".join(text.split()) or type(exc).__name__


class Catalog:
    """reclaim's own tables in one database: migrations and the audit log of runs.

    Made by :func:`open_catalog`; a context manager that disposes of its engine.
    """

    def __init__(self, engine: sa.Engine, tables: CatalogTables, *, url: str) -> None:
        self._engine = engine
        self._tables = tables
        self._password = sa.make_url(url).password
        self._shown = mask_url(url)

    def __repr__(self) -> str:
        return f"Catalog({self._shown!r}, schema={self._tables.schema!r}, prefix={self._tables.prefix!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine on the catalog database."""
        return self._engine

    @property
    def tables(self) -> CatalogTables:
        """The catalog tables under the configured schema and prefix."""
        return self._tables

    @cached_property
    def archive(self) -> RowArchive:
        """The row archive on this catalog."""
        return RowArchive(self)

    @cached_property
    def sightings(self) -> Sightings:
        """When items of ``age = "unreferenced"`` stores and collections were first seen so."""
        return Sightings(self)

    @property
    def url(self) -> str:
        """The catalog URL with its password masked, for messages."""
        return self._shown

    def dispose(self) -> None:
        """Close every pooled connection; the catalog can still be used afterwards."""
        self._engine.dispose()

    # -- errors and transactions -------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except CatalogError as exc:
            if str(exc).startswith(f"catalog {self._shown}"):
                raise
            if isinstance(exc, CorruptRow):  # a row read back holds an impossible value
                raise CorruptRow(f"catalog {self._shown}: {exc}") from None
            # raised by migrations/env.py, which does not know the URL
            raise CatalogError(f"catalog {self._shown}: {doing} failed: {exc}") from None
        except (ValueError, TypeError, OverflowError) as exc:
            if not _read_back(exc):
                raise  # reclaim's own argument checks keep their type
            # a value read back that its column cannot hold (a row edited by hand: a date that
            # is not a date, text in a number column): the catalog is corrupt, not the code
            cause = _scrub(" ".join(str(exc).split())[:300], self._password)
            raise CorruptRow(
                f"catalog {self._shown}: {doing} failed: a catalog row holds an impossible value "
                f"({type(exc).__name__}: {cause}); repair or delete that row"
            ) from None
        except Exception as exc:
            if not isinstance(exc, sa.exc.SQLAlchemyError) and not _is_alembic_error(exc):
                raise
            cause = _scrub(_cause(exc), self._password)
            raise CatalogError(f"catalog {self._shown}: {doing} failed: {cause}") from None

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection in a transaction on the catalog, committed when the block ends.

        Raises :class:`CatalogError` (masked URL and cause) when connecting or any
        statement fails; the transaction is rolled back then.
        """
        with self._errors("a catalog transaction"), self._engine.begin() as connection:
            yield connection

    # -- migrations -----------------------------------------------------------------

    def _alembic_config(self, connection: sa.Connection | None = None) -> AlembicConfig:
        from alembic.config import Config as AlembicConfig  # only migrations need Alembic

        config = AlembicConfig()
        # configparser interpolates '%'; a path may contain one
        config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
        config.set_main_option("path_separator", "os")
        config.attributes["schema"] = self._tables.schema
        config.attributes["prefix"] = self._tables.prefix
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    def head(self) -> str:
        """The newest revision this version of reclaim ships."""
        return REVISIONS[-1]

    def upgrade(self) -> str:
        """Create the catalog or bring it to the newest revision; return that revision.

        A no-op on a current catalog. Concurrent upgrades of the same catalog wait
        for each other (see ``migrations/env.py``). On PostgreSQL the schema is
        created when missing. Raises :class:`CatalogError` when the database is
        unreachable, refuses the credentials, or does not allow the DDL.
        """
        log.info(
            "upgrading catalog %s (schema %s, prefix %r)",
            self._shown,
            self._tables.schema,
            self._tables.prefix,
        )
        current = self.revision()
        if current is not None and not self._known(current):
            raise self._newer(current)
        from alembic import command  # only migrations need Alembic

        with _ALEMBIC_LOCK, self._errors("upgrading"), self._engine.connect() as connection:
            config = self._alembic_config(connection)
            releases: list[Callable[[], object]] = []
            config.attributes["after_transaction"] = releases
            try:
                with connection.begin():
                    command.upgrade(config, "head")
            finally:
                # what the migrations hold until their transaction has ended (MariaDB's GET_LOCK):
                # let go only after the commit, so that the next upgrade reads the new revision
                for release in releases:
                    release()
        revision = self.revision()
        if revision is None:  # pragma: no cover - upgrade either stamps or raises
            raise CatalogError(f"catalog {self._shown}: upgrade left no revision")
        return revision

    def revision(self) -> str | None:
        """The catalog's current revision, ``None`` when it has not been created.

        Raises :class:`CatalogError` when the database cannot be reached.
        """
        with self._errors("reading the revision"), self._engine.connect() as connection:
            if not sa.inspect(connection).has_table(self._tables.version_table, schema=self._tables.schema):
                return None
            version = sa.table(
                self._tables.version_table, sa.column("version_num"), schema=self._tables.schema
            )
            heads = connection.execute(sa.select(version.c.version_num)).scalars().all()
        if len(heads) > 1:  # pragma: no cover - reclaim's migrations are one line
            raise CatalogError(
                f"catalog {self._shown}: several revisions {heads} in {self._tables.version_table}"
            )
        return heads[0] if heads else None

    def require_current(self) -> None:
        """Raise :class:`CatalogError` unless the catalog exists and is at :meth:`head`.

        The message tells the operator to run ``reclaim init`` when the catalog is
        missing or behind, and to upgrade reclaim when the catalog is newer.
        """
        current = self.revision()
        head = self.head()
        if current == head:
            return
        if current is None:
            raise CatalogError(
                f"catalog {self._shown}: not created yet (no table {self._tables.version_table}); "
                "run 'reclaim init'"
            )
        if self._known(current):
            raise CatalogError(
                f"catalog {self._shown}: at revision {current}, this reclaim needs {head}; "
                "run 'reclaim init' to upgrade it"
            )
        raise self._newer(current)

    def _known(self, revision: str) -> bool:
        """Whether ``revision`` is one of the migrations this reclaim ships."""
        return revision in REVISIONS

    def _newer(self, revision: str) -> CatalogError:
        return CatalogError(
            f"catalog {self._shown}: at revision {revision}, which this reclaim does not know "
            f"(its newest is {self.head()}); a newer reclaim upgraded it: upgrade reclaim"
        )

    # -- the audit log ----------------------------------------------------------------

    def start_run(
        self, command: str, options: Mapping[str, Any], *, dry_run: bool, user: str | None = None
    ) -> int:
        """Record that ``command`` started now, by this user, host and process; return its id.

        ``options`` are stored as JSON with every string redacted (no secret
        reaches the audit log). Raises :class:`CatalogError` on database errors.
        """
        with self.begin() as connection:
            return runs.insert_run(connection, self._tables, command, options, dry_run=dry_run, user=user)

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        counts: Mapping[str, Any],
        error: str | None = None,
        *,
        if_running: bool = False,
    ) -> bool:
        """Record that run ``run_id`` ended with ``status``, its counts and its error.

        A run is finished once: with ``if_running`` a run already finished is
        left as it is and ``False`` returned (a collector closing a run that
        the one which took its lease over closed already); without it that is
        a :class:`CatalogError`, as is a run that does not exist. Raises
        :class:`CatalogError` on database errors.
        """
        if status not in runs.FINAL_STATUSES:
            raise CatalogError(f"a run finishes as one of {sorted(runs.FINAL_STATUSES)}, not {status!r}")
        if error is not None:
            error = _scrub(error, self._password)
        # retried when the database breaks a deadlock (runs finishing at once add to the same
        # per-day rows): the aborted attempt changed nothing
        finished = write_retrying(
            self, lambda connection: runs.finish_run(connection, self._tables, run_id, status, counts, error)
        )
        if not finished and not if_running:
            raise CatalogError(
                f"catalog {self._shown}: run {run_id} does not exist or has already finished", run=run_id
            )
        return finished

    def get_run(self, run_id: int) -> RunRecord | None:
        """The audit-log entry of run ``run_id``, ``None`` when there is none.

        Raises :class:`CatalogError` on database errors.
        """
        with self.begin() as connection:
            found = runs.select_runs(connection, self._tables, run_id=run_id)
        return found[0] if found else None

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The ``limit`` most recent runs, newest first.

        Raises ``ValueError`` when ``limit`` is below 1 and :class:`CatalogError`
        on database errors.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self.begin() as connection:
            return runs.select_runs(connection, self._tables, limit=limit)
