"""Text for people: the quarantine statistics, and the ``reclaim.toml`` a pipeline amounts to."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from reclaim.api import StatusReport
from reclaim.config import Config
from reclaim.config.secrets import mask_url
from reclaim.datajoint.api import quarantine_stats

__all__ = ["format_quarantine_stats", "to_toml"]


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    hours = abs((moment - now).total_seconds()) / 3600
    span = f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"
    relative = f"in {span}" if moment > now else f"{span} ago"
    return f"{moment.isoformat(timespec='seconds')} ({relative})"


def format_quarantine_stats(report: StatusReport, *, now: datetime | None = None) -> str:
    """How much is quarantined, the oldest item, the stores touched and when the next purge is due."""
    stats = quarantine_stats(report)
    moment = now or datetime.now(UTC)
    lines = [
        f"quarantined:  {stats.count} files, {_size(stats.bytes)}",
        f"oldest:       {_when(stats.oldest, moment)}",
        f"next purge:   {_when(stats.next_purge, moment)}",
        f"stores:       {', '.join(stats.stores) or '-'}",
    ]
    if stats.in_flight:
        lines.append(f"in flight:    {stats.in_flight} (finished or rolled back by the next run)")
    for store in report.stores:
        s = store.summary
        lines.append(
            f"  {store.store}: {s.quarantined} quarantined ({_size(s.quarantined_bytes)}), "
            f"{s.purged} purged, {s.restored} restored; mode {store.mode}, grace {store.grace}"
        )
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _table(lines: list[str], header: str, data: dict[str, Any]) -> None:
    lines.append(f"[{header}]")
    for name, value in data.items():
        if value is None or (isinstance(value, dict) and not value and name != "storage_options"):
            continue
        lines.append(f"{_key(name)} = {_value(value)}")
    lines.append("")


def _masked(url: str) -> str:
    # the printed file names no password: it reads it from the environment, as reclaim.toml files do
    shown = mask_url(url)
    return shown.replace("***", "${DJ_PASS}") if shown != url else url


def to_toml(config: Config) -> str:
    """``config`` as a ``reclaim.toml`` that ``reclaim run`` can schedule; passwords become ``${DJ_PASS}``."""
    data = config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    lines = ["# written by `reclaim datajoint config` from dj.config and the schemas' headings", ""]
    catalog = dict(data.get("catalog", {}))
    if config.catalog.url:
        catalog["url"] = _masked(config.catalog.url)
    _table(lines, "catalog", catalog)
    for name, database in config.databases.items():
        _table(lines, f"databases.{_key(name)}", {"url": _masked(database.url)})
    for name, store in data.get("stores", {}).items():
        references = store.pop("references", [])
        store["url"] = config.stores[name].url
        if not store.get("storage_options"):
            store.pop("storage_options", None)
        _table(lines, f"stores.{_key(name)}", store)
        for reference in references:
            lines.append(f"[[stores.{_key(name)}.references]]")
            for field, value in reference.items():
                lines.append(f"{_key(field)} = {_value(value)}")
            lines.append("")
    return "\n".join(lines)
