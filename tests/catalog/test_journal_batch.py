"""Batched journal writes on SQLite, PostgreSQL and MariaDB: many intents or compare-and-sets per transaction.

The same two rules as one entry at a time (``test_journal.py``): at most one
active entry per key, whoever records it, and every state change a
compare-and-set, with real concurrent writers in threads and processes.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import reclaim.catalog._batch as batch_module
from reclaim.catalog import KEY_LENGTH, Catalog, Entry, Intent, Journal, State, open_catalog, sha256_hex
from reclaim.config import CatalogConfig

from .helpers import open_tracked

STORE = "blobs"
WEEK = timedelta(days=7)


@pytest.fixture
def journal(catalog: Catalog) -> Journal:
    return Journal(catalog)


def _intents(keys: list[str], **fields: Any) -> list[Intent]:
    return [Intent(key, size=len(key), mtime=1.7e9 + 0.123456789, etag=f"e-{key}", **fields) for key in keys]


def _recorded(journal: Journal, keys: list[str], **options: Any) -> list[Entry]:
    merged: dict[str, Any] = {"mode": "mark", "run_id": 1, **options}
    entries = journal.record_intents(STORE, _intents(keys), **merged)
    assert all(entry is not None for entry in entries), entries
    return [entry for entry in entries if entry is not None]


def _all_entries(journal: Journal) -> list[Entry]:
    return journal.select(states=list(State), limit=100_000)


# -- record_intents ------------------------------------------------------------------------------


def test_record_intents_records_each_key_as_record_intent_would(journal: Journal) -> None:
    before = datetime.now(UTC)
    keys = ["b/2", "a/1", "c/3", "é/日本"]
    entries = journal.record_intents(
        STORE, _intents(keys, trash_key=None), mode="mark", run_id=7
    ) + journal.record_intents(STORE, [Intent("m/1", trash_key="_trash/m/1")], mode="move", run_id=None)
    assert [entry.key if entry else None for entry in entries] == [*keys, "m/1"]
    for entry in entries:
        assert entry is not None
        assert entry.state is State.QUARANTINING
        assert entry.version == 1
        assert entry.store == STORE
        assert before <= entry.created_at == entry.updated_at <= datetime.now(UTC)
        assert entry.due_at is None
        assert entry.note is None
        assert journal.get(entry.id) == entry  # what was returned is what was stored
        assert journal.active(STORE, entry.key) == entry
    first = entries[0]
    assert first is not None
    assert (first.size, first.etag, first.mtime, first.run_id, first.mode) == (
        3,
        "e-b/2",
        1.7e9 + 0.123456789,
        7,
        "mark",
    )
    last = entries[-1]
    assert last is not None
    assert (last.mode, last.trash_key, last.run_id, last.size, last.mtime) == (
        "move",
        "_trash/m/1",
        None,
        None,
        None,
    )
    assert len({entry.id for entry in entries if entry}) == len(entries)


def test_keys_with_an_active_entry_are_skipped_and_terminal_ones_start_anew(journal: Journal) -> None:
    quarantining = _recorded(journal, ["k/active"])[0]
    done = journal.transition(_recorded(journal, ["k/done"])[0], State.RESTORED)
    assert done is not None
    results = journal.record_intents(
        STORE, _intents(["k/new", "k/active", "k/done", "k/new"]), mode="mark", run_id=2
    )
    new, active, again, duplicate = results
    assert new is not None
    assert new.key == "k/new"
    assert active is None  # as record_intent returns None
    assert duplicate is None  # a key given twice is recorded once
    assert again is not None
    assert again.key == "k/done"
    assert again.id != done.id
    assert journal.get(quarantining.id) == quarantining  # the active entry is untouched
    assert journal.active(STORE, "k/done") == again
    assert len(_all_entries(journal)) == 4
    # the same keys in another store are other objects
    elsewhere = journal.record_intents("other", _intents(["k/active", "k/new"]), mode="mark", run_id=2)
    assert all(entry is not None for entry in elsewhere)


def test_record_intents_spans_several_transactions(journal: Journal) -> None:
    keys = [f"many/{i:05d}" for i in range(batch_module.CHUNK * 2 + 37)]
    half = keys[::2]
    assert len(_recorded(journal, half)) == len(half)
    results = journal.record_intents(STORE, _intents(keys[::-1]), mode="mark", run_id=3)
    # input order is kept; every key recorded already is skipped, every other one recorded
    assert [entry is None for entry in results] == [key in set(half) for key in keys[::-1]]
    assert {entry.key for entry in results if entry} == set(keys) - set(half)
    entries = _all_entries(journal)
    assert len(entries) == len(keys)
    assert sorted(entry.key for entry in entries) == keys


def test_an_invalid_intent_refuses_the_whole_batch(journal: Journal) -> None:
    good = _intents(["ok/1", "ok/2"])
    bad: list[tuple[list[Intent], str, str]] = [
        ([*good, Intent("")], "mark", "empty"),
        ([*good, Intent("x" * (KEY_LENGTH + 1))], "mark", "characters long"),
        ([*good, Intent("ok/3", mtime=float("nan"))], "mark", "finite"),
        ([*good, Intent("ok/3", trash_key=None)], "move", "trash key"),
        (good, "copy", "mode"),
    ]
    for intents, mode, message in bad:
        with pytest.raises(ValueError, match=message):
            journal.record_intents(STORE, intents, mode=mode, run_id=1)
    assert _all_entries(journal) == []
    assert journal.record_intents(STORE, [], mode="mark", run_id=1) == []


def test_an_intent_held_by_an_uncommitted_transaction_is_waited_for(
    catalog: Catalog, catalogs: list[Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer's uncommitted intent: its commit makes the key skipped, its rollback leaves it free.

    On PostgreSQL and InnoDB the batch's insert waits for the other
    transaction on the unique index; on SQLite the batch waits for the write
    lock. Once with the retried chunk, once going key by key after that.
    """
    url = catalog.engine.url.render_as_string(hide_password=False)
    for rounds in (batch_module.CONFLICT_ROUNDS, 1):
        monkeypatch.setattr(batch_module, "CONFLICT_ROUNDS", rounds)
        for outcome in ("commit", "rollback"):
            keys = [f"held/{rounds}/{outcome}/{i}" for i in range(6)]
            contested = keys[3]
            recorded = _record_behind(catalog, Journal(open_tracked(catalogs, url)), keys, contested, outcome)
            skipped = [key for key, entry in zip(keys, recorded, strict=True) if entry is None]
            assert skipped == ([contested] if outcome == "commit" else [])
            for key in keys:
                active = Journal(catalog).active(STORE, key)
                assert active is not None
                assert active.run_id == (None if key in skipped else 5)


