"""The audit log: one row per run, with who, where, options, counts and outcome.

A run is started before a command changes anything and finished once, with
its status and its per-store / per-collection counts and bytes. Options and
counts are stored as JSON text; every string in them goes through
:func:`~reclaim.config.secrets.redact` first, so no password or storage
credential reaches the audit log (invariant 9).

These functions work on a connection the caller holds in a transaction;
:class:`~reclaim.catalog.Catalog` wraps them with its error handling.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

import sqlalchemy as sa

from reclaim.catalog import _run_days
from reclaim.catalog._entry import CorruptRow
from reclaim.catalog.tables import CatalogTables
from reclaim.config.jsonable import to_jsonable
from reclaim.config.secrets import redact
from reclaim.errors import CatalogError

__all__ = [
    "FINAL_STATUSES",
    "RunRecord",
    "RunStatus",
    "dumps_redacted",
    "finish_run",
    "insert_run",
    "record_from_row",
    "select_runs",
]

RunStatus = Literal["running", "succeeded", "failed", "aborted"]
#: the statuses a run may finish with
FINAL_STATUSES: Final = frozenset(get_args(RunStatus)) - {"running"}


@dataclass(frozen=True)
class RunRecord:
    """One entry of the audit log: a command that changed (or, dry, would change) something."""

    id: int
    command: str
    status: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    user: str | None
    host: str | None
    pid: int | None
    options: dict[str, Any]
    counts: dict[str, Any]
    error: str | None


def insert_run(
    connection: sa.Connection,
    tables: CatalogTables,
    command: str,
    options: Mapping[str, Any],
    *,
    dry_run: bool,
    user: str | None = None,
) -> int:
    """Insert a ``running`` run started now by ``user`` (default: the OS user); return its id."""
    values = {
        "command": command,
        "status": "running",
        "dry_run": dry_run,
        "started_at": datetime.now(UTC),
        "user": user if user is not None else _user(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "options": _dumps(options),
        "counts": "{}",
    }
    result = connection.execute(tables.runs.insert().values(**values))
    (run_id,) = result.inserted_primary_key or (None,)
    if run_id is None:  # pragma: no cover - every supported dialect returns the key
        raise CatalogError("the database returned no id for the new run")
    return int(run_id)


def finish_run(
    connection: sa.Connection,
    tables: CatalogTables,
    run_id: int,
    status: RunStatus,
    counts: Mapping[str, Any],
    error: str | None,
) -> bool:
    """Finish run ``run_id`` if it is still running; return whether it was.

    In the same transaction, the run's quarantined, purged and restored
    figures are added to ``run_days`` (:mod:`reclaim.catalog._run_days`).

    Raises ``ValueError`` for a status other than succeeded, failed or aborted.
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"a run finishes as one of {sorted(FINAL_STATUSES)}, not {status!r}")
    runs = tables.runs
    stored = _dumps(counts)
    statement = (
        runs.update()
        .where(runs.c.id == run_id, runs.c.status == "running")
        .values(
            status=status,
            finished_at=datetime.now(UTC),
            counts=stored,
            error=None if error is None else redact(error),
        )
    )
    if connection.execute(statement).rowcount != 1:
        return False
    # the per-day figures commit with the counts they sum, or not at all
    _run_days.add_run(connection, tables, run_id, stored)
    return True


def select_runs(
    connection: sa.Connection,
    tables: CatalogTables,
    *,
    run_id: int | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Run ``run_id``, or the ``limit`` most recent runs, newest first."""
    runs = tables.runs
    query = sa.select(runs).order_by(runs.c.id.desc())
    if run_id is not None:
        query = query.where(runs.c.id == run_id)
    if limit is not None:
        query = query.limit(limit)
    return [_record(row) for row in connection.execute(query).mappings()]


def _redacted(value: Any) -> Any:
    """``value`` (JSON-ready) with every string passed through :func:`redact`."""
    if isinstance(value, dict):
        return {redact(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return redact(value) if isinstance(value, str) else value


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(_redacted(to_jsonable(value)), sort_keys=True, allow_nan=False)


def dumps_redacted(value: Mapping[str, Any]) -> str:
    """``value`` as JSON text with every string redacted: what the catalog stores of reports."""
    return _dumps(value)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        # ignoring this is safe: the audit log still has the host and the pid
        return None


def _record(row: sa.RowMapping) -> RunRecord:
    """A :class:`RunRecord`; :class:`CatalogError` naming the run when a value is impossible."""
    try:
        record = _decode(row)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CorruptRow(
            f"run {row['id']!r} (table runs) holds an impossible value: {' '.join(str(exc).split())[:200]}; "
            "repair or delete that row"
        ) from None
    if not isinstance(record.options, dict) or not isinstance(record.counts, dict):
        raise CorruptRow(
            f"run {record.id} (table runs): options and counts must be JSON objects; "
            "repair or delete that row"
        )
    if not isinstance(record.started_at, datetime) or not isinstance(record.command, str):
        raise CorruptRow(f"run {record.id} (table runs): started_at or command is not valid")
    return record


def record_from_row(row: sa.RowMapping) -> RunRecord:
    """A :class:`RunRecord` from a row of ``runs``; :class:`CorruptRow` when a value is impossible."""
    return _record(row)


def _decode(row: sa.RowMapping) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        command=row["command"],
        status=row["status"],
        dry_run=bool(row["dry_run"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        user=row["user"],
        host=row["host"],
        pid=row["pid"],
        options=json.loads(row["options"]),
        counts=json.loads(row["counts"]),
        error=row["error"],
    )
