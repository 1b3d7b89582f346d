"""The runs' per-day figures equal a recount of the audit log after any runs, finished in any order."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from reclaim.catalog import Catalog, _run_days, browse
from reclaim.catalog.runs import RunStatus

STORES = ("a", "b", "zarr-2.x")
COMMANDS = ("run", "purge", "quarantine", "restore", "collect", "recover")


def _agree(catalog: Catalog) -> dict[Any, list[int]]:
    with catalog.begin() as connection:
        kept = _run_days.kept(connection, catalog.tables.run_days)
        counted = _run_days.counted(connection, catalog.tables)
    assert kept == counted
    return kept


def _counts(rng: random.Random, *, nonsense: bool = True) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    stores = rng.sample(STORES, rng.randint(0, len(STORES)))
    if rng.random() < 0.7:
        counts["quarantined"] = {
            s: {"store": s, "quarantined": {"count": rng.randint(0, 9), "bytes": rng.randint(0, 10**12)}}
            for s in stores
        }
    if rng.random() < 0.7:
        counts["purged"] = {
            s: {"store": s, "purged": {"count": rng.randint(0, 9), "bytes": rng.randint(0, 10**9)}, "due": 1}
            for s in stores
        }
    if rng.random() < 0.5:
        counts["restored"] = {
            s: {"restored": rng.randint(0, 9), "restored_bytes": rng.randint(0, 99)} for s in stores
        }
    if nonsense and rng.random() < 0.2:
        counts["purged"] = {"a": {"purged": {"count": "many"}}}  # hand-made nonsense counts as nothing
    counts["collections"] = {"c": {"archived": 3, "bytes": 10}}
    return counts


def _start(catalog: Catalog, rng: random.Random, now: datetime) -> int:
    run_id = catalog.start_run(rng.choice(COMMANDS), {}, dry_run=False)
    runs = catalog.tables.runs
    # spread the runs over days (the day is the UTC day a run started, read when it finishes)
    started = now - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23))
    with catalog.begin() as connection:
        connection.execute(runs.update().where(runs.c.id == run_id).values(started_at=started))
    return run_id


def test_per_day_figures_equal_a_recount_after_random_runs(catalog: Catalog) -> None:
    rng = random.Random(14)
    now = datetime.now(UTC)
    statuses: tuple[RunStatus, ...] = ("succeeded", "failed", "aborted")
    open_runs: list[int] = []
    for round_ in range(5):
        open_runs += [_start(catalog, rng, now) for _ in range(8)]
        rng.shuffle(open_runs)
        finishing, open_runs = open_runs[:6], open_runs[6:]
        for run_id in finishing:
            assert catalog.finish_run(run_id, rng.choice(statuses), _counts(rng))
        # a run already finished is left as it is, and adds nothing a second time
        assert not catalog.finish_run(finishing[0], "succeeded", _counts(rng), if_running=True)
        _agree(catalog)
        if round_ == 2:
            # several collectors finishing runs at once, on the same days, stores and commands
            batches = [[_start(catalog, rng, now) for _ in range(4)] for _ in range(4)]
            plans = [[(run_id, _counts(rng)) for run_id in batch] for batch in batches]

            def finish(plan: list[tuple[int, dict[str, Any]]]) -> None:
                for run_id, counts in plan:
                    catalog.finish_run(run_id, "succeeded", counts)

            threads = [threading.Thread(target=finish, args=(plan,)) for plan in plans]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            kept = _agree(catalog)
            assert kept  # the figures were written, not only equal to nothing
    _agree(catalog)


def test_the_readers_give_the_sums_of_every_runs_figures(catalog: Catalog) -> None:
    rng = random.Random(3)
    now = datetime.now(UTC)
    for _ in range(30):
        # figures the old reader (the database's JSON extraction) can read: numbers
        catalog.finish_run(_start(catalog, rng, now), "succeeded", _counts(rng, nonsense=False))
    catalog.start_run("purge", {}, dry_run=False)  # running: counted once it finishes
    stores = ["a", "b", "zarr-2.x", "never"]
    first = (now - timedelta(days=7)).date()
    figures = browse.run_figures(
        catalog, stores, since=datetime(first.year, first.month, first.day, tzinfo=UTC)
    )
    expected: dict[tuple[str, Any], list[int]] = {}
    totals: dict[str, list[int]] = {}
    for run in browse.run_figures(catalog, stores, after=0):
        if run.status == "running":
            continue
        for store in stores:
            values = [*run.quarantined[store], *run.purged[store], *run.restored[store]]
            slot = totals.setdefault(store, [0] * 6)
            for i, v in enumerate(values):
                slot[i] += v
    for run in figures:
        if run.command not in ("run", "purge", "collect"):
            continue
        for store in stores:
            values = [*run.quarantined[store], *run.purged[store], *run.restored[store]]
            slot = expected.setdefault((store, run.started_at.astimezone(UTC).date()), [0] * 6)
            for i, v in enumerate(values):
                slot[i] += v
    days = browse.day_figures(catalog, stores, ("run", "purge", "collect"), first)
    got = {(d.store, d.day): [*d.quarantined, *d.purged, *d.restored] for d in days}
    assert got == {k: v for k, v in expected.items() if any(v)}
    assert {k: list(v.values()) for k, v in browse.run_totals(catalog, stores).items()} == {
        k: v for k, v in totals.items() if any(v)
    }


def test_the_upgrade_fills_them_from_the_runs_already_recorded(catalog: Catalog) -> None:
    rng = random.Random(9)
    now = datetime.now(UTC)
    for _ in range(20):
        catalog.finish_run(_start(catalog, rng, now), "succeeded", _counts(rng))
    kept = _agree(catalog)
    # back to the revision before run_days, then up again: the migration counts the runs
    from alembic import command

    with catalog.engine.begin() as connection:
        command.downgrade(catalog._alembic_config(connection), "0009")
    assert not sa.inspect(catalog.engine).has_table(catalog.tables.run_days.name)
    catalog.upgrade()
    assert _agree(catalog) == kept


def test_the_objects_a_rows_expiry_purged_count_as_purged(catalog: Catalog) -> None:
    # objects = "follow": a row's objects are purged by the expiry step, recorded under "expired"
    counts = {
        "purged": {"a": {"purged": {"count": 2, "bytes": 20}}},
        "expired": {
            "rows": {"assets": 1},
            "objects": {
                "a": {"purged": {"count": 3, "bytes": 300}},
                "b": {"purged": {"count": 1, "bytes": 5}},
            },
        },
    }
    catalog.finish_run(catalog.start_run("run", {}, dry_run=False), "succeeded", counts)
    kept = _agree(catalog)
    purged = {store: values[2:4] for (store, _day, _command), values in kept.items()}
    assert purged == {"a": [5, 320], "b": [1, 5]}
    # a catalog written before 0016 counted the purge's alone; its upgrade adds the expiry's
    from alembic import command

    with catalog.engine.begin() as connection:
        command.downgrade(catalog._alembic_config(connection), "0015")
    with catalog.begin() as connection:
        before = _run_days.kept(connection, catalog.tables.run_days)
    assert {store: values[2:4] for (store, _day, _command), values in before.items()} == {"a": [2, 20]}
    catalog.upgrade()
    assert _agree(catalog) == kept
