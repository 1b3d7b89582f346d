"""Reference streams read in pages on real servers: every key exactly once, in byte order, at any page size.

On MariaDB a column ordered by its own code-point collation is read as
aggregated keyset pages (:mod:`reclaim.references.aggregated`); elsewhere the
server-side cursor's fetches make the pages. Unusual keys (unicode, spaces,
control characters beside the NUL separator, duplicates) must come through
both exactly as the rows hold them, whatever page boundary falls among them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from reclaim.errors import SourceError
from reclaim.references import KeySpan, aggregated, sources
from references.test_sources import ENGINES, TRICKY, dispose_engines, make_source  # noqa: F401 (autouse)

# beside the tricky keys: the separator's neighbours, a newline, unicode beyond the BMP, runs of
# duplicates long enough to fill a page on their own
UNUSUAL = [
    *TRICKY,
    "a\x01b",
    "a\x01",
    "\x01",
    "a\nb",
    "a\x7f",
    "b b",
    "emoji/\U0001f600",
    "space ",
    "space  x",
    "x/\u00a0",
    *["dup"] * 7,
    *["dup/x"] * 2,
]
NOPAD = "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
PAD = "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"


def _table(url: str, column_type: str, keys: list[str]) -> sa.Engine:
    engine = sa.create_engine(url)
    ENGINES.append(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS assets")
        conn.exec_driver_sql(
            f"CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key {column_type}"
            + (", KEY assets_key (blob_key))" if "mysql" in url else ")")
        )
        conn.execute(
            sa.text("INSERT INTO assets (id, blob_key) VALUES (:i, :k)"),
            [{"i": i, "k": k} for i, k in enumerate([*keys[::2], *keys[1::2]])],
        )
    return engine


@pytest.fixture
def keyset_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The row stream refused, so that a test sees the aggregated pages alone; yields their SQL."""
    statements: list[str] = []
    real = aggregated.aggregated_pages

    def spy(fetch: aggregated.Fetch, **query: object) -> Iterator[list[str]]:
        def recorded(sql: str, values: dict[str, object]) -> list[tuple[object, ...]]:
            statements.append(sql)
            return fetch(sql, values)

        return real(recorded, **query)  # type: ignore[arg-type]

    def refused(*_: object, **__: object) -> Iterator[list[object]]:
        raise AssertionError("the row stream was used")

    monkeypatch.setattr(sources, "aggregated_pages", spy)
    monkeypatch.setattr(sources.ReferenceSource, "_execute_pages", refused)
    return statements


@pytest.mark.parametrize("column_type", [NOPAD, "VARBINARY(255)"])
@pytest.mark.parametrize("page", [1, 2, 3, 5, 7, 8, 1000])
def test_keyset_pages_give_every_key_once_in_byte_order(
    mysql_url: str, column_type: str, page: int, keyset_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregated, "PAGE_KEYS", page)
    _table(mysql_url, column_type, UNUSUAL)
    source = make_source(mysql_url, table="assets", column="blob_key")
    pages = list(source.key_pages())
    assert [k for p in pages for k in p] == sorted(UNUSUAL)
    assert source.counters.rows == len(UNUSUAL)
    assert any("GROUP_CONCAT" in sql for sql in keyset_only)
    if page < len(UNUSUAL):
        assert len(pages) > 1
    # the row stream (references()) agrees, row for row
    assert [r.key for r in source.references()] == sorted(UNUSUAL)


