from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from .world import World, build_schema


@pytest.fixture(params=[False, True], ids=["own-catalog", "shared-catalog"])
def world(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[World]:
    """The test schema on every dialect, with the catalog in its own SQLite file or in the same database."""
    engine = sa.create_engine(db_url)
    md = build_schema(engine)
    w = World(root=tmp_path, db_url=db_url, engine=engine, md=md, shared_catalog=request.param)
    try:
        yield w
    finally:
        engine.dispose()
