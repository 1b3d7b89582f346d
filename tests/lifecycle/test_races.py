"""The race that makes peers lose data, with real concurrent writers and collectors.

Writers reuse old orphans (deduplicated content): each sees that the object
exists, skips the upload, commits a row pointing at it and calls ``ensure()``
(re-uploading when it answers ``gone``). Meanwhile collectors run quarantine
and purge with a grace of zero, in a loop, until the writers are done. Writers
run as threads and as separate processes, with random pauses so that every run
explores different interleavings. Afterwards every committed reference must
point at an object, and no object a writer's ``ensure()`` declared available
may have vanished.

What is asserted does not depend on timing:

- the safety assertions hold on every run, whatever the interleaving;
- the writers do a fixed number of rounds, not rounds for a fixed time, so a
  loaded machine makes the test slower, never weaker;
- the races are driven up by construction, not hoped for: a writer picks a
  key a collector has in the trash right now when there is one (the exact
  keys being quarantined), and the scenario that must race every time
  (``test_a_writer_whose_check_came_before_the_move_is_saved_by_the_purge_recheck``)
  pauses a real collector at the instant the race needs;
- how many races actually happened (claims that restored or found an object
  gone, and re-checks that found a new reference) is printed, never compared
  with a threshold that load could break.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from reclaim import api
from reclaim.catalog import Journal, State, open_catalog
from reclaim.errors import LockHeld

from .archive import Archive, make_archive
from .processes import start, wait_stopped

ORPHANS = [f"blobs/dedup/{i:03d}" for i in range(40)]
#: rounds of each ensure() writer
ROUNDS = 25
#: rounds of each writer that never calls ensure() (each holds its row past a grace)
GRACE_ROUNDS = 3


def writer(
    config_path: str,
    db_url: str,
    seed: int,
    rounds: int,
    results: list[tuple[str, str]],
    use_ensure: bool = True,
    target: State = State.QUARANTINING,
) -> None:
    """Reuse orphans ``rounds`` times, each reference held a moment.

    Each round: pick a key (one whose journal entry is in ``target`` right
    now, when there is one: :func:`_target`), see whether the object exists (the dedup
    check), commit a row referencing it (uploading first when it did not
    exist), call ``ensure()`` (re-uploading on ``gone``), hold the row a
    moment, check that the object is still available, then delete the row so
    that the key becomes an orphan again and the collectors keep racing for
    it. Violations are recorded.
    """
    rng = random.Random(seed)
    config = api.resolve_config(config_path)
    engine = sa.create_engine(db_url)
    store = api.Session(config).store("main")
    catalog = open_catalog(config.catalog)
    journal = Journal(catalog)
    try:
        for _ in range(rounds):
            key = _target(rng, journal, target)
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
            # hold the reference; without ensure() past a whole grace, so that a purge comes in between
            time.sleep(rng.random() * 0.05 if use_ensure else 0.5 + rng.random() * 0.5)
            # with ensure() the object must be at its key; without, at least restorable from the trash
            available = store.exists(key) or (not use_ensure and store.exists("_trash/" + key))
            if not available:
                results.append((key, f"unavailable while referenced (ensure said {outcome})"))
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM assets WHERE tag = :t"), {"t": tag})
    finally:
        catalog.dispose()
        engine.dispose()


def _target(rng: random.Random, journal: Journal, state: State) -> str:
    """A key whose journal entry is in ``state`` right now when one shows soon, else any orphan.

    QUARANTINING (``move`` mode): the collector is about to move it, so a
    writer that checks it and commits a moment later has its check before the
    move and its commit after. QUARANTINED (``mark`` mode, where the object
    stays at its key): the writer's claim races the purge for it.
    """
    for _ in range(20):
        if state is State.QUARANTINED:
            keys = [e.key for e in journal.due("main", _LATER, limit=len(ORPHANS))]
        else:
            keys = [e.key for e in journal.in_flight("main") if e.state is state]
        if keys:
            return rng.choice(keys)
        time.sleep(0.01)
    return rng.choice(ORPHANS)


#: a due time past every entry's: ``due`` then lists every QUARANTINED entry
_LATER = datetime(9999, 1, 1, tzinfo=UTC)


def _races(archive: Archive) -> dict[str, int]:
    """How often a re-check found a writer's new reference (quarantine skipped or purge restored it)."""
    with archive.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT note, COUNT(*) FROM reclaim_objects WHERE note IN "
            "('referenced at quarantine', 'referenced at purge') GROUP BY note"
        )
        return {str(note): int(count) for note, count in rows}


def _process_writer(
    config_path: str,
    db_url: str,
    seed: int,
    target: State,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    results: list[tuple[str, str]] = []
    writer(config_path, db_url, seed, ROUNDS, results, target=target)
    queue.put(results)


def collector_loop(
    config_path: Path, stop: threading.Event, errors: list[BaseException], seed: int, grace: float = 0.0
) -> None:
    """Quarantine and purge in a loop until ``stop`` is set (the writers are done)."""
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            api.quarantine(config_path, grace=timedelta(seconds=grace))
            time.sleep(rng.random() * 0.05)
            api.purge(config_path)
        except LockHeld:
            time.sleep(0.01)  # the other collector holds the lease: one collector at a time
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)
            return


