"""Rich rendering of lifecycle reports, status, the audit log and the lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from reclaim.api import LifecycleReport, StatusReport
from reclaim.catalog import LeaseInfo, RunRecord
from reclaim.cli.render import human_bytes, render_scan_stores
from reclaim.config import format_duration

__all__ = ["render_lease", "render_lifecycle", "render_runs", "render_status"]


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else "-"


def render_lifecycle(report: LifecycleReport, console: Console) -> None:
    """Print what a quarantine, purge, collect, restore or recover did."""
    prefix = "[bold yellow]dry run[/]: " if report.dry_run else ""
    for rec in report.recovered:
        console.print(
            f"recovered store {rec.store}: {rec.confirmed} confirmed, {rec.rolled_back} rolled back, "
            f"{rec.purged} purged, {rec.restored} restored"
        )
    rows = report.rows_recovered
    if rows is not None and rows.total:
        console.print(
            f"recovered archived rows: {rows.confirmed} confirmed, "
            f"{rows.discarded} discarded (row still live), "
            f"{rows.restored} restored, {rows.rolled_back} rolled back"
        )
    if report.scans:
        render_scan_stores(report.scans, console)
    for q in report.quarantined:
        console.print(
            f"{prefix}store [bold]{q.store}[/]: quarantined {q.quarantined.count:,} objects "
            f"({human_bytes(q.quarantined.bytes)}, mode {q.mode}); left alone: "
            f"{q.referenced_again} referenced "
            f"again, {q.changed} changed, {q.vanished} vanished, {q.already_active} already quarantined"
        )
    if report.dry_run and report.command in {"quarantine", "collect"}:
        total = sum(s.candidates.count for s in report.scans if s.action == "collect")
        console.print(f"{prefix}would quarantine {total:,} objects; nothing was changed")
    for p in report.purged:
        verb = "would purge" if report.dry_run else "purged"
        count = p.due - p.restored if report.dry_run else p.purged.count
        console.print(
            f"{prefix}store [bold]{p.store}[/]: {p.due:,} due; {verb} {count:,} "
            f"({human_bytes(p.purged.bytes) if not report.dry_run else '?'}); restored {p.restored:,} "
            f"referenced again; {p.changed} changed since quarantine; {p.lost_race} claimed by writers"
        )
    for name, r in report.restored.items():
        console.print(
            f"{prefix}store [bold]{name}[/]: restored {r.restored:,} objects "
            f"({human_bytes(r.restored_bytes)})"
        )
        for key in r.kept_newer:
            console.print(f"  {key}: re-uploaded meanwhile; the newer object was kept", markup=False)
        for key in r.missing:
            console.print(f"  [red]{key}: trash copy missing, not restorable[/]")
    if report.run_id is not None:
        console.print(f"run {report.run_id} recorded; see 'reclaim runs {report.run_id}'")


def render_status(report: StatusReport, console: Console) -> None:
    """Per store quarantine summary, the lease and the last runs; fits 80 columns."""
    now = datetime.now(UTC)
    table = Table(title="stores", title_justify="left", show_edge=False)
    for column in (
        "store",
        "grace",
        "quarantined",
        "oldest",
        "next purge",
        "in flight",
        "purged",
        "restored",
    ):
        table.add_column(column, justify="left" if column == "store" else "right", no_wrap=True)
    for s in report.stores:
        m = s.summary
        table.add_row(
            s.store,
            format_duration(s.grace),
            f"{count(m.quarantined)} ({human_bytes(m.quarantined_bytes)})" if m.quarantined else "0",
            _ago(m.oldest, now),
            _ahead(m.next_due, now),
            f"{m.in_flight:,}",
            f"{m.purged:,}",
            f"{m.restored:,}",
        )
    console.print(table)
    if any(s.summary.quarantined for s in report.stores):
        console.print(
            "grace counts from quarantine: an item's due time was fixed when it was quarantined, "
            "so changing grace affects only items quarantined afterwards; to purge earlier on "
            "purpose: reclaim purge --older-than DURATION (still re-checked)"
        )
    render_lease(report.lease, console, stale=report.lease_stale)
    render_runs(report.runs, console)


def count(n: int) -> str:
    """``n`` with thousands separators (the noun is the column's)."""
    return f"{n:,}"


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    return f"{_span(now - value)} ago"


def _ahead(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    return "now" if value <= now else f"in {_span(value - now)}"


def _span(delta: timedelta) -> str:
    """A short, rounded duration: 45s, 12m, 5h, 3d 4h."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def render_lease(lease: LeaseInfo, console: Console, *, stale: bool) -> None:
    """One line about the lease."""
    if not lease.holder:
        console.print("lease: free")
        return
    state = "[red]stale[/]" if stale else "held"
    console.print(
        f"lease: {state} by {lease.holder} (run {lease.run_id}) since {_when(lease.acquired_at)}, "
        f"heartbeat {_when(lease.heartbeat_at)}, expires {_when(lease.expires_at)}"
    )


def render_runs(records: list[RunRecord], console: Console) -> None:
    """The audit log as a table."""
    table = Table(title="runs", title_justify="left", show_edge=False)
    for column in ("id", "command", "status", "started", "took", "who", "counts"):
        table.add_column(column)
    for r in records:
        took = format_duration(r.finished_at - r.started_at) if r.finished_at else "-"
        counts = ", ".join(f"{k}: {v}" for k, v in r.counts.items())
        table.add_row(
            str(r.id), r.command, r.status, _when(r.started_at), took, f"{r.user}@{r.host}", counts[:120]
        )
    console.print(table)