@pytest.mark.parametrize("page", [1, 2, 3, 4])
def test_a_pad_space_run_split_by_a_page_boundary_comes_whole(
    mysql_url: str, page: int, keyset_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # utf8mb4_bin calls "a", "a " and "a  " equal: a page ending among them must not lose the
    # rest (a ">" from "a" would skip "a " and "a  ")
    monkeypatch.setattr(aggregated, "PAGE_KEYS", page)
    keys = ["a", "a ", "a  ", "a", "a!", "ab", "b", "b ", "é", "é "]
    _table(mysql_url, PAD, keys)
    source = make_source(mysql_url, table="assets", column="blob_key")
    assert list(source.keys()) == sorted(keys)
    assert source.counters.rows == len(keys)


def test_a_pad_space_column_still_stops_at_a_key_below_its_padding(
    mysql_url: str, keyset_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregated, "PAGE_KEYS", 2)
    _table(mysql_url, PAD, ["a", "a\tb", "b"])
    source = make_source(mysql_url, table="assets", column="blob_key")
    with pytest.raises(sources.UnorderedSource, match="utf8mb4_bin ignores trailing spaces"):
        list(source.keys())


@pytest.mark.parametrize("page", [2, 3, 1000])
def test_a_value_holding_the_separator_and_a_truncated_page_are_read_row_by_row(
    mysql_url: str, page: int, keyset_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregated, "PAGE_KEYS", page)
    keys = [*UNUSUAL, "nul\x00inside", "\x00", "z\x00"]
    _table(mysql_url, NOPAD, keys)
    source = make_source(mysql_url, table="assets", column="blob_key")
    assert list(source.keys()) == sorted(keys)
    row_reads = [sql for sql in keyset_only if sql.startswith("SELECT p.ref_key")]
    assert row_reads  # the pages holding a NUL were read again row by row
    # a result cut by group_concat_max_len (4 is the server's least) fails the length check
    monkeypatch.setattr(aggregated, "GROUP_CONCAT_MAX_LEN", 4)
    keyset_only.clear()
    assert list(source.keys()) == sorted(keys)
    assert source.counters.rows == len(keys)
    assert len([sql for sql in keyset_only if sql.startswith("SELECT p.ref_key")]) >= len(keys) // page


def test_a_page_that_does_not_add_up_stops_the_stream(
    mysql_url: str, keyset_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # fail closed: a re-read that returns other than the aggregate's count never yields a page
    monkeypatch.setattr(aggregated, "PAGE_KEYS", 3)
    monkeypatch.setattr(aggregated, "GROUP_CONCAT_MAX_LEN", 4)
    real = aggregated._keys
    monkeypatch.setattr(aggregated, "_keys", lambda fetch, sql, values: real(fetch, sql, values)[1:])
    _table(mysql_url, NOPAD, UNUSUAL)
    source = make_source(mysql_url, name="assets", table="assets", column="blob_key")
    stream = source.key_pages()
    with pytest.raises(SourceError, match=r"reference source 'assets'.*aggregate counted 3.*fail closed"):
        next(stream)


def test_keyset_pages_of_a_span_and_a_mapping_cover_as_the_whole_read(
    mysql_url: str, keyset_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregated, "PAGE_KEYS", 2)
    values = [f"s3://b/{k}" for k in UNUSUAL] + ["other/x", "other/y"]
    _table(mysql_url, NOPAD, values)
    source = make_source(
        mysql_url, table="assets", column="blob_key", strip_prefix="s3://b/", add_prefix="k/", kind="prefix"
    )
    whole = list(source.keys())
    assert whole == sorted(f"k/{k}" for k in UNUSUAL)
    assert source.counters.foreign == 2
    span = KeySpan("k/a", "k/dup/x")
    kept = [k for page in source.key_pages(span) for k in page]
    assert kept == span.keep(whole, spanning=True)
    assert source.counters.rows == span.count(whole)


def test_a_linguistic_mysql_column_keeps_the_row_stream(
    mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # utf8mb4_general_ci is ordered by a cast no index serves: paging by it would scan the
    # table once a page, so the one ordered row stream stays
    called: list[object] = []
    monkeypatch.setattr(sources, "aggregated_pages", lambda *a, **k: called.append(a) or iter(()))
    _table(mysql_url, "VARCHAR(255) COLLATE utf8mb4_general_ci", UNUSUAL)
    source = make_source(mysql_url, table="assets", column="blob_key")
    assert list(source.keys()) == sorted(UNUSUAL)
    assert called == []


@pytest.mark.parametrize("fetch", [1, 2, 3, 2_000])
def test_postgresql_fetch_pages_give_every_unusual_key_once(
    pg_url: str, fetch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "_FETCH", fetch)
    _table(pg_url, "TEXT", UNUSUAL)
    source = make_source(pg_url, table="assets", column="blob_key")
    pages = list(source.key_pages())
    assert [k for p in pages for k in p] == sorted(UNUSUAL)
    assert source.counters.rows == len(UNUSUAL)
    assert all(len(p) <= fetch for p in pages)


def test_every_page_reads_the_snapshot_of_the_first_even_at_read_committed(
    mysql_url: str, keyset_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a row moved from a key not read yet to one already passed must be seen at its old key, as
    # one statement would see it: never missed at both
    monkeypatch.setattr(aggregated, "PAGE_KEYS", 2)
    engine = _table(mysql_url, NOPAD, ["a", "b", "c", "d", "e", "f"])
    config = sources.ReferenceConfig.model_validate(
        {"database": "db", "table": "assets", "column": "blob_key"}
    )
    committed = sa.create_engine(mysql_url, isolation_level="READ COMMITTED")
    ENGINES.append(committed)
    source = sources.ReferenceSource(name="assets", config=config, engine=committed, database="db")
    pages = source.key_pages()
    assert next(pages) == ["a"]  # a full page gives back its last key ("b" starts the next)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE assets SET blob_key = 'a0' WHERE blob_key = 'e'")
    assert [k for page in pages for k in page] == ["b", "c", "d", "e", "f"]
    assert list(source.keys()) == ["a", "a0", "b", "c", "d", "f"]
