"""Quarantine and purge over several batches, with every outcome of a batch at once.

Between the scan and the execution of a quarantine plan (and between
quarantine and purge) the world changes the way it does in production: keys
get referenced, objects vanish or are rewritten, a trash key is taken, a
writer claims a key. Every object must end where its own story says, however
the batch it was in was split, on a local directory (moves in the calling
thread) and on S3 (moves on a thread pool, or ``mark`` mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import reclaim.lifecycle.purge as purge_module
import reclaim.lifecycle.quarantine as quarantine_module
from reclaim import api
from reclaim.catalog import Catalog, Journal, State, open_catalog
from reclaim.lifecycle import plan_purge, plan_quarantine
from reclaim.stores import default_mode

from .archive import Archive, make_archive


class World:
    """An archive, its catalog and the lifecycle layer's view of its one store ``main``."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.session = api.Session(archive.config)
        self.store = self.session.store("main")
        self.sources = self.session.sources("main")
        self.catalog: Catalog = open_catalog(archive.config.catalog)
        self.journal = Journal(self.catalog)
        self.cfg = archive.config.stores["main"]
        self.quarantine_batch = quarantine_module.BATCH
        self.purge_batch = purge_module.BATCH

    def quarantine_plan(self) -> Any:
        return plan_quarantine(
            self.store,
            self.sources,
            action="collect",
            mode=self.cfg.mode or default_mode(self.store),
            min_age=self.cfg.min_age,
            grace=timedelta(0),
            max_fraction=1.0,
            trash_prefix=self.cfg.trash_prefix,
            batch_size=self.quarantine_batch,
        )

    def run_id(self, command: str) -> int:
        return self.catalog.start_run(command, {}, dry_run=False)

    def close(self) -> None:
        self.session.close()
        self.catalog.dispose()
        self.archive.dispose()


def _make_world(tmp_path: Path, db_url: str, keys: list[str], **options: Any) -> World:
    archive = make_archive(tmp_path, db_url, min_age="0", **options)
    world = World(archive)
    for key in keys:  # through one store: opening one per key costs a new S3 client each
        world.store.write(key, key.encode())
    return world


def _rewrite(world: World, key: str) -> None:
    world.store.write(key, b"rewritten by a writer")
    if world.store.atomic_move:  # a local file: make sure its mtime moves even on a coarse clock
        path = Path(world.archive.store_url.removeprefix("file://")) / key
        stamp = time.time() + 5
        os.utime(path, (stamp, stamp))


def _quarantine_with_surprises(world: World, keys: list[str]) -> tuple[dict[str, list[str]], Any]:
    """Plan, then change the world for some keys, then execute; return who got which surprise."""
    move = world.store.atomic_move or world.cfg.mode == "move"
    plan = world.quarantine_plan()
    assert plan.scan.candidates.count == len(keys)
    surprises: dict[str, list[str]] = {
        "referenced": keys[1::17],
        "vanished": keys[2::17],
        "rewritten": keys[3::17],
        "claimed": keys[4::17],  # an active entry exists already (say, a restore of another run)
        "occupied": keys[5::17] if move else [],
    }
    for key in surprises["referenced"]:
        world.archive.reference(key)
    world.store.delete(surprises["vanished"])
    for key in surprises["rewritten"]:
        _rewrite(world, key)
    for key in surprises["claimed"]:
        entry = world.journal.record_intent(
            "main", key, mode="mark", trash_key=None, size=None, mtime=None, etag=None, run_id=None
        )
        assert entry is not None
    for key in surprises["occupied"]:
        world.store.write(world.cfg.trash_prefix + key, b"a stray copy")
    result = plan.execute(world.journal, run_id=world.run_id("quarantine"), check_lease=lambda: None)
    return surprises, result


