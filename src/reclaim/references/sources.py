"""Reference sources: streams of the keys a store must keep, in byte order.

A source reads one column (or one field of a JSON column) of one table, or the
single column of any SQL query, on one configured database. The database
orders the stream with a binary collation (``COLLATE "C"`` on PostgreSQL,
``CAST(... AS BINARY)`` on MySQL/MariaDB, ``COLLATE BINARY`` on SQLite) over a
server-side cursor, so that memory stays flat. On MySQL/MariaDB a column whose
own collation already compares by code point (a ``_bin`` collation of UTF-8 or
ASCII, or a binary type) is ordered by itself, so that an index on it serves
the order without a sort. Every stream is checked on the
fly: a key smaller than the one before aborts with :class:`UnorderedSource`
(fail closed), and a source that yields nothing while its table has rows
aborts with :class:`SourceError` (a misspelt column or filter must never turn
a whole store into candidates).
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reclaim.config.model import ReferenceConfig
from reclaim.errors import SourceError, UnorderedSource
from reclaim.references.aggregated import PageMismatch, aggregated_pages
from reclaim.references.databases import dialect_of
from reclaim.references.extsort import sort_externally
from reclaim.references.span import KeySpan, ValueBounds

__all__ = ["Reference", "ReferenceSource", "SourceCounters"]

_YIELD_PER = 5_000
#: values per re-check query: one query per source for a whole batch of keys
#: (PostgreSQL takes them as one array parameter; the others as an expanded ``IN`` list,
#: well below SQLite's 32,766 parameters)
_LOOKUP_BATCH = 10_000
_FETCH = 2_000
"""Rows per fetch of a reference stream read in pages: a round trip each, a few hundred KB of
keys (the fetch buffer is most of what a scan holds beyond its imports)."""


#: MySQL/MariaDB column types that compare as bytes: byte order already
_MYSQL_BINARY_TYPES: Final = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
#: character sets whose ``_bin`` collations compare by code point, which is the byte order of
#: their UTF-8 (not latin1: MySQL's latin1 is cp1252, whose 0x80-0x9F are not in code point order)
_MYSQL_CODE_POINT_CHARSETS: Final = frozenset({"utf8mb4", "utf8mb3", "utf8", "ascii"})


def _fold(value: str) -> str:
    """The spelling MySQL's default collations compare by (case and trailing spaces ignored)."""
    return value.casefold().rstrip(" ")


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference as ``reclaim check`` reports it: the key, the stored value, the row's primary key."""

    key: str
    value: str
    row: dict[str, Any] | None = None


@dataclass(slots=True)
class SourceCounters:
    """What one pass over a source saw."""

    rows: int = 0
    """Rows read (non-null values)."""
    foreign: int = 0
    """Values skipped because they lack ``strip_prefix`` (they belong to another store)."""


