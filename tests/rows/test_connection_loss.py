"""A database connection terminated during the collection checks is exit 3, not a config error (2).

Issue 10, finding 8. The server really terminates the connection: an
IMMUTABLE PL/pgSQL function calls ``pg_terminate_backend`` on its own
backend, and PostgreSQL folds it while planning the check's query.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import reclaim
from reclaim.cli.app import app
from reclaim.errors import CollectionError

HANG_UP = """
CREATE FUNCTION hang_up() RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN true; END $$
"""


@pytest.mark.parametrize(
    "collection",
    [
        'where = "hang_up()"',
        '[[collections.uploads.references]]\nquery = "SELECT id FROM uploads WHERE hang_up()"',
    ],
    ids=["where", "declared-query"],
)
def test_a_connection_terminated_during_the_collection_check_exits_3(
    tmp_path: Path, pg_url: str, collection: str
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE uploads (id INTEGER PRIMARY KEY, blob VARCHAR(200), created TIMESTAMP)"
        )
        conn.exec_driver_sql(HANG_UP)
    engine.dispose()
    (tmp_path / "store").mkdir()
    config = tmp_path / "reclaim.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [catalog]
            url = "sqlite:///{tmp_path / "catalog.sqlite"}"
            [databases.app]
            url = "{pg_url}"
            [stores.blobs]
            url = "file://{tmp_path / "store"}"
            [[stores.blobs.references]]
            database = "app"
            table = "uploads"
            column = "blob"
            allow_empty = true
            [collections.uploads]
            database = "app"
            table = "uploads"
            age_column = "created"
            """
        )
        + collection
        + "\n"
    )
    reclaim.init(config)
    with pytest.raises(CollectionError, match="terminating connection"):
        reclaim.run(config)
    for command in ("run", "scan"):
        result = CliRunner().invoke(app, [command, "--config", str(config)])
        assert result.exit_code == 3, result.output
        assert "collection 'uploads'" in result.output
