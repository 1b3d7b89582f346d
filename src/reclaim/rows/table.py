"""A row collection's table: reflected, validated, and its candidate predicate.

:func:`describe` reflects the collection's table and every foreign key that
points at it, adds the declared references, and refuses what would be unsafe:

- a table without a primary key (an archived row could not be named or restored);
- an unknown ``age_column``, declared table or column, or ``to`` column;
- a ``where`` or declared ``query`` the database rejects;
- an inbound foreign key with ``ON DELETE CASCADE`` (or ``SET NULL`` /
  ``SET DEFAULT``) that is not declared: deleting a row would change the
  referencing rows behind the collector's back. Declaring it says the operator
  knows; the predicate then proves no referencing row exists when the row is
  deleted, so the action never fires.

Each error is a :class:`~reclaim.errors.ConfigError` naming the field.

The candidate predicate (:meth:`CollectionTable.predicate`) is one SQL
condition: older than ``min_age`` on the age column, the optional ``where``,
and ``NOT EXISTS`` a referencing row for every reference. It is evaluated in
the statement that deletes (see :mod:`reclaim.lifecycle.rows`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reclaim.config.model import CollectionConfig, Config, ReferenceConfig
from reclaim.errors import CollectionError, ConfigError

__all__ = [
    "CollectionTable",
    "Extractor",
    "InboundRef",
    "OwnedSource",
    "describe",
    "encode_ref",
    "reference_selector",
]

_UNSAFE_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT")


def encode_ref(values: Sequence[Any]) -> str:
    """How ``row_refs`` spells a referenced value: the text of one column, a JSON list of several."""
    if len(values) == 1:
        return str(values[0])
    return json.dumps([str(v) for v in values])


def reference_selector(ref: ReferenceConfig) -> str:
    """The ``row_refs`` selector for what a store's table reference reads from a row."""
    label = str(ref.column)
    if ref.json_path:
        label += f"->{ref.json_path}"
    for name, expected in sorted(ref.json_filter.items()):
        label += f"[{name}={expected}]"
    return label


@dataclass(frozen=True)
class InboundRef:
    """Rows that reference the collection's rows: a foreign key, or a declared column or query."""

    label: str
    table: str | None = None
    schema: str | None = None
    columns: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    """The collection table's columns that ``columns`` hold."""
    query: str | None = None
    query_column: str = ""
    """The name of the single column a declared query returns."""
    ondelete: str | None = None
    declared: bool = False
    index: int | None = None
    """The position of a declared reference in the collection's ``references``."""

    @property
    def qualified(self) -> str:
        """The referencing table as the archive names it."""
        return f"{self.schema}.{self.table}" if self.schema else str(self.table)

    @property
    def selector(self) -> str:
        """The ``row_refs`` selector under which archived referencing rows keep their values."""
        return ",".join(self.columns)


@dataclass(frozen=True)
class Extractor:
    """One value an archived row references, kept in ``row_refs`` under ``selector``."""

    selector: str
    columns: tuple[str, ...]
    json_path: str | None = None
    json_filter: Mapping[str, str] = field(default_factory=dict)

    def value(self, row: Mapping[str, Any]) -> str | None:
        """The referenced value in ``row``, or ``None`` when it has none."""
        values = [row.get(c) for c in self.columns]
        if any(v is None for v in values):
            return None
        if self.json_path is None:
            return encode_ref(values)
        document = values[0]
        if isinstance(document, (str, bytes)):
            try:
                document = json.loads(document)
            except ValueError:
                return None
        for name, expected in self.json_filter.items():
            found = _json_get(document, name)
            if found is None or _json_text(found) != expected:
                return None
        found = _json_get(document, self.json_path)
        return None if found is None else _json_text(found)


