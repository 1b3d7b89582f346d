"""Rich rendering of row collections: scans, the scheduled cycle, row restores, archive status."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from reclaim.api import CollectionStatus, CycleReport, RowsReport
from reclaim.cli.render import human_bytes, render_refused, render_scan_stores
from reclaim.cli.render_text import ago, ahead, compact_table, objects, plural, would
from reclaim.lifecycle.rows import CollectionScan

__all__ = ["render_collection_scans", "render_collection_status", "render_cycle", "render_rows_restore"]


def render_collection_scans(scans: list[CollectionScan], console: Console) -> None:
    """One table: per collection, rows, candidates, their size, rows kept by the archive."""
    if not scans:
        return
    table = Table(title="collections", title_justify="left", show_edge=False)
    numbers = {"rows", "candidates", "row bytes", "data bytes"}
    columns = ("collection", "table", "action", "rows", "candidates", "row bytes", "data bytes")
    for column in (*columns, "kept by archive"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for s in scans:
        table.add_row(
            s.collection,
            s.table,
            s.action,
            f"{s.rows:,}",
            f"{s.candidates:,}",
            human_bytes(s.row_bytes),
            _data_bytes(s.data_bytes),
            f"{s.held:,}",
        )
    console.print(table)
    for s in scans:
        if s.samples:
            console.print(f"sample candidates of {s.collection}: {', '.join(s.samples)}", markup=False)
        if s.action == "report" and s.candidates:
            console.print(f"[yellow]report-only collection {s.collection}: rows are listed, never touched[/]")
    console.print()


def _data_bytes(size: int | None) -> str:
    return "not measured" if size is None else human_bytes(size)


def render_cycle(report: CycleReport, console: Console) -> None:
    """What one ``reclaim run`` did."""
    prefix = "[bold yellow]dry run[/]: " if report.dry_run else ""
    r = report.rows_recovered
    if r.total:
        console.print(
            f"recovered archive: {r.confirmed} confirmed, {r.discarded} discarded (row still live), "
            f"{r.restored} restored, {r.rolled_back} rolled back"
        )
    for rec in report.recovered:
        console.print(f"recovered store {rec.store}: {rec.total} entries settled")
        render_refused(
            console, rec.store, "inconsistent journal entries", rec.refused.count, rec.refused.samples
        )
    for p in report.purged:
        console.print(
            f"{prefix}store [bold]{p.store}[/]: {plural(p.due, 'object')} due, "
            f"{would('purge', report.dry_run)} {objects(p.purged.count, human_bytes(p.purged.bytes))}, "
            f"{would('restore', report.dry_run)} {p.restored:,} referenced again"
            + (
                f", {would('leave', report.dry_run)} {p.changed:,} changed since quarantine"
                if p.changed
                else ""
            )
        )
        render_refused(console, p.store, "inconsistent journal entries", p.refused.count, p.refused.samples)
    render_collection_scans(report.collection_scans, console)
    for c in report.collections:
        console.print(
            f"collection [bold]{c.collection}[/] ({c.table}): "
            f"archived and deleted {plural(c.archived, 'row')} "
            f"(row bytes {human_bytes(c.row_bytes)}, data bytes {_data_bytes(c.data_bytes)}); "
            f"kept {c.held:,} referenced by archived rows; "
            f"skipped {c.skipped:,} (locked or referenced meanwhile)"
        )
        if c.objects or c.objects_kept:
            console.print(
                f"  their objects: quarantined {objects(c.objects, human_bytes(c.objects_bytes))} "
                f"with them; {c.objects_kept:,} left live (referenced by another row, or changed)"
            )
    if report.scans:
        render_scan_stores(report.scans, console)
    for inc in report.incremental or ():
        console.print(
            f"store [bold]{inc.store}[/] (incremental): {plural(inc.queued, 'queued key')}, "
            f"{inc.missing:,} gone, {inc.referenced:,} still referenced, {inc.young.count:,} too young "
            f"(left queued), {inc.skipped:,} never candidates, "
            f"{objects(inc.candidates.count, human_bytes(inc.candidates.bytes))} unreferenced; "
            f"last full scan {inc.last_full_scan:%Y-%m-%d %H:%M} UTC"
        )
    for q in report.quarantined:
        console.print(
            f"{prefix}store [bold]{q.store}[/]: {would('quarantine', report.dry_run)} "
            f"{objects(q.quarantined.count, human_bytes(q.quarantined.bytes))}, mode {q.mode}"
        )
        render_refused(
            console, q.store, "keys the store or journal cannot hold", q.bad_keys.count, q.bad_keys.samples
        )
    if report.dry_run and not report.quarantined:
        for inc in report.incremental or ():
            console.print(
                f"{prefix}store [bold]{inc.store}[/]: would quarantine "
                f"{objects(inc.candidates.count, human_bytes(inc.candidates.bytes))}"
            )
        for s in report.scans:
            if s.action == "collect":
                console.print(
                    f"{prefix}store [bold]{s.store}[/]: would quarantine "
                    f"{objects(s.candidates.count, human_bytes(s.candidates.bytes))}"
                )
    if not report.dry_run:
        entries = sum(report.expired_entries.values())
        console.print(
            f"expired {report.expired_rows:,} archived rows and {entries:,} finished journal entries"
        )
        for store, purged in report.expired_objects.items():
            size = human_bytes(purged.purged.bytes)
            console.print(
                f"store [bold]{store}[/]: purged {objects(purged.purged.count, size)} that expired rows "
                f"owned; restored {purged.restored:,} referenced again"
            )
    if report.findings:
        console.print(f"[yellow]{report.findings:,} report-only findings (listed above, never touched)[/]")
    if report.run_id is not None:
        console.print(f"run {report.run_id} recorded; see 'reclaim runs {report.run_id}'")


def render_rows_restore(report: RowsReport, console: Console) -> None:
    """What a restore of archived rows did."""
    prefix = "[bold yellow]dry run[/]: would restore" if report.dry_run else "restored"
    result = report.result
    for collection, count in result.restored.items():
        console.print(f"{prefix} {count:,} rows of collection [bold]{collection}[/]")
    if result.dependencies:
        console.print(f"  including {result.dependencies:,} archived rows the selected rows reference")
    for store, count in result.objects.items():
        console.print(f"{prefix} {objects(count)} of store [bold]{store}[/] that the rows own")
    if not result.restored:
        console.print("no archived rows matched")
    if result.lost_race:
        console.print(f"{result.lost_race} rows were changed by another actor first and left alone")
    if report.run_id is not None:
        console.print(f"run {report.run_id} recorded; see 'reclaim runs {report.run_id}'")


def render_collection_status(collections: list[CollectionStatus], console: Console) -> None:
    """The archive per collection, and the last run's report-only findings."""
    if not collections:
        return
    now = datetime.now(UTC)
    table = compact_table("collections")
    columns = ("collection", "action", "archived", "oldest", "next expiry", "restored", "findings")
    for column in (*columns, "data"):  # data: the bytes the candidate rows' objects hold (80 columns)
        table.add_column(column, no_wrap=True)
    for c in collections:
        m = c.summary
        table.add_row(
            c.collection,
            c.action,
            f"{m.archived:,} ({human_bytes(m.bytes)})" if m.archived else "0",
            ago(m.oldest, now),
            ahead(m.next_expiry, now),
            f"{m.restored:,}",
            "-" if c.findings is None else f"{c.findings:,}",
            "-" if c.data_bytes is None else human_bytes(c.data_bytes),
        )
    console.print(table)
    for c in collections:
        if c.watched is not None:
            console.print(f"collection {c.collection}: {c.watched:,} rows seen unreferenced, clock running")
