"""A reclaim process killed (SIGKILL) while objects follow their rows: no live data lost, all restorable.

Six old upload rows of an ``objects = "follow"`` collection (each with its
own object) and a seventh whose object a live blob row references. A real
``reclaim`` process kills itself at every fault point the follow steps meet:

- in the cycle that archives the rows and quarantines their objects;
- in the restore of the rows (objects first, then the rows);
- in the cycle that, their retention over, purges their objects and expires them.

After each kill, before and after ``reclaim recover``: every live row's
object is at its key, every archived row's object is at its key or
quarantined (its bytes in the trash); after recovery nothing is in flight or
pending; and a restore brings every row back with its object, byte-identical
(or, once the expiry purged an object, refuses that row, which the next cycle
expires).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Collection

import pytest

import reclaim
from reclaim.catalog import IN_FLIGHT, Journal, RowState, State, open_catalog
from reclaim.errors import UnsafeToProceed

from .world import DAY, World, naive

FOLLOW = """
[collections.uploads]
database = "app"
table = "uploads"
age_column = "created"
min_age = "7d"
retention = "30d"
objects = "follow"
batch_size = 2
"""

IDS = list(range(1, 8))
SHARED = 7  # its object is a live blob row's too


def _key(upload: int) -> str:
    return "shared/7" if upload == SHARED else f"uploads/{upload}"


def _setup(world: World) -> None:
    world.collections = FOLLOW
    for upload in IDS:
        world.insert("uploads", {"id": upload, "blob": _key(upload), "created": naive(world.now - 9 * DAY)})
        world.put(_key(upload))
    world.insert("blobs", {"id": 1, "blob": _key(SHARED), "created": naive(world.now - 40 * DAY)})
    world.write_config()


def _reclaim(world: World, *args: str, fault: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RECLAIM_FAULT", "RECLAIM_PAUSE")}
    env["RECLAIM_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args, "--config", str(world.config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def _state(world: World) -> tuple[dict[int, RowState], dict[str, list[State]], int]:
    """Archived rows by upload id (restorable ones), journal states by key, pending links."""
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        rows = {int(r.pk.strip('[]"')): r.state for r in catalog.archive.select(states=tuple(RowState))}
        journal = Journal(catalog)
        keys = [_key(u) for u in IDS]
        states: dict[str, list[State]] = {}
        for entry in journal.select(store="blobs", states=tuple(State), keys=keys):
            states.setdefault(entry.key, []).append(entry.state)
        return rows, states, catalog.archive.links.count(pending=True)
    finally:
        catalog.dispose()


def _bytes(world: World, key: str) -> bytes | None:
    for path in (world.store_dir / key, world.store_dir / "_trash" / key):
        if path.exists():
            return path.read_bytes()
    return None


def _assert_nothing_lost(world: World, *, purged: Collection[str] = ()) -> None:
    """Every live row's object at its key; every archived row's at its key or in the trash."""
    live = set(world.ids("uploads"))
    rows, states, _ = _state(world)
    assert (world.store_dir / _key(SHARED)).read_bytes() == _key(SHARED).encode()  # the blob row's
    for upload in IDS:
        key = _key(upload)
        if upload in live:
            assert (world.store_dir / key).read_bytes() == key.encode(), f"live upload {upload} lost {key}"
            continue
        assert upload in rows, f"upload {upload} is neither live nor archived"
        if key in purged:
            continue
        assert _bytes(world, key) == key.encode(), f"archived upload {upload}: {key} lost ({states.get(key)})"


def _assert_settled(world: World) -> None:
    rows, states, pending = _state(world)
    assert pending == 0
    for key, seen in states.items():
        assert not set(seen) & set(IN_FLIGHT), (key, seen)
    assert not {RowState.ARCHIVING, RowState.RESTORING} & set(rows.values())


def _restore_all(world: World) -> None:
    reclaim.restore_rows(world.config_path, collection="uploads")
    assert world.ids("uploads") == IDS
    for upload in IDS:
        key = _key(upload)
        assert (world.store_dir / key).read_bytes() == key.encode(), key
        assert not (world.store_dir / "_trash" / key).exists(), key


#: (point, visit) in the cycle that archives the rows: the quarantine points are met first by the
#: objects that follow the rows (the store's own quarantine comes after the row collections)
COLLECT_POINTS = [
    ("rows.after-delete", 2),
    ("quarantine.after-intent", 1),
    ("quarantine.after-recheck", 1),
    ("quarantine.after-move", 3),
    ("quarantine.after-confirm", 1),
    ("follow.after-quarantine", 1),
    ("follow.after-link", 1),
]


@pytest.mark.parametrize(("point", "visit"), COLLECT_POINTS, ids=[p for p, _ in COLLECT_POINTS])
def test_killed_while_objects_follow_their_rows(world: World, point: str, visit: int) -> None:
    _setup(world)
    killed = _reclaim(world, "run", fault=f"{point}:{visit}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _assert_nothing_lost(world)

    reclaim.recover(world.config_path)
    _assert_settled(world)
    _assert_nothing_lost(world)

    reclaim.run(world.config_path)  # the next cycle finishes the collection
    assert world.ids("uploads") == []
    _, states, _ = _state(world)
    for upload in IDS:
        key = _key(upload)
        if upload == SHARED:
            assert (world.store_dir / key).exists()
        else:  # quarantined with its row, whatever instant the first cycle died at
            assert not (world.store_dir / key).exists(), key
            assert states[key][-1] is State.QUARANTINED, (key, states[key])
    _restore_all(world)


RESTORE_POINTS = [
    ("restore.after-claim", 2),
    ("restore.after-move", 2),
    ("restore.after-confirm", 2),
    ("rows-restore.after-objects", 2),
    ("rows-restore.after-insert", 2),
]


@pytest.mark.parametrize(("point", "visit"), RESTORE_POINTS, ids=[p for p, _ in RESTORE_POINTS])
def test_killed_while_restoring_rows_with_their_objects(world: World, point: str, visit: int) -> None:
    _setup(world)
    reclaim.run(world.config_path)
    assert world.ids("uploads") == []
    killed = _reclaim(world, "restore", "--collection", "uploads", fault=f"{point}:{visit}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _assert_nothing_lost(world)

    reclaim.recover(world.config_path)
    _assert_settled(world)
    _assert_nothing_lost(world)
    _restore_all(world)


EXPIRE_POINTS = [
    ("purge.after-claim", 1),
    ("purge.after-recheck", 1),
    ("purge.after-delete", 1),
    ("purge.after-confirm", 1),
    ("expire.after-purge", 1),
]


@pytest.mark.parametrize(("point", "visit"), EXPIRE_POINTS, ids=[p for p, _ in EXPIRE_POINTS])
def test_killed_while_expiring_rows_and_purging_their_objects(world: World, point: str, visit: int) -> None:
    _setup(world)
    reclaim.run(world.config_path)
    catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
    try:
        with catalog.begin() as conn:
            conn.execute(catalog.tables.rows.update().values(expires_at=world.now - DAY))
    finally:
        catalog.dispose()
    # the normal purge at the start of the cycle has nothing due: the points are met by the expiry
    killed = _reclaim(world, "run", fault=f"{point}:{visit}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _, states, _ = _state(world)
    gone = {key for key in map(_key, IDS) if _bytes(world, key) is None}
    _assert_nothing_lost(world, purged=gone)  # only objects of rows whose retention ended

    reclaim.recover(world.config_path)
    _assert_settled(world)
    rows, states, _ = _state(world)
    purged = {key for key, seen in states.items() if seen[-1] is State.PURGED}
    assert gone <= purged
    _assert_nothing_lost(world, purged=purged)
    if purged:
        # a row whose object its expiry purged already is refused, never restored without it
        with pytest.raises(UnsafeToProceed, match="was purged at its expiry"):
            reclaim.restore_rows(world.config_path, collection="uploads")
        assert world.ids("uploads") == []
        reclaim.run(world.config_path)  # the next cycle finishes the expiry
        rows, states, _ = _state(world)
        assert rows == {}
        assert all(seen[-1] is State.PURGED for key, seen in states.items() if key != _key(SHARED))
    else:
        _restore_all(world)