def _check_quarantine(world: World, keys: list[str], surprises: dict[str, list[str]], result: Any) -> None:
    move = world.store.atomic_move or world.cfg.mode == "move"
    special = {key for group in surprises.values() for key in group}
    plain = [key for key in keys if key not in special]
    assert result.quarantined.count == len(plain)
    assert result.quarantined.bytes == sum(len(key.encode()) for key in plain)
    assert result.referenced_again == len(surprises["referenced"])
    assert result.vanished == len(surprises["vanished"])
    assert result.changed == len(surprises["rewritten"]) + len(surprises["occupied"])
    assert result.already_active == len(surprises["claimed"])
    trash = world.cfg.trash_prefix
    for key in keys:
        entry = world.journal.latest("main", key)
        assert entry is not None, key
        if key in plain:
            assert (entry.state, entry.due_at is not None) == (State.QUARANTINED, True), key
            assert world.store.exists(trash + key) == move, key
            assert world.store.exists(key) != move, key
        elif key in surprises["claimed"]:
            assert (entry.state, entry.run_id) == (State.QUARANTINING, None), key
        else:
            assert entry.state is State.RESTORED, key
            assert world.store.exists(key) == (key not in surprises["vanished"]), key
    assert world.journal.in_flight("main") == [
        world.journal.active("main", key) for key in surprises["claimed"]
    ]
    notes = {world.journal.latest("main", key).note for key in surprises["occupied"]}  # type: ignore[union-attr]
    assert notes <= {"trash key already occupied"}


def _purge_with_surprises(world: World, keys: list[str], surprises: dict[str, list[str]]) -> None:
    special = {key for group in surprises.values() for key in group}
    plain = [key for key in keys if key not in special]
    again = plain[::11]  # referenced again before the purge: restored
    for key in again:
        world.archive.reference(key)
    mark = not (world.store.atomic_move or world.cfg.mode == "move")
    replaced = plain[1::11] if mark else []  # mark mode: replaced by a writer, so left live
    for key in replaced:
        _rewrite(world, key)
    plan = plan_purge(
        world.store, world.sources, world.journal, trash_prefix="_trash/", batch_size=world.purge_batch
    )
    assert plan.due == len(plain)
    result = plan.execute(world.journal, run_id=world.run_id("purge"), check_lease=lambda: None)
    purged = [key for key in plain if key not in again and key not in replaced]
    assert (result.restored, result.changed, result.lost_race) == (len(again), len(replaced), 0)
    assert result.purged.count == len(purged)
    for key in plain:
        entry = world.journal.latest("main", key)
        assert entry is not None
        if key in purged:
            assert entry.state is State.PURGED, key
            assert not world.store.exists(key), key
            assert not world.store.exists(world.cfg.trash_prefix + key), key
        else:
            assert entry.state is State.RESTORED, key
            assert world.store.exists(key), key
    assert {entry.key for entry in world.journal.in_flight("main")} == set(surprises["claimed"])


KEYS = [f"blobs/{i % 7}/{i:05d}" for i in range(1234)]  # three batches of quarantine, two of purge


@pytest.fixture
def local_world(tmp_path: Path, db_url: str) -> Iterator[World]:
    catalog_url = None if db_url.startswith("sqlite") else db_url
    world = _make_world(tmp_path, db_url, KEYS, catalog_url=catalog_url)
    yield world
    world.close()


def test_local_batches_with_every_outcome(local_world: World) -> None:
    assert not local_world.store.parallel_io  # moves in the calling thread
    surprises, result = _quarantine_with_surprises(local_world, KEYS)
    _check_quarantine(local_world, KEYS, surprises, result)
    _purge_with_surprises(local_world, KEYS, surprises)


S3_KEYS = [f"blobs/{i % 3}/{i:03d}" for i in range(90)]


@pytest.fixture(params=["mark", "move"])
def s3_world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_url: str,
    s3_bucket: str,
    s3_options: dict[str, Any],
) -> Iterator[World]:
    pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
    world = _make_world(
        tmp_path,
        sqlite_url,
        S3_KEYS,
        store_url=f"s3://{s3_bucket}/data/",
        storage_options=s3_options,
        mode=request.param,
    )
    # small batches, so that 90 objects on the test server still make several of them
    world.quarantine_batch = 40
    world.purge_batch = 25
    yield world
    world.close()


def test_s3_batches_with_every_outcome(s3_world: World) -> None:
    assert s3_world.store.parallel_io  # move mode moves on the thread pool
    surprises, result = _quarantine_with_surprises(s3_world, S3_KEYS)
    _check_quarantine(s3_world, S3_KEYS, surprises, result)
    _purge_with_surprises(s3_world, S3_KEYS, surprises)
