"""The object journal on SQLite, PostgreSQL and MariaDB: intents, compare-and-set, queries, races."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

import reclaim.catalog.journal as journal_module
from reclaim.catalog import (
    ACTIVE,
    IN_FLIGHT,
    TERMINAL,
    TRANSITIONS,
    Catalog,
    Entry,
    Journal,
    State,
    open_catalog,
    sha256_hex,
)
from reclaim.config import CatalogConfig

from .helpers import open_tracked

STORE = "blobs"
WEEK = timedelta(days=7)


@pytest.fixture
def journal(catalog: Catalog) -> Journal:
    return Journal(catalog)


def _intent(
    journal: Journal, key: str, *, store: str = STORE, run_id: int | None = 1, **fields: Any
) -> Entry:
    values: dict[str, Any] = {"mode": "mark", "trash_key": None, "size": 10, "mtime": 1.5e9, "etag": "e"}
    values |= fields
    entry = journal.record_intent(store, key, run_id=run_id, **values)
    assert entry is not None, key
    return entry


def _move(journal: Journal, entry: Entry, to: State, **fields: Any) -> Entry:
    moved = journal.transition(entry, to, **fields)
    assert moved is not None, (entry, to)
    return moved


def _in_state(journal: Journal, key: str, state: State, *, due_at: datetime | None = None) -> Entry:
    """A fresh entry for ``key`` brought into ``state`` along the lifecycle."""
    entry = _intent(journal, key)
    if state is State.QUARANTINING:
        return entry
    if state in (State.PURGED, State.RESTORED):
        return _move(journal, entry, state)
    entry = _move(journal, entry, State.QUARANTINED, due_at=due_at or datetime.now(UTC) + WEEK)
    if state is State.QUARANTINED:
        return entry
    return _move(journal, entry, state)


# -- intents and the lifecycle -------------------------------------------------------------------


def test_an_intent_then_the_whole_purge_path(journal: Journal) -> None:
    before = datetime.now(UTC)
    entry = journal.record_intent(
        STORE,
        "a/b.bin",
        mode="move",
        trash_key="_trash/a/b.bin",
        size=2**40,
        mtime=1_700_000_000.123456789,
        etag='"abc"',
        run_id=7,
    )
    assert entry is not None
    assert entry.state is State.QUARANTINING
    assert entry.version == 1
    assert (entry.store, entry.key, entry.mode, entry.trash_key) == (
        STORE,
        "a/b.bin",
        "move",
        "_trash/a/b.bin",
    )
    assert (entry.size, entry.etag, entry.run_id, entry.updated_run_id) == (2**40, '"abc"', 7, 7)
    assert entry.mtime == 1_700_000_000.123456789  # exactly: mark-mode purges compare for equality
    assert entry.due_at is None
    assert entry.note is None
    assert before <= entry.created_at == entry.updated_at <= datetime.now(UTC)
    assert journal.get(entry.id) == entry
    assert journal.active(STORE, "a/b.bin") == entry

    due = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    quarantined = _move(journal, entry, State.QUARANTINED, run_id=7, due_at=due)
    assert quarantined.state is State.QUARANTINED
    assert quarantined.version == 2
    assert quarantined.due_at == due
    assert quarantined.due_at is not None
    assert quarantined.due_at.utcoffset() == timedelta(0)
    assert quarantined.updated_at >= entry.updated_at
    assert journal.get(entry.id) == quarantined

    purging = _move(journal, quarantined, State.PURGING, run_id=8)
    assert (purging.state, purging.version, purging.run_id, purging.updated_run_id) == (
        State.PURGING,
        3,
        7,
        8,
    )
    assert journal.get(entry.id) == purging
    assert journal.active(STORE, "a/b.bin") == purging

    purged = _move(journal, purging, State.PURGED, run_id=8, note="purged")
    assert (purged.state, purged.version, purged.note) == (State.PURGED, 4, "purged")
    assert purged.due_at == due  # kept: when it was due is history
    assert journal.get(entry.id) == purged
    assert journal.active(STORE, "a/b.bin") is None
    assert journal.latest(STORE, "a/b.bin") == purged


def test_the_restore_path_and_changes_given_with_a_transition(journal: Journal) -> None:
    entry = _in_state(journal, "k", State.QUARANTINED)
    restoring = _move(journal, entry, State.RESTORING, note="claimed by ensure")
    assert restoring.updated_run_id is None
    restored = _move(journal, restoring, State.RESTORED, run_id=3, etag="new", mtime=1_800_000_000.000000125)
    assert restored.note == "claimed by ensure"  # not given: unchanged
    assert (restored.etag, restored.mtime, restored.updated_run_id) == ("new", 1_800_000_000.000000125, 3)
    assert journal.get(entry.id) == restored
    assert journal.active(STORE, "k") is None


def test_a_second_intent_for_an_active_key_returns_none(journal: Journal) -> None:
    for number, state in enumerate(sorted(ACTIVE)):
        key = f"key-{number}"
        entry = _in_state(journal, key, state)
        assert (
            journal.record_intent(
                STORE, key, mode="mark", trash_key=None, size=1, mtime=None, etag=None, run_id=2
            )
            is None
        )
        assert journal.active(STORE, key) == entry
        assert journal.select(store=STORE, states=list(State), keys=[key]) == [entry]


def test_a_new_intent_succeeds_once_the_key_reached_a_terminal_state(journal: Journal) -> None:
    first = _in_state(journal, "k", State.PURGED)
    second = _intent(journal, "k", run_id=2)
    assert second.id != first.id
    assert journal.active(STORE, "k") == second
    assert journal.latest(STORE, "k") == second
    restored = _move(journal, second, State.RESTORED)
    third = _intent(journal, "k", run_id=3)
    assert (
        journal.record_intent(
            STORE, "k", mode="mark", trash_key=None, size=1, mtime=None, etag=None, run_id=4
        )
        is None
    )
    assert [e.id for e in journal.select(store=STORE, states=list(State), keys=["k"])] == [
        first.id,
        restored.id,
        third.id,
    ]


def test_the_same_key_in_another_store_is_another_object(journal: Journal) -> None:
    one = _intent(journal, "k", store="one")
    two = _intent(journal, "k", store="two")
    assert journal.active("one", "k") == one
    assert journal.active("two", "k") == two


def test_keys_differing_only_by_case_or_trailing_space_are_distinct(journal: Journal) -> None:
    keys = ["a", "A", "a ", "a\t", " a"]
    entries = {key: _intent(journal, key) for key in keys}
    for key in keys:
        assert journal.active(STORE, key) == entries[key]
        assert journal.latest(STORE, key) == entries[key]
        assert journal.select(store=STORE, states=[State.QUARANTINING], keys=[key]) == [entries[key]]
    _move(journal, entries["a"], State.RESTORED)
    assert journal.active(STORE, "a") is None
    assert journal.active(STORE, "A") == entries["A"]
    assert journal.active(STORE, "a ") == entries["a "]


def test_a_key_of_the_longest_length_and_any_characters_round_trips(journal: Journal) -> None:
    key = "ü/😀/" + "x" * (1024 - 4)
    entry = _intent(journal, key, mode="move", trash_key="_trash/" + key[:1000])
    assert len(key) == 1024
    assert journal.get(entry.id) == entry
    assert journal.active(STORE, key) == entry


def test_an_intent_without_a_run_is_allowed(journal: Journal) -> None:
    entry = _intent(journal, "k", run_id=None)
    assert entry.run_id is None
    assert journal.get(entry.id) == entry


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": ""}, "must not be empty"),
        ({"key": "x" * 1025}, "1025 characters"),
        ({"mode": "copy"}, "mode"),
        ({"mode": "move", "trash_key": None}, "trash key"),
        ({"mtime": float("nan")}, "finite"),
    ],
)
def test_a_malformed_intent_is_refused(
    sqlite_url: str, catalogs: list[Catalog], fields: dict[str, Any], message: str
) -> None:
    catalog = open_tracked(catalogs, sqlite_url)
    catalog.upgrade()
    values: dict[str, Any] = {
        "key": "k",
        "mode": "mark",
        "trash_key": None,
        "size": 1,
        "mtime": 1.0,
        "etag": None,
    }
    values |= fields
    key = values.pop("key")
    with pytest.raises(ValueError, match=message):
        Journal(catalog).record_intent(STORE, key, run_id=1, **values)
    assert Journal(catalog).in_flight() == []


# -- compare-and-set ---------------------------------------------------------------------------


def test_every_transition_outside_the_lifecycle_raises_and_changes_nothing(
    sqlite_url: str, catalogs: list[Catalog]
) -> None:
    catalog = open_tracked(catalogs, sqlite_url)
    catalog.upgrade()
    journal = Journal(catalog)
    for number, state in enumerate(State):
        entry = _in_state(journal, f"k{number}", state)
        for to in State:
            if to in TRANSITIONS[state]:
                continue
            with pytest.raises(ValueError, match="not a lifecycle transition"):
                journal.transition(entry, to)
        assert journal.get(entry.id) == entry
    assert TRANSITIONS[State.PURGED] == TRANSITIONS[State.RESTORED] == frozenset()


@pytest.mark.parametrize(("start", "to"), [(s, t) for s in State for t in sorted(TRANSITIONS[s])])
def test_every_lifecycle_transition_applies(
    db_url: str, catalogs: list[Catalog], start: State, to: State
) -> None:
    catalog = open_tracked(catalogs, db_url)
    catalog.upgrade()
    journal = Journal(catalog)
    entry = _in_state(journal, "k", start)
    moved = _move(journal, entry, to, run_id=5)
    assert (moved.state, moved.version, moved.updated_run_id) == (to, entry.version + 1, 5)
    assert journal.get(entry.id) == moved
    assert (journal.active(STORE, "k") is not None) == (to in ACTIVE)


def test_a_stale_entry_loses_even_when_the_state_came_back(journal: Journal) -> None:
    entry = _in_state(journal, "k", State.QUARANTINED)
    purging = _move(journal, entry, State.PURGING)
    back = _move(journal, purging, State.QUARANTINED, note="purge rolled back")
    # same state as `entry`, newer version: the old reading must not win (no ABA)
    assert journal.transition(entry, State.RESTORING) is None
    assert journal.transition(purging, State.PURGED) is None
    assert journal.get(entry.id) == back
    assert journal.transition(back, State.RESTORING) is not None


def test_a_transition_of_an_entry_that_was_expired_loses(journal: Journal) -> None:
    entry = _in_state(journal, "k", State.RESTORED)
    assert journal.expire(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert journal.get(entry.id) is None
    ghost = replace(entry, state=State.QUARANTINED, version=2)
    assert journal.transition(ghost, State.PURGING) is None


def test_naive_datetimes_are_refused(journal: Journal) -> None:
    entry = _intent(journal, "k")
    with pytest.raises(ValueError, match="timezone-aware"):
        journal.transition(entry, State.QUARANTINED, due_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        journal.due(STORE, datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        journal.expire(datetime(2030, 1, 1))
    assert journal.get(entry.id) == entry


# -- races ---------------------------------------------------------------------------------------

ROUNDS = 4
PER_ROUND = 25
RIVALS = (State.PURGING, State.RESTORING)


def _quarantined_rounds(journal: Journal) -> list[list[Entry]]:
    return [
        [_in_state(journal, f"race/{r}/{i}", State.QUARANTINED) for i in range(PER_ROUND)]
        for r in range(ROUNDS)
    ]


def _race(journal: Journal, rounds: list[list[Entry]], to: State, start: Any, number: int) -> list[int]:
    """Move every entry of every round to ``to``, all rivals starting each round together."""
    won: list[int] = []
    for index, entries in enumerate(rounds):
        # half the rounds in the same order (head-on), half in opposite orders
        ordered = entries if index % 2 == 0 or number == 0 else entries[::-1]
        start.wait(timeout=60)
        won += [entry.id for entry in ordered if journal.transition(entry, to, run_id=number) is not None]
    return won


def _check_one_winner_each(journal: Journal, rounds: list[list[Entry]], wins: list[list[int]]) -> None:
    assert set(wins[0]).isdisjoint(wins[1])
    for entries in rounds:
        for entry in entries:
            now = journal.get(entry.id)
            assert now is not None
            winners = [n for n, ids in enumerate(wins) if entry.id in ids]
            assert len(winners) == 1, entry
            assert now.state is RIVALS[winners[0]]
            assert now.version == entry.version + 1
            assert now.updated_run_id == winners[0]


def test_a_purge_and_a_restore_racing_in_threads_never_both_win(db_url: str, catalogs: list[Catalog]) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    rounds = _quarantined_rounds(Journal(setup))
    rivals = [Journal(open_tracked(catalogs, db_url)) for _ in RIVALS]
    start = threading.Barrier(len(RIVALS))
    wins: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def rival(number: int) -> None:
        try:
            wins[number] = _race(rivals[number], rounds, RIVALS[number], start, number)
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=rival, args=(number,)) for number in range(len(RIVALS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    _check_one_winner_each(Journal(setup), rounds, wins)


def _race_in_a_process(url: str, rounds: list[list[Entry]], number: int, start: Any, results: Any) -> None:
    """A rival in a process of its own, with its own catalog (run by multiprocessing's spawn)."""
    catalog = open_catalog(CatalogConfig(url=url))
    try:
        results.put((number, _race(Journal(catalog), rounds, RIVALS[number], start, number)))
    except BaseException as exc:
        start.abort()
        results.put((number, repr(exc)))
    finally:
        catalog.dispose()


def test_a_purge_and_a_restore_racing_in_processes_never_both_win(
    db_url: str, catalogs: list[Catalog]
) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    rounds = _quarantined_rounds(Journal(setup))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(RIVALS))
    results = context.Queue()
    processes = [
        context.Process(target=_race_in_a_process, args=(db_url, rounds, number, start, results))
        for number in range(len(RIVALS))
    ]
    for process in processes:
        process.start()
    wins: list[list[int]] = [[], []]
    try:
        for _ in processes:
            number, won = results.get(timeout=120)
            assert isinstance(won, list), won
            wins[number] = won
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():  # pragma: no cover - only when the test already failed
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    assert [process.exitcode for process in processes] == [0, 0]
    _check_one_winner_each(Journal(setup), rounds, wins)


