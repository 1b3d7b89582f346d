"""``age = "unreferenced"`` on a store in distributed runs: the clock as the single process keeps it.

Twin archives, cycle after cycle: the single-process ``reclaim run`` on one,
the coordinator (its ranges in this process, the workers' own function) on
the other. Between cycles the clocks of both are made two days older (the
store's ``min_age`` is one day), an orphan is referenced again and a live key
released. After each cycle the run record's counts, every key of the store and
the trash, every key's journal state, and the clock itself (which keys are
watched, which a complete scan vouched for) are the same.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reclaim import api
from reclaim.catalog.tables import catalog_tables
from reclaim.distributed import InProcess, run

from .conftest import build, counts, state

KEYS = {f"{letter}/{i:02d}": i % 3 == 0 for letter in "abcdef" for i in range(8)}
PARTITIONINGS = [[], ["b/", "c/04", "e/"], ["a/", "b/01", "b/02", "d/"]]


def _clock_table(archive: Any) -> tuple[sa.Engine, sa.Table]:
    config = archive.config
    engine = sa.create_engine(str(config.catalog.url))
    return engine, catalog_tables(None, config.catalog.table_prefix, engine.dialect.name).unreferenced


def clock(archive: Any) -> dict[str, bool]:
    """The store's watched keys, and whether a complete scan vouched for each."""
    engine, t = _clock_table(archive)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.item, t.c.confirmed).where(t.c.kind == "store"))
            return {str(item): bool(confirmed) for item, confirmed in rows}
    finally:
        engine.dispose()


def older(archive: Any, days: int = 2) -> None:
    """Every sighting of the store ``days`` days older."""
    engine, t = _clock_table(archive)
    try:
        with engine.begin() as conn:
            rows = conn.execute(sa.select(t.c.item_hash, t.c.first_seen).where(t.c.kind == "store")).all()
            for item_hash, first_seen in rows:
                conn.execute(
                    t.update()
                    .where(t.c.kind == "store", t.c.item_hash == item_hash)
                    .values(first_seen=first_seen - timedelta(days=days))
                )
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["move", "mark"])
@pytest.mark.parametrize("boundaries", PARTITIONINGS, ids=["one-range", "four-ranges", "five-ranges"])
def test_the_clock_and_every_cycle_equal_the_single_process_run(
    tmp_path: Path, mode: str, boundaries: list[str]
) -> None:
    """Fails without the coordinator's finish (no sighting is ever vouched for: nothing goes), with
    a range that finishes the clock itself (it forgets what the later ranges saw before), and with
    a range scan that reads no clock (a dry run would take every orphan at once)."""
    extra = 'age = "unreferenced"'
    single = build(tmp_path / "single", KEYS, mode=mode, grace="0", extra=extra)
    spread = build(tmp_path / "spread", KEYS, mode=mode, grace="0", extra=extra)
    quarantined = []
    for cycle in range(4):
        # a dry run reads the clock and never writes it, in one process as in ranges
        before = clock(spread)
        splits = {"main": boundaries}
        preview = run(
            spread.config_path, dispatcher=InProcess(spread.config), boundaries=splits, dry_run=True
        )
        would = api.run(single.config_path, dry_run=True)
        assert preview.scans[0].candidates == would.scans[0].candidates, cycle
        assert preview.scans[0].young == would.scans[0].young, cycle
        assert clock(spread) == before, cycle
        expected = api.run(single.config_path)
        got = run(spread.config_path, dispatcher=InProcess(spread.config), boundaries={"main": boundaries})
        assert counts(spread, got.run_id) == counts(single, expected.run_id), cycle
        assert state(spread) == state(single), cycle
        assert clock(spread) == clock(single), cycle
        quarantined.append(got.quarantined[0].quarantined.count)
        for archive in (single, spread):
            older(archive)
            if cycle == 0:
                archive.reference("b/01")  # an orphan referenced again: its clock is forgotten
                archive.unreference("c/03")  # a live key released: its clock starts
    orphans = sum(not referenced for referenced in KEYS.values())
    # cycle 0 starts the clocks; cycle 1 takes the orphans but b/01; cycle 2 c/03, seen twice by then
    assert quarantined == [0, orphans - 1, 1, 0]
    assert "b/01" not in clock(spread)


def test_a_worker_killed_mid_range_forgets_what_its_first_attempt_took(tmp_path: Path, queue: str) -> None:
    """A pool process SIGKILLed after two moves of its batch, on real Celery workers.

    The retry settles the two moves (confirmed: in the trash, so no longer listed) and forgets
    their sightings as the killed attempt would have after its batch (fails without it: the clock
    keeps two quarantined keys, vouched for by the run, and a restored one would not start again).
    """
    from .conftest import side_by_side_with_a_kill

    extra = 'age = "unreferenced"'
    single = build(tmp_path / "single", KEYS, mode="move", grace="7d", extra=extra)
    spread = build(tmp_path / "spread", KEYS, mode="move", grace="7d", extra=extra)
    splits = {"main": PARTITIONINGS[1]}
    api.run(single.config_path)
    run(spread.config_path, dispatcher=InProcess(spread.config), boundaries=splits)  # starts the clocks
    for archive in (single, spread):
        older(archive)
    expected, got = side_by_side_with_a_kill(
        single, spread, queue, tmp_path, "quarantine.after-move:2", splits
    )
    assert counts(spread, got.run_id) == counts(single, expected.run_id)
    assert state(spread) == state(single)
    assert clock(spread) == clock(single) == {}  # every orphan taken, every clock forgotten
