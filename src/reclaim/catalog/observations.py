"""Observations: what read-only ``scan`` and ``check`` runs saw, kept in the catalog.

A scan or a check changes nothing in the archive, so it is no run of the audit
log; but its numbers are what an admin checks every morning (candidates,
report-only findings, dangling references) and what the dashboard and the
metrics show. So when a catalog exists, ``scan`` and ``check`` leave their
report here as JSON, with every string redacted like the audit log's
(invariant 9). Nothing ever acts on an observation: it is a record of what was
seen, at the time it was seen, shown with its age::

    record_scan(catalog, report.to_dict(), partial=False)
    latest = latest_observation(catalog, "scan")     # Observation | None

Recording never creates a catalog: the caller records only into one that
exists and is current (a read-only command never creates files).
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import sqlalchemy as sa

from reclaim.catalog._entry import CorruptRow
from reclaim.catalog.runs import dumps_redacted

if TYPE_CHECKING:
    from reclaim.catalog.catalog import Catalog

__all__ = [
    "KINDS",
    "Observation",
    "ObservationKind",
    "latest_observation",
    "observation_from_row",
    "record_check",
    "record_scan",
]

ObservationKind = Literal["scan", "check"]
#: what can be observed
KINDS: Final = ("scan", "check")


@dataclass(frozen=True)
class Observation:
    """One recorded scan or check: when, by whom, whether it covered everything, and its report."""

    id: int
    kind: str
    started_at: datetime
    finished_at: datetime
    user: str | None
    host: str | None
    scope: str
    """``all`` when every store (and, for a scan, every collection) was looked at, else ``partial``."""
    report: dict[str, Any]


def record_scan(catalog: Catalog, report: Mapping[str, Any], *, partial: bool = False) -> int:
    """Record a ``reclaim scan`` report (``ScanReport.to_dict()``) as an observation; return its id.

    Raises :class:`~reclaim.errors.CatalogError` on database errors.
    """
    return _record(catalog, "scan", report, partial=partial)


def record_check(catalog: Catalog, report: Mapping[str, Any], *, partial: bool = False) -> int:
    """Record a ``reclaim check`` report (``CheckReport.to_dict()``) as an observation; return its id.

    Raises :class:`~reclaim.errors.CatalogError` on database errors.
    """
    return _record(catalog, "check", report, partial=partial)


def latest_observation(
    catalog: Catalog, kind: ObservationKind, *, complete: bool = False
) -> Observation | None:
    """The newest observation of ``kind`` (with ``complete``: the newest that covered everything).

    Raises :class:`~reclaim.errors.CatalogError` on database errors and
    :class:`~reclaim.catalog.CorruptRow` when its report is not a JSON object.
    """
    table = catalog.tables.observations
    query = sa.select(table).where(table.c.kind == kind)
    if complete:
        query = query.where(table.c.scope == "all")
    query = query.order_by(table.c.id.desc()).limit(1)
    with catalog.begin() as connection:
        row = connection.execute(query).mappings().first()
    return None if row is None else observation_from_row(row)


def _record(catalog: Catalog, kind: ObservationKind, report: Mapping[str, Any], *, partial: bool) -> int:
    started = _moment(report.get("started_at"))
    finished = _moment(report.get("finished_at"))
    values = {
        "kind": kind,
        "started_at": started,
        "finished_at": finished,
        "user": _user(),
        "host": socket.gethostname()[:255],
        "scope": "partial" if partial else "all",
        "report": dumps_redacted(report),
    }
    with catalog.begin() as connection:
        result = connection.execute(catalog.tables.observations.insert().values(**values))
    (observation_id,) = result.inserted_primary_key or (None,)
    if observation_id is None:  # pragma: no cover - every supported dialect returns the key
        raise RuntimeError("the database returned no id for the new observation")
    return int(observation_id)


def _moment(value: Any) -> datetime:
    """A report's ``started_at``/``finished_at`` (ISO text or a datetime); now when absent."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)
    else:
        moment = datetime.now(UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _user() -> str | None:
    try:
        return getpass.getuser()[:255]
    except (OSError, KeyError):
        return None  # ignoring this is safe: the observation still has its host


def observation_from_row(row: sa.RowMapping) -> Observation:
    """An :class:`Observation` from a row of ``observations``; :class:`CorruptRow` for a garbled report."""
    try:
        report = json.loads(row["report"])
    except (TypeError, ValueError):
        report = None
    if not isinstance(report, dict):
        raise CorruptRow(
            f"observation {row['id']!r} (table observations): its report is not a JSON object; "
            "repair or delete that row"
        )
    return Observation(
        id=int(row["id"]),
        kind=str(row["kind"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        user=row["user"],
        host=row["host"],
        scope=str(row["scope"]),
        report=report,
    )
