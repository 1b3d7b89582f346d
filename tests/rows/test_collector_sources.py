"""Invariant 6 belongs to the collector: every plan sees archived rows' references."""

from __future__ import annotations

from datetime import UTC, datetime

import reclaim
from reclaim.lifecycle import Collector

from .world import DAY, UPLOADS, World, naive


def test_every_plan_sees_archived_rows_references(world: World) -> None:
    """Invariant 6 is the collector's, not the caller's: an object only an archived row references
    is restored by the purge re-check, although no caller added the archive's sources."""
    world.collections = UPLOADS
    world.write_config()
    world.put("uploads/1")
    reclaim.quarantine(world.config_path)  # unreferenced now: quarantined (grace 0)
    # a row referencing it is committed, then collected: only the archive references the object now
    world.insert("uploads", {"id": 1, "blob": "uploads/1", "created": naive(world.now - 9 * DAY)})
    with Collector.open(world.config_path, command="test", options={}, dry_run=False) as c:
        rows = c.carry_out(c.plan_rows(now=datetime.now(UTC)))
        assert [r.archived for r in rows.collections] == [1]
        assert world.ids("uploads") == []
        (purged,) = c.carry_out(c.plan_purge())
    assert (purged.restored, purged.purged.count) == (1, 0)
    assert world.objects() == ["uploads/1"]
