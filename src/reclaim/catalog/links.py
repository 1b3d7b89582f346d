"""The objects archived rows own: ``row_objects``, the links of ``objects = "follow"``.

One row of ``row_objects`` says that archived row ``row_id`` owns the object
``key`` of ``store``. It is written in the transaction that archives the row,
with ``entry_id`` NULL (pending: the object is still served); once the object
is quarantined, ``entry_id`` names the journal entry that holds it::

    pending (entry_id NULL) -> linked (entry_id set) -> dropped
    pending                 -> dropped (another row references the object: it stays live)

A link is dropped with its row (discarded or restored), when its object comes
back live (another row references it, or it was restored), or once its
object is purged at the row's expiry. While a link's row is restorable the
normal purge never takes its object (:meth:`~reclaim.catalog.journal.Journal.due`),
and a row that still owns an object never expires (invariant 6).

Keys are found through ``key_hash`` and compared byte for byte, as in the
journal. Database errors surface as :class:`~reclaim.errors.CatalogError`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from reclaim.catalog.tables import sha256_hex

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog
    from reclaim.catalog.fence import Fence

__all__ = ["ObjectLink", "ObjectLinks"]

_BATCH: Final = 500
#: states in which an archived row may still come back (as :data:`reclaim.catalog.archive.RESTORABLE`)
_RESTORABLE: Final = ("ARCHIVING", "ARCHIVED", "RESTORING")
#: journal states in which a quarantined object is not back at its key
_OUT_OF_SERVICE: Final = ("QUARANTINING", "QUARANTINED", "PURGING")


@dataclass(frozen=True)
class ObjectLink:
    """One object an archived row owns."""

    id: int
    row_id: int
    store: str
    key: str
    entry_id: int | None
    """The journal entry that quarantined the object; ``None`` while its quarantine is pending."""
    collection: str = ""


class ObjectLinks:
    """The ``row_objects`` of one catalog; writes fenced by ``lease`` when given (a collector's)."""

    def __init__(self, catalog: Catalog, *, lease: Fence | None = None) -> None:
        self._catalog = catalog
        self._links = catalog.tables.row_objects
        self._rows = catalog.tables.rows
        self._objects = catalog.tables.objects
        self._lease = lease

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with self._catalog.begin() as connection:
            if self._lease is not None:
                self._lease.guard(connection)
            yield connection

    def _select(self) -> sa.Select[Any]:
        links, rows = self._links, self._rows
        return sa.select(
            links.c.id, links.c.row_id, links.c.store, links.c.key, links.c.entry_id, rows.c.collection
        ).join(rows, rows.c.id == links.c.row_id)

    def _all(self, query: sa.Select[Any]) -> list[ObjectLink]:
        with self._catalog.begin() as connection:
            return [_link(r) for r in connection.execute(query)]

    # -- queries -------------------------------------------------------------------------

    def pending(
        self, *, collection: str | None = None, after_id: int = 0, limit: int = _BATCH
    ) -> list[ObjectLink]:
        """Links of ARCHIVED rows whose object is not quarantined yet, by id, after ``after_id``.

        A row still ARCHIVING may not be deleted yet: its links wait until it is confirmed.
        """
        links, rows = self._links, self._rows
        query = self._select().where(
            links.c.entry_id.is_(None), rows.c.state == "ARCHIVED", links.c.id > after_id
        )
        if collection is not None:
            query = query.where(rows.c.collection == collection)
        return self._all(query.order_by(links.c.id).limit(limit))

    def of_rows(self, row_ids: Collection[int]) -> list[ObjectLink]:
        """The links of the archived rows ``row_ids``, by id."""
        found: list[ObjectLink] = []
        ordered = sorted(set(row_ids))
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            found += self._all(self._select().where(self._links.c.row_id.in_(batch)))
        return sorted(found, key=lambda link: link.id)

    def expiring(self, now: datetime, *, after_id: int = 0, limit: int = _BATCH) -> list[ObjectLink]:
        """Links of settled rows (ARCHIVED, RESTORED) whose retention ended by ``now``, by id."""
        links, rows = self._links, self._rows
        query = self._select().where(
            rows.c.state.in_(["ARCHIVED", "RESTORED"]), rows.c.expires_at < now, links.c.id > after_id
        )
        return self._all(query.order_by(links.c.id).limit(limit))

    def _owning(self) -> sa.ColumnElement[bool]:
        """A link owns its object while it is pending or its entry keeps the object out of service."""
        objects = self._objects
        quarantined = (
            sa.exists()
            .where(objects.c.id == self._links.c.entry_id, objects.c.state.in_(_OUT_OF_SERVICE))
            .correlate(self._links)
        )
        return sa.or_(self._links.c.entry_id.is_(None), quarantined)

    def owners(self, store: str, pairs: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
        """The ``(row_id, key)`` of ``pairs`` for which row ``row_id`` owns ``key`` of ``store``.

        Such a row holds the key through its link (its restore brings the object
        back), not as a reference that keeps the object live. A link whose
        object came back (its entry RESTORED: claimed by a writer, restored by
        hand) owns nothing any more: the row's reference keeps the object live.
        """
        found: set[tuple[int, str]] = set()
        ordered = sorted(set(pairs))
        links = self._links
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            query = sa.select(links.c.row_id, links.c.key).where(
                links.c.store == store,
                links.c.row_id.in_(sorted({row_id for row_id, _ in batch})),
                links.c.key_hash.in_(sorted({sha256_hex(key) for _, key in batch})),
                self._owning(),
            )
            wanted = set(batch)
            with self._catalog.begin() as connection:
                rows = ((int(row_id), str(key)) for row_id, key in connection.execute(query))
                found.update(pair for pair in rows if pair in wanted)
        return found

    def held(self, store: str, keys: Collection[str], *, now: datetime) -> set[str]:
        """The ``keys`` of ``store`` a restorable row whose retention has not ended by ``now`` owns."""
        links, rows = self._links, self._rows
        found: set[str] = set()
        ordered = sorted(set(keys))
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            wanted = set(batch)
            query = (
                sa.select(links.c.key)
                .join(rows, rows.c.id == links.c.row_id)
                .where(
                    links.c.store == store,
                    links.c.key_hash.in_([sha256_hex(k) for k in batch]),
                    rows.c.state.in_(_RESTORABLE),
                    sa.or_(rows.c.expires_at.is_(None), rows.c.expires_at >= now),
                    self._owning(),
                )
            )
            with self._catalog.begin() as connection:
                found.update(k for k in map(str, connection.execute(query).scalars()) if k in wanted)
        return found

    def count(self, *, pending: bool | None = None) -> int:
        """How many links there are (``pending``: only those without, or with, a journal entry)."""
        query = sa.select(sa.func.count()).select_from(self._links)
        if pending is True:
            query = query.where(self._links.c.entry_id.is_(None))
        elif pending is False:
            query = query.where(self._links.c.entry_id.is_not(None))
        with self._catalog.begin() as connection:
            return int(connection.execute(query).scalar_one())

    # -- writes --------------------------------------------------------------------------

    def attach(self, entries: Sequence[tuple[int, int]]) -> int:
        """Set each pending link ``link_id`` to its journal entry ``entry_id``; return how many."""
        done = 0
        for start in range(0, len(entries), _BATCH):
            with self._writing() as connection:
                for link_id, entry_id in entries[start : start + _BATCH]:
                    done += connection.execute(
                        self._links.update()
                        .where(self._links.c.id == link_id, self._links.c.entry_id.is_(None))
                        .values(entry_id=entry_id)
                    ).rowcount
        return done

    def drop(self, ids: Collection[int]) -> int:
        """Delete the links ``ids``; return how many."""
        dropped = 0
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), _BATCH):
            with self._writing() as connection:
                dropped += connection.execute(
                    self._links.delete().where(self._links.c.id.in_(ordered[start : start + _BATCH]))
                ).rowcount
        return dropped


def _link(row: Any) -> ObjectLink:
    entry = None if row.entry_id is None else int(row.entry_id)
    return ObjectLink(int(row.id), int(row.row_id), str(row.store), str(row.key), entry, str(row.collection))
