"""A distributed run on real Celery workers (separate processes) on the Redis broker.

Each test builds twin archives, runs the single-process ``reclaim run`` on one
and the coordinator with real workers on the other, and compares what
happened: the run record's counts, every key in the store and the trash, and
every key's journal state. A worker process is killed (SIGKILL) in the middle
of a range, or stopped while the coordinator's lease is broken, at fault
points (:mod:`reclaim.lifecycle.faults`), never by timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reclaim import api
from reclaim.catalog import Leases, open_catalog
from reclaim.catalog.fence import RECHECK
from reclaim.distributed import run
from reclaim.distributed.app import CeleryDispatcher, make_app
from reclaim.errors import LeaseLost

from .conftest import Workers, build, counts, state, workers

KEYS = {f"{letter}/{i:02d}": i % 3 == 0 for letter in "abcdef" for i in range(8)}
SPLITS = {"main": ["b/", "c/04", "e/"]}  # four ranges, one of them cutting a directory in two


@pytest.fixture
def dispatcher(queue: str) -> Iterator[CeleryDispatcher]:
    """The coordinator's way to the test's workers (its connections closed afterwards)."""
    sender = CeleryDispatcher(make_app(queue=queue), timeout=180)
    yield sender
    sender.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


def test_a_run_on_real_workers_equals_the_single_process_run(
    tmp_path: Path, queue: str, catalog_url: str, dispatcher: CeleryDispatcher
) -> None:
    single = build(tmp_path / "single", KEYS, mode="move", grace="0")
    spread = build(tmp_path / "spread", KEYS, mode="move", grace="0", catalog_url=catalog_url)
    with workers(queue, tmp_path / "workers.log", count=2):
        for _ in range(2):  # the first cycle quarantines, the second purges (grace 0)
            expected = api.run(single.config_path)
            got = run(spread.config_path, dispatcher=dispatcher, boundaries=SPLITS)
            assert counts(spread, got.run_id) == counts(single, expected.run_id)
            assert state(spread) == state(single)
    assert got.purged[0].purged.count == sum(not referenced for referenced in KEYS.values())


def test_a_worker_killed_mid_range_is_retried_and_the_result_still_equals(
    tmp_path: Path, queue: str, dispatcher: CeleryDispatcher
) -> None:
    single = build(tmp_path / "single", KEYS, mode="move", grace="0")
    spread = build(tmp_path / "spread", KEYS, mode="move", grace="0")
    marker = tmp_path / "killed"
    fault = {"RECLAIM_FAULT": "quarantine.after-move:2", "RECLAIM_FAULT_ONCE": str(marker)}
    with workers(queue, tmp_path / "workers.log", count=1, **fault):
        expected = api.run(single.config_path)
        got = run(spread.config_path, dispatcher=dispatcher, boundaries=SPLITS)
    assert marker.exists(), "no pool process was killed"
    assert counts(spread, got.run_id) == counts(single, expected.run_id)
    assert state(spread) == state(single)
    record = _record(spread, got.run_id)
    # the retried range settled its killed attempt: two objects moved, the rest of its batch not yet
    assert record["retried"]["main"]["confirmed"] == 2, record
    assert record["retried"]["main"]["rolled_back"] > 0, record


def test_workers_of_a_coordinator_whose_lease_is_broken_change_nothing_and_stop_with_lease_lost(
    tmp_path: Path, queue: str, dispatcher: CeleryDispatcher
) -> None:
    spread = build(tmp_path / "spread", KEYS, mode="move", grace="0")
    text = spread.config_path.read_text()  # a short lease: the coordinator's heartbeat finds it broken soon
    spread.config_path.write_text(text.replace("[catalog]\n", '[catalog]\nlease_ttl = "6s"\n', 1))
    outcome: dict[str, Any] = {}

    def coordinate() -> None:
        try:
            outcome["report"] = run(spread.config_path, dispatcher=dispatcher, boundaries=SPLITS)
        except BaseException as exc:
            outcome["error"] = exc

    log = tmp_path / "workers.log"
    with workers(queue, log, count=2, RECLAIM_PAUSE="quarantine.after-intent") as pool:
        coordinator = threading.Thread(target=coordinate)
        coordinator.start()
        _wait_for_paused_workers(pool, coordinator, 2)  # each worker stopped in its first range
        before = state(spread)
        catalog = open_catalog(spread.config.catalog)
        try:
            Leases(catalog).break_lease(force=True)  # reclaim lock --break --force
        finally:
            catalog.dispose()
        coordinator.join(180)
        assert not coordinator.is_alive()
        # a worker trusts a reading of the lease row for at most RECHECK seconds (the fence's contract:
        # the row is not read before every single request); past that, its next check reads the row
        time.sleep(RECHECK + 0.5)
        for child in pool.children():
            child.resume()
        _wait_for(lambda: pool.text().count('"error": "LeaseLost"') >= 2, pool)
        after = state(spread)
    assert isinstance(outcome.get("error"), LeaseLost), outcome
    assert after == before  # nothing moved and nothing was journaled after the break
    assert "QUARANTINING" in set(before[1].values())  # the paused range had recorded its intents
    record = _record_of_last_run(spread)
    assert record.status != "succeeded"


def _record(archive: Any, run_id: int | None) -> dict[str, Any]:
    assert run_id is not None
    catalog = open_catalog(archive.config.catalog)
    try:
        record = catalog.get_run(run_id)
        assert record is not None
        return dict(record.counts)
    finally:
        catalog.dispose()


def _record_of_last_run(archive: Any) -> Any:
    catalog = open_catalog(archive.config.catalog)
    try:
        runs = catalog.list_runs(limit=1)
        return runs[0]
    finally:
        catalog.dispose()


def _wait_for_paused_workers(pool: Workers, coordinator: threading.Thread, count: int) -> None:
    while len(pool.stopped_children()) < count:
        assert coordinator.is_alive(), f"the coordinator ended before {count} workers paused: {pool.text()}"
        time.sleep(0.05)


def _wait_for(condition: Any, pool: Workers) -> None:
    for _ in range(1200):
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"the workers never said so; their log:\n{pool.text()}")


def test_reclaim_run_with_celery_workers_on_the_command_line(tmp_path: Path, queue: str) -> None:
    import json
    import os
    import subprocess
    import sys

    from .conftest import SRC

    single = build(tmp_path / "single", KEYS, mode="mark", grace="0")
    spread = build(tmp_path / "spread", KEYS, mode="mark", grace="0")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
    env |= {"PYTHONPATH": str(SRC), "RECLAIM_QUEUE": queue}
    command = [sys.executable, "-m", "reclaim", "run", "--workers", "celery"]
    command += ["--split", "c/", "--split", "e/04", "--json", "--config", str(spread.config_path)]
    with workers(queue, tmp_path / "workers.log", count=2):
        expected = api.run(single.config_path)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert counts(spread, report["run_id"]) == counts(single, expected.run_id)
    assert state(spread) == state(single)
    options = _options(spread, report["run_id"])
    assert options["workers"].startswith("celery (redis://127.0.0.1:6379")


def _options(archive: Any, run_id: int) -> dict[str, Any]:
    catalog = open_catalog(archive.config.catalog)
    try:
        record = catalog.get_run(run_id)
        assert record is not None
        return dict(record.options)
    finally:
        catalog.dispose()
