"""The race that makes peers lose data, with real concurrent writers and collectors.

Writers reuse old orphans (deduplicated content): each sees that the object
exists, skips the upload, commits a row pointing at it and calls ``ensure()``
(re-uploading when it answers ``gone``). Meanwhile collectors run quarantine
and purge with a grace of zero, in a loop, until the writers are done. Writers
run as threads and as separate processes, with random pauses so that every run
explores different interleavings. Afterwards every committed reference must
point at an object, and no object a writer's ``ensure()`` declared available
may have vanished.

The writers do a fixed number of rounds, not rounds for a fixed time, so a
loaded machine makes the test slower, never weaker: every run makes the same
number of claims, and how many of them actually raced a collector (restored
or found purged) is printed.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from reclaim import api
from reclaim.catalog import Journal, State, open_catalog
from reclaim.errors import LockHeld

from .archive import Archive, make_archive

ORPHANS = [f"blobs/dedup/{i:03d}" for i in range(40)]
DURATION = 6.0
#: rounds of each ensure() writer
ROUNDS = 25


def writer(
    config_path: str,
    db_url: str,
    seed: int,
    duration: float,
    results: list[tuple[str, str]],
    use_ensure: bool = True,
    rounds: int | None = None,
) -> None:
    """Reuse random orphans ``rounds`` times (or for ``duration`` seconds), each reference held a moment.

    Each round: see whether the object exists (the dedup check), commit a row
    referencing it (uploading first when it did not exist), call ``ensure()``
    (re-uploading on ``gone``), hold the row a moment, check that the object
    is still available, then delete the row so that the key becomes an orphan
    again and the collectors keep racing for it. Violations are recorded.
    """
    rng = random.Random(seed)
    config = api.resolve_config(config_path)
    engine = sa.create_engine(db_url)
    store = api.Session(config).store("main")
    deadline = time.monotonic() + duration
    done = 0
    try:
        while done < rounds if rounds is not None else time.monotonic() < deadline:
            key = rng.choice(ORPHANS)
            tag = uuid.uuid4().hex
            exists = store.exists(key)
            # the check-then-commit window; without ensure() it must stay shorter than grace
            time.sleep(rng.random() * (0.01 if use_ensure else 0.15))
            if not exists:
                if not use_ensure:
                    continue  # only dedup hits: an upload here would mask a lost object
                store.write(key, b"payload")  # no dedup hit: upload it
            with engine.begin() as conn:
                conn.execute(
                    sa.text("INSERT INTO assets (blob_key, tag) VALUES (:k, :t)"), {"k": key, "t": tag}
                )
            if use_ensure:
                outcome = api.ensure(config, "main", key).value
                if outcome == "gone":
                    store.write(key, b"payload")  # the purge won: upload again
            else:
                outcome = "committed"
            results.append((key, outcome))
            done += 1
            # hold the reference; without ensure() past a whole grace, so that a purge comes in between
            time.sleep(rng.random() * 0.05 if use_ensure else 0.5 + rng.random() * 0.5)
            # with ensure() the object must be at its key; without, at least restorable from the trash
            available = store.exists(key) or (not use_ensure and store.exists("_trash/" + key))
            if not available:
                results.append((key, f"unavailable while referenced (ensure said {outcome})"))
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM assets WHERE tag = :t"), {"t": tag})
    finally:
        engine.dispose()


def _process_writer(config_path: str, db_url: str, seed: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    results: list[tuple[str, str]] = []
    writer(config_path, db_url, seed, DURATION, results, rounds=ROUNDS)
    queue.put(results)


def collector_loop(
    config_path: Path,
    until: float | threading.Event,
    errors: list[BaseException],
    seed: int,
    grace: float = 0.0,
) -> None:
    """Quarantine and purge in a loop, for ``until`` seconds or until the event ``until`` is set."""
    rng = random.Random(seed)
    deadline = time.monotonic() + until if isinstance(until, float | int) else None

    def going() -> bool:
        if isinstance(until, threading.Event):
            return not until.is_set()
        return deadline is not None and time.monotonic() < deadline

    while going():
        try:
            api.quarantine(config_path, grace=timedelta(seconds=grace))
            time.sleep(rng.random() * 0.05)
            api.purge(config_path)
        except LockHeld:
            time.sleep(0.01)  # the other collector holds the lease: one collector at a time
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)
            return


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def race_archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    url = request.getfixturevalue(
        {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param]
    )
    archive = make_archive(tmp_path, url, catalog_url=url, min_age="0")
    with archive.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE assets ADD COLUMN tag VARCHAR(64)")
    for key in ORPHANS:
        archive.put(key)
    yield archive
    archive.dispose()


@pytest.mark.timeout(1200)
def test_writers_reusing_orphans_never_lose_data(race_archive: Archive) -> None:
    archive = race_archive
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    processes = [
        ctx.Process(target=_process_writer, args=(str(archive.config_path), archive.db_url, 100 + i, queue))
        for i in range(2)
    ]
    writers = [
        threading.Thread(
            target=writer,
            args=(str(archive.config_path), archive.db_url, i, DURATION, results),
            kwargs={"rounds": ROUNDS},
        )
        for i in range(3)
    ]
    stop = threading.Event()
    collectors = [
        threading.Thread(target=collector_loop, args=(archive.config_path, stop, errors, 50 + i))
        for i in range(2)
    ]
    for p in processes:
        p.start()
    for t in writers + collectors:
        t.start()
    try:
        for _ in processes:
            # bounded by the work (ROUNDS), however slow a loaded machine makes it
            results.extend(queue.get(timeout=900))
        for t in writers:
            t.join()
    finally:
        stop.set()
        for p in processes:
            p.join(timeout=60)
        for t in collectors:
            t.join()
    assert errors == []
    assert [r for r in results if r[1].startswith("unavailable")] == []
    assert len(results) == 5 * ROUNDS  # every claim was made and answered
    raced = Counter(outcome for _, outcome in results)
    print(f"claims: {dict(raced)}")  # how many raced a collector (restored, gone) on this run
    assert raced["restored"] + raced["gone"] > 0, raced
    api.recover(archive.config_path)
    store = archive.store()
    for key in set(archive.referenced()):
        assert store.exists(key), f"committed reference to {key} points at a missing object"


def test_claim_and_purge_never_both_win(race_archive: Archive) -> None:
    archive = race_archive
    archive_config = archive.config_path
    api.quarantine(archive_config, grace=timedelta(0))
    claims: dict[str, str] = {}
    lock = threading.Lock()

    def claimer(seed: int) -> None:
        rng = random.Random(seed)
        keys = ORPHANS[:]
        rng.shuffle(keys)
        for key in keys:
            outcome = api.ensure(archive_config, "main", key)
            with lock:
                claims.setdefault(key, outcome.value)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(3)]
    purger = threading.Thread(target=api.purge, args=(archive_config,))
    for t in [*threads, purger]:
        t.start()
    for t in [*threads, purger]:
        t.join(timeout=120)
    store = archive.store()
    catalog = open_catalog(archive.config.catalog)
    try:
        journal = Journal(catalog)
        for key in ORPHANS:
            entry = journal.latest("main", key)
            assert entry is not None
            if claims[key] == "restored":
                assert entry.state is State.RESTORED, key
                assert store.exists(key), key
            elif claims[key] == "gone":
                assert entry.state is State.PURGED, key
                assert not store.exists(key), key
            else:  # present: the claim came after a restore by another claimer
                assert entry.state is State.RESTORED, key
                assert store.exists(key), key
    finally:
        catalog.dispose()


def test_writers_without_ensure_are_protected_by_grace(tmp_path: Path, pg_url: str) -> None:
    """A writer that never calls ensure() is safe when its check-then-commit is shorter than grace.

    In move mode a quarantined object is gone from its key, so such a writer
    uploads anew; one whose check came just before the move commits its row
    long before the purge, whose re-check then restores the object. The race
    depends on timing, so the scenario runs up to three times (on a busy
    machine one round may not hit it); every round must be safe, and one must
    show the race.
    """
    raced = 0
    for attempt in range(3):
        raced += _grace_round(tmp_path / f"round{attempt}", pg_url, attempt)
        if raced:
            break
    assert raced > 0, "the race never happened: no purge re-check found a new reference"


def _grace_round(root: Path, pg_url: str, attempt: int) -> int:
    """One round; returns how many objects purge re-checks restored."""
    root.mkdir()
    archive = make_archive(root, pg_url, catalog_url=pg_url, min_age="0")
    with archive.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE assets ADD COLUMN tag VARCHAR(64)")
        if attempt:  # a fresh journal and audit log for the new round (same keys, new store)
            conn.exec_driver_sql("DELETE FROM reclaim_objects")
            conn.exec_driver_sql("DELETE FROM reclaim_runs")
    for key in ORPHANS:
        archive.put(key)
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=writer, args=(str(archive.config_path), archive.db_url, i, DURATION, results, False)
        )
        for i in range(16)
    ]
    threads.append(
        threading.Thread(target=collector_loop, args=(archive.config_path, DURATION + 2, errors, 7, 0.4))
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert [r for r in results if r[1].startswith("unavailable")] == []
    assert results, "no writer committed a reference"
    restored_at_purge = sum(
        r.counts.get("purged", {}).get("main", {}).get("restored", 0)
        for r in api.runs(archive.config_path, limit=10_000)
    )
    api.recover(archive.config_path)
    time.sleep(0.5)
    api.purge(archive.config_path)
    store = archive.store()
    for key in set(archive.referenced()):
        assert store.exists(key), f"committed reference to {key} points at a missing object"
    archive.dispose()
    return int(restored_at_purge)