#: each dialect's journal compare-and-set once, in the mode whose race it takes: ``move`` races the
#: writer's check against the move, ``mark`` (the object stays at its key) a claim against the purge
RACES = [("sqlite", "move"), ("postgresql", "mark"), ("mysql", "move")]


@pytest.fixture(params=RACES, ids=[f"{dialect}-{mode}" for dialect, mode in RACES])
def race_archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    dialect, mode = request.param
    url = request.getfixturevalue(
        {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[dialect]
    )
    archive = make_archive(tmp_path, url, catalog_url=url, min_age="0", mode=mode)
    with archive.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE assets ADD COLUMN tag VARCHAR(64)")
    for key in ORPHANS:
        archive.put(key)
    yield archive
    archive.dispose()


@pytest.mark.timeout(1200)
def test_writers_reusing_orphans_never_lose_data(race_archive: Archive) -> None:
    archive = race_archive
    target = State.QUARANTINED if archive.config.stores["main"].mode == "mark" else State.QUARANTINING
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    processes = [
        ctx.Process(
            target=_process_writer, args=(str(archive.config_path), archive.db_url, 100 + i, target, queue)
        )
        for i in range(2)
    ]
    writers = [
        threading.Thread(
            target=writer,
            args=(str(archive.config_path), archive.db_url, i, ROUNDS, results),
            kwargs={"target": target},
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
    claims = Counter(outcome for _, outcome in results)
    # how many raced a collector on this run: reported, not asserted (the count depends on timing)
    print(f"claims: {dict(claims)} (restored and gone raced a collector); re-checks: {_races(archive)}")
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
    long before the purge, whose re-check then restores the object. Sixteen
    such writers race a collector for a fixed number of rounds; every run
    must be safe, and how many purge re-checks restored an object is printed.
    The race itself is made certain by the next test.
    """
    archive = make_archive(tmp_path, pg_url, catalog_url=pg_url, min_age="0")
    with archive.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE assets ADD COLUMN tag VARCHAR(64)")
    for key in ORPHANS:
        archive.put(key)
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    writers = [
        threading.Thread(
            target=writer, args=(str(archive.config_path), archive.db_url, i, GRACE_ROUNDS, results, False)
        )
        for i in range(16)
    ]
    collector = threading.Thread(target=collector_loop, args=(archive.config_path, stop, errors, 7, 0.4))
    for t in [*writers, collector]:
        t.start()
    try:
        for t in writers:
            t.join()
    finally:
        stop.set()
        collector.join()
    assert errors == []
    assert [r for r in results if r[1].startswith("unavailable")] == []
    restored_at_purge = sum(
        r.counts.get("purged", {}).get("main", {}).get("restored", 0)
        for r in api.runs(archive.config_path, limit=10_000)
    )
    print(
        f"references committed: {len(results)}; restored by a purge re-check: {restored_at_purge}; "
        f"re-checks: {_races(archive)}"
    )
    api.recover(archive.config_path)
    api.purge(archive.config_path, due_before=datetime.now(UTC) + timedelta(seconds=1))
    store = archive.store()
    for key in set(archive.referenced()):
        assert store.exists(key), f"committed reference to {key} points at a missing object"
    archive.dispose()


def test_a_writer_whose_check_came_before_the_move_is_saved_by_the_purge_recheck(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The race of the test above, every time: the writer's dedup check falls just before the move.

    A real ``reclaim quarantine`` stops itself after its re-check, before it
    moves anything (``RECLAIM_PAUSE=quarantine.after-recheck``). The writer
    sees the objects at their keys (a dedup hit: no upload), the collector
    moves them to the trash, and only then does the writer commit its rows,
    without calling ``ensure()``. Within grace, the purge's re-check must find
    those rows and restore every object to its key, bytes intact.
    """
    archive = make_archive(tmp_path, sqlite_url, min_age="0", mode="move")
    keys = ORPHANS[:6]
    try:
        for key in keys:
            archive.put(key, key.encode())
        paused = start(archive, "quarantine", pause="quarantine.after-recheck")
        try:
            wait_stopped(paused)
            store = archive.store()
            assert all(store.exists(key) for key in keys)  # the writer's dedup check: every one a hit
        finally:
            paused.send_signal(signal.SIGCONT)
            _, err = paused.communicate(timeout=180)
        assert paused.returncode == 0, err
        assert not any(store.exists(key) for key in keys)  # moved after the writer's check
        for key in keys:
            archive.reference(key)  # the writer commits, never calling ensure()
        report = api.purge(archive.config_path)
        assert report.purged[0].restored == len(keys)
        assert report.purged[0].purged.count == 0
        assert all(store.exists(key) and store.read(key) == key.encode() for key in keys)
    finally:
        archive.dispose()
