"""The catalog's tables as SQLAlchemy Core objects, for any schema and table prefix.

Eight tables, each named ``<prefix><name>``:

- ``runs``: the audit log, one row per invocation that changes anything;
- ``objects``: the object journal, one row per lifecycle episode of a key
  (QUARANTINING -> QUARANTINED -> PURGING -> PURGED, or -> RESTORING -> RESTORED;
  see :mod:`reclaim.catalog.journal`);
- ``rows``: the row archive, the JSON of every row a collection removed;
- ``row_refs``: what each archived row references (its foreign-key values and
  the values reference sources read from it), so that everything a restorable
  row points at stays referenced (invariant 6);
- ``row_objects``: the objects a ``follow`` collection's archived row owns (its
  store and key, and the journal entry that quarantined it, NULL while that
  quarantine is pending): restoring the row restores them, its expiry purges them;
- ``lease``: the one-collector-at-a-time lease (a single row, ``collector``),
  with the latest progress snapshot of the run that holds it;
- ``observations``: what read-only ``scan`` and ``check`` runs saw, as JSON
  reports (the dashboard's standing numbers, never a reason to act);
- ``totals``: running counts and bytes of the journal per store and state and
  of the archive per collection and state, so that ``status`` reads a few rows
  instead of summing the whole history;
- ``released``: the keys (or directory prefixes) that archived rows held in a
  store when their archive expired: released by a row collection, so that a
  store with ``strays = "report"`` can tell them from strays (objects no row
  ever released); consumed when the key is quarantined.
- ``unreferenced``: the items (object keys, rows' primary keys) of stores and
  collections with ``age = "unreferenced"`` that real runs currently see
  unreferenced, with when they were first seen so (see
  :mod:`reclaim.catalog.sightings`).
- ``run_days``: per store, UTC day and command, the objects and bytes finished
  runs quarantined, purged and restored, so that the history chart and the
  metrics' counters read a row per day instead of every run's counts.

The same definitions must hold on SQLite, PostgreSQL and MariaDB/MySQL, which
shapes a few choices:

- timestamps go through :class:`UTCDateTime`, so that Python always sees
  timezone-aware UTC values although MariaDB and SQLite store none;
- keys are up to 1024 characters, more than MariaDB can index under utf8mb4, so
  lookups go through ``key_hash`` (SHA-256 hex) and the key itself is compared after;
- keys ``A`` and ``a`` (or ``a`` and ``a ``) are different objects and must never
  compare equal, so keys go through :class:`ObjectKey` (byte comparison and
  order everywhere), and on MariaDB/MySQL every table uses ``utf8mb4_bin``;
- index names carry the prefix, because PostgreSQL and SQLite name indexes per
  schema, not per table, and two catalogs may share one;
- ``objects.active_hash`` is ``key_hash`` while an entry is active and NULL once
  it is PURGED or RESTORED; its UNIQUE index with ``store`` lets the database
  guarantee one active entry per key (NULLs never collide);
- ``objects.mtime_epoch`` keeps the object's mtime as the exact double the store
  reported (``mtime`` keeps microseconds only, for people reading the table).

The migrations (``migrations/versions/``) spell out the same tables; a test
checks that the two agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "KEY_LENGTH",
    "LEASE_NAME",
    "MAX_PREFIX_LENGTH",
    "MYSQL_TABLE_OPTIONS",
    "RUN_DAY_FIGURES",
    "CatalogTables",
    "ObjectKey",
    "UTCDateTime",
    "catalog_tables",
    "sha256_hex",
]

#: the longest object key the journal holds (S3 allows 1024 bytes)
KEY_LENGTH: Final = 1024
#: the name of the lease row every collector competes for
LEASE_NAME: Final = "collector"
#: the longest table prefix whose derived names fit PostgreSQL's 63-character identifiers
MAX_PREFIX_LENGTH: Final = 63 - len("alembic_version")
#: table options for MariaDB/MySQL: 4-byte UTF-8, and keys that compare byte for byte
MYSQL_TABLE_OPTIONS: Final[dict[str, Any]] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is timezone-aware UTC in Python on every dialect.

    PostgreSQL stores ``timestamptz``; MariaDB (``DATETIME(6)``, microseconds kept)
    and SQLite store the UTC wall time without a zone, and values read back are
    marked UTC again. Naive datetimes are refused on the way in (``ValueError``):
    guessing their zone could make an object look older than it is.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql  # loaded only where it is used: 1.5 MB elsewhere

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: catalog timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ObjectKey(sa.types.TypeDecorator[str]):
    """An object key, compared and ordered byte for byte (UTF-8) on every dialect.

    Store listings come in UTF-8 byte order (S3's order), and two keys that
    differ in case or in trailing spaces are two objects. So the key column is
    ``VARCHAR COLLATE "C"`` on PostgreSQL, a plain (binary-collated) ``VARCHAR``
    on SQLite, and ``VARBINARY`` on MariaDB/MySQL, whose binary text collations
    still ignore trailing spaces; the bytes are decoded back to ``str`` here.
    """

    impl = sa.String(KEY_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            # room for KEY_LENGTH characters of up to four bytes each
            return dialect.type_descriptor(mysql.VARBINARY(4 * KEY_LENGTH))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.String(KEY_LENGTH, collation="C"))
        return dialect.type_descriptor(sa.String(KEY_LENGTH))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in ("mysql", "mariadb"):
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8")
        return None if value is None else str(value)


def _id() -> sa.types.TypeEngine[int]:
    # SQLite only autoincrements INTEGER PRIMARY KEY; elsewhere a journal of
    # a petabyte archive may outgrow 2**31 rows
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class LongText(sa.types.TypeDecorator[str]):
    """Text of any length: ``LONGTEXT`` on MariaDB/MySQL, whose ``TEXT`` stops at 64 KiB."""

    impl = sa.Text()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.LONGTEXT())
        return super().load_dialect_impl(dialect)


def _long_text() -> sa.types.TypeEngine[str]:
    # an archived row or a run's counts may not fit in MariaDB's TEXT
    return LongText()


def sha256_hex(text: str) -> str:
    """The SHA-256 of ``text`` (UTF-8) as 64 hex digits: ``key_hash`` and ``pk_hash``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CatalogTables:
    """The catalog's :class:`~sqlalchemy.MetaData` and its tables."""

    metadata: sa.MetaData
    runs: sa.Table
    objects: sa.Table
    rows: sa.Table
    row_refs: sa.Table
    row_objects: sa.Table
    lease: sa.Table
    observations: sa.Table
    totals: sa.Table
    released: sa.Table
    unreferenced: sa.Table
    run_days: sa.Table
    schema: str | None
    prefix: str

    @property
    def version_table(self) -> str:
        """The name of the Alembic version table of this catalog."""
        return f"{self.prefix}alembic_version"


#: the figures of a row of ``run_days``, in this order
RUN_DAY_FIGURES: Final = (
    "quarantined_objects",
    "quarantined_bytes",
    "purged_objects",
    "purged_bytes",
    "restored_objects",
    "restored_bytes",
)


def catalog_tables(schema: str | None, prefix: str, backend: str | None = None) -> CatalogTables:
    """Build the catalog tables in ``schema`` (``None``: the default) named ``prefix + name``.

    The MariaDB/MySQL table options are attached unless ``backend`` names
    another database (naming them makes SQLAlchemy load the MySQL dialect).

    Raises ``ValueError`` when ``prefix`` is so long that derived names would
    exceed the 63 characters PostgreSQL allows.
    """
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"table prefix {prefix!r} is {len(prefix)} characters long; at most "
            f"{MAX_PREFIX_LENGTH} fit the database's identifier limit"
        )
    metadata = sa.MetaData(schema=schema)
    p = prefix
    options = MYSQL_TABLE_OPTIONS if backend in (None, "mysql", "mariadb") else {}

    runs = sa.Table(
        f"{p}runs",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("command", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("options", _long_text(), nullable=False),
        sa.Column("counts", _long_text(), nullable=False),
        sa.Column("error", _long_text(), nullable=True),
        sa.Index(f"{p}runs_command", "command", "id"),
        sa.Index(f"{p}runs_started", "started_at"),
        # the newest end of a run (the dashboard's change probe) by one lookup
        sa.Index(f"{p}runs_finished", "finished_at"),
        **options,
    )

    objects = sa.Table(
        f"{p}objects",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("key", ObjectKey(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("trash_key", ObjectKey(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime", UTCDateTime(), nullable=True),
        sa.Column("etag", sa.String(255), nullable=True),
        sa.Column("version_id", sa.String(KEY_LENGTH), nullable=True),
        sa.Column("marker_id", sa.String(KEY_LENGTH), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_run_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("active_hash", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("mtime_epoch", sa.Double(), nullable=True),
        sa.Index(f"{p}objects_key", "store", "key_hash"),
        sa.Index(f"{p}objects_due", "store", "state", "due_at"),
        sa.Index(f"{p}objects_run", "run_id"),
        # at most one active entry per key: the database refuses a second one
        sa.Index(f"{p}objects_active", "store", "active_hash", unique=True),
        # the dashboard's paging (newest first) and its recent-history counts
        sa.Index(f"{p}objects_state_id", "state", "id"),
        sa.Index(f"{p}objects_store_state_id", "store", "state", "id"),
        sa.Index(f"{p}objects_changed", "store", "state", "updated_at", "size"),
        # status's oldest quarantined entry by one lookup (the next due: objects_due); it covers
        # the running totals' recount too
        sa.Index(f"{p}objects_oldest", "store", "state", "created_at", "size"),
        **options,
    )

    rows = sa.Table(
        f"{p}rows",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("collection", sa.String(255), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("pk", sa.Text(), nullable=False),
        sa.Column("pk_hash", sa.String(64), nullable=False),
        sa.Column("row", _long_text(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.Column("updated_run_id", sa.BigInteger(), nullable=True),
        sa.Index(f"{p}rows_pk", "collection", "pk_hash"),
        sa.Index(f"{p}rows_expiry", "state", "expires_at"),
        sa.Index(f"{p}rows_run", "run_id"),
        sa.Index(f"{p}rows_state_id", "state", "id"),
        # status's archive summary: the oldest archived row and the next expiry, from the index
        sa.Index(f"{p}rows_summary", "collection", "state", "archived_at", "expires_at"),
        # a collection's next expiry by one lookup (rows_expiry orders every collection's rows)
        sa.Index(f"{p}rows_next_expiry", "collection", "state", "expires_at"),
        **options,
    )

    row_refs = sa.Table(
        f"{p}row_refs",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("selector", sa.String(255), nullable=False),
        sa.Column("value", ObjectKey(), nullable=False),
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Index(f"{p}row_refs_value", "table_name", "selector", "value_hash"),
        sa.Index(f"{p}row_refs_row", "row_id"),
        **options,
    )

    row_objects = sa.Table(
        f"{p}row_objects",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("key", ObjectKey(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        # the journal entry that quarantined the object; NULL while the quarantine is pending
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Index(f"{p}row_objects_row", "row_id"),
        sa.Index(f"{p}row_objects_key", "store", "key_hash"),
        sa.Index(f"{p}row_objects_entry", "entry_id"),
        **options,
    )

    lease = sa.Table(
        f"{p}lease",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("token", sa.String(64), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("acquired_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        # boot, PID namespace, pid and start time of the holder: see reclaim.catalog.lease
        sa.Column("identity", sa.String(255), nullable=True),
        # the fencing token (grows at every change of hands) and when the holder can no longer act
        sa.Column("fence", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("safe_at", UTCDateTime(), nullable=True),
        # the holder's latest progress snapshot (JSON), written with its heartbeat
        sa.Column("progress", _long_text(), nullable=True),
        **options,
    )

    observations = sa.Table(
        f"{p}observations",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        # "all": every store and collection was looked at; "partial": only some were
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("report", _long_text(), nullable=False),
        sa.Index(f"{p}observations_kind", "kind", "id"),
        **options,
    )

    # running counts and bytes per store (journal) or collection (archive) and state, kept by
    # every state-changing write in its own transaction (see reclaim.catalog._totals)
    totals = sa.Table(
        f"{p}totals",
        metadata,
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(16), primary_key=True),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        **options,
    )

    # what archived rows held in a store when their archive expired (see reclaim.catalog.released)
    released = sa.Table(
        f"{p}released",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("key", ObjectKey(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("collection", sa.String(255), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=False),
        sa.Index(f"{p}released_key", "store", "key_hash"),
    )

    # one row per item a real run currently sees unreferenced (age = "unreferenced"): when it was
    # first seen so, the last run that saw it, and whether a complete scan vouched for it
    unreferenced = sa.Table(
        f"{p}unreferenced",
        metadata,
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("item_hash", sa.String(64), primary_key=True),
        sa.Column("item", ObjectKey(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen_run", sa.BigInteger(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Index(f"{p}unreferenced_run", "kind", "owner", "last_seen_run"),
    )

    # per store, day (UTC, of the run's start) and command: what finished runs quarantined, purged
    # and restored, added by the run writer in the transaction that finishes the run
    # (see reclaim.catalog._run_days)
    run_days = sa.Table(
        f"{p}run_days",
        metadata,
        sa.Column("store", sa.String(255), primary_key=True),
        # the start of the day (UTC midnight): a timestamp like every other, so that whatever shifts
        # the catalog's times (a restore into another clock, the examples' time travel) shifts it too
        sa.Column("day", UTCDateTime(), primary_key=True),
        sa.Column("command", sa.String(64), primary_key=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in RUN_DAY_FIGURES),
        **options,
    )

    return CatalogTables(
        metadata=metadata,
        runs=runs,
        objects=objects,
        rows=rows,
        row_refs=row_refs,
        row_objects=row_objects,
        lease=lease,
        observations=observations,
        totals=totals,
        released=released,
        unreferenced=unreferenced,
        run_days=run_days,
        schema=schema,
        prefix=prefix,
    )
