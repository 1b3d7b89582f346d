"""A reclaim process killed (SIGKILL) mid-collection or mid-restore: every row stays live or archived.

The collection runs in batches of 5 over 20 old assets; the process kills
itself at a row fault point on its second visit (one batch already done).
Before recovery every asset is in its table or has an archive record; after
``reclaim recover`` every asset is in exactly one place (its table, or the
archive as ARCHIVED), nothing is in flight, and a new run finishes the job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import reclaim
from reclaim.catalog import RowState, open_catalog
from reclaim.lifecycle.faults import ROW_POINTS

from .world import ASSETS, DAY, World

IDS = list(range(1, 21))


def _reclaim(world: World, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RECLAIM_FAULT"}
    if fault:
        env["RECLAIM_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args, "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def _archive(world: World) -> dict[int, list[RowState]]:
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        records: dict[int, list[RowState]] = {}
        for r in catalog.archive.select(collection="assets", states=tuple(RowState)):
            records.setdefault(int(r.pk.strip('[]"')), []).append(r.state)
        return records
    finally:
        catalog.dispose()


def _assert_settled(world: World) -> None:
    live = set(world.ids("assets"))
    records = _archive(world)
    for asset in IDS:
        states = records.get(asset, [])
        assert RowState.ARCHIVING not in states, (asset, states)
        assert RowState.RESTORING not in states, (asset, states)
        archived = states.count(RowState.ARCHIVED)
        assert (asset in live) != (archived == 1), f"asset {asset}: live={asset in live}, archive {states}"
        assert archived <= 1


def _setup(world: World) -> None:
    world.collections = ASSETS + "batch_size = 5\n"
    for asset in IDS:
        world.asset(asset, None, age=40 * DAY)
    world.write_config()


@pytest.mark.parametrize("point", [p for p in ROW_POINTS if p.startswith("rows.")])
def test_killed_collection_leaves_every_row_live_or_archived(world: World, point: str) -> None:
    _setup(world)
    if point == "rows.after-archive" and world.shared_catalog:
        # a shared catalog archives in the deleting transaction: the point is never reached
        done = _reclaim(world, "run", fault=f"{point}:2")
        assert done.returncode == 0, done.stderr
        _assert_settled(world)
        return
    killed = _reclaim(world, "run", fault=f"{point}:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    live = set(world.ids("assets"))
    records = _archive(world)
    assert 0 < len(live) < len(IDS) or point == "rows.after-select"
    for asset in IDS:  # before recovery: live, or archived (perhaps still ARCHIVING)
        assert asset in live or records.get(asset), f"asset {asset} is neither live nor archived"

    # the recovery and the next cycle in process: the same code as the CLI's
    reclaim.recover(world.config_path)
    _assert_settled(world)

    reclaim.run(world.config_path)
    _assert_settled(world)
    assert world.ids("assets") == []


@pytest.mark.parametrize("point", [p for p in ROW_POINTS if p.startswith("rows-restore.")])
def test_killed_restore_leaves_every_row_live_or_archived(world: World, point: str) -> None:
    _setup(world)
    reclaim.run(world.config_path)
    assert world.ids("assets") == []
    if point == "rows-restore.after-claim" and world.shared_catalog:
        # a shared catalog restores each row in one transaction: there is no separate claim
        done = _reclaim(world, "restore", "--collection", "assets", fault=f"{point}:3")
        assert done.returncode == 0, done.stderr
        assert world.ids("assets") == IDS
        return

    killed = _reclaim(world, "restore", "--collection", "assets", fault=f"{point}:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert 0 < len(world.ids("assets")) < len(IDS)

    reclaim.recover(world.config_path)
    _assert_settled(world)

    reclaim.restore_rows(world.config_path, collection="assets")
    assert world.ids("assets") == IDS
    assert all(RowState.ARCHIVED not in states for states in _archive(world).values())
