"""Releases of row collections: looked up by key and by each directory above it, consumed once quarantined."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from reclaim.catalog import open_catalog
from reclaim.catalog.released import (
    EXACT,
    PREFIX,
    ReleasedKey,
    add_released,
    consume_released,
    released_among,
)
from reclaim.config import CatalogConfig


def test_a_store_without_releases_is_answered_by_one_lookup_and_others_keep_theirs(tmp_path: Path) -> None:
    catalog = open_catalog(CatalogConfig(url=f"sqlite:///{tmp_path / 'catalog.sqlite'}"))
    catalog.upgrade()
    table = catalog.tables.released
    try:
        with catalog.begin() as connection:
            add_released(
                connection,
                table,
                [ReleasedKey("other", "a/b/c", EXACT, "assets"), ReleasedKey("other", "a/d", PREFIX, "zarr")],
            )
        keys = [f"a/b/{i}" for i in range(2000)] + ["a/b/c", "a/d/e"]
        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        sa.event.listen(catalog.engine, "before_cursor_execute", count)
        with catalog.begin() as connection:
            assert released_among(connection, table, "bench", keys) == set()
            assert consume_released(connection, table, "bench", keys) == 0
        sa.event.remove(catalog.engine, "before_cursor_execute", count)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) == 2  # one lookup each, not one per 500 keys and directories
        with catalog.begin() as connection:
            # the other store's releases are found, and consumed, exactly as before
            assert released_among(connection, table, "other", keys) == {"a/b/c", "a/d/e"}
            assert consume_released(connection, table, "other", ["a/b/c", "a/d/e"]) == 2
            assert released_among(connection, table, "other", keys) == set()
    finally:
        catalog.dispose()
