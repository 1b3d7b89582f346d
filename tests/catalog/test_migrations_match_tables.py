"""The migrations build exactly the tables that ``catalog/tables.py`` declares, on every dialect.

The code reads and writes the catalog through the metadata of
:func:`reclaim.catalog.tables.catalog_tables`; the database has what the
Alembic migrations made. Alembic's autogenerate comparison of the two must
find nothing: a column, type, nullability, index or constraint added to one
and not the other (a migration forgotten, or written differently from the
model) fails here on the dialect where it differs.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from reclaim.catalog import Catalog, open_catalog
from reclaim.config import CatalogConfig


def _differences(catalog: Catalog) -> list[object]:
    tables = catalog.tables
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": tables.version_table,
                "version_table_schema": tables.schema,
                "compare_type": True,
                "compare_server_default": True,
                # look at the catalog's schema only (a fresh database has nothing else)
                "include_schemas": tables.schema is not None,
                "include_name": lambda name, kind, _parents: kind != "schema" or name == tables.schema,
            },
        )
        return list(compare_metadata(context, tables.metadata))


def test_the_migrated_catalog_matches_the_declared_tables(catalog: Catalog) -> None:
    diff = _differences(catalog)
    assert diff == [], "\n".join(map(repr, diff))


def test_a_catalog_in_a_schema_of_its_own_with_a_prefix_matches_too(pg_url: str) -> None:
    catalog = open_catalog(CatalogConfig(url=pg_url, schema="gc", table_prefix="gc_"))
    try:
        catalog.upgrade()
        assert _differences(catalog) == []
    finally:
        catalog.dispose()
