"""Whatever the keys and however the key space is cut, a distributed run equals the single-process run.

Hypothesis draws a key set (keys chosen to collide on prefixes and byte-order
corner cases), which keys are referenced, the split points (keys of the store,
keys between them, prefixes of them, points outside the store) and the mode.
Twin archives are built; two cycles run on each (the first quarantines, the
second purges: grace 0), one with ``reclaim run``, the other with the
coordinator, each range a call of the workers' own function in this process
(:class:`~reclaim.distributed.InProcess`: the many examples would take hours
as real worker round trips; ``test_workers.py`` runs the same function in
real worker processes). After each cycle the run records' counts, every key in
the store and the trash, and every key's journal state must be equal.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim import api
from reclaim.distributed import InProcess, run

from .conftest import build, counts, state

SEGMENTS = ["a", "a-b", "a.b", "ab", "b", "é", "z", "~"]
segment = st.sampled_from(SEGMENTS)
key_strategy = st.lists(segment, min_size=1, max_size=3).map("/".join)
#: the values of the prefix and sidecar sources carry a prefix the source strips (``s3://b/``)
STRIP = "s3://b/"
SIDECAR = ".b"

Drawn = tuple[dict[str, bool], list[str], str, list[str], list[str]]


@st.composite
def stores(draw: st.DrawFn) -> Drawn:
    keys = draw(st.sets(key_strategy, min_size=1, max_size=30))
    # a file system cannot hold a file "a" and a file "a/x" at once
    keys = {k for k in keys if not any(other.startswith(k + "/") for other in keys)}
    referenced = {key: draw(st.booleans()) for key in sorted(keys)}
    points = st.sampled_from(sorted(keys)) | key_strategy | st.sampled_from(sorted(keys)).map(lambda k: k[:1])
    boundaries = draw(st.lists(points, max_size=3))
    mode = draw(st.sampled_from(["move", "mark"]))
    # directory objects (a prefix source) and sidecar bases: ancestors of keys, keys, and others
    ancestors = sorted({"/".join(k.split("/")[:depth]) for k in keys for depth in range(1, 3)})
    refs = st.sampled_from(ancestors) | key_strategy
    directories = draw(st.lists(refs, max_size=3))
    sidecar_bases = draw(
        st.lists(refs | st.sampled_from(sorted(keys)).map(lambda k: k[: -len(SIDECAR)]), max_size=4)
    )
    return referenced, [b for b in boundaries if b], mode, directories, [b for b in sidecar_bases if b]


#: a prefix source and a sidecar source beside the exact one (values stored with ``s3://b/``)
EXTRA_SOURCES = f"""
[[stores.main.references]]
database = "app"
table = "dirs"
column = "path"
kind = "prefix"
strip_prefix = "{STRIP}"
allow_empty = true

[[stores.main.references]]
database = "app"
table = "sides"
column = "base"
sidecars = ["{SIDECAR}"]
strip_prefix = "{STRIP}"
allow_empty = true
"""


def _build(tmp: Path, keys: dict[str, bool], mode: str, directories: list[str], bases: list[str]) -> Any:
    """An archive with the exact source of ``build`` and a prefix and a sidecar source."""
    tmp.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{tmp / 'app.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE dirs (id INTEGER PRIMARY KEY, path VARCHAR(255) NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE sides (id INTEGER PRIMARY KEY, base VARCHAR(255) NOT NULL)")
        for value in directories:
            conn.execute(sa.text("INSERT INTO dirs (path) VALUES (:v)"), {"v": STRIP + value})
        for value in bases:
            conn.execute(sa.text("INSERT INTO sides (base) VALUES (:v)"), {"v": STRIP + value})
        # a value of another store: never a reference of this one
        conn.execute(sa.text("INSERT INTO dirs (path) VALUES ('gs://other/a')"))
    engine.dispose()
    return build(tmp, keys, mode=mode, grace="0", extra=EXTRA_SOURCES)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stores())
def test_any_partitioning_equals_the_single_process_run(tmp_path: Path, drawn: Drawn) -> None:
    """Each range reads of every source only what covers its keys: the result is the whole scan's."""
    keys, boundaries, mode, directories, bases = drawn
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    single = _build(base / "single", keys, mode, directories, bases)
    spread = _build(base / "spread", keys, mode, directories, bases)
    try:
        for _ in range(2):
            expected = api.run(single.config_path)
            got = run(
                spread.config_path, dispatcher=InProcess(spread.config), boundaries={"main": boundaries}
            )
            assert counts(spread, got.run_id) == counts(single, expected.run_id), boundaries
            assert state(spread) == state(single), boundaries
            # the ranges' covers add up to the whole scan's, source by source
            assert [s.covers for s in got.scans[0].sources] == [s.covers for s in expected.scans[0].sources]
    finally:
        single.dispose()
        spread.dispose()


def test_a_dry_run_previews_what_the_single_process_dry_run_does_and_changes_nothing(tmp_path: Path) -> None:
    keys = {f"{letter}/{i}": i % 2 == 0 for letter in "abc" for i in range(5)}
    single = build(tmp_path / "single", keys, mode="move", grace="0")
    spread = build(tmp_path / "spread", keys, mode="move", grace="0")
    before = state(spread)
    expected = api.run(single.config_path, dry_run=True)
    got = run(spread.config_path, dispatcher=InProcess(), boundaries={"main": ["b", "c/2"]}, dry_run=True)
    assert got.run_id is None
    assert [(s.listed.count, s.candidates.count) for s in got.scans] == [
        (s.listed.count, s.candidates.count) for s in expected.scans
    ]
    assert got.scans[0].candidates.count == 6
    assert state(spread) == before


def test_the_max_fraction_guard_counts_the_whole_store_before_anything_moves(tmp_path: Path) -> None:
    from reclaim.errors import UnsafeToProceed

    # range [start, "b") holds only orphans, the store as a whole is under max_fraction
    keys = {"a/1": False, "a/2": False, **{f"b/{i}": True for i in range(6)}}
    spread = build(tmp_path / "spread", keys, mode="move", grace="0", max_fraction=0.3)
    split = {"main": ["b"]}
    got = run(spread.config_path, dispatcher=InProcess(), boundaries=split)
    assert got.quarantined[0].quarantined.count == 2
    over = build(tmp_path / "over", {**keys, "b/9": False}, mode="move", grace="0", max_fraction=0.3)
    before = state(over)
    with pytest.raises(UnsafeToProceed, match="above max_fraction"):  # 3 candidates of 9 objects
        run(over.config_path, dispatcher=InProcess(), boundaries=split)
    assert state(over) == before