def _json_get(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


def _json_text(value: Any) -> str:
    # what PostgreSQL's #>> and MariaDB's JSON_UNQUOTE give for a scalar
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


@dataclass(frozen=True)
class OwnedSource:
    """A store reference source that reads a ``follow`` collection's table: the objects its rows own.

    The value an archived row keeps under ``selector`` names the key
    ``add_prefix + value[len(strip_prefix):]`` (a value without ``strip_prefix``
    belongs to another store) and each of its sidecars.
    """

    store: str
    selector: str
    strip_prefix: str = ""
    add_prefix: str = ""
    sidecars: tuple[str, ...] = ()

    def keys(self, value: str) -> list[str]:
        """The keys ``value`` references in :attr:`store` (none when it belongs to another store)."""
        if not value.startswith(self.strip_prefix):
            return []
        key = self.add_prefix + value[len(self.strip_prefix) :]
        return [key, *(key + suffix for suffix in self.sidecars)]


@dataclass
class CollectionTable:
    """A collection bound to its reflected table."""

    name: str
    config: CollectionConfig
    engine: sa.Engine
    table: sa.Table
    pk: tuple[str, ...]
    inbound: list[InboundRef]
    extractors: list[Extractor]
    outbound: list[tuple[str, str, tuple[str, ...]]]
    """This table's foreign keys: ``(selector, referred table, referred columns)``."""
    owned: list[OwnedSource] = field(default_factory=list)
    """With ``objects = "follow"``: the store reference sources whose objects its rows own."""

    @property
    def follows(self) -> bool:
        """Whether archived rows take their objects with them (``objects = "follow"``)."""
        return self.config.objects == "follow" and bool(self.owned)

    @property
    def referenced_tables(self) -> list[str]:
        """Tables this one's foreign keys point at (for dependency order)."""
        return [table for _selector, table, _columns in self.outbound]

    @property
    def qualified(self) -> str:
        """``schema.table`` or ``table``."""
        return self.config.qualified_table

    def cutoff(self, now: datetime) -> datetime:
        """The age column's bound: rows changed before it are old enough."""
        cutoff = now - self.config.min_age
        if getattr(self.table.c[self.config.age_column].type, "timezone", False):
            return cutoff
        return cutoff.astimezone(UTC).replace(tzinfo=None)

    def predicate(self, now: datetime) -> sa.ColumnElement[bool]:
        """Old enough, the extra filter, and referenced by no row (see the module docstring)."""
        combined: sa.ColumnElement[bool] = sa.and_(self.old_enough(now), self.unreferenced())
        return combined

    def old_enough(self, now: datetime) -> sa.ColumnElement[bool]:
        """The age condition alone: the age column is older than ``now - min_age``."""
        condition: sa.ColumnElement[bool] = self.table.c[self.config.age_column] < self.cutoff(now)
        return condition

    def unreferenced(self) -> sa.ColumnElement[bool]:
        """The predicate without its age condition: ``where`` holds and no row references the row.

        What ``age = "unreferenced"`` records as seen unreferenced.
        """
        conditions: list[sa.ColumnElement[bool]] = []
        if self.config.where:
            conditions.append(sa.text(f"({self.config.where})"))  # type: ignore[arg-type]
        if not self.config.ignores_references:  # a report rule may count referenced rows too
            for index, ref in enumerate(self.inbound):
                conditions.append(~self._referenced(ref, index))
        combined: sa.ColumnElement[bool] = sa.and_(sa.true(), *conditions)
        return combined

    def _referenced(self, ref: InboundRef, index: int) -> sa.Exists:
        t = self.table
        if ref.query is not None:
            column: sa.ColumnClause[Any] = sa.column(ref.query_column)
            sub = sa.text(ref.query.strip().rstrip(";")).columns(column).subquery(f"rq{index}")
            referenced = sub.c[ref.query_column]
            return sa.exists().where(
                sa.cast(referenced, sa.String) == sa.cast(t.c[ref.targets[0]], sa.String)
            )
        other = sa.table(str(ref.table), *(sa.column(c) for c in ref.columns), schema=ref.schema).alias(
            f"r{index}"
        )
        return sa.exists().where(
            sa.and_(*(other.c[c] == t.c[target] for c, target in zip(ref.columns, ref.targets, strict=True)))
        )

    def pk_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The primary key values of ``row``."""
        return tuple(row[c] for c in self.pk)

    def pk_columns(self) -> list[sa.Column[Any]]:
        """The primary key columns of the reflected table."""
        return [self.table.c[c] for c in self.pk]

    def pk_match(self, keys: Sequence[tuple[Any, ...]]) -> sa.ColumnElement[bool]:
        """``pk IN keys`` (a tuple comparison for composite keys)."""
        if len(self.pk) == 1:
            return self.table.c[self.pk[0]].in_([k[0] for k in keys])
        return sa.tuple_(*self.pk_columns()).in_(keys)

    def after(self, key: tuple[Any, ...]) -> sa.ColumnElement[bool]:
        """Rows whose primary key sorts after ``key`` (keyset pagination)."""
        if len(self.pk) == 1:
            single: sa.ColumnElement[bool] = self.table.c[self.pk[0]] > key[0]
            return single
        return sa.tuple_(*self.pk_columns()) > sa.tuple_(*(sa.literal(v) for v in key))

    def objects(self, refs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The ``(store, key)`` pairs an archived row with ``refs`` owns (``follow``), each once."""
        found: dict[tuple[str, str], None] = {}
        for owned in self.owned:
            for selector, value in refs:
                if selector == owned.selector:
                    found.update(dict.fromkeys((owned.store, key) for key in owned.keys(value)))
        return list(found)

    def refs(self, row: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The ``(selector, value)`` pairs an archived copy of ``row`` keeps referenced."""
        found = []
        for extractor in self.extractors:
            value = extractor.value(row)
            if value is not None:
                found.append((extractor.selector, value))
        return found


def describe(name: str, config: Config, engine: sa.Engine) -> CollectionTable:
    """Reflect collection ``name`` and validate it against its database (see the module docstring)."""
    cfg = config.collections[name]
    where = f"collections.{name}"
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(cfg.table, schema=cfg.table_schema):
            raise ConfigError(
                f"table {cfg.qualified_table!r} does not exist in database {cfg.database!r}",
                field=f"{where}.table",
            )
        table = sa.Table(cfg.table, sa.MetaData(), schema=cfg.table_schema, autoload_with=engine)
        pk = tuple(c.name for c in table.primary_key.columns)
        if not pk:
            raise ConfigError(
                f"table {cfg.qualified_table!r} has no primary key; "
                "archived rows could not be named or restored",
                field=f"{where}.table",
            )
        _require_column(table, cfg.age_column, f"{where}.age_column")
        if cfg.size_column is not None:
            _require_column(table, cfg.size_column, f"{where}.size_column")
        inbound = _reflected(inspector, cfg, where) + _declared(inspector, cfg, table, pk, where)
        _refuse_undeclared_actions(inbound, where)
        outbound = inspector.get_foreign_keys(cfg.table, schema=cfg.table_schema)
    except ConfigError:
        raise
    except SQLAlchemyError as exc:
        raise CollectionError(name, _cause(exc)) from None
    described = CollectionTable(
        name=name,
        config=cfg,
        engine=engine,
        table=table,
        pk=pk,
        inbound=[r for r in inbound if not _shadowed(r, inbound)],
        extractors=_extractors(config, cfg, outbound),
        outbound=[
            (
                ",".join(fk["constrained_columns"]),
                _qualified(fk["referred_schema"], fk["referred_table"]),
                tuple(fk["referred_columns"]),
            )
            for fk in outbound
        ],
        owned=_owned(config, cfg, where),
    )
    _probe(described, where)
    return described


def _qualified(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


def _require_column(table: sa.Table, column: str | None, field_name: str) -> None:
    if column is None or column not in table.c:
        names = ", ".join(c.name for c in table.columns)
        raise ConfigError(
            f"column {column!r} does not exist in table {table.name!r} (columns: {names})", field=field_name
        )


def _reflected(inspector: sa.Inspector, cfg: CollectionConfig, where: str) -> list[InboundRef]:
    found = []
    default_schema = inspector.default_schema_name
    target_schema = cfg.table_schema or default_schema
    for (schema, table_name), keys in inspector.get_multi_foreign_keys(schema=cfg.table_schema).items():
        for fk in keys:
            if fk["referred_table"] != cfg.table or (fk["referred_schema"] or target_schema) != target_schema:
                continue
            ondelete = (fk.get("options") or {}).get("ondelete")
            found.append(
                InboundRef(
                    label=f"{_qualified(schema, table_name)}.{','.join(fk['constrained_columns'])} "
                    "(foreign key)",
                    table=table_name,
                    schema=schema if schema != default_schema else cfg.table_schema,
                    columns=tuple(fk["constrained_columns"]),
                    targets=tuple(fk["referred_columns"]),
                    ondelete=ondelete.upper() if ondelete else None,
                )
            )
    return found


def _declared(
    inspector: sa.Inspector, cfg: CollectionConfig, table: sa.Table, pk: tuple[str, ...], where: str
) -> list[InboundRef]:
    found = []
    for index, ref in enumerate(cfg.declared):
        field_name = f"{where}.references[{index}]"
        target = ref.to
        if target is None:
            if len(pk) != 1:
                raise ConfigError(
                    "the table's primary key has several columns; name the referenced one with 'to'",
                    field=f"{field_name}.to",
                )
            target = pk[0]
        _require_column(table, target, f"{field_name}.to")
        if ref.query is not None:
            found.append(
                InboundRef(
                    label=f"query #{index}",
                    targets=(target,),
                    query=ref.query,
                    query_column=_query_column(inspector.bind, ref.query, f"{field_name}.query"),
                    declared=True,
                    index=index,
                )
            )
            continue
        if not inspector.has_table(str(ref.table), schema=ref.table_schema):
            raise ConfigError(
                f"table {ref.label().rsplit('.', 1)[0]!r} does not exist", field=f"{field_name}.table"
            )
        columns = {c["name"] for c in inspector.get_columns(str(ref.table), schema=ref.table_schema)}
        if ref.column not in columns:
            raise ConfigError(
                f"column {ref.column!r} does not exist in table {ref.table!r} "
                f"(columns: {', '.join(sorted(columns))})",
                field=f"{field_name}.column",
            )
        found.append(
            InboundRef(
                label=f"{ref.label()} (declared)",
                table=ref.table,
                schema=ref.table_schema,
                columns=(str(ref.column),),
                targets=(target,),
                declared=True,
                index=index,
            )
        )
    return found


def _query_column(bind: Any, query: str, field_name: str) -> str:
    probe = sa.text(f"SELECT * FROM ({query.strip().rstrip(';')}) q LIMIT 0")
    try:
        with bind.connect() as conn:
            names = list(conn.execute(probe).keys())
    except SQLAlchemyError as exc:
        if connection_lost(exc):
            raise  # the database went away: not the query's fault (describe makes it a CollectionError)
        raise ConfigError(f"the query fails: {_cause(exc)}", field=field_name) from None
    if len(names) != 1:
        raise ConfigError(
            f"the query must return exactly one column, it returns {len(names)}", field=field_name
        )
    return str(names[0])


def _same(a: InboundRef, b: InboundRef) -> bool:
    return a.table == b.table and a.columns == b.columns and (a.schema or "") == (b.schema or "")


def _shadowed(ref: InboundRef, refs: Sequence[InboundRef]) -> bool:
    """A reflected foreign key that is also declared is tested once."""
    return not ref.declared and any(other.declared and _same(ref, other) for other in refs)


def _refuse_undeclared_actions(refs: Sequence[InboundRef], where: str) -> None:
    for ref in refs:
        if ref.declared or ref.ondelete not in _UNSAFE_ACTIONS:
            continue
        if any(other.declared and _same(ref, other) for other in refs):
            continue
        raise ConfigError(
            f"{ref.label} is ON DELETE {ref.ondelete}: deleting a row would change rows that reference it. "
            f"Declare it under {where}.references (table = {ref.table!r}, column = {ref.columns[0]!r}) "
            "to confirm it counts as a reference",
            field=f"{where}.references",
        )


def _extractors(config: Config, cfg: CollectionConfig, outbound: Sequence[Any]) -> list[Extractor]:
    """What an archived row of this table must keep referenced: its foreign keys and what sources read."""
    found: dict[str, Extractor] = {}
    for fk in outbound:
        columns = tuple(fk["constrained_columns"])
        found[",".join(columns)] = Extractor(",".join(columns), columns)
    for other in config.collections.values():
        if other.database != cfg.database:
            continue
        for declared in other.declared:
            if declared.table == cfg.table and declared.table_schema == cfg.table_schema and declared.column:
                found[declared.column] = Extractor(declared.column, (declared.column,))
    for store in config.stores.values():
        for ref in store.references:
            if (
                ref.database == cfg.database
                and ref.table == cfg.table
                and ref.table_schema == cfg.table_schema
            ):
                selector = reference_selector(ref)
                found[selector] = Extractor(
                    selector, (str(ref.column),), ref.json_path, dict(ref.json_filter)
                )
    return list(found.values())


def _owned(config: Config, cfg: CollectionConfig, where: str) -> list[OwnedSource]:
    """The store reference sources a ``follow`` collection owns the objects of; refused when unsafe.

    Only exact table sources name their objects by value: a prefix source (a
    directory object), a decoder or a query cannot say which keys one row owns,
    so a ``follow`` collection read by one is a :class:`ConfigError`, as is one
    that no store reference source reads at all.
    """
    if cfg.objects != "follow":
        return []
    owned: list[OwnedSource] = []
    for store_name, store in config.stores.items():
        for index, ref in enumerate(store.references):
            if (ref.database, ref.table, ref.table_schema) != (cfg.database, cfg.table, cfg.table_schema):
                continue
            if ref.kind != "exact" or ref.decoder is not None:
                what = "a prefix source" if ref.kind != "exact" else "a decoder source"
                raise ConfigError(
                    f"objects = 'follow' needs exact table sources; stores.{store_name}.references[{index}] "
                    f"is {what}, which cannot say which keys one row owns (use objects = 'keep')",
                    field=f"{where}.objects",
                )
            owned.append(
                OwnedSource(
                    store_name,
                    reference_selector(ref),
                    ref.strip_prefix or "",
                    ref.add_prefix or "",
                    tuple(ref.sidecars),
                )
            )
    if not owned:
        raise ConfigError(
            f"objects = 'follow': no store reference source reads table {cfg.qualified_table!r} "
            f"of database {cfg.database!r}, so its rows own no objects",
            field=f"{where}.objects",
        )
    return owned


def _probe(described: CollectionTable, where: str) -> None:
    """Run the predicate's parts once (LIMIT 0) so that a bad ``where`` or query is a config error."""
    now = datetime.now(UTC)
    probes: list[tuple[str, sa.ColumnElement[bool]]] = []
    if described.config.where:
        probes.append((f"{where}.where", sa.text(f"({described.config.where})")))  # type: ignore[arg-type]
    for index, ref in enumerate(described.inbound):
        if ref.query is not None:
            probes.append((f"{where}.references[{ref.index}].query", ~described._referenced(ref, index)))
    probes.append((f"{where}.references", described.predicate(now)))
    try:
        with described.engine.connect() as conn:
            for field_name, condition in probes:
                try:
                    conn.execute(sa.select(*described.pk_columns()).where(condition).limit(0)).all()
                except SQLAlchemyError as exc:
                    if connection_lost(exc):
                        raise  # the database went away: a CollectionError (exit 3), not a config error
                    raise ConfigError(f"the candidate query fails: {_cause(exc)}", field=field_name) from None
                finally:
                    if conn.in_transaction():
                        conn.rollback()
    except SQLAlchemyError as exc:
        raise CollectionError(described.name, _cause(exc)) from None


#: PostgreSQL: connection exceptions (class 08), admin shutdown, crash shutdown, cannot connect now
_PG_LOST: Final = ("08", "57P01", "57P02", "57P03")
#: MariaDB/MySQL client errors: cannot connect, server gone away, lost connection; connection killed
_MYSQL_LOST: Final = frozenset({2002, 2003, 2006, 2013, 2055, 1927, 4031})


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the database connection failed or was terminated (not that SQL was wrong).

    Lets a terminated connection during the collection checks be a
    :class:`~reclaim.errors.CollectionError` (exit 3, like an unreachable
    reference source) instead of a configuration error (exit 2).
    """
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa.exc.DisconnectionError, sa.exc.InterfaceError)):
        return True
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_PG_LOST):
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_LOST


def _cause(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None) or exc
    return " ".join(f"{type(orig).__name__}: {orig}".split())[:800]
