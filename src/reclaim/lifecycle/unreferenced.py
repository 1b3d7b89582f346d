"""Age since unreferenced: one run's view of a store's or collection's clock.

With ``age = "unreferenced"`` an item (an object, a row) is a candidate only
once every complete scan of real runs for ``min_age`` has seen it unreferenced
(:mod:`reclaim.catalog.sightings` keeps when each item was first seen so). A
:class:`Watch` is handed to a scan: each page's unreferenced items go through
:meth:`Watch.old_enough`, which records them (real runs only) and says which
have been unreferenced long enough; after a complete scan :meth:`Watch.finish`
forgets what this run did not see. A scan that raises never reaches
``finish``: it forgets nothing, and its first sightings never count.

Dry runs and ``reclaim scan`` read the clock and never write it, so that a
dry run does not change what a later real run does (a dry run tonight then
shows as young what the real run will start the clock for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from reclaim.catalog import LeaseCheck, Sightings
from reclaim.catalog.sightings import Kind
from reclaim.lifecycle.faults import fault

__all__ = ["Watch"]


def _no_check() -> None:
    return None


@dataclass
class Watch:
    """The clock of one store or collection, for one scan.

    ``sightings`` is ``None`` when there is no catalog yet (``reclaim scan``
    before ``reclaim init``): nothing has been seen, so nothing is old enough
    unless ``min_age`` is 0. ``run_id`` is the real run that records; ``None``
    reads only.
    """

    sightings: Sightings | None
    kind: Kind
    owner: str
    now: datetime
    min_age: timedelta
    run_id: int | None = None
    check_lease: LeaseCheck = _no_check
    seen: int = 0
    """Items this scan saw unreferenced."""
    finished: bool = False

    @property
    def records(self) -> bool:
        """Whether this watch writes the clock (a real run), or only reads it."""
        return self.run_id is not None and self.sightings is not None

    @property
    def cutoff(self) -> datetime:
        """Items first seen unreferenced at or before this instant are old enough."""
        return self.now - self.min_age

    def old_enough(self, items: Sequence[str]) -> set[str]:
        """Those of ``items`` (seen unreferenced now) that have been so for ``min_age``; records them.

        The answer comes from earlier complete scans only: what this run
        records counts from its :meth:`finish` on.
        """
        if not items:
            return set()
        self.seen += len(items)
        if self.min_age <= timedelta(0):
            old = set(items)
        elif self.sightings is None:
            old = set()
        else:
            old = self.sightings.since(self.kind, self.owner, items, self.cutoff)
        if self.records:
            assert self.sightings is not None
            assert self.run_id is not None
            self.check_lease()
            self.sightings.record(self.kind, self.owner, items, run_id=self.run_id, now=self.now)
            fault("unreferenced.after-record")
        return old

    def still_old_enough(self, items: Sequence[str]) -> set[str]:
        """Those of ``items`` that a complete scan vouched for at or before the cutoff (no record)."""
        if self.min_age <= timedelta(0):
            return set(items)
        if self.sightings is None or not items:
            return set()
        return self.sightings.since(self.kind, self.owner, items, self.cutoff)

    def finish(self) -> None:
        """The scan was complete: forget what it did not see, vouch for what it saw (real runs)."""
        if self.records and not self.finished:
            assert self.sightings is not None
            assert self.run_id is not None
            self.check_lease()
            self.sightings.finish(self.kind, self.owner, run_id=self.run_id)
        self.finished = True

    def forget(self, items: Sequence[str]) -> None:
        """Items collected (quarantined, archived): a restored one starts its clock again."""
        if self.records and items:
            assert self.sightings is not None
            self.sightings.forget(self.kind, self.owner, items)
