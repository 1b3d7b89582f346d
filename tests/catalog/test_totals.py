"""The running totals equal a recount of the journal and the archive after any sequence of changes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from reclaim.catalog import Catalog, Journal, State, _totals
from reclaim.catalog._batch import Intent
from reclaim.catalog.archive import NewRow, RowArchive, RowState


def _agree(catalog: Catalog) -> None:
    t = catalog.tables
    with catalog.begin() as connection:
        kept = _totals.kept(connection, t.totals)
        counted = _totals.counted(connection, t.objects, t.rows)
    assert kept == counted


def test_totals_equal_a_recount_after_random_quarantines_restores_purges_and_expiries(
    catalog: Catalog,
) -> None:
    rng = random.Random(16)
    journal = Journal(catalog)
    archive = RowArchive(catalog)
    now = datetime.now(UTC)
    for round_ in range(6):
        for store in ("a", "b"):
            intents = [
                Intent(f"k{rng.randrange(40)}", size=rng.choice([None, 1, 10, 500])) for _ in range(15)
            ]
            entries = [e for e in journal.record_intents(store, intents, mode="mark", run_id=None) if e]
            done = [e for e in journal.transition_many(entries, State.QUARANTINED) if e]
            rng.shuffle(done)
            third = len(done) // 3
            purging = [e for e in journal.transition_many(done[:third], State.PURGING) if e]
            journal.transition_many(purging, State.PURGED)
            for entry in done[third : 2 * third]:
                restoring = journal.transition(entry, State.RESTORING)
                assert restoring is not None
                journal.transition(restoring, State.RESTORED)
        ids = archive.add(
            [NewRow("c", "t", f'["{round_}-{n}"]', '{"x": "' + "é" * n + '"}') for n in range(5)],
            run_id=1,
            state=RowState.ARCHIVING,
            expires_at=now - timedelta(days=1),
        )
        archive.confirm(ids[:3], run_id=1)
        archive.discard(ids[3:4])
        for row in archive.select(collection="c", states=(RowState.ARCHIVED,))[:1]:
            archive.transition(row, RowState.RESTORING, run_id=1)
        _agree(catalog)
        if round_ % 2:
            journal.expire(now + timedelta(days=1))
            archive.expire(now)
            _agree(catalog)
    summary = journal.summary("a")
    with catalog.begin() as connection:
        counted = _totals.counted(connection, catalog.tables.objects, catalog.tables.rows)
    assert summary.quarantined == counted.get(("store", "a", "QUARANTINED"), (0, 0))[0]
