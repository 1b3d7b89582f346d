"""reclaim.datajoint on MariaDB fails closed with a clear error: DataJoint 2.3.5 cannot store codecs there."""

from __future__ import annotations

import warnings
from pathlib import Path

import djpipeline as pipeline
import pytest

import datajoint as dj
import reclaim.datajoint as rdj
from reclaim.errors import ConfigError


def test_mariadb_is_refused_with_the_upstream_cause_and_nothing_moves(tmp_path: Path) -> None:
    root = tmp_path / "main"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        connection = pipeline.connect("mysql", database=None, stores={"main": root})
        schema = dj.Schema(f"datajoint_{pipeline.unique_prefix()}", connection=connection)

        @schema
        class Thing(dj.Manual):
            definition = """
            thing_id : int32
            ---
            raw : <blob@main>
            """

    orphan = root / "_hash" / schema.database / "orphan"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("old")
    try:
        for call in (rdj.scan, rdj.quarantine):
            with pytest.raises(ConfigError, match=r"does not support MariaDB.*DataJoint 2\.3\.5"):
                call(schema, store_name="main")
        assert orphan.exists()
    finally:
        schema.drop(prompt=False)
        connection.close()
