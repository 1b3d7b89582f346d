"""Restoring archived rows: dependencies first, never over a row that took the key again.

:func:`plan_row_restore` takes the archived rows an operator selected and adds
the archived rows they reference (an ``Asset`` restored with the
``AssetBlob`` it points at, if that was archived too), ordered so that a
referenced row is inserted before the rows that reference it. Before anything
is inserted every primary key is checked: one that a live row holds again is a
:class:`~reclaim.errors.RowConflict`, and nothing is restored.

A row of an ``objects = "follow"`` collection gets its objects back first
(:func:`~reclaim.lifecycle.follow.restore_owned`, through ``before``): a crash
in between leaves the objects live and the row archived, which a new restore
finishes.

Each row is restored like an object (intent before action): with the catalog
in the same database, the insert and ARCHIVED -> RESTORED are one transaction;
otherwise ARCHIVED -> RESTORING commits first, then the insert, then
RESTORING -> RESTORED, and :func:`~reclaim.lifecycle.rows.recover_rows`
settles a run killed in between by looking whether the row is in its table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from reclaim.catalog import ArchivedRow, LeaseCheck, RowArchive, RowState, pk_text
from reclaim.errors import CatalogError, CollectionError, RowConflict
from reclaim.lifecycle.faults import fault
from reclaim.lifecycle.progress import ProgressLike, as_progress
from reclaim.lifecycle.rows import row_exists
from reclaim.rows import CollectionTable, decode_row

__all__ = ["RowRestorePlan", "RowRestoreResult", "plan_row_restore"]


@dataclass
class RowRestoreResult:
    """What restoring rows did (or, for a dry run, would do)."""

    restored: dict[str, int] = field(default_factory=dict)
    """Rows restored per collection."""
    dependencies: int = 0
    """Rows added because a selected row references them."""
    lost_race: int = 0
    """Records another actor changed first."""
    samples: list[str] = field(default_factory=list)
    objects: dict[str, int] = field(default_factory=dict)
    """Objects the rows owned (``objects = "follow"``) brought back, per store."""

    @property
    def total(self) -> int:
        """Rows restored over all collections."""
        return sum(self.restored.values())


@dataclass
class RowRestorePlan:
    """Archived rows to insert again, in dependency order."""

    rows: list[ArchivedRow]
    tables: Mapping[str, CollectionTable]
    shared: Mapping[str, bool]
    dependencies: int

    def preview(self) -> RowRestoreResult:
        """What :meth:`execute` would restore."""
        result = RowRestoreResult(dependencies=self.dependencies)
        for row in self.rows:
            result.restored[row.collection] = result.restored.get(row.collection, 0) + 1
            result.samples.append(f"{row.collection} {row.pk}")
        return result

    def execute(
        self,
        archive: RowArchive,
        *,
        run_id: int,
        check_lease: LeaseCheck,
        progress: ProgressLike = None,
        before: Callable[[ArchivedRow], None] | None = None,
    ) -> RowRestoreResult:
        """Insert every planned row again (see the module docstring); reports to ``progress``.

        ``before`` is called with each row before it is inserted: the objects it
        owns come back first (``objects = "follow"``), so a row is never live
        while its object is still quarantined.
        """
        result = RowRestoreResult(dependencies=self.dependencies)
        names = ", ".join(sorted({row.collection for row in self.rows})) or "rows"
        step = as_progress(progress).step("restore", names, len(self.rows), kind="collection", unit="rows")
        for row in self.rows:
            step.advance()
            check_lease()
            ct = self.tables[row.collection]
            if before is not None:
                before(row)
            done = _restore_one(ct, archive, row, run_id=run_id, shared=self.shared[row.collection])
            if not done:
                result.lost_race += 1
                continue
            result.restored[row.collection] = result.restored.get(row.collection, 0) + 1
            result.samples.append(f"{row.collection} {row.pk}")
        step.done()
        return result


def plan_row_restore(
    selected: Sequence[ArchivedRow],
    tables: Mapping[str, CollectionTable],
    archive: RowArchive,
    *,
    shared: Mapping[str, bool],
) -> RowRestorePlan:
    """Add dependencies, order them first, refuse any primary key taken again (see the module docstring)."""
    by_table = {ct.qualified: ct for ct in tables.values()}
    chosen: dict[int, ArchivedRow] = {row.id: row for row in selected}
    queue = list(selected)
    while queue:
        row = queue.pop()
        ct = tables.get(row.collection)
        if ct is None:
            raise CollectionError(row.collection, "is not configured any more; its rows cannot be restored")
        refs = dict(archive.refs_of(row.id))
        for selector, referred_table, referred_columns in ct.outbound:
            target = by_table.get(referred_table)
            value = refs.get(selector)
            if target is None or value is None or tuple(referred_columns) != target.pk:
                continue
            key = value if len(referred_columns) > 1 else pk_text([value])
            for dependency in archive.select(collection=target.name, pk=key):
                if dependency.id not in chosen:
                    chosen[dependency.id] = dependency
                    queue.append(dependency)
    rank = _ranks(tables)
    ordered = sorted(chosen.values(), key=lambda r: (rank.get(r.collection, 0), r.id))
    for row in ordered:
        _decoded(tables[row.collection], row)  # a record that cannot be restored stops it before anything
    for row in ordered:
        if row_exists(tables[row.collection], row.pk):
            raise RowConflict(row.collection, row.pk)
    return RowRestorePlan(ordered, tables, shared, dependencies=len(chosen) - len(selected))


def _ranks(tables: Mapping[str, CollectionTable]) -> dict[str, int]:
    """Collections ordered so that a referenced table comes before the tables referencing it."""
    by_table = {ct.qualified: name for name, ct in tables.items()}
    rank: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> int:
        if name in rank:
            return rank[name]
        if name in path:  # a cycle: order within it by archive id
            return 0
        ct = tables[name]
        below = [
            visit(by_table[t], (*path, name)) for t in ct.referenced_tables if by_table.get(t, name) != name
        ]
        rank[name] = 1 + max(below, default=-1)
        return rank[name]

    for name in tables:
        visit(name, ())
    return rank


def _restore_one(
    ct: CollectionTable, archive: RowArchive, row: ArchivedRow, *, run_id: int, shared: bool
) -> bool:
    values = _decoded(ct, row)
    if shared:
        try:
            with ct.engine.begin() as conn:
                if archive.transition(row, RowState.RESTORED, run_id=run_id, connection=conn) is None:
                    return False
                conn.execute(ct.table.insert().values(values))
        except IntegrityError:
            raise RowConflict(row.collection, row.pk) from None
        except SQLAlchemyError as exc:
            raise CollectionError(ct.name, f"restoring {row.pk}: {type(exc).__name__}") from None
        fault("rows-restore.after-insert")
        return True
    claimed = archive.transition(row, RowState.RESTORING, run_id=run_id)
    if claimed is None:
        return False
    fault("rows-restore.after-claim")
    try:
        with ct.engine.begin() as conn:
            conn.execute(ct.table.insert().values(values))
    except IntegrityError:
        archive.transition(claimed, RowState.ARCHIVED, run_id=run_id)
        raise RowConflict(row.collection, row.pk) from None
    except SQLAlchemyError as exc:
        archive.transition(claimed, RowState.ARCHIVED, run_id=run_id)
        raise CollectionError(ct.name, f"restoring {row.pk}: {type(exc).__name__}") from None
    fault("rows-restore.after-insert")
    archive.transition(claimed, RowState.RESTORED, run_id=run_id)
    return True


def _decoded(ct: CollectionTable, row: ArchivedRow) -> dict[str, Any]:
    """The values to insert for ``row``; :class:`CatalogError` naming it when its JSON is impossible."""
    try:
        values = decode_row(row.row)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CatalogError(
            f"archived row {row.id} (table rows, collection {row.collection!r}, primary key {row.pk[:100]}): "
            f"its JSON cannot be decoded ({' '.join(str(exc).split())[:200]}); repair or delete that row"
        ) from None
    return _insertable(ct, values)


def _insertable(ct: CollectionTable, values: Mapping[str, Any]) -> dict[str, Any]:
    """The archived values, refused when the table lost one of their columns since."""
    columns = {c.name for c in ct.table.columns}
    unknown = sorted(set(values) - columns)
    if unknown:
        raise CollectionError(
            ct.name, f"the table has no column {unknown[0]!r} any more; restore by hand from the archive"
        )
    return {name: value for name, value in values.items() if name in columns}
