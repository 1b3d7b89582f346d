"""When real runs first saw an item unreferenced: the clock of ``age = "unreferenced"``.

A store or collection whose age is measured since it became unreferenced
keeps, in the ``unreferenced`` table, one row per item (an object key, a
row's primary key as :func:`~reclaim.catalog.archive.pk_text` spells it) that
real runs currently see unreferenced: ``first_seen``, the run that saw it last,
and whether a complete scan vouched for it (``confirmed``). The rules:

- a scan records what it sees a page at a time (:meth:`Sightings.record`, one
  upsert per page): a new item gets ``first_seen = now``; an item already
  confirmed keeps its ``first_seen``; an unconfirmed one (left by a scan that
  did not finish) starts again at ``now``;
- only after a *complete* scan, :meth:`Sightings.finish` forgets, in one
  statement, every item of the owner this run did not see (referenced again,
  or gone), and confirms the ones it saw. A scan that fails or stops halfway
  never calls it: it forgets nothing, and what it saw first never counts;
- an item is old enough (:meth:`Sightings.since`) when it is confirmed and
  its ``first_seen`` is at or before the cutoff;
- :meth:`Sightings.forget` drops items once they are collected (a restored row
  or object starts its clock again).

Memory stays flat: every call takes one page of items, and the table holds
only the items currently seen unreferenced. Like the journal, a
:class:`Sightings` made with a lease (:meth:`fenced`) refuses to write once
the lease is another collector's. Dry runs and ``reclaim scan`` only read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import sqlalchemy as sa

from reclaim.catalog.tables import sha256_hex

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog
    from reclaim.catalog.fence import Fence

__all__ = ["KINDS", "Kind", "Sightings"]

Kind = Literal["store", "collection"]
KINDS: Final[tuple[Kind, ...]] = ("store", "collection")
#: items per statement (well below every dialect's bound-parameter limit)
_CHUNK: Final = 500


class Sightings:
    """The ``unreferenced`` table of one catalog (see the module docstring)."""

    def __init__(self, catalog: Catalog, *, fence: Fence | None = None) -> None:
        self._catalog = catalog
        self._table = catalog.tables.unreferenced
        self._fence = fence

    def fenced(self, fence: Fence) -> Sightings:
        """These sightings, every write fenced by ``fence`` (a held lease)."""
        return Sightings(self._catalog, fence=fence)

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with self._catalog.begin() as connection:
            if self._fence is not None:
                self._fence.guard(connection)
            yield connection

    def since(self, kind: Kind, owner: str, items: Sequence[str], cutoff: datetime) -> set[str]:
        """Those of ``items`` a complete scan saw unreferenced at or before ``cutoff`` (and since)."""
        t = self._table
        found: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(items))):
            query = sa.select(t.c.item).where(
                t.c.kind == kind,
                t.c.owner == owner,
                t.c.item_hash.in_([sha256_hex(item) for item in chunk]),
                t.c.confirmed,
                t.c.first_seen <= cutoff,
            )
            with self._catalog.begin() as connection:
                found.update(str(row[0]) for row in connection.execute(query))
        return found & set(items)  # the hash found the row; the item itself must match too

    def record(self, kind: Kind, owner: str, items: Sequence[str], *, run_id: int, now: datetime) -> None:
        """Note that run ``run_id`` sees ``items`` unreferenced now (one upsert per chunk)."""
        t = self._table
        for chunk in _chunks(list(dict.fromkeys(items))):
            values = [
                {
                    "kind": kind,
                    "owner": owner,
                    "item_hash": sha256_hex(item),
                    "item": item,
                    "first_seen": now,
                    "last_seen_run": run_id,
                    "confirmed": False,
                }
                for item in chunk
            ]
            with self._writing() as connection:
                connection.execute(_upsert(connection.dialect.name, t, values))

    def finish(self, kind: Kind, owner: str, *, run_id: int) -> int:
        """After a complete scan by ``run_id``: forget what it did not see, confirm what it saw.

        Returns how many items were forgotten. One transaction, two statements.
        """
        t = self._table
        mine = sa.and_(t.c.kind == kind, t.c.owner == owner)
        with self._writing() as connection:
            forgotten = connection.execute(t.delete().where(mine, t.c.last_seen_run != run_id)).rowcount
            connection.execute(
                t.update().where(mine, t.c.last_seen_run == run_id, ~t.c.confirmed).values(confirmed=True)
            )
        return int(forgotten or 0)

    def forget(self, kind: Kind, owner: str, items: Sequence[str]) -> None:
        """Drop ``items`` (collected: a restored item starts its clock again)."""
        t = self._table
        for chunk in _chunks(list(dict.fromkeys(items))):
            with self._writing() as connection:
                connection.execute(
                    t.delete().where(
                        t.c.kind == kind,
                        t.c.owner == owner,
                        t.c.item_hash.in_([sha256_hex(item) for item in chunk]),
                    )
                )

    def count(self, kind: Kind, owner: str) -> int:
        """How many items of ``owner`` are watched (seen unreferenced, not collected yet)."""
        t = self._table
        query = sa.select(sa.func.count()).select_from(t).where(t.c.kind == kind, t.c.owner == owner)
        with self._catalog.begin() as connection:
            return int(connection.execute(query).scalar_one())


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _upsert(dialect: str, t: sa.Table, values: list[dict[str, Any]]) -> Any:
    """Insert, or on a known item: the last run is this one; ``first_seen`` kept only if confirmed."""
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement: Any = insert(t).values(values)
        new = statement.excluded
        return statement.on_conflict_do_update(
            index_elements=["kind", "owner", "item_hash"],
            set_={
                "first_seen": sa.case((t.c.confirmed, t.c.first_seen), else_=new.first_seen),
                "last_seen_run": new.last_seen_run,
            },
        )
    from sqlalchemy.dialects import mysql

    statement = mysql.insert(t).values(values)
    new = statement.inserted
    return statement.on_duplicate_key_update(
        first_seen=sa.case((t.c.confirmed, t.c.first_seen), else_=new.first_seen),
        last_seen_run=new.last_seen_run,
    )
