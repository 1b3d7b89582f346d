"""A source read for one key range (a distributed scan's range) covers that range exactly as the whole read.

The range's read is a superset selected by the database, cut in Python
(:class:`~reclaim.references.KeySpan`). Whatever the values, the mapping, the
kind and the order mode, every key of the range must get the verdict (and the
source the credit) the whole stream gives it: a reference the range drops
would make a live object a candidate.
"""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim.config import DatabaseConfig, ReferenceConfig
from reclaim.errors import SourceError
from reclaim.references import KeySpan, PageCoverage, ReferenceSource, create_database_engine, dialect_of
from references.test_sources import ENGINES, TRICKY, dispose_engines  # noqa: F401 (an autouse fixture)


def _table(url: str, values: list[str], column_type: str | None = None) -> None:
    engine = sa.create_engine(url)
    ENGINES.append(engine)
    text_type = column_type or (
        "VARCHAR(255) COLLATE utf8mb4_general_ci" if dialect_of(engine) == "mysql" else "TEXT"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS assets")
        conn.exec_driver_sql(f"CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key {text_type})")
        if values:
            conn.execute(
                sa.text("INSERT INTO assets (id, blob_key) VALUES (:i, :k)"),
                [{"i": i, "k": k} for i, k in enumerate([*values[::2], *values[1::2]])],
            )


def _source(url: str, **cfg: object) -> ReferenceSource:
    engine = create_database_engine(DatabaseConfig(url=url))
    ENGINES.append(engine)
    config = ReferenceConfig.model_validate(
        {"database": "db", "table": "assets", "column": "blob_key", **cfg}
    )
    return ReferenceSource(name="assets.blob_key", config=config, engine=engine, database="db")


def _probe_keys(references: list[str], span: KeySpan, sidecars: list[str]) -> list[str]:
    """Keys of the span a reference could cover or miss: each reference, its children, its sidecars."""
    near = set(references)
    for ref in references:
        near |= {ref + "/", ref + "/x", ref + "/x/y", ref + "0", ref + " ", *(ref + s for s in sidecars)}
    for bound in (span.first, span.end_before):
        if bound:
            near |= {bound, bound + "/x", bound[:-1], bound[:-1] + "/x"}
    return sorted(
        k
        for k in near
        if k and (span.first is None or k >= span.first) and (span.end_before is None or k < span.end_before)
    )


def _verdicts(source: ReferenceSource, keys: list[str], span: KeySpan | None) -> tuple[list[str], int]:
    """The unreferenced keys of ``keys`` (a page per key, in order) and the keys the source covers."""
    coverage = PageCoverage([source], span)
    left = [key for key in keys if coverage.unreferenced([key])]
    coverage.drain()
    return left, coverage.covers[0]


def _assert_same(source: ReferenceSource, keys: list[str], span: KeySpan) -> None:
    whole = _verdicts(source, keys, None)
    whole_rows = source.counters.rows - source.counters.foreign
    assert _verdicts(source, keys, span) == whole, span
    assert source.counters.rows <= whole_rows


# -- every span, every mapping, on SQLite (quick enough for many examples) ------------

ALPHABET = ["a", "a/", "a.b", "ab", "/", "b", " ", "\t", "é", "~"]
value_strategy = st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=4).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(value_strategy, max_size=12),
    bounds=st.lists(value_strategy, min_size=1, max_size=2),
    first_open=st.booleans(),
    kind=st.sampled_from(["exact", "prefix"]),
    sidecars=st.sampled_from([[], [".b"], [".json", "b"]]),
    mapping=st.sampled_from(
        [{}, {"strip_prefix": "a"}, {"add_prefix": "a"}, {"strip_prefix": "a", "add_prefix": "b"}]
    ),
    order=st.sampled_from(["database", "sort", "query"]),
)
def test_a_spans_read_gives_every_key_of_the_span_the_whole_reads_verdict(
    tmp_path_factory: pytest.TempPathFactory,
    values: list[str],
    bounds: list[str],
    first_open: bool,
    kind: str,
    sidecars: list[str],
    mapping: dict[str, str],
    order: str,
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('span') / 'db.sqlite'}"
    _table(url, values)
    ends = sorted(set(bounds))
    span = KeySpan(None if first_open else ends[0], ends[-1] if first_open or len(ends) > 1 else None)
    cfg: dict[str, object] = {"kind": kind, "sidecars": sidecars, "allow_empty": True, **mapping}
    if order == "query":
        cfg = {**cfg, "table": None, "column": None, "order": "query"}
        cfg["query"] = (
            "SELECT blob_key FROM assets WHERE blob_key IS NOT NULL ORDER BY blob_key COLLATE BINARY"
        )
    else:
        cfg["order"] = order
    source = _source(url, **cfg)
    references = list(source.keys())
    _assert_same(source, _probe_keys(references, span, sidecars), span)


# -- the real databases' collations ----------------------------------------------------


