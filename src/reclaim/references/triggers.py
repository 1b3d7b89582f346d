"""Triggers that queue the keys a reference source lets go, for the incremental cycle.

For every exact-column reference source of a store, reclaim can install, on
the source's table, triggers that insert the key of a deleted row, and the
old key of a row whose reference column changed, into a queue table owned by
reclaim in the same database (``<prefix>queue``: id, store, object_key,
queued_at). The insert runs in the writer's own transaction, so a delete that
rolls back queues nothing, and a delete that commits cannot lose its row.

- PostgreSQL: one plpgsql function per source, one ``AFTER DELETE OR
  UPDATE OF <column>`` row trigger (any ``UPDATE`` when the source has a
  ``where``: a changed filter column can drop the reference too) and one
  ``BEFORE TRUNCATE`` statement trigger that queues every key of the table.
- MariaDB/MySQL: ``AFTER DELETE`` and ``AFTER UPDATE`` row triggers; the
  update trigger queues only when the column changed (compared as bytes), or
  on any update when the source has a ``where``.
- SQLite: the same two triggers.

A trigger queues too much rather than too little: a queued key is only
looked at again, never deleted because it was queued. What a trigger cannot
express is refused (:func:`unsupported`): query sources, JSON paths,
decoders and prefix references. What installs are known to reclaim is kept
in ``<prefix>queue_triggers`` beside the queue, so that ``status`` and
``uninstall`` find them again.

The ``strip_prefix`` / ``add_prefix`` mapping of the source is done in the
trigger (a value without ``strip_prefix`` belongs to another store and is not
queued), so the queue holds keys of the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reclaim.errors import SourceError
from reclaim.references.databases import dialect_of
from reclaim.references.sources import ReferenceSource

__all__ = [
    "InstalledSource",
    "Queue",
    "QueuedKey",
    "TriggerSet",
    "installed_sources",
    "trigger_set",
    "unsupported",
]

#: bumped when the triggers' SQL changes: an install of an older shape shows as stale
_SHAPE = 2


def unsupported(source: ReferenceSource) -> str | None:
    """Why no trigger can queue what ``source`` lets go; ``None`` when one can (fail closed)."""
    cfg = source.config
    if cfg.query is not None:
        return "a query source: no table whose rows a trigger could watch"
    if cfg.json_path is not None:
        return "a JSON path: the key is inside a JSON value"
    if cfg.decoder is not None:
        return "a decoder source: only Python can read its values"
    if cfg.kind == "prefix":
        return "a prefix reference: the keys under it would have to be listed"
    if dialect_of(source.engine) not in {"postgresql", "mysql", "sqlite"}:
        return f"database dialect {source.engine.dialect.name!r}"
    return None


@dataclass(frozen=True)
class QueuedKey:
    """One row of the queue."""

    id: int
    key: str
    queued_at: datetime


@dataclass(frozen=True)
class InstalledSource:
    """What the registry says reclaim installed for one source of one store."""

    store: str
    source: str
    table: str
    schema: str | None
    fingerprint: str
    triggers: tuple[str, ...]
    function: str | None
    installed_at: datetime | None
    present: bool
    """Whether every trigger it names exists in the database now."""


def _literal(value: str, dialect: str) -> str:
    """``value`` as an SQL string literal of ``dialect``."""
    text = value.replace("'", "''")
    if dialect == "mysql":
        text = text.replace("\\", "\\\\")  # MySQL reads backslash escapes in literals
    return f"'{text}'"


class TriggerSet:
    """The DDL that makes one source of one store queue its released keys (see the module docstring)."""

    def __init__(self, store: str, source: ReferenceSource, prefix: str) -> None:
        reason = unsupported(source)
        if reason is not None:
            raise SourceError(source.name, f"no trigger can watch it: {reason}")
        self.store = store
        self.source = source
        self.prefix = prefix
        self.dialect = dialect_of(source.engine)
        cfg = source.config
        assert cfg.table is not None
        assert cfg.column is not None
        shape = {
            "shape": _SHAPE,
            "store": store,
            "source": source.name,
            "schema": cfg.table_schema,
            "table": cfg.table,
            "column": cfg.column,
            "strip": cfg.strip_prefix,
            "add": cfg.add_prefix,
            "where": cfg.where,
        }
        digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
        self.fingerprint = digest[:16]
        self.name = f"{prefix}q_{digest[:12]}"

    # -- names ------------------------------------------------------------------------------

    def _quote(self, name: str) -> str:
        return str(self.source.engine.dialect.identifier_preparer.quote(name))

    @property
    def table(self) -> str:
        """The watched table, qualified and quoted."""
        cfg = self.source.config
        assert cfg.table is not None
        table = self._quote(cfg.table)
        return f"{self._quote(cfg.table_schema)}.{table}" if cfg.table_schema else table

    @property
    def triggers(self) -> tuple[str, ...]:
        """The names of the triggers this set creates."""
        if self.dialect == "postgresql":
            return (self.name, f"{self.name}_t")
        return (f"{self.name}_d", f"{self.name}_u")

    @property
    def function(self) -> str | None:
        """The trigger function (PostgreSQL), qualified by the table's schema."""
        return self.name if self.dialect == "postgresql" else None

    def _qualified(self, name: str) -> str:
        schema = self.source.config.table_schema
        return f"{self._quote(schema)}.{self._quote(name)}" if schema else self._quote(name)

    # -- the SQL ----------------------------------------------------------------------------

    def create(self, queue_table: str) -> list[str]:
        """The statements that create the triggers, queueing into ``queue_table`` (qualified, quoted)."""
        if self.dialect == "postgresql":
            return self._postgresql(queue_table)
        if self.dialect == "mysql":
            return self._mysql(queue_table)
        return self._sqlite(queue_table)

    def drop(self) -> list[str]:
        """The statements that drop the triggers (and the function), if they exist."""
        return drop_statements(
            self.dialect,
            self.source.config.table_schema,
            self.table,
            self.triggers,
            self.function,
            self._quote,
        )

    def _mapping(self, value: str, *, concat: bool) -> tuple[str, str]:
        """The condition that ``value`` belongs to the store, and the key expression."""
        cfg = self.source.config
        strip = cfg.strip_prefix or ""
        add = cfg.add_prefix or ""
        d = self.dialect
        condition = f"{value} IS NOT NULL"
        key = value
        if strip:
            n = len(strip)
            left = f"substr({value}, 1, {n})" if d == "sqlite" else f"LEFT({value}, {n})"
            cast = "CAST({} AS BINARY)" if d == "mysql" else "{}"
            condition += f" AND {cast.format(left)} = {cast.format(_literal(strip, d))}"
            key = f"substr({value}, {n + 1})" if d == "sqlite" else f"SUBSTRING({value}, {n + 1})"
        if add:
            key = f"CONCAT({_literal(add, d)}, {key})" if concat else f"{_literal(add, d)} || {key}"
        return condition, key

    def _postgresql(self, queue: str) -> list[str]:
        cfg = self.source.config
        column = self._quote(str(cfg.column))
        condition, key = self._mapping("v", concat=False)
        changed = (
            ""
            if cfg.where
            else (
                f"  IF TG_OP = 'UPDATE' AND CAST(NEW.{column} AS text) IS NOT DISTINCT FROM v THEN\n"
                "    RETURN NULL;\n"
                "  END IF;\n"
            )
        )
        store = _literal(self.store, "postgresql")
        function = self._qualified(self.name)
        every, every_key = self._mapping(f"CAST({column} AS text)", concat=False)
        body = (
            "DECLARE v text;\n"
            "BEGIN\n"
            "  IF TG_OP = 'TRUNCATE' THEN\n"
            f"    INSERT INTO {queue} (store, object_key) SELECT {store}, {every_key} FROM {self.table}"
            f" WHERE {every};\n"
            "    RETURN NULL;\n"
            "  END IF;\n"
            f"  v := CAST(OLD.{column} AS text);\n"
            f"{changed}"
            f"  IF {condition} THEN\n"
            f"    INSERT INTO {queue} (store, object_key) VALUES ({store}, {key});\n"
            "  END IF;\n"
            "  RETURN NULL;\n"
            "END"
        )
        events = "DELETE OR UPDATE" if cfg.where else f"DELETE OR UPDATE OF {column}"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $reclaim$\n"
            f"{body}\n$reclaim$",
            f"CREATE TRIGGER {self._quote(self.name)} AFTER {events} ON {self.table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()",
            # a TRUNCATE fires no row trigger: queue every key before the rows go
            f"CREATE TRIGGER {self._quote(self.name + '_t')} BEFORE TRUNCATE ON {self.table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]

    def _mysql(self, queue: str) -> list[str]:
        cfg = self.source.config
        column = self._quote(str(cfg.column))
        condition, key = self._mapping(f"CAST(OLD.{column} AS CHAR)", concat=True)
        store = _literal(self.store, "mysql")
        insert = f"INSERT INTO {queue} (store, object_key) VALUES ({store}, {key})"
        changed = (
            "" if cfg.where else (f" AND NOT (CAST(NEW.{column} AS BINARY) <=> CAST(OLD.{column} AS BINARY))")
        )
        delete_name, update_name = (self._quote(n) for n in self.triggers)
        return [
            f"CREATE TRIGGER {delete_name} AFTER DELETE ON {self.table} FOR EACH ROW\n"
            f"BEGIN\n  IF {condition} THEN\n    {insert};\n  END IF;\nEND",
            f"CREATE TRIGGER {update_name} AFTER UPDATE ON {self.table} FOR EACH ROW\n"
            f"BEGIN\n  IF {condition}{changed} THEN\n    {insert};\n  END IF;\nEND",
        ]

    def _sqlite(self, queue: str) -> list[str]:
        cfg = self.source.config
        column = self._quote(str(cfg.column))
        condition, key = self._mapping(f"CAST(OLD.{column} AS TEXT)", concat=False)
        store = _literal(self.store, "sqlite")
        insert = f"INSERT INTO {queue} (store, object_key) SELECT {store}, {key} WHERE {condition}"
        changed = "" if cfg.where else f" WHEN NEW.{column} IS NOT OLD.{column}"
        delete_name, update_name = (self._quote(n) for n in self.triggers)
        table = self._quote(str(cfg.table))  # a SQLite trigger lives in its table's schema
        schema = f"{self._quote(cfg.table_schema)}." if cfg.table_schema else ""
        return [
            f"CREATE TRIGGER {schema}{delete_name} AFTER DELETE ON {table} FOR EACH ROW\n"
            f"BEGIN\n  {insert};\nEND",
            f"CREATE TRIGGER {schema}{update_name} AFTER UPDATE ON {table} FOR EACH ROW{changed}\n"
            f"BEGIN\n  {insert};\nEND",
        ]


