"""Rows: ``restore_rows`` brings archived rows of the row collections back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reclaim.config.jsonable import to_jsonable
from reclaim.lifecycle import Collector, ConfigLike, ProgressCallback, require_row_selection
from reclaim.lifecycle.restore_rows import RowRestoreResult

__all__ = ["RowsReport", "restore_rows"]


@dataclass
class RowsReport:
    """What a restore of archived rows did (or would do)."""

    dry_run: bool
    run_id: int | None
    selected: int
    result: RowRestoreResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        out = dict(to_jsonable(self))
        out["restored_total"] = self.result.total
        return out


def restore_rows(
    config: ConfigLike,
    *,
    collection: str | None = None,
    pks: Sequence[str] = (),
    run_id: int | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    user: str | None = None,
) -> RowsReport:
    """Insert archived rows again: by collection, primary key (with ``collection``), run or archive time.

    Rows they reference that were archived too are restored first. Raises
    :class:`~reclaim.errors.RowConflict` (exit 9) when a primary key is held by
    a live row again, before anything is restored, and
    :class:`~reclaim.errors.UnknownItem` for a primary key or run the archive
    does not know.
    """
    require_row_selection(collection, pks, run_id, since)
    options = {"collection": collection, "pks": list(pks), "run": run_id, "since": since, "rows": True}
    with Collector.open(config, command="restore", options=options, dry_run=dry_run, user=user) as c:
        step = c.plan_row_restore(
            collection=collection, pks=pks, run_id=run_id, since=since, progress=progress
        )
        outcome = c.carry_out(step)
        return RowsReport(dry_run, c.run_id, outcome.selected, outcome.result)
