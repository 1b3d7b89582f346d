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

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim import api
from reclaim.distributed import InProcess, run

from .conftest import build, counts, state

SEGMENTS = ["a", "a-b", "a.b", "ab", "b", "é", "z", "~"]
segment = st.sampled_from(SEGMENTS)
key_strategy = st.lists(segment, min_size=1, max_size=3).map("/".join)


@st.composite
def stores(draw: st.DrawFn) -> tuple[dict[str, bool], list[str], str]:
    keys = draw(st.sets(key_strategy, min_size=1, max_size=30))
    # a file system cannot hold a file "a" and a file "a/x" at once
    keys = {k for k in keys if not any(other.startswith(k + "/") for other in keys)}
    referenced = {key: draw(st.booleans()) for key in sorted(keys)}
    points = st.sampled_from(sorted(keys)) | key_strategy | st.sampled_from(sorted(keys)).map(lambda k: k[:1])
    boundaries = draw(st.lists(points, max_size=3))
    mode = draw(st.sampled_from(["move", "mark"]))
    return referenced, [b for b in boundaries if b], mode


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stores())
def test_any_partitioning_equals_the_single_process_run(
    tmp_path: Path, drawn: tuple[dict[str, bool], list[str], str]
) -> None:
    keys, boundaries, mode = drawn
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    single = build(base / "single", keys, mode=mode, grace="0")
    spread = build(base / "spread", keys, mode=mode, grace="0")
    try:
        for _ in range(2):
            expected = api.run(single.config_path)
            got = run(
                spread.config_path, dispatcher=InProcess(spread.config), boundaries={"main": boundaries}
            )
            assert counts(spread, got.run_id) == counts(single, expected.run_id), boundaries
            assert state(spread) == state(single), boundaries
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
