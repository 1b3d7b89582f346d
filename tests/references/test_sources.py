"""Reference sources against real databases: order, JSON, queries, mapping, fail-closed guards."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from reclaim.config import DatabaseConfig, ReferenceConfig
from reclaim.errors import SourceError, UnorderedSource
from reclaim.references import ReferenceSource, create_database_engine, dialect_of

# keys whose byte order differs from most linguistic collations and from PAD SPACE comparison
TRICKY = [
    "A",
    "B/x",
    "a",
    "a b",
    "a\tb",
    "a-b",
    "a.txt",
    "a/x",
    "a/x/y",
    "a0",
    "aB",
    "ab",
    "ab ",
    "z",
    "~tilde",
    "é",
    "ü/x",
    "日本/語",
]


ENGINES: list[sa.Engine] = []


@pytest.fixture(autouse=True)
def dispose_engines() -> Iterator[None]:
    yield
    while ENGINES:
        ENGINES.pop().dispose()


def make_source(url: str, **cfg: object) -> ReferenceSource:
    engine = create_database_engine(DatabaseConfig(url=url))
    ENGINES.append(engine)
    config = ReferenceConfig.model_validate({"database": "db", **cfg})
    return ReferenceSource(name=config.display_name(0), config=config, engine=engine, database="db")


def create_table(url: str, rows: list[str | None], *, json_type: bool = False) -> sa.Engine:
    engine = sa.create_engine(url)
    ENGINES.append(engine)
    dialect = dialect_of(engine)
    text_type = "VARCHAR(255) COLLATE utf8mb4_general_ci" if dialect == "mysql" else "TEXT"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key {text_type}, meta "
            f"{'JSON' if json_type and dialect != 'sqlite' else 'TEXT'})"
        )
        for i, key in enumerate(rows):
            meta = json.dumps({"path": key, "store": "main" if i % 2 == 0 else "other"}) if key else None
            conn.execute(
                sa.text("INSERT INTO assets (id, blob_key, meta) VALUES (:i, :k, :m)"),
                {"i": i, "k": key, "m": meta},
            )
    return engine


def test_table_source_yields_byte_order(db_url: str) -> None:
    shuffled = [*TRICKY[::2], *TRICKY[1::2], None]
    create_table(db_url, shuffled)
    source = make_source(db_url, table="assets", column="blob_key")
    source.validate()
    assert list(source.keys()) == sorted(TRICKY)
    assert source.counters.rows == len(TRICKY)


def test_json_source_with_filter(db_url: str) -> None:
    create_table(db_url, TRICKY[::-1], json_type=True)
    source = make_source(
        db_url, table="assets", column="meta", json_path="$.path", json_filter={"store": "main"}
    )
    expected = sorted(k for i, k in enumerate(TRICKY[::-1]) if i % 2 == 0)
    assert list(source.keys()) == expected


def test_json_filter_on_a_boolean_field_matches_the_same_text_everywhere(db_url: str) -> None:
    # DataJoint's object metadata says {"is_dir": true}; SQLite's json_extract gives 1 for it,
    # PostgreSQL and MySQL give 'true': a filter written once must select the same rows
    engine = create_table(db_url, [], json_type=True)
    with engine.begin() as conn:
        for i, (path, is_dir) in enumerate([("d/movie.zarr", True), ("f/movie.tif", False), ("n/x", None)]):
            meta = json.dumps({"path": path, "is_dir": is_dir})
            conn.execute(sa.text("INSERT INTO assets (id, meta) VALUES (:i, :m)"), {"i": i, "m": meta})
    dirs = make_source(
        db_url, table="assets", column="meta", json_path="path", json_filter={"is_dir": "true"}
    )
    files = make_source(
        db_url, table="assets", column="meta", json_path="path", json_filter={"is_dir": "false"}
    )
    assert list(dirs.keys()) == ["d/movie.zarr"]
    assert list(files.keys()) == ["f/movie.tif"]
    assert dirs.lookup(["d/movie.zarr", "f/movie.tif"]) == {"d/movie.zarr"}
    assert files.lookup(["d/movie.zarr", "f/movie.tif"]) == {"f/movie.tif"}


def test_query_source_is_ordered_by_the_database(db_url: str) -> None:
    create_table(db_url, TRICKY[::-1])
    source = make_source(db_url, query="SELECT blob_key FROM assets WHERE id >= 0")
    assert list(source.keys()) == sorted(TRICKY)


def test_strip_and_add_prefix(db_url: str) -> None:
    values = ["s3://bucket/blobs/b", "s3://bucket/blobs/a", "s3://other/c", "s3://bucket/blobs/c"]
    create_table(db_url, values)
    source = make_source(
        db_url, table="assets", column="blob_key", strip_prefix="s3://bucket/", add_prefix="v1/"
    )
    assert list(source.keys()) == ["v1/blobs/a", "v1/blobs/b", "v1/blobs/c"]
    assert source.counters.foreign == 1


def test_out_of_core_sort(db_url: str) -> None:
    create_table(db_url, TRICKY[::-1])
    source = make_source(db_url, query="SELECT blob_key FROM assets", order="sort")
    assert list(source.keys()) == sorted(TRICKY)


def test_references_carry_primary_key(db_url: str) -> None:
    create_table(db_url, ["k1", "k0"])
    source = make_source(db_url, table="assets", column="blob_key")
    refs = list(source.references())
    assert [(r.key, r.row) for r in refs] == [("k0", {"id": 1}), ("k1", {"id": 0})]


def test_empty_source_with_rows_in_table_aborts(db_url: str) -> None:
    create_table(db_url, ["a", "b"])
    # a filter that matches nothing: a misconfigured source must never make everything a candidate
    source = make_source(
        db_url, table="assets", column="meta", json_path="path", json_filter={"store": "nope"}
    )
    with pytest.raises(SourceError, match="no references while table 'assets' has rows"):
        list(source.keys())
    allowed = make_source(
        db_url,
        table="assets",
        column="meta",
        json_path="path",
        json_filter={"store": "nope"},
        allow_empty=True,
    )
    assert list(allowed.keys()) == []


def test_empty_table_is_fine(db_url: str) -> None:
    create_table(db_url, [])
    assert list(make_source(db_url, table="assets", column="blob_key").keys()) == []


def test_empty_query_aborts_unless_allowed(db_url: str) -> None:
    create_table(db_url, ["a"])
    with pytest.raises(SourceError, match="query returned no references"):
        list(make_source(db_url, query="SELECT blob_key FROM assets WHERE id < 0").keys())


def test_unknown_table_and_column_are_named(db_url: str) -> None:
    create_table(db_url, ["a"])
    with pytest.raises(SourceError, match="table 'nope' does not exist"):
        make_source(db_url, table="nope", column="x").validate()
    with pytest.raises(SourceError, match="column 'blobkey' does not exist in table 'assets'"):
        make_source(db_url, table="assets", column="blobkey").validate()


def test_bad_sql_names_the_source(db_url: str) -> None:
    create_table(db_url, ["a"])
    source = make_source(db_url, name="thumbs", query="SELEC blob_key FROM assets")
    with pytest.raises(SourceError, match="reference source 'thumbs'"):
        list(source.keys())


def test_unreachable_database_names_source_without_password() -> None:
    source = make_source(
        "postgresql+psycopg://gc:hunter2hunter2@127.0.0.1:1/archive", name="assets", table="a", column="k"
    )
    with pytest.raises(SourceError) as info:
        list(source.keys())
    assert "reference source 'assets'" in str(info.value)
    assert "hunter2hunter2" not in str(info.value)


def test_query_on_linguistic_collation_is_caught(pg_url: str) -> None:
    engine = create_table(pg_url, TRICKY)
    with engine.connect() as conn:
        collation = conn.exec_driver_sql(
            "SELECT collname FROM pg_collation WHERE collname IN ('en-x-icu', 'und-x-icu', 'en_US.utf8') "
            "ORDER BY collname LIMIT 1"
        ).scalar()
    assert collation is not None, "PostgreSQL has no linguistic collation to test with"
    source = make_source(
        pg_url,
        name="by-locale",
        query=f'SELECT blob_key FROM assets ORDER BY blob_key COLLATE "{collation}"',
        order="query",
    )
    with pytest.raises(UnorderedSource, match=r"reference source 'by-locale'.*not in byte order"):
        list(source.keys())


def test_query_with_binary_order_is_accepted(pg_url: str) -> None:
    create_table(pg_url, TRICKY[::-1])
    source = make_source(
        pg_url, query='SELECT blob_key FROM assets ORDER BY blob_key COLLATE "C"', order="query"
    )
    assert list(source.keys()) == sorted(TRICKY)


def _kill_other_sessions(admin_url: str, dialect: str, database: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            )
        else:
            ids = conn.execute(
                sa.text(
                    "SELECT id FROM information_schema.processlist WHERE db = :d AND id <> CONNECTION_ID()"
                ),
                {"d": database},
            ).scalars()
            for pid in list(ids):
                conn.exec_driver_sql(f"KILL {int(pid)}")
    engine.dispose()


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_dropped_connection_mid_stream_aborts(request: pytest.FixtureRequest, dialect: str) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "mysql_url")
    engine = sa.create_engine(url)
    ENGINES.append(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key VARCHAR(64))")
        conn.execute(
            sa.text("INSERT INTO assets (id, blob_key) VALUES (:i, :k)"),
            [{"i": i, "k": f"blobs/{i:08d}"} for i in range(60_000)],
        )
    source = make_source(url, name="assets", table="assets", column="blob_key")
    stream = source.keys()
    assert next(stream) == "blobs/00000000"
    killer = threading.Thread(target=_kill_other_sessions, args=(url, dialect, sa.make_url(url).database))
    killer.start()
    killer.join()
    with pytest.raises(SourceError, match="reference source 'assets'"):
        for _ in stream:
            pass


def test_lookup_finds_exact_prefix_sidecar_and_json_references(db_url: str) -> None:
    create_table(db_url, ["blobs/a", "zarr/z1", "s3://bucket/x/y"], json_type=True)
    exact = make_source(db_url, table="assets", column="blob_key")
    assert exact.lookup(["blobs/a", "blobs/b", "zarr/z1/0.0"]) == {"blobs/a"}
    prefix = make_source(
        db_url, table="assets", column="blob_key", kind="prefix", sidecars=[".manifest.json"]
    )
    assert prefix.lookup(["zarr/z1/0.0", "zarr/z1.manifest.json", "zarr/z10/0", "zarr/z1", "blobs/a/b"]) == {
        "zarr/z1/0.0",
        "zarr/z1.manifest.json",
        "zarr/z1",
        "blobs/a/b",
    }
    mapped = make_source(
        db_url, table="assets", column="blob_key", strip_prefix="s3://bucket/", add_prefix="v/"
    )
    assert mapped.lookup(["v/x/y", "x/y", "v/blobs/a"]) == {"v/x/y"}
    # the json rows alternate store main/other: index 0 and 2 are "main"
    json_source = make_source(
        db_url, table="assets", column="meta", json_path="path", json_filter={"store": "main"}
    )
    assert json_source.lookup(["blobs/a", "zarr/z1", "s3://bucket/x/y"]) == {"blobs/a", "s3://bucket/x/y"}
    query = make_source(db_url, query="SELECT blob_key FROM assets WHERE id > 0")
    assert query.lookup(["blobs/a", "zarr/z1"]) == {"zarr/z1"}


def test_lookup_in_batches(db_url: str) -> None:
    keys = [f"k/{i:05d}" for i in range(1_200)]
    create_table(db_url, keys[::2])
    source = make_source(db_url, table="assets", column="blob_key")
    assert source.lookup(keys) == set(keys[::2])


def test_lookup_failure_names_the_source() -> None:
    source = make_source(
        "postgresql+psycopg://gc:pw-secret-1@127.0.0.1:1/x", name="blobs", table="t", column="k"
    )
    with pytest.raises(SourceError, match="reference source 'blobs'"):
        source.lookup(["a"])


def split_on_plus(value: str) -> list[str]:
    """A decoder: ``"a+b"`` references the keys ``a`` and ``b``."""
    return value.split("+")


def test_a_decoder_source_streams_the_decoded_keys_a_page_at_a_time(sqlite_url: str) -> None:
    # the page scan reads key_pages(): it must see what the decoder makes of each value, sorted
    create_table(sqlite_url, ["z+b", "a/x+m", "q"])
    source = make_source(sqlite_url, table="assets", column="blob_key", decoder=f"{__name__}:split_on_plus")
    assert [key for page in source.key_pages() for key in page] == ["a/x", "b", "m", "q", "z"]
    assert list(source.keys()) == ["a/x", "b", "m", "q", "z"]


def _mysql_table(url: str, column_type: str, keys: list[str]) -> None:
    engine = sa.create_engine(url)
    ENGINES.append(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key {column_type}, KEY assets_key (blob_key))"
        )
        conn.execute(
            sa.text("INSERT INTO assets (id, blob_key) VALUES (:i, :k)"),
            [{"i": i, "k": k} for i, k in enumerate([*keys[::2], *keys[1::2]])],
        )


def _explain(url: str, sql: str) -> str:
    engine = sa.create_engine(url)
    ENGINES.append(engine)
    with engine.connect() as conn:
        return " ".join(str(row._mapping.get("Extra")) for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))


@pytest.mark.parametrize(
    "column_type",
    ["VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin", "VARBINARY(255)"],
)
def test_a_byte_ordered_mysql_column_is_read_in_index_order(mysql_url: str, column_type: str) -> None:
    # the column compares in byte order itself: the stream is ordered by it, an index serves that
    # order (no sort on the server), and every key comes in byte order, tricky ones included
    _mysql_table(mysql_url, column_type, TRICKY)
    source = make_source(mysql_url, table="assets", column="blob_key")
    assert list(source.keys()) == sorted(TRICKY)
    sql = source._select(with_rows=False, ordered=True)
    assert sql.endswith("ORDER BY blob_key")
    assert "filesort" not in _explain(mysql_url, sql)
    assert [r.key for r in source.references()] == sorted(TRICKY)


def test_a_linguistic_mysql_column_is_still_ordered_by_its_bytes(mysql_url: str) -> None:
    _mysql_table(mysql_url, "VARCHAR(255) COLLATE utf8mb4_general_ci", TRICKY)
    source = make_source(mysql_url, table="assets", column="blob_key")
    assert list(source.keys()) == sorted(TRICKY)
    assert "AS BINARY)" in source._select(with_rows=False, ordered=True)


def test_a_pad_space_bin_column_is_read_in_index_order_and_checked(mysql_url: str) -> None:
    # utf8mb4_bin compares by code point but pads with spaces: "a" sorts after "a\tb" there, not
    # in byte order. The stream is ordered by the column (an index serves it) and checked on the
    # fly: such keys stop it (fail closed) with what to do; order = "sort" reads them in byte order
    plain = sorted(k for k in TRICKY if "\t" not in k and not k.endswith(" "))
    _mysql_table(mysql_url, "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", plain)
    source = make_source(mysql_url, table="assets", column="blob_key")
    assert list(source.keys()) == plain
    assert "filesort" not in _explain(mysql_url, source._select(with_rows=False, ordered=True))
    engine = sa.create_engine(mysql_url)
    ENGINES.append(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO assets (id, blob_key) VALUES (100, 'a\\tb')")
    with pytest.raises(UnorderedSource, match=r"utf8mb4_bin ignores trailing spaces.*order = 'sort'"):
        list(source.keys())
    with pytest.raises(UnorderedSource, match="utf8mb4_bin"):
        list(source.references())
    fallback = make_source(mysql_url, table="assets", column="blob_key", order="sort")
    assert list(fallback.keys()) == sorted([*plain, "a\tb"])
