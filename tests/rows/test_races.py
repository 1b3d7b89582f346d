"""Writers referencing rows while a collection deletes them: nothing referenced is lost, nothing cascades.

Four threads and one spawned process insert ``version_assets`` rows for random
old assets among the first two thirds while ``reclaim run`` collects every
asset no version holds, in batches of 10, again and again; one last cycle runs
after the writers stop, so the untouched third is always collected. Afterwards:

- every link a writer committed still exists (no cascade removed it), and
  points at a live asset (no dangling reference);
- every asset is either live or archived, exactly once (none lost);
- no archived asset was linked by a committed writer.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

import reclaim
from reclaim.catalog import RowState, open_catalog

from .world import ASSETS, DAY, World, build_schema
from .writers import link_randomly

N = 300
SECONDS = 4.0


@pytest.fixture(params=[False, True], ids=["no-action-fk", "declared-cascade-fk"])
def race_world(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> World:
    engine = sa.create_engine(db_url)
    md = build_schema(engine, cascade=request.param)
    world = World(root=tmp_path, db_url=db_url, engine=engine, md=md)
    world.collections = ASSETS + "batch_size = 10\n"
    if request.param:
        world.collections += (
            '[[collections.assets.references]]\ntable = "version_assets"\ncolumn = "asset_id"\n'
        )
    return world


def test_concurrent_writers_never_lose_a_referenced_row(race_world: World) -> None:
    world = race_world
    try:
        world.insert("versions", {"id": 1, "name": "v"})
        for asset in range(1, N + 1):
            world.asset(asset, None, age=40 * DAY)
        world.write_config()
        ids = list(range(1, N + 1))
        targets = ids[: 2 * N // 3]  # the writers race for these; the rest stays collectable
        results: list[tuple[list[int], int]] = []
        errors: list[BaseException] = []

        def writer(seed: int) -> None:
            try:
                results.append(link_randomly(world.db_url, targets, SECONDS, seed))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            future = pool.submit(link_randomly, world.db_url, targets, SECONDS, 99)
            for thread in threads:
                thread.start()
            collected = cycles = 0
            while any(t.is_alive() for t in threads):  # collect again and again while they write
                report = reclaim.run(world.config_path)
                collected += sum(c.archived for c in report.collections)
                cycles += 1
            for thread in threads:
                thread.join()
            results.append(future.result())
        assert not errors, errors
        assert cycles > 0, "no cycle ran while the writers wrote: the race was not exercised"
        report = reclaim.run(world.config_path)  # the writers are done: collect what is left
        collected += sum(c.archived for c in report.collections)

        committed = [asset for done, _refused in results for asset in done]
        with world.engine.connect() as conn:
            links = sorted(r[0] for r in conn.execute(sa.text("SELECT asset_id FROM version_assets")))
            dangling = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM version_assets v "
                    "LEFT JOIN assets a ON a.id = v.asset_id WHERE a.id IS NULL"
                )
            ).scalar_one()
        live = set(world.ids("assets"))
        catalog = open_catalog(reclaim.load_config(world.config_path).catalog)
        try:
            archived = [
                int(r.pk.strip('[]"'))
                for r in catalog.archive.select(collection="assets", states=tuple(RowState))
            ]
        finally:
            catalog.dispose()

        assert committed, "the writers committed nothing: the race was not exercised"
        assert collected >= N - len(targets), "the untouched third was not collected"
        assert links == sorted(committed)  # no committed link vanished (no cascade)
        assert dangling == 0
        assert len(archived) == len(set(archived)) == collected
        assert live.isdisjoint(archived)
        assert live | set(archived) == set(ids)  # every asset live or archived
        assert set(committed).isdisjoint(archived)  # nothing a writer referenced was collected
    finally:
        world.engine.dispose()
