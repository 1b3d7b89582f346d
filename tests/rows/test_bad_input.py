"""Bad collection config: clear errors that name the field, before anything is changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.errors import ConfigError

from .world import ASSETS, DAY, World, build_schema


@pytest.fixture
def cascade_world(db_url: str, tmp_path: Path) -> World:
    engine = sa.create_engine(db_url)
    md = build_schema(engine, cascade=True)
    return World(root=tmp_path, db_url=db_url, engine=engine, md=md)


def _refused(world: World, field: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        reclaim.run(world.config_path)
    assert info.value.field == field
    with pytest.raises(ConfigError):
        reclaim.scan(world.config_path)


def test_an_undeclared_on_delete_cascade_is_refused_and_a_declared_one_is_safe(cascade_world: World) -> None:
    world = cascade_world
    try:
        world.collections = ASSETS
        world.insert("versions", {"id": 1, "name": "v"})
        world.asset(1, None, age=40 * DAY)
        world.asset(2, None, age=40 * DAY)
        world.link(1, 1)
        world.write_config()
        _refused(world, "collections.assets.references", r"version_assets\.asset_id.*ON DELETE CASCADE")
        assert world.ids("assets") == [1, 2]

        world.collections = (
            ASSETS + '[[collections.assets.references]]\ntable = "version_assets"\ncolumn = "asset_id"\n'
        )
        world.write_config()
        report = reclaim.run(world.config_path)
        assert [c.archived for c in report.collections] == [1]
        assert world.ids("assets") == [1]
        assert world.ids("version_assets") != []  # the link survived: nothing cascaded
    finally:
        world.engine.dispose()


def test_a_table_without_a_primary_key_is_refused(world: World) -> None:
    with world.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE logs (msg VARCHAR(20), created TIMESTAMP)")
    world.collections = '[collections.logs]\ndatabase = "app"\ntable = "logs"\nage_column = "created"\n'
    world.write_config()
    _refused(world, "collections.logs.table", "has no primary key")


def test_unknown_table_and_columns_name_the_field(world: World) -> None:
    world.collections = ASSETS.replace('"modified"', '"modifed"')
    world.write_config()
    _refused(world, "collections.assets.age_column", r"column 'modifed' does not exist in table 'assets'")

    world.collections = ASSETS.replace('table = "assets"', 'table = "asets"')
    world.write_config()
    _refused(world, "collections.assets.table", "table 'asets' does not exist")

    world.collections = ASSETS + '[[collections.assets.references]]\ntable = "versions"\ncolumn = "asset"\n'
    world.write_config()
    _refused(
        world, "collections.assets.references[0].column", "column 'asset' does not exist in table 'versions'"
    )


def test_invalid_sql_in_where_or_a_declared_query_names_the_field(world: World) -> None:
    world.asset(1, None, age=40 * DAY)
    world.collections = ASSETS + "where = \"path LIKE 'sub-%' AND nosuchcolumn = 1\"\n"
    world.write_config()
    _refused(world, "collections.assets.where", "the candidate query fails")

    world.collections = (
        ASSETS + '[[collections.assets.references]]\nquery = "SELEC asset_id FROM version_assets"\n'
    )
    world.write_config()
    _refused(world, "collections.assets.references[0].query", "the query fails")
    assert world.ids("assets") == [1]


def test_a_declared_query_reference_protects_rows(world: World) -> None:
    world.asset(1, None, age=40 * DAY)
    world.asset(2, None, age=40 * DAY)
    world.collections = ASSETS + '[[collections.assets.references]]\nquery = "SELECT 1 AS id"\n'
    world.write_config()
    reclaim.run(world.config_path)
    assert world.ids("assets") == [1]


def test_config_validation_of_collections(tmp_path: Path) -> None:
    base = '[databases.app]\nurl = "sqlite:///x.db"\n[collections.c]\n'
    good = 'database = "app"\ntable = "t"\nage_column = "a"\n'
    cases = {
        'database = "nope"\ntable = "t"\nage_column = "a"\n': "collections.c.database",
        'database = "app"\ntable = "t"\n': "age_column",
        good + 'action = "delete"\n': "action",
        'database = "app"\ntable = "t;drop"\nage_column = "a"\n': "table",
        good + 'where = "1=1; DROP TABLE t"\n': "where",
        good + 'retention = "soon"\n': "retention",
        good + '[[collections.c.references]]\ntable = "x"\n': "references",
    }
    for text, field in cases.items():
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            reclaim.parse_config(base + text)