def _record_behind(
    catalog: Catalog, batch: Journal, keys: list[str], contested: str, outcome: str
) -> list[Entry | None]:
    """Record ``keys`` with ``batch`` while another transaction holds an open intent of ``contested``."""
    now = datetime.now(UTC)
    row = {
        "store": STORE,
        "key": contested,
        "key_hash": sha256_hex(contested),
        "active_hash": sha256_hex(contested),
        "state": State.QUARANTINING.value,
        "version": 1,
        "mode": "mark",
        "created_at": now,
        "updated_at": now,
    }
    results: list[list[Entry | None]] = []
    errors: list[BaseException] = []

    def record() -> None:
        try:
            results.append(batch.record_intents(STORE, _intents(keys), mode="mark", run_id=5))
        except BaseException as exc:
            errors.append(exc)

    with catalog.engine.connect() as holder:
        transaction = holder.begin()
        holder.execute(catalog.tables.objects.insert().values(**row))
        thread = threading.Thread(target=record)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the batch did not wait for the uncommitted intent"
        getattr(transaction, outcome)()
        thread.join(timeout=60)
    assert errors == []
    [recorded] = results
    return recorded


# -- transition_many -----------------------------------------------------------------------------


def test_transition_many_moves_every_entry_and_returns_what_is_stored(journal: Journal) -> None:
    entries = _recorded(journal, [f"t/{i}" for i in range(5)])
    due = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    moved = journal.transition_many(entries[::-1], State.QUARANTINED, run_id=9, due_at=due, note="n")
    assert [entry.id if entry else None for entry in moved] == [entry.id for entry in entries[::-1]]
    for before, after in zip(entries[::-1], moved, strict=True):
        assert after is not None
        assert (after.state, after.version, after.due_at, after.note) == (State.QUARANTINED, 2, due, "n")
        assert (after.run_id, after.updated_run_id) == (1, 9)
        assert after.updated_at >= before.updated_at
        assert journal.get(after.id) == after
        assert after.active
    assert journal.transition_many([], State.PURGING) == []


def test_a_terminal_state_reached_in_a_batch_frees_the_keys(journal: Journal) -> None:
    entries = _recorded(journal, ["f/1", "f/2"])
    done = journal.transition_many(entries, State.RESTORED, note="referenced at quarantine")
    assert all(entry is not None and entry.state is State.RESTORED for entry in done)
    assert journal.active(STORE, "f/1") is None
    assert all(
        entry is not None
        for entry in journal.record_intents(STORE, _intents(["f/1", "f/2"]), mode="mark", run_id=2)
    )