@dataclass
class ReferenceSource:
    """A configured reference source bound to its database engine."""

    name: str
    config: ReferenceConfig
    engine: sa.Engine
    database: str = ""
    tempdir: str | None = None
    counters: SourceCounters = field(default_factory=SourceCounters)
    _pk_columns: tuple[str, ...] = field(default=(), init=False, repr=False)
    _filtered_in_sql: bool = field(default=False, init=False, repr=False)
    """Whether the last stream's span was selected by the database (else filtered in Python)."""
    _seen: int = field(default=0, init=False, repr=False)
    _ordered_by_collation: str | None = field(default=None, init=False, repr=False)
    """The column's own collation when the last ordered stream was ordered by the column itself."""

    @property
    def is_prefix(self) -> bool:
        """Whether each reference covers every key under it (a directory object)."""
        return self.config.kind == "prefix"

    @property
    def sidecars(self) -> tuple[str, ...]:
        """Suffixes whose keys each reference covers as well."""
        return tuple(self.config.sidecars)

    # -- streams -------------------------------------------------------------

    def keys(self) -> Iterator[str]:
        """Yield every referenced key in byte order (duplicates possible).

        Raises :class:`SourceError` on any database error, :class:`UnorderedSource`
        when the stream goes backwards, and :class:`SourceError` when the source
        is empty while its table is not (unless ``allow_empty``).
        """
        for page in self.key_pages():
            yield from page

    def key_pages(self, span: KeySpan | None = None) -> Iterator[list[str]]:
        """:meth:`keys` a page at a time: non-empty lists, in byte order within and across pages.

        One page per fetch from the server-side cursor (``_YIELD_PER`` rows), the
        key mapping and the order check done on the whole page with list and
        ``map`` operations. Raises as :meth:`keys`; the ordering and emptiness
        checks run exactly as there (the emptiness check once the stream ends).

        With ``span`` (one key range of a distributed scan) only the references
        that cover some key of the span are yielded (:meth:`KeySpan.keep`): the
        database is asked for a superset, in its binary collation, and each page
        is cut exactly here after its order check. ``counters.rows`` then counts
        the references whose key lies in the span (so that the spans of a store
        add up to its references) and ``foreign`` is not counted; the emptiness
        check still asks whether the source has any value at all, not just in
        the span.
        """
        self.counters = counters = SourceCounters()
        ranged = span is not None and not span.whole
        spanning = self.is_prefix or bool(self.config.sidecars)
        read = SourceCounters() if ranged else counters
        self._seen = 0
        pages = self._value_pages(span if ranged else None)
        previous: str | None = None
        try:
            for values in pages:
                keys = self._page_keys(values, read)
                if not keys:
                    continue
                if (previous is not None and keys[0] < previous) or not all(
                    map(operator.le, keys, islice(keys, 1, None))
                ):
                    self._unordered(previous, keys)
                previous = keys[-1]
                if ranged:
                    assert span is not None
                    counters.rows += span.count(keys)
                    keys = span.keep(keys, spanning=spanning)
                    if not keys:
                        continue
                yield keys
        finally:
            pages.close()  # release the cursor now, also when the consumer stops early or we abort
        if ranged:
            # the emptiness check is the whole source's: values read before the span cut them,
            # or (when the database cut them) whether it holds any value at all
            seen = read.rows if self._filtered_in_sql else self._seen
            if (
                seen == 0
                and not self.config.allow_empty
                and not (self._filtered_in_sql and self._has_values())
            ):
                self._refuse_empty()
            return
        if counters.rows == 0 and not self.config.allow_empty:
            self._refuse_empty()

    def references(self) -> Iterator[Reference]:
        """Like :meth:`keys`, with the stored value and the row's primary key (for reports)."""
        for key, value, row in self._stream(with_rows=True):
            yield Reference(key, value, row)

    def lookup(self, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` this source covers *now*: one set-based query per batch of keys.

        Used by the purge re-check and by quarantine just before acting, so it
        reads the database afresh. Comparison uses the column's own collation;
        a case- or pad-insensitive collation can only report more keys as
        referenced, which keeps objects longer and never loses one. Raises
        :class:`SourceError` on any database error.
        """
        if self.config.decoder is not None:
            return self._decoded_lookup(keys)
        # keyed by a folded spelling: a case- or pad-insensitive collation returns its
        # own spelling of a match, and counting every near-match as referenced only
        # keeps objects longer
        wanted: dict[str, list[str]] = {}
        values: dict[str, None] = {}
        for key in keys:
            for value in candidate_values(self.config, key):
                values[value] = None
                wanted.setdefault(_fold(value), []).append(key)
        found: set[str] = set()
        ordered = list(values)
        for start in range(0, len(ordered), _LOOKUP_BATCH):
            batch = ordered[start : start + _LOOKUP_BATCH]
            for row in self._execute(self._lookup_sql(), {"lookup": batch}, stream=False):
                value = row[0] if isinstance(row[0], str) else str(row[0])
                found.update(wanted.get(_fold(value), ()))
        return found

    def _decoded_lookup(self, keys: Collection[str]) -> set[str]:
        """:meth:`lookup` for a decoder source: one pass over the column, in Python."""
        wanted: dict[str, list[str]] = {}
        for key in keys:
            for value in candidate_values(self.config, key):
                wanted.setdefault(value, []).append(key)
        found: set[str] = set()
        for value in self._decoded(self._raw_values()):
            found.update(wanted.get(value, ()))
        return found

    def _raw_values(self) -> Iterator[str]:
        for row in self._execute(self._select(with_rows=False, ordered=False)):
            if row[0] is not None:
                yield row[0] if isinstance(row[0], str) else str(row[0])

    def _decoded(self, raw: Iterable[str]) -> Iterator[str]:
        """The keys ``decoder`` computes from each raw value; any error in it fails the source."""
        function = self._decoder_function()
        options = self.config.decoder_options
        for value in raw:
            try:
                keys = list(function(value, **options))
            except Exception as exc:  # fail closed: a value that cannot be read may hold a key
                raise SourceError(
                    self.name, f"decoder {self.config.decoder} failed: {type(exc).__name__}: {exc}"[:800]
                ) from None
            for key in keys:
                if not isinstance(key, str):
                    raise SourceError(self.name, f"decoder {self.config.decoder} returned {key!r}, not a key")
                yield key

    def _decoder_function(self) -> Callable[..., Iterable[str]]:
        spec = self.config.decoder
        assert spec is not None
        module_name, _, name = spec.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise SourceError(self.name, f"decoder {spec} cannot be imported: {exc}") from None
        if not callable(function):
            raise SourceError(self.name, f"decoder {spec} is not callable")
        return function  # type: ignore[no-any-return]

    def _lookup_sql(self) -> sa.TextClause:
        """One query for a whole list of values (``:lookup``): which of them the source holds now."""
        cfg = self.config
        if cfg.query is not None:
            column = self._quote(self._query_column())
            expr = self._as_text(f"q.{column}")
            query = cfg.query.strip().rstrip(";")
            sql = f"SELECT DISTINCT {expr} FROM ({query}) q WHERE {self._among(expr)}"
        else:
            expr, conditions = self._expression_and_conditions()
            conditions.append(self._among(expr))
            sql = f"SELECT DISTINCT {expr} FROM {self._table_ref()} WHERE {' AND '.join(conditions)}"
        if dialect_of(self.engine) == "postgresql":
            return sa.text(sql)
        return sa.text(sql).bindparams(sa.bindparam("lookup", expanding=True))

    def _among(self, expr: str) -> str:
        """``expr`` is one of the values of ``:lookup``: one array parameter on PostgreSQL, else ``IN``."""
        if dialect_of(self.engine) == "postgresql":
            return f"{expr} = ANY(CAST(:lookup AS TEXT[]))"
        return f"{expr} IN :lookup"

    def validate(self) -> None:
        """Check that the table and column exist (table sources); raises :class:`SourceError`."""
        cfg = self.config
        if cfg.table is None:
            self._query_column()
            return
        try:
            inspector = sa.inspect(self.engine)
            if not inspector.has_table(cfg.table, schema=cfg.table_schema):
                raise SourceError(
                    self.name, f"table {cfg.table!r} does not exist in database {self.database!r}"
                )
            columns = {c["name"] for c in inspector.get_columns(cfg.table, schema=cfg.table_schema)}
        except SQLAlchemyError as exc:
            raise self._error(exc) from None
        if cfg.column not in columns:
            raise SourceError(
                self.name,
                f"column {cfg.column!r} does not exist in table {cfg.table!r} "
                f"(columns: {', '.join(sorted(columns))})",
            )

    # -- internals -----------------------------------------------------------

    def _stream(self, *, with_rows: bool) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
        self.counters = counters = SourceCounters()
        rows = self._ordered_rows(with_rows)
        try:
            yield from self._mapped(rows, with_rows, counters)
        finally:
            rows.close()  # release the cursor now, also when the consumer stops early or we abort
        if counters.rows == 0 and not self.config.allow_empty:
            self._refuse_empty()

    def _mapped(
        self, rows: Iterator[Sequence[Any]], with_rows: bool, counters: SourceCounters
    ) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
        strip = self.config.strip_prefix or ""
        add = self.config.add_prefix or ""
        previous: str | None = None
        for row in rows:
            raw = row[0]
            if raw is None:
                continue
            value = raw if isinstance(raw, str) else str(raw)
            counters.rows += 1
            if strip:
                if not value.startswith(strip):
                    counters.foreign += 1
                    continue
                key = add + value[len(strip) :]
            else:
                key = add + value
            if previous is not None and key < previous:
                raise UnorderedSource(
                    self.name,
                    f"the stream is not in byte order: {key!r} came after {previous!r}; "
                    + self._order_hint(),
                )
            previous = key
            pk = dict(zip(self._pk_columns, row[1:], strict=True)) if with_rows and self._pk_columns else None
            yield key, value, pk

    def _page_keys(self, values: list[Any], counters: SourceCounters) -> list[str]:
        """The keys of one page of raw column values (``None`` left out, prefixes mapped)."""
        if None in values:
            values = [v for v in values if v is not None]
        if set(map(type, values)) - {str}:
            values = [v if isinstance(v, str) else str(v) for v in values]
        counters.rows += len(values)
        strip = self.config.strip_prefix or ""
        add = self.config.add_prefix or ""
        if strip:
            kept = list(filter(operator.methodcaller("startswith", strip), values))
            counters.foreign += len(values) - len(kept)
            cut = len(strip)
            return [add + v[cut:] for v in kept]
        if add:
            return [add + v for v in values]
        return values

    def _unordered(self, previous: str | None, keys: list[str]) -> None:
        """Raise :class:`UnorderedSource` for the first key of ``keys`` smaller than the one before."""
        for key in keys:
            if previous is not None and key < previous:
                hint = self._order_hint()
                raise UnorderedSource(
                    self.name, f"the stream is not in byte order: {key!r} came after {previous!r}; {hint}"
                )
            previous = key
        raise AssertionError("unreachable: the page was out of order")  # pragma: no cover

    def _value_pages(self, span: KeySpan | None = None) -> Generator[list[Any], None, None]:
        """The first column of the ordered stream, a fetch at a time (a decoder's keys, sorted).

        With ``span``, a superset of the values the span needs
        (:meth:`KeySpan.value_bounds`): selected in SQL where the database
        orders or can filter the stream (``_filtered_in_sql``), else filtered
        here as the values come (a decoder's keys before they are sorted; a
        query that orders itself), every value counted first by the caller's
        emptiness check only in the SQL case.
        """
        bounds = self._span_bounds(span)
        in_sql = bounds is not None and self.config.decoder is None and self.config.order != "query"
        self._filtered_in_sql = in_sql
        admitted = bounds.test() if bounds is not None and not in_sql else None
        if self.config.decoder is not None:
            # the decoder's keys come in no order the database knows: sorted out of core
            decoded: Iterable[str] = self._decoded(self._raw_values())
            if admitted is not None:
                # every decoded key is counted before the span cuts it (the emptiness check)
                decoded = filter(admitted, self._counted(decoded))
            ordered_keys = cast("Generator[str, None, None]", sort_externally(decoded, tempdir=self.tempdir))
            try:
                while page := list(islice(ordered_keys, _YIELD_PER)):
                    yield page
            finally:
                ordered_keys.close()
            return
        where, params = self._span_sql(bounds) if bounds is not None and in_sql else ("", {})
        if self.config.order != "sort":
            pages = self._aggregated_pages(where, params)
            if pages is None:
                pages = self._execute_pages(self._select(with_rows=False, ordered=True, where=where), params)
            if admitted is None:
                yield from pages
                return
            try:
                for page in pages:
                    values = [v if isinstance(v, str) else str(v) for v in page if v is not None]
                    if values:
                        self._seen += len(values)
                        kept = list(filter(admitted, values))
                        if kept:
                            yield kept
            finally:
                pages.close()
            return
        fetched = self._execute_pages(self._select(with_rows=False, ordered=False, where=where), params)
        unordered = (v for page in fetched for v in page)
        texts = (v if isinstance(v, str) else str(v) for v in unordered if v is not None)
        ordered = cast("Generator[str, None, None]", sort_externally(texts, tempdir=self.tempdir))
        try:
            while page := list(islice(ordered, _YIELD_PER)):
                yield page
        finally:
            ordered.close()

    def _span_bounds(self, span: KeySpan | None) -> ValueBounds | None:
        """The values ``span`` needs of this source, as a superset (``None``: no span)."""
        if span is None:
            return None
        return span.value_bounds(
            strip=self.config.strip_prefix or "",
            add=self.config.add_prefix or "",
            spanning=self.is_prefix or bool(self.config.sidecars),
        )

    def _counted(self, values: Iterable[str]) -> Iterator[str]:
        for value in values:
            self._seen += 1
            yield value

    def _span_sql(self, bounds: ValueBounds) -> tuple[str, dict[str, Any]]:
        """The SQL condition (``AND ...``) selecting ``bounds`` in the order the stream is sorted by.

        PostgreSQL and SQLite compare the key expression in the binary
        collation the stream is ordered with; MySQL/MariaDB compare the column
        itself when it compares bytes without padding (a binary type, a NO PAD
        ``_bin`` collation: an index on it serves the range), else the
        expression cast to binary (a PAD SPACE collation would put ``'a\t'``
        below ``'a'``, and drop it from a range that starts at ``'a'``).
        """
        compared, placeholder = self._comparable()
        params: dict[str, Any] = {}
        conditions = []
        if bounds.high is not None:
            params["span_high"] = bounds.high
            conditions.append(f"{compared} < {placeholder('span_high')}")
        if bounds.low is not None:
            params["span_low"] = bounds.low
            low = f"{compared} >= {placeholder('span_low')}"
            if bounds.ancestors:
                names = [f"span_up{i}" for i in range(len(bounds.ancestors))]
                params.update(zip(names, bounds.ancestors, strict=True))
                listed = ", ".join(placeholder(name) for name in names)
                low = f"({low} OR {compared} IN ({listed}))"
            conditions.append(low)
        return "".join(f" AND {condition}" for condition in conditions), params

    def _comparable(self) -> tuple[str, Callable[[str], str]]:
        """The expression the span is compared on, and how a parameter is written beside it."""
        cfg = self.config
        if cfg.query is not None:
            expr = self._as_text(f"q.{self._quote(self._query_column())}")
        else:
            expr, _ = self._expression_and_conditions()
        dialect = dialect_of(self.engine)
        if dialect == "postgresql":
            return f'{expr} COLLATE "C"', lambda name: f":{name}"
        if dialect == "mysql":
            collation = self._byte_ordered_collation() if cfg.query is None else None
            if collation is not None and (
                collation == "binary" or "nopad" in collation or "_0900_" in collation
            ):
                assert cfg.column is not None
                return self._quote(cfg.column), lambda name: f":{name}"
            return f"CAST({expr} AS BINARY)", lambda name: f"CAST(:{name} AS BINARY)"
        return f"{expr} COLLATE BINARY", lambda name: f":{name}"

    def _has_values(self) -> bool:
        """Whether the source's unrestricted stream holds any value (a span read none of them)."""
        cfg = self.config
        if cfg.query is not None:
            column = self._quote(self._query_column())
            sql = f"SELECT 1 FROM ({cfg.query.strip().rstrip(';')}) q WHERE q.{column} IS NOT NULL LIMIT 1"
        else:
            _, conditions = self._expression_and_conditions()
            sql = f"SELECT 1 FROM {self._table_ref()} WHERE {' AND '.join(conditions)} LIMIT 1"
        return any(True for _ in self._execute(sql, stream=False))

    def _execute_pages(
        self, sql: str, extra: dict[str, Any] | None = None
    ) -> Generator[list[Any], None, None]:
        params = {f"jf{i}": v for i, v in enumerate(self.config.json_filter.values())}
        params.update(extra or {})
        if self.engine.dialect.driver == "pymysql":
            yield from self._pymysql_pages(sql, params)
            return
        try:
            with self.engine.connect() as conn:
                streaming = conn.execution_options(stream_results=True, yield_per=_FETCH)
                result = streaming.execute(sa.text(sql), params)
                try:
                    for batch in result.partitions(_FETCH):
                        yield list(map(_first, batch))
                finally:
                    result.close()  # a server-side cursor must close before its connection
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _pymysql_pages(self, sql: str, params: dict[str, Any]) -> Generator[list[Any], None, None]:
        """:meth:`_execute_pages` on PyMySQL: pages fetched from its unbuffered cursor directly.

        PyMySQL decodes rows in Python; SQLAlchemy's result rows on top of that
        cost another third of the stream's CPU. The statement is compiled by
        SQLAlchemy (parameters and ``%`` escaped as for any execution), the
        connection comes from the engine's pool, and any driver error is a
        :class:`SourceError` as on the other path.
        """
        import pymysql.cursors  # type: ignore[import-untyped]

        dbapi_errors = (self.engine.dialect.loaded_dbapi.Error, SQLAlchemyError)
        try:
            with self.engine.connect() as conn:
                compiled = sa.text(sql).compile(dialect=conn.dialect)
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                cursor = dbapi.cursor(pymysql.cursors.SSCursor)
                try:
                    # always a dict, so that PyMySQL un-escapes the compiler's %% even without parameters
                    cursor.execute(compiled.string, compiled.construct_params(params) or {})
                    while batch := cursor.fetchmany(_FETCH):
                        yield list(map(_first, batch))
                finally:
                    cursor.close()  # an unbuffered cursor must be drained and closed before its connection
                # one more round trip before the stream counts as complete: a connection lost at any
                # moment of the read fails the source (as SQLAlchemy's close of its cursor does)
                dbapi.rollback()
        except dbapi_errors as exc:
            raise self._error(exc) from None

    def _aggregated_pages(self, where: str, extra: dict[str, Any]) -> Generator[list[Any], None, None] | None:
        """The ordered stream as aggregated keyset pages (:mod:`~reclaim.references.aggregated`), or ``None``.

        Only on PyMySQL, for a table column (not a JSON field, not a query)
        whose own collation compares by code point, so that its index serves
        every page; anything else reads rows as before.
        """
        cfg = self.config
        if (
            self.engine.dialect.driver != "pymysql"
            or cfg.table is None
            or cfg.json_path is not None
            or cfg.order != "database"
        ):
            return None
        collation = self._byte_ordered_collation()
        if collation is None:
            return None
        self._ordered_by_collation = collation
        expr, conditions = self._expression_and_conditions()
        assert cfg.column is not None
        params = {f"jf{i}": v for i, v in enumerate(cfg.json_filter.values())}
        params.update(extra)
        return self._keyset(
            key=expr,
            order=self._quote(cfg.column),
            source=f"{self._table_ref()} WHERE {' AND '.join(conditions)}{where}",
            params=params,
        )

    def _keyset(self, **query: Any) -> Generator[list[Any], None, None]:
        dbapi_errors = (self.engine.dialect.loaded_dbapi.Error, SQLAlchemyError)
        try:
            with self.engine.connect() as conn:
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                cursor = dbapi.cursor()

                def fetch(sql: str, values: dict[str, Any]) -> list[tuple[Any, ...]]:
                    compiled = sa.text(sql).compile(dialect=conn.dialect)
                    # always a dict, so that PyMySQL un-escapes the compiler's %% even without parameters
                    cursor.execute(compiled.string, compiled.construct_params(values) or {})
                    return list(cursor.fetchall())

                try:
                    yield from aggregated_pages(fetch, **query)
                except PageMismatch as exc:
                    raise SourceError(self.name, f"{exc}; the stream is stopped (fail closed)") from None
                finally:
                    cursor.close()
                dbapi.rollback()  # one more round trip: a connection lost at any moment fails the source
        except dbapi_errors as exc:
            raise self._error(exc) from None

    def _order_hint(self) -> str:
        if self.config.order == "query":
            return "the query must ORDER BY with a binary collation, or set order = 'database'"
        collation = self._ordered_by_collation
        if collation is not None and "nopad" not in collation and "_0900_" not in collation:
            return (
                f"the stream was ordered by column {self.config.column!r} itself, whose collation "
                f"{collation} ignores trailing spaces (PAD SPACE) and so orders a key that another "
                "key extends by a space or a control character differently from byte order; "
                "use a NO PAD collation (utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL) "
                "or set order = 'sort' on this source"
            )
        return "the database returned an order reclaim did not ask for"

    def _byte_ordered_collation(self) -> str | None:
        """The column's collation (``binary`` for a binary type) when ordering by it is byte order.

        MySQL/MariaDB only, for a plain column (not a JSON field): a ``_bin``
        collation of UTF-8 or ASCII compares by code point, which is UTF-8's byte
        order, and a binary type compares bytes; ``None`` for anything else (the
        stream is then ordered by ``CAST(... AS BINARY)``, which no index serves).
        A PAD SPACE ``_bin`` collation (``utf8mb4_bin``) differs from byte order
        only for a key that another extends by a space or a control character:
        the order check of :meth:`key_pages` stops such a stream (fail closed).
        """
        cfg = self.config
        if dialect_of(self.engine) != "mysql" or cfg.table is None or cfg.json_path is not None:
            return None
        probe = sa.text(
            "SELECT DATA_TYPE, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table "
            "AND COLUMN_NAME = :column"
        )
        try:
            with self.engine.connect() as conn:
                found = conn.execute(
                    probe, {"schema": cfg.table_schema, "table": cfg.table, "column": cfg.column}
                ).all()
        except SQLAlchemyError:
            return None  # ignoring this is safe: the cast orders the stream in every collation
        if len(found) != 1:
            return None  # several spellings of the name (a case-sensitive file system): cast
        data_type, charset, collation = (str(v).lower() if v is not None else None for v in found[0])
        if data_type in _MYSQL_BINARY_TYPES:
            return "binary"
        if charset in _MYSQL_CODE_POINT_CHARSETS and collation is not None and collation.endswith("_bin"):
            return collation
        return None

    def _ordered_rows(self, with_rows: bool) -> Generator[Sequence[Any], None, None]:
        if self.config.decoder is not None:
            if with_rows:
                raise SourceError(self.name, "sample rows are not available for decoder sources")
            # the decoder's keys come in no order the database knows: sorted out of core
            for key in sort_externally(self._decoded(self._raw_values()), tempdir=self.tempdir):
                yield (key,)
            return
        if self.config.order != "sort":
            yield from self._execute(self._select(with_rows=with_rows, ordered=True))
            return
        if with_rows:
            raise SourceError(self.name, "sample rows are not available for order = 'sort' sources")
        unordered = (row[0] for row in self._execute(self._select(with_rows=False, ordered=False)))
        texts = (v if isinstance(v, str) else str(v) for v in unordered if v is not None)
        for key in sort_externally(texts, tempdir=self.tempdir):
            yield (key,)

    def _execute(
        self, sql: str | sa.TextClause, extra: dict[str, Any] | None = None, *, stream: bool = True
    ) -> Generator[Sequence[Any], None, None]:
        """The rows of ``sql``; over a server-side cursor when ``stream`` (a whole table's references)."""
        params = {f"jf{i}": v for i, v in enumerate(self.config.json_filter.values())}
        params.update(extra or {})
        statement = sa.text(sql) if isinstance(sql, str) else sql
        try:
            with self.engine.connect() as conn:
                streaming = (
                    conn.execution_options(stream_results=True, yield_per=_YIELD_PER) if stream else conn
                )
                result = streaming.execute(statement, params)
                try:
                    for batch in result.partitions(_YIELD_PER):
                        yield from batch
                finally:
                    result.close()  # a server-side cursor must close before its connection
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> SourceError:
        orig = getattr(exc, "orig", None) or exc
        text = " ".join(str(orig).split())
        return SourceError(self.name, f"{type(orig).__name__}: {text}"[:800])

    def _quote(self, name: str) -> str:
        return str(self.engine.dialect.identifier_preparer.quote(name))

    def _table_ref(self) -> str:
        cfg = self.config
        assert cfg.table is not None
        table = self._quote(cfg.table)
        return f"{self._quote(cfg.table_schema)}.{table}" if cfg.table_schema else table

    def _json_expr(self, column: str, path: str) -> str:
        dialect = dialect_of(self.engine)
        parts = path.split(".")
        if dialect == "postgresql":
            return f"(CAST({column} AS jsonb) #>> '{{{','.join(parts)}}}')"
        if dialect == "mysql":
            return f"JSON_UNQUOTE(JSON_EXTRACT({column}, '$.{path}'))"
        # json_extract gives 1/0 for JSON true/false; spell them as PostgreSQL and MySQL do,
        # so that json_filter = {is_dir = "true"} selects the same rows on every dialect
        return (
            f"(CASE json_type({column}, '$.{path}') WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE CAST(json_extract({column}, '$.{path}') AS TEXT) END)"
        )

    def _as_text(self, expr: str) -> str:
        return f"CAST({expr} AS CHAR)" if dialect_of(self.engine) == "mysql" else f"CAST({expr} AS TEXT)"

    def _order_by(self, expr: str) -> str:
        dialect = dialect_of(self.engine)
        if dialect == "postgresql":
            return f'{expr} COLLATE "C"'
        if dialect == "mysql":
            return f"CAST({expr} AS BINARY)"
        return f"{expr} COLLATE BINARY"

    def _expression_and_conditions(self) -> tuple[str, list[str]]:
        """The key expression of a table source and the conditions every read applies."""
        cfg = self.config
        assert cfg.column is not None
        column = self._quote(cfg.column)
        expr = self._json_expr(column, cfg.json_path) if cfg.json_path else self._as_text(column)
        conditions = [f"{expr} IS NOT NULL"]
        if cfg.json_path and dialect_of(self.engine) == "mysql":
            conditions.append(f"JSON_TYPE(JSON_EXTRACT({column}, '$.{cfg.json_path}')) <> 'NULL'")
        for i, json_field in enumerate(cfg.json_filter):
            conditions.append(f"{self._json_expr(column, json_field)} = :jf{i}")
        if cfg.where:
            conditions.append(f"({cfg.where})")
        return expr, conditions

    def _select(self, *, with_rows: bool, ordered: bool, where: str = "") -> str:
        """The stream's statement; ``where`` (``AND ...``, of :meth:`_span_sql`) restricts it further."""
        cfg = self.config
        if cfg.query is not None:
            return self._select_query(ordered=ordered, where=where)
        expr, conditions = self._expression_and_conditions()
        extra = ""
        if with_rows:
            self._pk_columns = self._primary_key()
            extra = "".join(f", {self._quote(c)}" for c in self._pk_columns)
        sql = f"SELECT {expr} AS ref_key{extra} FROM {self._table_ref()} WHERE {' AND '.join(conditions)}"
        sql += where
        if ordered:
            self._ordered_by_collation = self._byte_ordered_collation()
            if self._ordered_by_collation is not None:
                assert cfg.column is not None
                # the column compares in byte order itself: an index on it is read in order, no sort
                sql += f" ORDER BY {self._quote(cfg.column)}"
            else:
                sql += f" ORDER BY {self._order_by(expr)}"
        return sql

    def _select_query(self, *, ordered: bool, where: str = "") -> str:
        cfg = self.config
        assert cfg.query is not None
        query = cfg.query.strip().rstrip(";")
        if cfg.order == "query" or (not ordered and not where):
            return query
        column = self._quote(self._query_column())
        expr = self._as_text(f"q.{column}")
        condition = f"q.{column} IS NOT NULL{where}"
        sql = f"SELECT {expr} AS ref_key FROM ({query}) q WHERE {condition}"
        return f"{sql} ORDER BY {self._order_by(expr)}" if ordered else sql

    def _query_column(self) -> str:
        assert self.config.query is not None
        probe = f"SELECT * FROM ({self.config.query.strip().rstrip(';')}) q LIMIT 0"
        try:
            with self.engine.connect() as conn:
                names = list(conn.execute(sa.text(probe)).keys())
        except SQLAlchemyError as exc:
            raise self._error(exc) from None
        if len(names) != 1:
            raise SourceError(self.name, f"the query must return exactly one column, it returns {len(names)}")
        return str(names[0])

    def _primary_key(self) -> tuple[str, ...]:
        cfg = self.config
        try:
            constraint = sa.inspect(self.engine).get_pk_constraint(str(cfg.table), schema=cfg.table_schema)
        except SQLAlchemyError:
            return ()  # ignoring this is safe: primary keys only decorate reports
        return tuple(constraint.get("constrained_columns") or ())

    def _refuse_empty(self) -> None:
        cfg = self.config
        if cfg.table is None:
            raise SourceError(
                self.name,
                "the query returned no references; if that is expected set allow_empty = true "
                "(an empty source would make every object a candidate)",
            )
        try:
            with self.engine.connect() as conn:
                has_rows = conn.execute(sa.text(f"SELECT 1 FROM {self._table_ref()} LIMIT 1")).first()
        except SQLAlchemyError as exc:
            raise self._error(exc) from None
        if has_rows is not None:
            raise SourceError(
                self.name,
                f"returned no references while table {cfg.table!r} has rows; check column, "
                "json_path, json_filter and where (or set allow_empty = true if that is expected)",
            )


_first = operator.itemgetter(0)


def candidate_values(config: ReferenceConfig, key: str) -> list[str]:
    """The stored values that would make ``config`` cover ``key``.

    The inverse of the key mapping (``add_prefix`` removed, ``strip_prefix``
    put back), for the key itself, for the base key of each sidecar suffix it
    ends with, and for prefix sources every ancestor directory (with and
    without its trailing ``/``).
    """
    add = config.add_prefix or ""
    strip = config.strip_prefix or ""
    targets = [key]
    targets += [key[: -len(s)] for s in config.sidecars if key.endswith(s) and len(key) > len(s)]
    if config.kind == "prefix":
        parts = key.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            targets += [ancestor, ancestor + "/"]
    values = []
    for target in dict.fromkeys(targets):
        if target.startswith(add):
            values.append(strip + target[len(add) :])
    return values


def referenced_now(sources: Sequence[ReferenceSource], keys: Collection[str]) -> set[str]:
    """The subset of ``keys`` that any of ``sources`` references at this moment.

    One query per source for the whole set of keys (see :meth:`ReferenceSource.lookup`);
    a source is asked only about the keys the sources before it did not cover. Raises
    :class:`SourceError` when any source fails: a re-check that cannot be completed must not
    let anything be deleted.
    """
    found: set[str] = set()
    remaining = set(keys)
    for source in sources:
        if not remaining:
            break
        hits = source.lookup(remaining)
        found |= hits
        remaining -= hits
    return found
