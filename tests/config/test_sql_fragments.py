"""SQL fragments of the configuration (``where``, ``query``) cannot escape the predicate they are put in."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.config import parse_config
from reclaim.errors import ConfigError

from .samples import minimal_config

DAY = 86400.0

COLLECTION = """
[collections.assets]
database = "app"
table = "assets"
age_column = "created"
min_age = "1d"
{coll_extra}

[[collections.assets.references]]
{decl}
"""


DECLARED = 'table = "links"\ncolumn = "asset"'


def config_text(*, ref_extra: str = "", coll_extra: str = "", decl: str = DECLARED) -> str:
    return minimal_config(reference=ref_extra, tail=COLLECTION.format(coll_extra=coll_extra, decl=decl))


ESCAPES = [
    "true) OR (true) OR (true",
    "true) OR (1=1",
    "(true",
    "true; DELETE FROM assets",
    "true -- and the rest is gone",
    "true /* hidden ) */",
    "true # MySQL comment",
    "name = '\\') OR (true) OR (''='",  # a backslash ends MySQL's literal early
    "x = $$'$$ ) OR (true) OR ( $$'$$",  # PostgreSQL dollar quoting
    "[']) OR (true) OR ([']",  # SQLite bracket names
    "x = :p",
    "x = ?",
    "name = 'never closed",
    "`a) OR (true` = 1",
    "",
]


@pytest.mark.parametrize("where", ESCAPES)
def test_a_collection_where_that_could_escape_is_rejected(where: str) -> None:
    escaped = where.replace("\\", "\\\\")
    with pytest.raises(ConfigError) as info:
        parse_config(config_text(coll_extra=f'where = "{escaped}"'))
    assert info.value.field == "collections.assets.where"
    assert "collections.assets.where" in str(info.value)


@pytest.mark.parametrize("where", ESCAPES)
def test_a_reference_where_that_could_escape_is_rejected(where: str) -> None:
    escaped = where.replace("\\", "\\\\")
    with pytest.raises(ConfigError) as info:
        parse_config(config_text(ref_extra=f'where = "{escaped}"'))
    assert info.value.field == "stores.blobs.references[0].where"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT blob_key FROM assets) q, (SELECT 1",
        "SELECT blob_key FROM assets; DELETE FROM assets",
        "SELECT blob_key FROM assets -- ",
        "",
    ],
)
def test_queries_that_could_escape_are_rejected(query: str) -> None:
    source = config_text().replace('table = "assets"\ncolumn = "blob_key"', f'query = "{query}"', 1)
    with pytest.raises(ConfigError) as info:
        parse_config(source)
    assert info.value.field == "stores.blobs.references[0].query"
    declared = config_text(decl=f'query = "{query}"')
    with pytest.raises(ConfigError) as info:
        parse_config(declared)
    assert info.value.field == "collections.assets.references[0].query"


def test_a_query_may_end_with_a_semicolon() -> None:
    source = config_text().replace(
        'table = "assets"\ncolumn = "blob_key"', 'query = "SELECT blob_key FROM assets ;"', 1
    )
    assert parse_config(source).stores["blobs"].references[0].query == "SELECT blob_key FROM assets"


# legitimate fragments: strings holding ')' and ';', nested parentheses, IN (...), IS NOT NULL, casts
LEGIT_WHERE = (
    "(name IN ('keep) me;', 'o''brien') OR (name LIKE '%(x%' AND (size > 0))) AND blob_key IS NOT NULL"
)


def _world(root: Path) -> Path:
    engine = sa.create_engine(f"sqlite:///{root / 'app.sqlite'}")
    old = time.time() - 10 * DAY
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE assets (id INTEGER PRIMARY KEY, name TEXT, size INTEGER, "
            "blob_key TEXT, created REAL)"
        )
        conn.exec_driver_sql("CREATE TABLE links (id INTEGER PRIMARY KEY, asset INTEGER)")
        rows = [
            (1, "keep) me;", 1, "a/1", old),  # matches the where, unreferenced: a candidate
            (2, "o'brien", 1, None, old),  # matches the name but has no blob: not a candidate
            (3, "other", 1, "a/3", old),  # does not match
            (4, "(xyz", 5, "a/4", old),  # matches LIKE and size
            (5, "(xyz", 0, "a/5", old),  # LIKE but size 0
            (6, "keep) me;", 1, "a/6", old),  # matches but is referenced by a link
        ]
        for row in rows:
            conn.exec_driver_sql("INSERT INTO assets VALUES (?, ?, ?, ?, datetime(?, 'unixepoch'))", row)
        conn.exec_driver_sql("INSERT INTO links VALUES (1, 6)")
    engine.dispose()
    store = root / "blobs"
    for key in ("a/1", "a/3", "a/4", "a/5", "a/6", "orphan"):
        (store / key).parent.mkdir(parents=True, exist_ok=True)
        (store / key).write_bytes(b"x")
    path = root / "reclaim.toml"
    where = LEGIT_WHERE.replace('"', '\\"')
    path.write_text(
        config_text(
            ref_extra="where = \"name <> 'orphan;)' AND (size IN (1, 5))\"",
            coll_extra=f'where = "{where}"\nbatch_size = 2',
        )
        .replace("sqlite:///app.sqlite", f"sqlite:///{root / 'app.sqlite'}")
        .replace("file:///srv/blobs", f'file://{store}"\nmin_age = "0')
    )
    return path


def test_legitimate_fragments_work_end_to_end_on_sqlite(tmp_path: Path) -> None:
    path = _world(tmp_path)
    report = reclaim.scan(path, show=10)
    collection = report.collections[0]
    assert collection.candidates == 2  # rows 1 and 4
    store = report.stores[0]
    # the reference source keeps rows with size 1 or 5: a/1, a/3, a/4, a/6; a/5 and orphan are candidates
    assert store.candidates.count == 2

    reclaim.init(path)
    reclaim.run(path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.sqlite'}")
    with engine.connect() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM assets ORDER BY id")]
    engine.dispose()
    assert ids == [2, 3, 5, 6]
