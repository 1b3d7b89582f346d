"""Words and tables for a person at 80 columns: plurals, object counts, compact tables, run summaries.

One vocabulary for every command: a dry run says "would quarantine / purge /
restore N objects (B)", a real run "quarantined / purged / restored N objects
(B)", and "1 object", never "1 objects".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich import box
from rich.table import Table

from reclaim.catalog import RunRecord

__all__ = ["ago", "ahead", "compact_table", "objects", "plural", "run_summary", "would"]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 object``, ``2 objects``, ``1,000 rows``."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def objects(count: int, size: str | None = None) -> str:
    """``3 objects (1.2 KiB)``; the size is left out when not known."""
    return plural(count, "object") + (f" ({size})" if size is not None else "")


def would(verb: str, dry_run: bool) -> str:
    """``would quarantine`` on a dry run, ``quarantined`` otherwise (verb given as ``quarantine``)."""
    past = {
        "quarantine": "quarantined",
        "purge": "purged",
        "restore": "restored",
        "archive": "archived",
        "leave": "left",
    }
    return f"would {verb}" if dry_run else past.get(verb, verb + "ed")


def compact_table(title: str | None = None) -> Table:
    """A table without vertical rules or outer padding, so that more fits in 80 columns."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )


def _count(value: Any, *path: str) -> int:
    for part in path:
        if not isinstance(value, dict):
            return 0
        value = value.get(part)
    return value if isinstance(value, int) else 0


def run_summary(record: RunRecord) -> str:
    """What a run did, in a few words: ``quarantined 18 objects, archived 4 rows``."""
    counts = record.counts
    parts = []
    quarantined = sum(_count(q, "quarantined", "count") for q in (counts.get("quarantined") or {}).values())
    purged = sum(_count(p, "purged", "count") for p in (counts.get("purged") or {}).values())
    restored = sum(_count(p, "restored") for p in (counts.get("purged") or {}).values())
    restored += sum(_count(r, "restored") for r in (counts.get("restored") or {}).values())
    rows = sum(_count(c, "archived") for c in (counts.get("collections") or {}).values())
    if quarantined:
        parts.append(f"quarantined {objects(quarantined)}")
    if purged:
        parts.append(f"purged {objects(purged)}")
    if restored:
        parts.append(f"restored {objects(restored)}")
    if rows:
        parts.append(f"archived {plural(rows, 'row')}")
    strays = sum(_count(s, "objects") for s in (counts.get("strays") or {}).values())
    if strays:
        parts.append(f"reported {plural(strays, 'stray')}")
    if record.status not in ("succeeded", "running") and record.error:
        parts.append(record.error.splitlines()[0][:60])
    if not parts:
        parts.append("nothing to do" if record.status == "succeeded" else "-")
    return "; ".join(parts)


def ago(value: datetime | None, now: datetime) -> str:
    """``3d 4h ago``; ``-`` for no time."""
    if value is None:
        return "-"
    return f"{_span(now - value)} ago"


def ahead(value: datetime | None, now: datetime) -> str:
    """``in 6d 23h``, ``now`` when past; ``-`` for no time."""
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
