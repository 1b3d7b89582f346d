from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .world import World, make_world

_URL_FIXTURE = {"postgresql": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}


def _world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    url = request.getfixturevalue(_URL_FIXTURE[request.param])
    w = make_world(tmp_path, url)
    try:
        yield w
    finally:
        w.engine.dispose()


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The application on each database in turn (SQLite too: its triggers are the optional third)."""
    yield from _world(request, tmp_path)


@pytest.fixture(params=["postgresql", "mysql"])
def server_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The application on PostgreSQL and on MariaDB (concurrent writers need a server)."""
    yield from _world(request, tmp_path)


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Callable[..., World]]:
    """``make_world`` whose engines are disposed after the test."""
    made: list[World] = []

    def make(url: str, **options: str) -> World:
        made.append(make_world(tmp_path, url, **options))
        return made[-1]

    yield make
    for w in made:
        w.engine.dispose()