def test_entries_changed_underneath_lose_and_stay_as_the_winner_left_them(journal: Journal) -> None:
    entries = _recorded(journal, [f"c/{i}" for i in range(6)])
    quarantined = journal.transition_many(entries, State.QUARANTINED, due_at=datetime.now(UTC))
    assert all(quarantined)
    fresh = [entry for entry in quarantined if entry is not None]
    # another actor claims two of them first (as ensure would) and settles a third completely
    claimed = journal.transition(fresh[1], State.RESTORING)
    assert claimed is not None
    settled = journal.transition(fresh[4], State.RESTORING)
    assert settled is not None
    assert journal.transition(settled, State.QUARANTINED) is not None  # same state, newer version
    results = journal.transition_many(fresh, State.PURGING, run_id=3)
    assert [entry is None for entry in results] == [False, True, False, False, True, False]
    assert journal.get(claimed.id) == claimed
    now = journal.get(fresh[4].id)
    assert now is not None
    assert (now.state, now.version) == (State.QUARANTINED, fresh[4].version + 2)
    # entries read before the batch lose against it too
    assert journal.transition_many(fresh[:1], State.RESTORING) == [None]
    # and one that no longer exists at all
    gone = replace(fresh[0], id=10**9)
    assert journal.transition_many([gone], State.PURGING) == [None]


def test_transition_many_refuses_a_bad_batch_before_writing(journal: Journal) -> None:
    entries = _recorded(journal, ["r/1", "r/2"])
    with pytest.raises(ValueError, match="not a lifecycle transition"):
        journal.transition_many(entries, State.PURGING)  # QUARANTINING -> PURGING
    with pytest.raises(ValueError, match="given twice"):
        journal.transition_many([entries[0], entries[1], entries[0]], State.RESTORED)
    with pytest.raises(ValueError, match="timezone-aware"):
        journal.transition_many(entries, State.QUARANTINED, due_at=datetime(2030, 1, 1))
    assert [journal.get(entry.id) for entry in entries] == entries


def test_transition_many_spans_several_transactions(journal: Journal) -> None:
    entries = _recorded(journal, [f"big/{i:05d}" for i in range(batch_module.CHUNK + 123)])
    stale = entries[::7]
    assert all(journal.transition_many(stale, State.RESTORED))
    results = journal.transition_many(entries, State.QUARANTINED, due_at=datetime.now(UTC) + WEEK)
    lost = {entry.id for entry, result in zip(entries, results, strict=True) if result is None}
    assert lost == {entry.id for entry in stale}
    assert journal.summary(STORE).quarantined == len(entries) - len(stale)


# -- races ---------------------------------------------------------------------------------------

KEYS_PER_ROUND = batch_module.CHUNK + 200
INTENT_ROUNDS = 3
WORKERS = 3


def _window(number: int, keys: list[str]) -> list[str]:
    """Overlapping, differently ordered shares of the keys, one per worker."""
    if number == 0:
        return keys[: batch_module.CHUNK]
    if number == 1:
        return keys[200:][::-1]
    shuffled = keys[:]
    random.Random(number).shuffle(shuffled)
    return shuffled


def _record_rounds(journal: Journal, number: int, start: Any) -> list[tuple[str, int]]:
    """Record intents for every round's keys (worker 2 one key at a time), all workers starting together."""
    won: list[tuple[str, int]] = []
    for round_number in range(INTENT_ROUNDS):
        keys = _window(number, [f"race/{round_number}/{i:04d}" for i in range(KEYS_PER_ROUND)])
        start.wait(timeout=120)
        if number == WORKERS - 1:
            results: list[Entry | None] = [
                journal.record_intent(
                    STORE, key, mode="mark", trash_key=None, size=1, mtime=None, etag=None, run_id=number
                )
                for key in keys[:150]
            ]
            results += journal.record_intents(STORE, _intents(keys[150:]), mode="mark", run_id=number)
        else:
            results = journal.record_intents(STORE, _intents(keys), mode="mark", run_id=number)
        won += [(entry.key, entry.id) for entry in results if entry is not None]
    return won


def _check_one_intent_per_key(journal: Journal, wins: list[list[tuple[str, int]]]) -> None:
    by_key: dict[str, list[int]] = {}
    for won in wins:
        for key, entry_id in won:
            by_key.setdefault(key, []).append(entry_id)
    expected = {f"race/{r}/{i:04d}" for r in range(INTENT_ROUNDS) for i in range(KEYS_PER_ROUND)}
    assert set(by_key) == expected
    doubles = {key: ids for key, ids in by_key.items() if len(ids) != 1}
    assert doubles == {}
    entries = _all_entries(journal)
    assert len(entries) == len(expected)  # no second entry, not even a terminal one
    assert {entry.key: entry.id for entry in entries} == {key: ids[0] for key, ids in by_key.items()}
    assert all(entry.state is State.QUARANTINING for entry in entries)


