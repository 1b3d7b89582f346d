"""Archived rows as reference sources: what a restorable row points at stays referenced.

For every table reference source of a store (``table`` + ``column``, with or
without ``json_path``), :func:`archived_sources` adds a source that yields the
same values read from the *archived* rows of that table (``row_refs``, filled
when the rows were archived). A restored ``AssetBlob`` row therefore finds its
object: while the row can be restored, the object is never a candidate, and
the purge re-check finds it referenced (invariant 6).

Query sources (``query = ...``) have no table to follow; rows they read are
not tracked once archived (the README says so).
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import sqlalchemy as sa

from reclaim.catalog import RowArchive
from reclaim.config.model import ReferenceConfig
from reclaim.references import KeySpan, ReferenceSource
from reclaim.references.sources import Reference, candidate_values
from reclaim.rows import reference_selector

__all__ = ["ArchivedSource", "archived_sources"]


@dataclass
class ArchivedSource(ReferenceSource):
    """The values a table reference reads, taken from archived (restorable) rows of that table."""

    archive: RowArchive | None = None
    table_name: str = ""
    selector: str = ""

    def validate(self) -> None:
        """Nothing to check: the archive is reclaim's own table."""

    def references(self) -> Generator[Reference, None, None]:
        """Archived rows are not checked for dangling references."""
        yield from ()

    def lookup(self, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` that restorable archived rows reference now."""
        assert self.archive is not None
        wanted = self._wanted(keys)
        found: set[str] = set()
        for value in self.archive.held(self.table_name, self.selector, wanted):
            found.update(wanted[value])
        return found

    def _wanted(self, keys: Collection[str]) -> dict[str, list[str]]:
        """The values an archived row would hold to reference each of ``keys``, with the keys of each."""
        wanted: dict[str, list[str]] = {}
        for key in keys:
            for value in candidate_values(self.config, key):
                wanted.setdefault(value, []).append(key)
        return wanted

    def _ordered_rows(self, with_rows: bool) -> Generator[Sequence[Any], None, None]:
        assert self.archive is not None
        for value in self.archive.values(self.table_name, self.selector):
            yield (value,)

    def _value_pages(self, span: KeySpan | None = None) -> Generator[list[Any], None, None]:
        """The archived values in order, a page at a time (what the page scan reads): never the live table.

        With ``span`` (a distributed scan's range), the values it needs, cut here in Python.
        """
        assert self.archive is not None
        bounds = self._span_bounds(span)
        admitted = bounds.test() if bounds is not None else None
        self._filtered_in_sql = False
        values = iter(self.archive.values(self.table_name, self.selector))
        while page := list(islice(values, _PAGE)):
            if admitted is not None:
                self._seen += len(page)
                page = list(filter(admitted, page))
                if not page:
                    continue
            yield page


#: archived values per page of the scan
_PAGE = 2_000


def archived_sources(
    archive: RowArchive, sources: Sequence[ReferenceSource], *, engine: sa.Engine
) -> list[ArchivedSource]:
    """One archived counterpart per table source whose table has restorable archived rows."""
    found = []
    for source in sources:
        cfg = source.config
        if cfg.table is None or cfg.column is None:
            continue
        table_name = f"{cfg.table_schema}.{cfg.table}" if cfg.table_schema else cfg.table
        if not archive.has_refs(table_name):
            continue
        found.append(
            ArchivedSource(
                name=f"{source.name} (archived rows)",
                config=_archived_config(cfg),
                engine=engine,
                database="catalog",
                archive=archive,
                table_name=table_name,
                selector=reference_selector(cfg),
            )
        )
    return found


def _archived_config(cfg: ReferenceConfig) -> ReferenceConfig:
    # the archive may hold nothing for this source: an empty stream is expected
    return cfg.model_copy(update={"allow_empty": True})
