"""Typed results of the read-only commands, and their JSON form."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reclaim.config import format_duration
from reclaim.lifecycle import StoreCheck, StoreScan
from reclaim.lifecycle.rows import CollectionScan

__all__ = ["CheckReport", "ScanReport", "to_jsonable"]


@dataclass
class ScanReport:
    """``reclaim scan``: one :class:`StoreScan` per store."""

    started_at: datetime
    finished_at: datetime
    stores: list[StoreScan] = field(default_factory=list)
    collections: list[CollectionScan] = field(default_factory=list)

    @property
    def candidates(self) -> int:
        """Candidate objects over all stores and candidate rows over all collections."""
        return sum(s.candidates.count for s in self.stores) + sum(c.candidates for c in self.collections)

    @property
    def reported(self) -> int:
        """Candidates of report-only stores and collections (findings for ``--fail-on-findings``)."""
        objects = sum(s.candidates.count for s in self.stores if s.action == "report")
        return objects + sum(c.candidates for c in self.collections if c.action == "report")

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        out = to_jsonable(self)
        for store_dict, store in zip(out["stores"], self.stores, strict=True):
            store_dict["threshold"] = store.threshold.isoformat()
            store_dict["fraction"] = round(store.fraction, 6)
            store_dict["over_max_fraction"] = store.over_max_fraction
        return dict(out)


@dataclass
class CheckReport:
    """``reclaim check``: dangling references per store and source."""

    started_at: datetime
    finished_at: datetime
    stores: list[StoreCheck] = field(default_factory=list)

    @property
    def dangling(self) -> int:
        """Dangling references over all stores."""
        return sum(s.dangling for s in self.stores)

    @property
    def findings(self) -> int:
        """Dangling references, strays in the trash, quarantined objects gone, entries in flight."""
        return sum(s.findings for s in self.stores)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        out = dict(to_jsonable(self))
        out["dangling"] = self.dangling
        out["findings"] = self.findings
        for store_dict, store in zip(out["stores"], self.stores, strict=True):
            store_dict["dangling"] = store.dangling
            store_dict["quarantined"] = store.quarantined
        out["quarantined"] = sum(store.quarantined for store in self.stores)
        return out


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, datetimes, durations and enums into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value
