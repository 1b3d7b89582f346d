"""Rich rendering of row collections: scans, the scheduled cycle, row restores, archive status."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from reclaim.api import CycleReport, RowsReport
from reclaim.api.status import CollectionStatus
from reclaim.cli.render import human_bytes, render_refused, render_scan_stores
from reclaim.lifecycle.rows import CollectionScan

__all__ = ["render_collection_scans", "render_collection_status", "render_cycle", "render_rows_restore"]


def render_collection_scans(scans: list[CollectionScan], console: Console) -> None:
    """One table: per collection, rows, candidates, their size, rows kept by the archive."""
    if not scans:
        return
    table = Table(title="collections", title_justify="left", show_edge=False)
    for column in ("collection", "table", "action", "rows", "candidates", "bytes", "kept by archive"):
        table.add_column(column, justify="right" if column in {"rows", "candidates", "bytes"} else "left")
    for s in scans:
        table.add_row(
            s.collection,
            s.table,
            s.action,
            f"{s.rows:,}",
            f"{s.candidates:,}",
            human_bytes(s.bytes),
            f"{s.held:,}",
        )
    console.print(table)
    for s in scans:
        if s.samples:
            console.print(f"sample candidates of {s.collection}: {', '.join(s.samples)}", markup=False)
        if s.action == "report" and s.candidates:
            console.print(f"[yellow]report-only collection {s.collection}: rows are listed, never touched[/]")
    console.print()


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
        verb = "would purge" if report.dry_run else "purged"
        count = p.due - p.restored if report.dry_run else p.purged.count
        console.print(
            f"{prefix}store [bold]{p.store}[/]: {p.due:,} due, {verb} {count:,}, "
            f"restored {p.restored:,} referenced again"
        )
        render_refused(console, p.store, "inconsistent journal entries", p.refused.count, p.refused.samples)
    render_collection_scans(report.collection_scans, console)
    for c in report.collections:
        console.print(
            f"collection [bold]{c.collection}[/] ({c.table}): archived and deleted {c.archived:,} rows "
            f"({human_bytes(c.bytes)}); kept {c.held:,} referenced by archived rows; "
            f"skipped {c.skipped:,} (locked or referenced meanwhile)"
        )
    if report.scans:
        render_scan_stores(report.scans, console)
    for q in report.quarantined:
        console.print(
            f"store [bold]{q.store}[/]: quarantined {q.quarantined.count:,} objects "
            f"({human_bytes(q.quarantined.bytes)}, mode {q.mode})"
        )
        render_refused(
            console, q.store, "keys the store or journal cannot hold", q.bad_keys.count, q.bad_keys.samples
        )
    if not report.dry_run:
        entries = sum(report.expired_entries.values())
        console.print(
            f"expired {report.expired_rows:,} archived rows and {entries:,} finished journal entries"
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
    table = Table(title="collections", title_justify="left", show_edge=False)
    for column in (
        "collection",
        "action",
        "archived",
        "bytes",
        "oldest",
        "next expiry",
        "restored",
        "findings",
    ):
        table.add_column(column)
    for c in collections:
        m = c.summary
        table.add_row(
            c.collection,
            c.action,
            f"{m.archived:,}",
            human_bytes(m.bytes),
            m.oldest.isoformat(timespec="seconds") if m.oldest else "-",
            m.next_expiry.isoformat(timespec="seconds") if m.next_expiry else "-",
            f"{m.restored:,}",
            "-" if c.findings is None else f"{c.findings:,}",
        )
    console.print(table)