def test_concurrent_intents_for_one_key_record_exactly_one(db_url: str, catalogs: list[Catalog]) -> None:
    setup = open_tracked(catalogs, db_url)
    setup.upgrade()
    workers = [Journal(open_tracked(catalogs, db_url)) for _ in range(4)]
    keys = [f"intent/{i}" for i in range(20)]
    start = threading.Barrier(len(workers))
    recorded: queue.Queue[tuple[str, int]] = queue.Queue()
    errors: list[BaseException] = []

    def worker(journal: Journal) -> None:
        try:
            start.wait(timeout=60)
            for key in keys:
                entry = journal.record_intent(
                    STORE, key, mode="mark", trash_key=None, size=1, mtime=None, etag=None, run_id=1
                )
                if entry is not None:
                    recorded.put((key, entry.id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(journal,)) for journal in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    winners: dict[str, list[int]] = {}
    while not recorded.empty():
        key, entry_id = recorded.get()
        winners.setdefault(key, []).append(entry_id)
    assert sorted(winners) == sorted(keys)
    assert all(len(ids) == 1 for ids in winners.values()), winners
    for key, (entry_id,) in winners.items():
        active = Journal(setup).active(STORE, key)
        assert active is not None
        assert active.id == entry_id
    assert len(Journal(setup).select(states=list(State), limit=1000)) == len(keys)


# -- queries ---------------------------------------------------------------------------------


def test_due_returns_quarantined_entries_past_grace_by_id_in_pages(journal: Journal) -> None:
    now = datetime.now(UTC)
    past, future = now - timedelta(hours=1), now + timedelta(hours=1)
    due = [_in_state(journal, f"due/{i}", State.QUARANTINED, due_at=past) for i in range(5)]
    _in_state(journal, "later", State.QUARANTINED, due_at=future)
    exactly_now = _in_state(journal, "now", State.QUARANTINED, due_at=now)
    _move(journal, _in_state(journal, "purging", State.QUARANTINED, due_at=past), State.PURGING)
    late_but_due = _in_state(journal, "late", State.QUARANTINED, due_at=past)
    other = _move(journal, _intent(journal, "x", store="other"), State.QUARANTINED, due_at=past)

    expected = [*due, exactly_now, late_but_due]
    assert journal.due(STORE, now) == expected
    first = journal.due(STORE, now, limit=3)
    assert first == expected[:3]
    assert journal.due(STORE, now, limit=3, after_id=first[-1].id) == expected[3:6]
    assert journal.due(STORE, now, limit=3, after_id=expected[-1].id) == []
    assert journal.due(STORE, past - timedelta(seconds=1)) == []
    assert journal.due("other", now) == [other]
    with pytest.raises(ValueError, match="limit"):
        journal.due(STORE, now, limit=0)


def test_in_flight_returns_entries_in_the_middle_of_a_step(journal: Journal) -> None:
    mine = {state: _in_state(journal, f"k-{state}", state) for state in State}
    other = _intent(journal, "k", store="other")

    assert journal.in_flight(STORE) == sorted((mine[state] for state in IN_FLIGHT), key=lambda e: e.id)
    assert journal.in_flight("other") == [other]
    assert journal.in_flight() == sorted([*(mine[s] for s in IN_FLIGHT), other], key=lambda e: e.id)
    assert journal.in_flight("nowhere") == []


def test_select_by_keys_run_time_and_state_in_pages(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "_KEYS_PER_QUERY", 3)  # several IN lists
    first_run = [_in_state(journal, f"r1/{i}", State.QUARANTINED) for i in range(5)]
    restored = _in_state(journal, "r1/restored", State.RESTORED)
    cutoff = datetime.now(UTC)
    second_run = []
    for i in range(4):
        entry = _intent(journal, f"r2/{i}", run_id=2)
        second_run.append(_move(journal, entry, State.QUARANTINED, due_at=cutoff + WEEK))
    elsewhere = _move(journal, _intent(journal, "r1/1", store="other"), State.QUARANTINED)

    everything_quarantined = [*first_run, *second_run]
    assert journal.select(store=STORE) == everything_quarantined
    keys = ["r1/1", "r2/3", "r1/4", "missing", "r1/restored", "R1/1", "r1/1 "]
    assert journal.select(store=STORE, keys=keys) == [first_run[1], first_run[4], second_run[3]]
    assert journal.select(store=STORE, keys=keys, states=[State.RESTORED]) == [restored]
    assert journal.select(store=STORE, keys=keys, limit=2) == [first_run[1], first_run[4]]
    assert journal.select(store=STORE, keys=keys, after_id=first_run[4].id) == [second_run[3]]
    assert journal.select(store=STORE, run_id=2) == second_run
    assert journal.select(store=STORE, since=cutoff) == second_run
    assert journal.select(since=cutoff) == [*second_run, elsewhere]
    assert journal.select(keys=["r1/1"]) == [first_run[1], elsewhere]
    assert journal.select(store="other", keys=["r1/1"]) == [elsewhere]
    assert journal.select(store="nowhere") == []
    assert journal.select(keys=[]) == []
    assert journal.select(states=[]) == []
    page = journal.select(store=STORE, limit=4)
    assert page == everything_quarantined[:4]
    assert journal.select(store=STORE, limit=4, after_id=page[-1].id) == everything_quarantined[4:8]
    with pytest.raises(ValueError, match="limit"):
        journal.select(limit=0)


def test_summary_counts_and_sizes_by_state(journal: Journal) -> None:
    empty = journal.summary(STORE)
    assert (empty.quarantined, empty.quarantined_bytes, empty.in_flight, empty.purged, empty.restored) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert empty.oldest is None
    assert empty.next_due is None

    soon = datetime.now(UTC) + timedelta(hours=1)
    oldest = _in_state(journal, "q1", State.QUARANTINED, due_at=soon + WEEK)
    _in_state(journal, "q2", State.QUARANTINED, due_at=soon)
    _move(journal, _intent(journal, "q3", size=None), State.QUARANTINED, due_at=soon + WEEK)
    for key in ("p1", "p2"):
        _move(journal, _intent(journal, key, size=2**35), State.PURGED)
    _in_state(journal, "r", State.RESTORED)
    for state in IN_FLIGHT:
        _in_state(journal, f"f-{state}", state)
    _in_state(journal, "elsewhere", State.QUARANTINED)
    _move(journal, _intent(journal, "x", store="other", size=99), State.QUARANTINED, due_at=soon)

    summary = journal.summary(STORE)
    assert summary.store == STORE
    assert summary.quarantined == 4
    assert summary.quarantined_bytes == 30  # the entry of unknown size counts, its bytes do not
    assert summary.oldest == oldest.created_at
    assert summary.next_due == soon
    assert summary.in_flight == 3
    assert (summary.purged, summary.purged_bytes) == (2, 2**36)
    assert summary.restored == 1
    assert journal.summary("other").quarantined_bytes == 99


def test_expire_deletes_old_terminal_entries_only(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_module, "_EXPIRE_BATCH", 2)  # several batches
    old = [_in_state(journal, f"old/{state}/{i}", state) for state in State for i in range(3)]
    cutoff = datetime.now(UTC) + timedelta(microseconds=1)
    young = [_in_state(journal, f"young/{state}", state) for state in TERMINAL]

    assert journal.expire(cutoff) == 6
    remaining = journal.select(states=list(State))
    assert {e.id for e in remaining} == {e.id for e in old if e.state in ACTIVE} | {e.id for e in young}
    assert journal.expire(cutoff) == 0
    # an active entry is never expired, however old
    assert journal.expire(datetime.now(UTC) + timedelta(days=365)) == 2
    assert {e.state for e in journal.select(states=list(State))} <= ACTIVE


# -- migrations --------------------------------------------------------------------------------


def test_upgrading_a_0001_catalog_keeps_entries_and_marks_the_active_ones(
    sqlite_url: str, catalogs: list[Catalog]
) -> None:
    catalog = open_tracked(catalogs, sqlite_url)
    with catalog.engine.begin() as connection:
        command.upgrade(catalog._alembic_config(connection), "0001")
    assert catalog.revision() == "0001"
    now = datetime.now(UTC)
    with catalog.begin() as connection:
        for key, state in (("live", "QUARANTINED"), ("gone", "PURGED")):
            connection.execute(
                sa.text(
                    "INSERT INTO reclaim_objects (store, key, key_hash, state, version, mode, run_id, "
                    "created_at, updated_at, mtime) VALUES (:s, :k, :h, :st, 2, 'mark', 1, :t, :t, :t)"
                ),
                {"s": STORE, "k": key, "h": sha256_hex(key), "st": state, "t": now.replace(tzinfo=None)},
            )

    catalog.upgrade()

    journal = Journal(catalog)
    live = journal.active(STORE, "live")
    assert live is not None
    assert live.mtime == now.timestamp()  # from the microsecond column, as 0001 kept it
    assert journal.active(STORE, "gone") is None
    assert (
        journal.record_intent(
            STORE, "live", mode="mark", trash_key=None, size=1, mtime=None, etag=None, run_id=2
        )
        is None
    )
    assert (
        journal.record_intent(
            STORE, "gone", mode="mark", trash_key=None, size=1, mtime=None, etag=None, run_id=None
        )
        is not None
    )