def test_batches_of_intents_racing_in_threads_record_each_key_once(
    db_url: str, catalogs: list[Catalog]
) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    journals = [Journal(open_tracked(catalogs, db_url)) for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS)
    wins: list[list[tuple[str, int]]] = [[] for _ in range(WORKERS)]
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            wins[number] = _record_rounds(journals[number], number, start)
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert all(wins), "every worker recorded some keys"
    _check_one_intent_per_key(Journal(setup), wins)


def _in_a_process(url: str, target: str, number: int, start: Any, results: Any, *args: Any) -> None:
    """Run ``target`` with a catalog of its own in a spawned process; put its result on ``results``."""
    catalog = open_catalog(CatalogConfig(url=url))
    try:
        results.put((number, globals()[target](Journal(catalog), number, start, *args)))
    except BaseException as exc:
        start.abort()
        results.put((number, repr(exc)))
    finally:
        catalog.dispose()


def _run_processes(url: str, target: str, count: int, *args: Any) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(target=_in_a_process, args=(url, target, number, start, results, *args))
        for number in range(count)
    ]
    for process in processes:
        process.start()
    out: list[Any] = [None] * count
    try:
        for _ in processes:
            number, result = results.get(timeout=300)
            assert isinstance(result, list), result
            out[number] = result
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():  # pragma: no cover - only when the test already failed
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    assert [process.exitcode for process in processes] == [0] * count
    return out


def test_batches_of_intents_racing_in_processes_record_each_key_once(
    db_url: str, catalogs: list[Catalog]
) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    wins = _run_processes(db_url, "_record_rounds", WORKERS)
    _check_one_intent_per_key(Journal(setup), [[tuple(pair) for pair in won] for won in wins])


RIVALS = (State.PURGING, State.RESTORING, State.RESTORING)
ENTRIES_PER_ROUND = 120


def _claim_rounds(journal: Journal, number: int, start: Any, rounds: list[list[Entry]]) -> list[int]:
    """Rival 0 purges each round in a batch, rival 1 restores it in a batch (reversed), rival 2 one by one."""
    won: list[int] = []
    for entries in rounds:
        start.wait(timeout=120)
        if number == 2:
            results = [journal.transition(entry, RIVALS[number], run_id=number) for entry in entries[::-1]]
        else:
            ordered = entries if number == 0 else entries[::-1]
            results = journal.transition_many(ordered, RIVALS[number], run_id=number)
        won += [entry.id for entry in results if entry is not None]
    return won


def _check_one_claim_each(journal: Journal, rounds: list[list[Entry]], wins: list[list[int]]) -> None:
    for entries in rounds:
        for entry in entries:
            winners = [number for number, ids in enumerate(wins) if entry.id in ids]
            assert len(winners) == 1, (entry, winners)
            now = journal.get(entry.id)
            assert now is not None
            assert (now.state, now.version, now.updated_run_id) == (
                RIVALS[winners[0]],
                entry.version + 1,
                winners[0],
            )


def _quarantined_rounds(journal: Journal) -> list[list[Entry]]:
    rounds = []
    for round_number in range(3):
        entries = _recorded(journal, [f"claim/{round_number}/{i:03d}" for i in range(ENTRIES_PER_ROUND)])
        moved = journal.transition_many(entries, State.QUARANTINED, due_at=datetime.now(UTC))
        rounds.append([entry for entry in moved if entry is not None])
    return rounds


def test_batched_and_single_claims_racing_in_threads_never_both_win(
    db_url: str, catalogs: list[Catalog]
) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    rounds = _quarantined_rounds(Journal(setup))
    journals = [Journal(open_tracked(catalogs, db_url)) for _ in RIVALS]
    start = threading.Barrier(len(RIVALS))
    wins: list[list[int]] = [[] for _ in RIVALS]
    errors: list[BaseException] = []

    def rival(number: int) -> None:
        try:
            wins[number] = _claim_rounds(journals[number], number, start, rounds)
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=rival, args=(number,)) for number in range(len(RIVALS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    _check_one_claim_each(Journal(setup), rounds, wins)


def test_batched_and_single_claims_racing_in_processes_never_both_win(
    db_url: str, catalogs: list[Catalog]
) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    rounds = _quarantined_rounds(Journal(setup))
    wins = _run_processes(db_url, "_claim_rounds", len(RIVALS), rounds)
    _check_one_claim_each(Journal(setup), rounds, wins)