def _spans() -> list[KeySpan]:
    points = sorted({*TRICKY, *(k[:1] for k in TRICKY), "a/x/", "a/w", "a.s"})
    spans = [KeySpan(None, p) for p in points] + [KeySpan(p, None) for p in points]
    spans += [KeySpan(a, b) for a, b in itertools.pairwise(points)]
    return spans


@pytest.mark.parametrize("kind", ["exact", "prefix"])
def test_every_span_of_tricky_keys_covers_as_the_whole_read(db_url: str, kind: str) -> None:
    _table(db_url, TRICKY)
    source = _source(db_url, kind=kind, sidecars=[".txt"] if kind == "exact" else [])
    references = list(source.keys())
    assert references == sorted(TRICKY)
    for span in _spans():
        _assert_same(source, _probe_keys(references, span, [".txt"]), span)


@pytest.mark.parametrize(
    "column_type",
    ["VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin", "VARBINARY(255)"],
)
def test_a_byte_ordered_mysql_column_is_compared_by_itself_and_covers_as_the_whole_read(
    mysql_url: str, column_type: str
) -> None:
    _table(mysql_url, TRICKY, column_type)
    source = _source(mysql_url, kind="prefix")
    references = list(source.keys())
    for span in _spans():
        _assert_same(source, _probe_keys(references, span, []), span)
    where, _ = source._span_sql(KeySpan("a", "b").value_bounds(strip="", add="", spanning=False))
    assert where == " AND blob_key < :span_high AND blob_key >= :span_low"  # an index serves it


def test_a_pad_space_mysql_column_is_compared_as_bytes(mysql_url: str) -> None:
    # utf8mb4_bin puts "a\tb" below "a" (PAD SPACE): compared by the column, a range starting at
    # "a" would lose it; compared as bytes it keeps it
    plain = sorted(k for k in TRICKY if "\t" not in k and not k.endswith(" "))
    _table(mysql_url, plain, "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    source = _source(mysql_url, order="sort")
    engine = sa.create_engine(mysql_url)
    ENGINES.append(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO assets (id, blob_key) VALUES (100, 'a\\tb')")
    expected = sorted(k for k in [*plain, "a\tb"] if "a" <= k < "a0")
    assert "a\tb" in expected
    assert list(source.key_pages(KeySpan("a", "a0"))) == [expected]
    where, _ = source._span_sql(KeySpan("a", "b").value_bounds(strip="", add="", spanning=False))
    assert "AS BINARY" in where


def test_the_database_returns_only_the_spans_superset(pg_url: str) -> None:
    values = [f"s3://b/{i:04d}/{j}" for i in range(200) for j in ("x", "y")] + ["gs://other/0100/x"]
    _table(pg_url, values)
    source = _source(pg_url, strip_prefix="s3://b/")
    span = KeySpan("0100", "0110")
    fetched = [v for page in source._value_pages(span) for v in page]
    assert fetched == sorted(v for v in values if "s3://b/0100" <= v < "s3://b/0110")
    assert [k for page in source.key_pages(span) for k in page] == [
        f"01{i:02d}/{j}" for i in range(10) for j in "xy"
    ]
    assert source.counters.rows == 20


# -- the emptiness check stays the whole source's -------------------------------------


def test_a_span_without_references_is_not_an_empty_source(sqlite_url: str) -> None:
    _table(sqlite_url, ["a/1", "a/2"])
    source = _source(sqlite_url)
    assert list(source.key_pages(KeySpan("b", None))) == []
    assert source.counters.rows == 0


@pytest.mark.parametrize("order", ["database", "sort"])
def test_a_source_that_selects_nothing_still_fails_closed_in_a_span(sqlite_url: str, order: str) -> None:
    # a where that matches no row (a misspelt filter): every range's read must refuse, as the whole read
    _table(sqlite_url, ["a/1", "b/2"])
    source = _source(sqlite_url, where="blob_key = 'nothing'", order=order)
    with pytest.raises(SourceError, match="returned no references while table 'assets' has rows"):
        list(source.key_pages(None))
    with pytest.raises(SourceError, match="returned no references while table 'assets' has rows"):
        list(source.key_pages(KeySpan("b", None)))


def test_a_decoders_keys_are_cut_in_python_and_decoding_nothing_still_fails_closed(sqlite_url: str) -> None:
    # re.findall(value, string=...): each value decodes to itself when the string holds it
    _table(sqlite_url, ["a/1", "b/2", "c/3"])
    source = _source(sqlite_url, decoder="re:findall", decoder_options={"string": "a/1 b/2 c/3"})
    assert list(source.key_pages(KeySpan("b", "c"))) == [["b/2"]]
    assert source.counters.rows == 1
    nothing = _source(sqlite_url, decoder="re:findall", decoder_options={"string": "zzz"})
    with pytest.raises(SourceError, match="returned no references while table 'assets' has rows"):
        list(nothing.key_pages(KeySpan("b", None)))
