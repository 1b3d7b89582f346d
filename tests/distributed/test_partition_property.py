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
from reclaim.catalog import ReleasedKey, open_catalog
from reclaim.catalog.released import add_released
from reclaim.distributed import InProcess, run

from .conftest import build, counts, state

SEGMENTS = ["a", "a-b", "a.b", "ab", "b", "é", "z", "~"]
segment = st.sampled_from(SEGMENTS)
key_strategy = st.lists(segment, min_size=1, max_size=3).map("/".join)
#: the values of the prefix and sidecar sources carry a prefix the source strips (``s3://b/``)
STRIP = "s3://b/"
SIDECAR = ".b"

Drawn = tuple[dict[str, bool], list[str], str, list[str], list[str], list[str] | None]


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
    # strays = "report" (None: "collect"): the keys some row collection released
    released = draw(
        st.none() | st.lists(st.sampled_from(sorted(keys)) | st.sampled_from(ancestors), max_size=6)
    )
    bases = [b for b in sidecar_bases if b]
    return referenced, [b for b in boundaries if b], mode, directories, bases, released


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


def _build(
    tmp: Path,
    keys: dict[str, bool],
    mode: str,
    directories: list[str],
    bases: list[str],
    released: list[str] | None,
) -> Any:
    """An archive with the exact source of ``build`` and a prefix and a sidecar source.

    With ``released``, the store reports strays (``strays = "report"``) and those
    keys were released by a row collection (exact keys, and directories for the
    ones that are not keys of the store).
    """
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
    extra = EXTRA_SOURCES if released is None else 'strays = "report"\n' + EXTRA_SOURCES
    archive = build(tmp, keys, mode=mode, grace="0", extra=extra)
    if released:
        catalog = open_catalog(archive.config.catalog)
        try:
            with catalog.begin() as connection:
                add_released(
                    connection,
                    catalog.tables.released,
                    [ReleasedKey("main", k, "exact" if k in keys else "prefix", "c") for k in set(released)],
                )
        finally:
            catalog.dispose()
    return archive


def released_left(archive: Any) -> list[tuple[str, str]]:
    """The releases not used up yet (a quarantined key's release is consumed)."""
    catalog = open_catalog(archive.config.catalog)
    try:
        with catalog.begin() as connection:
            table = catalog.tables.released
            return sorted((r.key, r.kind) for r in connection.execute(sa.select(table.c.key, table.c.kind)))
    finally:
        catalog.dispose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stores())
def test_any_partitioning_equals_the_single_process_run(tmp_path: Path, drawn: Drawn) -> None:
    """Each range reads of every source only what covers its keys: the result is the whole scan's."""
    keys, boundaries, mode, directories, bases, released = drawn
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    single = _build(base / "single", keys, mode, directories, bases, released)
    spread = _build(base / "spread", keys, mode, directories, bases, released)
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
            assert got.scans[0].strays == expected.scans[0].strays
            assert released_left(spread) == released_left(single)
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


def test_strays_are_reported_range_by_range_and_only_released_keys_move(tmp_path: Path) -> None:
    # strays = "report": of the unreferenced keys only those a row collection released are
    # collected (their releases used up); the others are strays, counted and never touched
    keys = {f"{letter}/{i}": i % 3 == 0 for letter in "abc" for i in range(4)}
    released = ["a/1", "b", "c/2"]  # a key, a directory, a key
    single = _build(tmp_path / "single", keys, "move", [], [], released)
    spread = _build(tmp_path / "spread", keys, "move", [], [], released)
    expected = api.run(single.config_path, show=10)
    got = run(spread.config_path, dispatcher=InProcess(), boundaries={"main": ["a/2", "b/2", "c"]}, show=10)
    assert got.quarantined[0].quarantined.count == expected.quarantined[0].quarantined.count == 4
    assert got.scans[0].strays.count == expected.scans[0].strays.count == 2
    assert [i.key for i in got.scans[0].stray_samples] == ["a/2", "c/1"]
    assert counts(spread, got.run_id) == counts(single, expected.run_id)
    assert state(spread) == state(single)
    assert released_left(spread) == released_left(single) == []  # every release used up


@pytest.mark.parametrize("bounds", [["uploads/1"], ["docs", "uploads/0", "zarr"], ["blobs/s.", "uploads/1/"]])
def test_every_kind_of_source_and_archived_rows_keep_their_objects_in_every_range(
    tmp_path: Path, bounds: list[str]
) -> None:
    # exact with a sidecar, prefix, JSON and archived rows' references (the row was collected, only
    # the archive references uploads/1): each range reads its part of each, the scan is the whole one's
    from lifecycle.test_purge_recheck import _archived, _exact, _json, _prefix, _sidecar, _world
    from reclaim.distributed import scan

    world = _world(tmp_path)
    for commit in (_exact, _sidecar, _prefix, _json, _archived):
        commit(world)
    expected = api.scan(world.config_path, show=20).stores[0]
    got = scan(world.config_path, dispatcher=InProcess(), boundaries={"main": bounds}, show=20).stores[0]
    # the cycle that archived the row quarantined the two orphans: every object left is referenced
    assert (got.listed.count, got.referenced.count, got.candidates.count) == (7, 7, 0)
    for name in ("listed", "referenced", "candidates"):
        assert getattr(got, name).count == getattr(expected, name).count, name
    assert [(s.name, s.covers) for s in got.sources] == [(s.name, s.covers) for s in expected.sources]
    assert any(s.name.endswith("(archived rows)") and s.covers == 1 for s in got.sources)
    world.engine.dispose()