def trigger_set(store: str, source: ReferenceSource, prefix: str) -> TriggerSet:
    """The triggers of ``source`` for ``store``; :class:`SourceError` when no trigger can watch it."""
    return TriggerSet(store, source, prefix)


def drop_statements(
    dialect: str,
    schema: str | None,
    table: str,
    triggers: Iterable[str],
    function: str | None,
    quote: Any,
) -> list[str]:
    """``DROP … IF EXISTS`` for ``triggers`` on ``table`` (quoted) and the PostgreSQL ``function``."""
    prefix = f"{quote(schema)}." if schema else ""
    if dialect == "postgresql":
        out = [f"DROP TRIGGER IF EXISTS {quote(name)} ON {table}" for name in triggers]
        if function:
            out.append(f"DROP FUNCTION IF EXISTS {prefix}{quote(function)}()")
        return out
    return [f"DROP TRIGGER IF EXISTS {prefix}{quote(name)}" for name in triggers]


class Queue:
    """The queue table and the registry of installs in one application database.

    Every method raises :class:`SourceError` (naming ``label``) on a database error.
    """

    def __init__(self, engine: sa.Engine, prefix: str, *, label: str) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        self.label = label
        self.queue_name = f"{prefix}queue"
        self.registry_name = f"{prefix}queue_triggers"
        metadata = sa.MetaData()
        key_type = sa.Text().with_variant(sa.String(1024, collation="utf8mb4_bin"), "mysql", "mariadb")
        self.queue = sa.Table(
            self.queue_name,
            metadata,
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            sa.Column("store", sa.String(255), nullable=False),
            sa.Column("object_key", key_type, nullable=False),
            sa.Column(
                "queued_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            ),
            sa.Index(f"{self.queue_name}_store", "store", "id"),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
            sqlite_autoincrement=True,
        )
        self.registry = sa.Table(
            self.registry_name,
            metadata,
            sa.Column("store", sa.String(255), primary_key=True),
            sa.Column("source", sa.String(400), primary_key=True),
            sa.Column("table_name", sa.String(400), nullable=False),
            sa.Column("table_schema", sa.String(255)),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("triggers", sa.Text(), nullable=False),
            sa.Column("function", sa.String(255)),
            sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
        )
        self._metadata = metadata

    def _error(self, exc: SQLAlchemyError, doing: str) -> SourceError:
        orig = getattr(exc, "orig", None) or exc
        text = " ".join(str(orig).split())
        return SourceError(self.label, f"{doing}: {type(orig).__name__}: {text}"[:800])

    def _quote(self, name: str) -> str:
        return str(self.engine.dialect.identifier_preparer.quote(name))

    def qualified_queue(self, connection: sa.Connection) -> str:
        """The queue table's name as a trigger in any schema of this database must write it."""
        if self.dialect == "postgresql":
            schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
        elif self.dialect == "mysql":
            schema = connection.execute(sa.text("SELECT DATABASE()")).scalar_one()
        else:
            return self._quote(self.queue_name)  # a SQLite trigger writes only its own schema
        return f"{self._quote(str(schema))}.{self._quote(self.queue_name)}"

    def exists(self) -> bool:
        """Whether the queue and the registry are there."""
        try:
            inspector = sa.inspect(self.engine)
            return inspector.has_table(self.queue_name) and inspector.has_table(self.registry_name)
        except SQLAlchemyError as exc:
            raise self._error(exc, "reading the incremental queue") from None

    # -- install and uninstall ------------------------------------------------------------

    def install(self, sets: Sequence[TriggerSet]) -> None:
        """Create the queue and registry (if needed) and the triggers of ``sets``, replacing older ones.

        On PostgreSQL and SQLite one transaction holds it all; MariaDB commits
        each DDL statement, so a failure there can leave some triggers
        installed (``status`` shows them; installing again completes it).
        """
        try:
            with self.engine.begin() as connection:
                self._metadata.create_all(connection, checkfirst=True)
                queue = self.qualified_queue(connection)
                for item in sets:
                    for previous in self._registered(connection, item.store, item.source.name):
                        self._drop_installed(connection, previous)
                    for statement in item.drop() + item.create(queue):
                        connection.exec_driver_sql(statement)
                    cfg = item.source.config
                    connection.execute(
                        self.registry.insert().values(
                            store=item.store,
                            source=item.source.name,
                            table_name=str(cfg.table),
                            table_schema=cfg.table_schema,
                            fingerprint=item.fingerprint,
                            triggers=",".join(item.triggers),
                            function=item.function,
                            installed_at=datetime.now(UTC),
                        )
                    )
        except SQLAlchemyError as exc:
            raise self._error(exc, "installing the incremental triggers") from None

    def uninstall(self, store: str | None) -> list[InstalledSource]:
        """Drop the triggers of ``store`` (every store: ``None``); the queue and registry go with the last.

        Returns what was removed. The queue rows of ``store`` are deleted too.
        """
        if not self.exists():
            return []
        removed: list[InstalledSource] = []
        try:
            with self.engine.begin() as connection:
                for item in self._installed(connection):
                    if store is None or item.store == store:
                        self._drop_installed(connection, item)
                        removed.append(item)
                if store is not None:
                    connection.execute(self.queue.delete().where(self.queue.c.store == store))
                left = connection.execute(sa.select(sa.func.count()).select_from(self.registry)).scalar_one()
                if not left:
                    self._metadata.drop_all(connection, checkfirst=True)
        except SQLAlchemyError as exc:
            raise self._error(exc, "removing the incremental triggers") from None
        return removed

    def _drop_installed(self, connection: sa.Connection, item: InstalledSource) -> None:
        quote = self._quote
        table = quote(item.table)
        schema = item.schema
        if schema and self.dialect != "sqlite":
            table = f"{quote(schema)}.{table}"
        for statement in drop_statements(self.dialect, schema, table, item.triggers, item.function, quote):
            connection.exec_driver_sql(statement)
        connection.execute(
            self.registry.delete().where(
                self.registry.c.store == item.store, self.registry.c.source == item.source
            )
        )

    # -- what is installed ----------------------------------------------------------------

    def installed(self) -> list[InstalledSource]:
        """Every install the registry holds, with whether its triggers exist now."""
        if not self.exists():
            return []
        try:
            with self.engine.connect() as connection:
                return self._installed(connection)
        except SQLAlchemyError as exc:
            raise self._error(exc, "reading the incremental triggers") from None

    def _registered(self, connection: sa.Connection, store: str, source: str) -> list[InstalledSource]:
        return [i for i in self._installed(connection) if i.store == store and i.source == source]

    def _installed(self, connection: sa.Connection) -> list[InstalledSource]:
        present = self._trigger_names(connection)
        out = []
        for row in connection.execute(
            sa.select(self.registry).order_by(self.registry.c.store, self.registry.c.source)
        ).mappings():
            triggers = tuple(t for t in str(row["triggers"]).split(",") if t)
            out.append(
                InstalledSource(
                    store=row["store"],
                    source=row["source"],
                    table=row["table_name"],
                    schema=row["table_schema"],
                    fingerprint=row["fingerprint"],
                    triggers=triggers,
                    function=row["function"],
                    installed_at=row["installed_at"],
                    present=all(t in present for t in triggers),
                )
            )
        return out

    def _trigger_names(self, connection: sa.Connection) -> set[str]:
        """The names of every trigger of this database (any schema)."""
        if self.dialect == "postgresql":
            sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        elif self.dialect == "mysql":
            sql = "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return {str(name) for (name,) in connection.execute(sa.text(sql))}

    # -- the queue ------------------------------------------------------------------------

    def read(self, store: str, *, after: int, limit: int) -> list[QueuedKey]:
        """Up to ``limit`` queued keys of ``store`` with an id above ``after``, by id."""
        q = self.queue
        query = (
            sa.select(q.c.id, q.c.object_key, q.c.queued_at)
            .where(q.c.store == store, q.c.id > after)
            .order_by(q.c.id)
            .limit(limit)
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as exc:
            raise self._error(exc, "reading the incremental queue") from None
        return [QueuedKey(int(i), str(k), _aware(t)) for i, k, t in rows]

    def delete(self, ids: Sequence[int]) -> int:
        """Delete the queue rows ``ids`` (by id: a row queued meanwhile for the same key stays)."""
        deleted = 0
        try:
            with self.engine.begin() as connection:
                for start in range(0, len(ids), 5000):
                    batch = list(ids[start : start + 5000])
                    deleted += connection.execute(
                        self.queue.delete().where(self.queue.c.id.in_(batch))
                    ).rowcount
        except SQLAlchemyError as exc:
            raise self._error(exc, "deleting processed queue rows") from None
        return deleted

    def depth(self, store: str) -> tuple[int, datetime | None]:
        """How many keys of ``store`` are queued, and when the oldest was."""
        q = self.queue
        query = sa.select(sa.func.count(), sa.func.min(q.c.queued_at)).where(q.c.store == store)
        try:
            with self.engine.connect() as connection:
                count, oldest = connection.execute(query).one()
        except SQLAlchemyError as exc:
            raise self._error(exc, "reading the incremental queue") from None
        return int(count), None if oldest is None else _aware(oldest)


def installed_sources(queue: Queue, store: str) -> dict[str, InstalledSource]:
    """The installs of ``store`` in ``queue``'s database, by source name."""
    return {item.source: item for item in queue.installed() if item.store == store}


def _aware(moment: Any) -> datetime:
    if isinstance(moment, str):  # SQLite's CURRENT_TIMESTAMP: 'YYYY-MM-DD HH:MM:SS' in UTC
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
