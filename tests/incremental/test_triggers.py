"""The queue triggers: what a writer's deletes and updates queue, in its own transaction.

Real PostgreSQL, MariaDB and SQLite: a deleted row queues its key, a rolled-back
delete queues nothing, an updated reference column queues the old key (an update
of another column queues nothing), values of another store are not queued, and
concurrent writers in threads queue exactly what they committed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.api import incremental_status
from reclaim.api.incremental import install, uninstall

from .world import STRIP, World


def test_a_deleted_row_queues_its_key_and_a_rolled_back_one_nothing(world: World) -> None:
    install(world.config_path)
    world.sql(
        "INSERT INTO assets (id, blob_key, note) VALUES (1, 'a/1', 'x'), (2, 'a/2', 'x'), (3, 'a/3', 'x')"
    )
    world.sql(f"INSERT INTO uploads (id, path) VALUES (1, '{STRIP}u/1'), (2, 'elsewhere/u/2')")
    assert world.queued() == []  # inserts queue nothing

    world.sql("DELETE FROM assets WHERE id = 1")
    assert world.queued() == ["a/1"]

    with world.engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(sa.text("DELETE FROM assets WHERE id = 2"))
        transaction.rollback()
    assert world.queued() == ["a/1"]  # the rolled-back delete queued nothing

    world.sql("UPDATE assets SET note = 'y' WHERE id = 3")  # not the reference column
    assert world.queued() == ["a/1"]
    world.sql("UPDATE assets SET blob_key = 'a/3-new' WHERE id = 3")
    assert world.queued() == ["a/1", "a/3"]  # the old key
    world.sql("UPDATE assets SET blob_key = NULL WHERE id = 3")
    assert world.queued() == ["a/1", "a/3", "a/3-new"]

    world.sql("DELETE FROM uploads")  # the strip_prefix mapping; a value of another store is not queued
    assert world.queued() == ["a/1", "a/3", "a/3-new", "u/1"]


def test_a_truncate_queues_every_key_on_postgresql(pg_url: str, build: Callable[..., World]) -> None:
    # a TRUNCATE fires no row trigger; PostgreSQL's statement trigger reads the rows before they go
    world = build(pg_url)
    install(world.config_path)
    world.sql("INSERT INTO assets (id, blob_key) VALUES (1, 'a/1'), (2, 'a/2'), (3, NULL)")
    with world.engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(sa.text("TRUNCATE assets"))
        transaction.rollback()
    assert world.queued() == []
    world.sql("TRUNCATE assets")
    assert sorted(world.queued()) == ["a/1", "a/2"]


def test_a_case_only_update_queues_the_old_key(world: World) -> None:
    # MariaDB's default collation calls 'A/1' and 'a/1' equal; the keys differ
    install(world.config_path)
    world.sql("INSERT INTO assets (id, blob_key) VALUES (1, 'A/1')")
    world.sql("UPDATE assets SET blob_key = 'a/1' WHERE id = 1")
    assert world.queued() == ["A/1"]


def test_a_source_with_a_where_queues_on_any_update(
    tmp_path: Path, sqlite_url: str, build: Callable[..., World]
) -> None:
    # a filter column that changes drops the reference without touching the column
    extra = f"""
        [stores.other]
        url = "file://{tmp_path}/other"

        [[stores.other.references]]
        name = "kept"
        database = "app"
        table = "assets"
        column = "blob_key"
        where = "note = 'keep'"
        add_prefix = "kept/"
        allow_empty = true
    """
    world = build(sqlite_url, extra=extra)
    install(world.config_path, stores=["other"])
    world.sql("INSERT INTO assets (id, blob_key, note) VALUES (1, 'k/1', 'keep')")
    world.sql("UPDATE assets SET note = 'drop' WHERE id = 1")
    with world.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT store, object_key FROM reclaim_queue")).all()
    assert [tuple(r) for r in rows] == [("other", "kept/k/1")]  # add_prefix applied in the trigger


def test_uninstalling_one_store_leaves_the_others(
    tmp_path: Path, pg_url: str, build: Callable[..., World]
) -> None:
    extra = f"""
        [stores.other]
        url = "file://{tmp_path}/other"

        [[stores.other.references]]
        database = "app"
        table = "assets"
        column = "note"
        allow_empty = true
    """
    world = build(pg_url, extra=extra)
    install(world.config_path)
    world.sql("INSERT INTO assets (id, blob_key, note) VALUES (1, 'a/1', 'n/1')")
    world.sql("DELETE FROM assets")
    with world.engine.connect() as conn:
        queued = conn.execute(sa.text("SELECT store, object_key FROM reclaim_queue ORDER BY store")).all()
    assert [tuple(r) for r in queued] == [("main", "a/1"), ("other", "n/1")]
    removed = uninstall(world.config_path, stores=["main"])
    assert sorted(s.source for s in removed.sources) == ["assets", "uploads"]
    left = world.reclaim_objects()
    assert len(left["triggers"]) == 2  # the other store's row and TRUNCATE triggers
    assert left["tables"] == {"reclaim_queue", "reclaim_queue_triggers"}
    with world.engine.connect() as conn:
        queued = conn.execute(sa.text("SELECT store, object_key FROM reclaim_queue")).all()
    assert [tuple(r) for r in queued] == [("other", "n/1")]  # the removed store's rows went with it
    [other] = incremental_status(world.config_path, stores=["other"]).stores
    assert [s.state for s in other.sources] == ["installed"]
    uninstall(world.config_path)
    assert world.reclaim_objects() == {"triggers": set(), "functions": set(), "tables": set()}


def test_concurrent_writers_queue_exactly_what_they_committed(server_world: World) -> None:
    world = server_world
    install(world.config_path)
    threads, per_thread = 6, 40
    world.sql(
        "INSERT INTO assets (id, blob_key) VALUES "
        + ", ".join(f"({t * 1000 + i}, 'k/{t}/{i}')" for t in range(threads) for i in range(per_thread))
    )
    committed: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def writer(t: int) -> None:
        rng = random.Random(t)
        engine = sa.create_engine(world.url)
        try:
            barrier.wait()
            for i in range(per_thread):
                row = t * 1000 + i
                mine: list[str] = []
                with engine.connect() as conn:
                    transaction = conn.begin()
                    if rng.random() < 0.5:
                        conn.execute(sa.text("DELETE FROM assets WHERE id = :id"), {"id": row})
                        mine.append(f"k/{t}/{i}")
                    else:
                        conn.execute(
                            sa.text("UPDATE assets SET blob_key = :b WHERE id = :id"),
                            {"b": f"n/{t}/{i}", "id": row},
                        )
                        mine.append(f"k/{t}/{i}")
                        if rng.random() < 0.5:  # a second change in the same transaction
                            conn.execute(sa.text("DELETE FROM assets WHERE id = :id"), {"id": row})
                            mine.append(f"n/{t}/{i}")
                    if rng.random() < 0.3:
                        transaction.rollback()
                    else:
                        transaction.commit()
                        with lock:
                            committed.update(mine)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            engine.dispose()

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert Counter(world.queued()) == committed
    assert sum(committed.values()) > threads * per_thread // 2


def test_status_shows_the_install_and_uninstall_removes_everything(world: World) -> None:
    before = world.reclaim_objects()
    assert before == {"triggers": set(), "functions": set(), "tables": set()}
    install(world.config_path)
    installed = world.reclaim_objects()
    assert len(installed["triggers"]) == 4  # PostgreSQL: row and TRUNCATE; else: delete and update
    assert installed["tables"] == {"reclaim_queue", "reclaim_queue_triggers"}
    status = incremental_status(world.config_path).stores[0]
    assert [s.state for s in status.sources] == ["installed", "installed"]
    world.sql("INSERT INTO assets (id, blob_key) VALUES (1, 'a/1')")
    world.sql("DELETE FROM assets")
    assert incremental_status(world.config_path).stores[0].queued == 1

    install(world.config_path)  # again: replaces, adds nothing
    assert world.reclaim_objects() == installed

    report = uninstall(world.config_path)
    assert sorted(s.source for s in report.sources) == ["assets", "uploads"]
    assert world.reclaim_objects() == before
    world.sql("INSERT INTO assets (id, blob_key) VALUES (2, 'a/2')")
    world.sql("DELETE FROM assets")  # no trigger left to write a missing queue
    status = incremental_status(world.config_path).stores[0]
    assert [s.state for s in status.sources] == ["missing", "missing"]


def test_a_dry_run_installs_nothing(world: World) -> None:
    report = install(world.config_path, dry_run=True)
    assert [s.state for s in report.sources] == ["would install", "would install"]
    assert world.reclaim_objects()["triggers"] == set()


def test_install_refuses_sources_no_trigger_can_watch_and_installs_nothing(
    pg_url: str, build: Callable[..., World]
) -> None:
    extra = """
        [[stores.main.references]]
        name = "docs"
        database = "app"
        table = "uploads"
        column = "path"
        json_path = "file"
        allow_empty = true

        [[stores.main.references]]
        name = "everything"
        database = "app"
        query = "SELECT blob_key FROM assets"
        allow_empty = true
    """
    world = build(pg_url, extra=extra)
    with pytest.raises(reclaim.ConfigError) as raised:
        install(world.config_path)
    message = str(raised.value)
    assert "references[2] (docs): a JSON path" in message
    assert "references[3] (everything): a query source" in message
    assert raised.value.exit_code == 2
    assert world.reclaim_objects() == {"triggers": set(), "functions": set(), "tables": set()}
    states = {s.source: s.state for s in incremental_status(world.config_path).stores[0].sources}
    assert states == {
        "assets": "missing",
        "uploads": "missing",
        "docs": "unsupported",
        "everything": "unsupported",
    }


def test_a_changed_source_shows_as_stale(sqlite_url: str, build: Callable[..., World]) -> None:
    world = build(sqlite_url)
    install(world.config_path)
    text = world.config_path.read_text().replace(f'strip_prefix = "{STRIP}"', 'strip_prefix = "s3://other/"')
    world.config_path.write_text(text)
    states = [s.state for s in incremental_status(world.config_path).stores[0].sources]
    assert states == ["installed", "stale"]
