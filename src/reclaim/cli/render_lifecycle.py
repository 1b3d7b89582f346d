"""Rich rendering of lifecycle reports, status, the audit log and the lease."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from reclaim.api import LifecycleReport, StatusReport
from reclaim.catalog import LeaseInfo, RunRecord
from reclaim.cli.render import human_bytes, render_refused, render_scan_stores
from reclaim.cli.render_text import ago, ahead, compact_table, objects, plural, run_summary, would
from reclaim.config import format_duration

__all__ = ["render_lease", "render_lifecycle", "render_run", "render_runs", "render_status"]


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
        render_refused(
            console, rec.store, "inconsistent journal entries", rec.refused.count, rec.refused.samples
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
    dry = report.dry_run
    for q in report.quarantined:
        size = human_bytes(q.quarantined.bytes)
        console.print(
            f"{prefix}store [bold]{q.store}[/]: {would('quarantine', dry)} "
            f"{objects(q.quarantined.count, size)}, mode {q.mode}; left alone: "
            f"{q.referenced_again:,} referenced again, {q.changed:,} changed, {q.vanished:,} vanished, "
            f"{q.already_active:,} already quarantined"
        )
        render_refused(
            console, q.store, "keys the store or journal cannot hold", q.bad_keys.count, q.bad_keys.samples
        )
    if dry and report.command in {"quarantine", "collect"} and not report.quarantined:
        collect = [s for s in report.scans if s.action == "collect"]
        total = sum(s.candidates.count for s in collect)
        size = human_bytes(
            None
            if any(s.candidates.bytes is None for s in collect)
            else sum(s.candidates.bytes or 0 for s in collect)
        )
        console.print(f"{prefix}would quarantine {objects(total, size)}; nothing was changed")
    for p in report.purged:
        console.print(
            f"{prefix}store [bold]{p.store}[/]: {plural(p.due, 'object')} due; {would('purge', dry)} "
            f"{objects(p.purged.count, human_bytes(p.purged.bytes))}; {would('restore', dry)} "
            f"{p.restored:,} referenced again"
            + (f"; {p.changed:,} changed since quarantine" if p.changed else "")
            + (f"; {p.lost_race:,} claimed by writers" if p.lost_race else "")
        )
        render_refused(console, p.store, "inconsistent journal entries", p.refused.count, p.refused.samples)
    for name, r in report.restored.items():
        console.print(
            f"{prefix}store [bold]{name}[/]: {would('restore', dry)} "
            f"{objects(r.restored, human_bytes(r.restored_bytes))}"
        )
        for key in r.kept_newer:
            console.print(f"  {key}: re-uploaded meanwhile; the newer object was kept", markup=False)
        for key in r.missing:
            console.print(f"  [red]{key}: trash copy missing, not restorable[/]")
        render_refused(console, name, "inconsistent journal entries", r.refused.count, r.refused.samples)
    if report.run_id is not None:
        console.print(f"run {report.run_id} recorded; see 'reclaim runs {report.run_id}'")


def render_status(report: StatusReport, console: Console) -> None:
    """Per store quarantine summary, the lease and the last runs; fits 80 columns."""
    now = datetime.now(UTC)
    table = compact_table("stores")
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
            ago(m.oldest, now),
            ahead(m.next_due, now),
            f"{m.in_flight:,}",
            f"{m.purged:,}",
            f"{m.restored:,}",
        )
    console.print(table)
    for s in report.stores:
        if s.strays:
            console.print(
                f"[yellow]store {s.store}: {plural(s.strays, 'stray')} in the last cycle "
                "(no row released them; reported, never touched)[/]"
            )
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
    """The audit log as a table that fits 80 columns: one short summary per run."""
    table = compact_table("runs")
    for column in ("id", "command", "status", "started", "took"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("id", "took") else "left")
    table.add_column("summary", overflow="fold")
    for r in records:
        took = format_duration(r.finished_at - r.started_at) if r.finished_at else "-"
        command = r.command + (" (dry)" if r.dry_run else "")
        table.add_row(str(r.id), command, r.status, _short(r.started_at), took, run_summary(r))
    console.print(table)
    if len(records) > 1:
        console.print("details of one run: reclaim runs ID", style="dim")


def render_run(record: RunRecord, console: Console) -> None:
    """One run in detail: who, when, options, outcome, and the counts per store and collection."""
    r = record
    took = format_duration(r.finished_at - r.started_at) if r.finished_at else "-"
    console.print(f"[bold]run {r.id}[/]: {r.command}{' --dry-run' if r.dry_run else ''}, {r.status}")
    console.print(f"  by       {r.user}@{r.host} pid {r.pid}", markup=False)
    console.print(f"  started  {_when(r.started_at)}, finished {_when(r.finished_at)} (took {took})")
    options = {k: v for k, v in r.options.items() if v not in (None, [], {}, False)}
    if options:
        console.print("  options  " + ", ".join(f"{k}={v}" for k, v in options.items()), markup=False)
    console.print(f"  summary  {run_summary(r)}", markup=False)
    if r.error:
        console.print(f"  error    {r.error}", markup=False)
    for section, value in r.counts.items():
        _render_counts(console, section, value, indent=2)


def _render_counts(console: Console, name: str, value: object, *, indent: int) -> None:
    pad = " " * indent
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        console.print(f"{pad}{name}:", markup=False)
        for key, inner in value.items():
            _render_counts(console, str(key), inner, indent=indent + 2)
    elif isinstance(value, dict):
        flat = ", ".join(f"{k} {_flat(v)}" for k, v in value.items() if k not in ("store", "collection"))
        console.print(f"{pad}{name}: {flat or '-'}", markup=False)
    else:
        console.print(f"{pad}{name}: {_flat(value)}", markup=False)


def _flat(value: object) -> str:
    if isinstance(value, dict) and set(value) == {"count", "bytes"}:
        size = value["bytes"]
        return objects(int(value["count"]), human_bytes(size if isinstance(size, int) else None))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return f"[{len(value)}]" if value else "[]"
    return str(value)


def _short(value: datetime | None) -> str:
    """``2026-12-03 12:34`` (UTC): short enough for a table column."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"
