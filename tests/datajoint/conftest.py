"""Fixtures: a DataJoint 2 pipeline built by the real package on a real server, and its stores."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("datajoint")

import djpipeline as pipeline


@pytest.fixture
def dj_pg(pg_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A pipeline of 30 recordings and 30 scans on PostgreSQL, a third deleted; its stores."""
    import sqlalchemy as sa

    import reclaim.datajoint as rdj

    database = sa.make_url(pg_url).database
    stores = {"main": tmp_path / "main", "cold": tmp_path / "cold"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        connection = pipeline.connect("postgresql", database=database, stores=stores)
        built = pipeline.build(connection, pipeline.unique_prefix(), tmp_path / "work", rows=30)
    rdj.config["gc.min_age_seconds"] = 0
    try:
        yield {"built": built, "root": stores["main"], "tmp": tmp_path}
    finally:
        for key in list(rdj.config._values):
            del rdj.config[key]
        connection.close()
