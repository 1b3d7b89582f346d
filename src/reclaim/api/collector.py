"""The frame every mutating command runs in: catalog, lease, run record, recovery.

Order of events (each step refuses to go on if the one before failed):

1. validate the config, open the catalog and require it to be current;
2. record the run (who, when, options) in the audit log;
3. take the lease (one collector at a time); a heartbeat thread keeps it, and
   every side effect is preceded by a check that it is still held;
4. recover whatever a killed run left in flight (objects of every store, and
   archived rows of the collections that have records in flight);
5. the command's own work;
6. record the outcome and counts; release the lease.

A dry run takes no lease and records no run: it changes nothing.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from reclaim.api.reports import to_jsonable
from reclaim.api.session import ConfigLike, Session
from reclaim.catalog import Catalog, Journal, Leases, open_catalog
from reclaim.errors import ReclaimError
from reclaim.lifecycle import RecoverResult, recover_store
from reclaim.lifecycle.rows import RowRecovery, recover_rows
from reclaim.stores import default_mode

__all__ = ["Collector", "collector", "open_journal"]


def _holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return user  # the lease adds host and pid


@dataclass
class Collector:
    """What a mutating command works with."""

    session: Session
    catalog: Catalog
    journal: Journal
    run_id: int | None
    check_lease: Callable[[], None]
    recovered: list[RecoverResult]
    counts: dict[str, Any]
    rows_recovered: RowRecovery = field(default_factory=RowRecovery)

    def mode(self, store: str) -> str:
        """The store's configured mode, or the backend's default."""
        cfg = self.session.config.stores[store]
        return cfg.mode or default_mode(self.session.store(store))


def _no_lease() -> None:
    return None


def _recover_rows(session: Session, catalog: Catalog, run_id: int) -> RowRecovery:
    """Settle archive records in flight; only their collections' tables are reflected."""
    pending = {record.collection for record in catalog.archive.in_flight()}
    names = [name for name in session.config.collections if name in pending]
    if not names:
        return RowRecovery()
    tables = {name: session.collection(name) for name in names}
    return recover_rows(tables, catalog.archive, run_id=run_id)


@contextmanager
def open_journal(config: ConfigLike) -> Iterator[tuple[Session, Catalog, Journal]]:
    """Session, current catalog and journal, without lease or run record (read-only and ``ensure``)."""
    with Session(config) as session:
        catalog = open_catalog(session.config.catalog)
        try:
            catalog.require_current()
            session.attach(catalog.archive, catalog.engine)
            yield session, catalog, Journal(catalog)
        finally:
            catalog.dispose()


@contextmanager
def collector(
    config: ConfigLike, *, command: str, options: Mapping[str, Any], dry_run: bool, recover: bool = True
) -> Iterator[Collector]:
    """Run a mutating command inside the frame described in the module docstring."""
    with open_journal(config) as (session, catalog, journal):
        if dry_run:
            yield Collector(session, catalog, journal, None, _no_lease, [], {})
            return
        run_id = catalog.start_run(command, to_jsonable(dict(options)), dry_run=False)
        counts: dict[str, Any] = {}
        try:
            leases = Leases(catalog, ttl=session.config.catalog.lease_ttl)
            with leases.keep(_holder(), run_id=run_id) as lease:
                recovered = []
                if recover:
                    for name in session.config.stores:
                        result = recover_store(
                            session.store(name),
                            journal,
                            grace=session.config.stores[name].grace,
                            run_id=run_id,
                            check_lease=lease.check,
                            trash_prefix=session.config.stores[name].trash_prefix,
                        )
                        if result.total or result.refused.count:
                            recovered.append(result)
                            counts.setdefault("recovered", {})[name] = to_jsonable(result)
                rows = _recover_rows(session, catalog, run_id) if recover else RowRecovery()
                if rows.total:
                    counts["rows_recovered"] = to_jsonable(rows)
                yield Collector(session, catalog, journal, run_id, lease.check, recovered, counts, rows)
        except ReclaimError as exc:
            catalog.finish_run(run_id, "aborted", counts, error=str(exc))
            raise
        except BaseException as exc:
            catalog.finish_run(run_id, "failed", counts, error=f"{type(exc).__name__}: {exc}")
            raise
        catalog.finish_run(run_id, "succeeded", counts)
