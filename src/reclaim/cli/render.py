"""Rich rendering of reports for people; ``--json`` bypasses all of this."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reclaim.api import CheckReport, ScanReport
from reclaim.cli.render_text import plural
from reclaim.config import format_duration, redact
from reclaim.lifecycle import StoreScan, Tally

__all__ = ["human_bytes", "render_check", "render_refused", "render_scan", "render_scan_stores"]


def render_refused(console: Console, store: str, what: str, count: int, samples: list[str]) -> None:
    """A warning line for keys or journal entries a step refused, with their samples."""
    if not count:
        return
    console.print(f"[yellow]store {store}: {count:,} {what}, left as they are[/]")
    for sample in samples:
        console.print(f"  refused: {sample}", markup=False, highlight=False)


def human_bytes(value: int | None) -> str:
    """``1.5 MiB``-style sizes; ``?`` when unknown."""
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover - unreachable, keeps mypy content


def _tally(t: Tally) -> tuple[str, str]:
    return f"{t.count:,}", human_bytes(t.bytes)


def _store_table(s: StoreScan) -> Table:
    url = escape(redact(s.url))  # as masked as --json: the URL may hold an env-derived secret
    title = f"store [bold]{s.store}[/] {url}  (min_age {format_duration(s.min_age)}, action {s.action})"
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("objects")
    table.add_column("count", justify="right")
    table.add_column("bytes", justify="right")
    rows = [
        ("listed", s.listed),
        ("referenced", s.referenced),
        ("[bold]candidates[/]", s.candidates),
        ("too young", s.young),
        ("excluded", s.excluded),
    ]
    if s.stray_policy == "report":
        rows.append(("strays (reported)", s.strays))
    if s.vanished.count:
        rows.append(("vanished during scan", s.vanished))
    if s.changed.count:
        rows.append(("changed since the inventory", s.changed))
    for label, tally in rows:
        count, size = _tally(tally)
        if not s.referenced_bytes_measured and (tally is s.listed or tally is s.referenced):
            size = "not measured"
        table.add_row(label, count, size)
    return table


def _sources_table(s: StoreScan) -> Table:
    table = Table(show_edge=False)
    table.add_column("reference source")
    table.add_column("database")
    table.add_column("rows", justify="right")
    table.add_column("other stores", justify="right")
    table.add_column("objects kept", justify="right")
    for src in s.sources:
        table.add_row(src.name, src.database, f"{src.rows:,}", f"{src.foreign:,}", f"{src.covers:,}")
    return table


def render_scan(report: ScanReport, console: Console) -> None:
    """Print one table of counts and one of sources per store, then samples and warnings."""
    render_scan_stores(report.stores, console)
    seconds = (report.finished_at - report.started_at).total_seconds()
    console.print(f"scan finished in {seconds:.1f}s; nothing was changed.")


def render_scan_stores(stores: list[StoreScan], console: Console) -> None:
    """The per-store part of :func:`render_scan` (also used by quarantine)."""
    for s in stores:
        console.print(_store_table(s))
        if s.sources:
            console.print(_sources_table(s))
        else:
            console.print("[yellow]no reference sources: every old object is a candidate[/]")
        if not s.referenced_bytes_measured:
            console.print(
                "bytes of referenced objects not measured (the listing has no sizes); "
                "`reclaim scan --referenced-bytes` measures them with a stat per object"
            )
        if s.samples:
            console.print("sample candidates:")
            for info in s.samples:
                when = (
                    datetime.fromtimestamp(info.mtime, UTC).isoformat(timespec="seconds")
                    if info.mtime
                    else "?"
                )
                console.print(f"  {info.key}  {human_bytes(info.size)}  modified {when}", markup=False)
        if s.strays.count:
            console.print(
                f"[yellow]{plural(s.strays.count, 'stray')}: unreferenced objects no row collection "
                "released (no row held them, live or archived); reported, never touched[/]"
            )
            for info in s.stray_samples:
                console.print(f"  stray: {info.key}  {human_bytes(info.size)}", markup=False)
        if s.over_max_fraction:
            console.print(
                f"[bold red]candidates are {s.fraction:.0%} of the store, above max_fraction "
                f"{s.max_fraction:.0%}: quarantine would refuse to proceed[/]"
            )
        if s.action == "report" and s.candidates.count:
            console.print("[yellow]report-only store: candidates are listed, never touched[/]")
        console.print()


def render_check(report: CheckReport, console: Console) -> None:
    """Print dangling references per store and source, with sample rows."""
    for s in report.stores:
        table = Table(
            title=f"store [bold]{s.store}[/] {escape(redact(s.url))}: {plural(s.listed, 'object')}",
            title_justify="left",
            show_edge=False,
        )
        table.add_column("reference source")
        table.add_column("references", justify="right")
        table.add_column("dangling", justify="right")
        table.add_column("quarantined", justify="right")
        for src in s.sources:
            style = "bold red" if src.dangling else ""
            dangling = f"[{style}]{src.dangling:,}[/]" if style else "0"
            restorable = f"[yellow]{src.quarantined:,}[/]" if src.quarantined else "0"
            table.add_row(src.name, f"{src.references:,}", dangling, restorable)
        console.print(table)
        for src in s.sources:
            if src.dangling_policy == "ignore":
                console.print(
                    f"  {src.name}: {plural(src.expected_missing, 'missing object')} expected "
                    '(dangling = "ignore"), not reported as dangling',
                    markup=False,
                )
            for d in src.samples:
                row = f" row {d.row}" if d.row else ""
                console.print(
                    f"  dangling in {src.name}: {d.value!r} -> missing key {d.key!r}{row}", markup=False
                )
            for q in src.quarantined_samples:
                row = f" row {q.row}" if q.row else ""
                console.print(f"  quarantined, restorable: {src.name}: {q.key!r}{row}", markup=False)
                console.print(f"    {q.restore}", markup=False, soft_wrap=True)  # copied as one line
        console.print()
    for s in report.stores:
        j = s.journal
        if j is None:
            console.print(
                f"store {s.store}: catalog not initialised, journal checks skipped ('reclaim init')"
            )
            continue
        console.print(
            f"store {s.store} journal: {j.stray_count:,} strays in the trash, "
            f"{j.missing_count:,} quarantined objects missing, {j.in_flight:,} entries in flight"
        )
        for key in j.strays:
            console.print(f"  stray (no quarantine entry): {key}", markup=False)
        for key in j.missing:
            console.print(f"  quarantined but missing: {key}", markup=False)
        if j.inconsistent_count:
            console.print(
                f"store {s.store} journal: {j.inconsistent_count:,} inconsistent entries, "
                "refused by purge, restore and recover (the journal is checked, not trusted)"
            )
        for text in j.inconsistent:
            console.print(f"  inconsistent: {text}", markup=False)
        if j.in_flight:
            console.print("  run 'reclaim recover' to settle the entries in flight")
    quarantined = sum(s.quarantined for s in report.stores)
    if quarantined:
        console.print(
            f"[yellow]{quarantined:,} {'reference' if quarantined == 1 else 'references'} to quarantined "
            "objects[/] (still restorable: run the restore commands above)"
        )
    if report.dangling:
        console.print(f"[bold red]{report.dangling:,} dangling references[/] (reported, never fixed)")
    else:
        console.print("no dangling references.")
