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
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from reclaim.api.files import require_catalog_file
from reclaim.api.reports import to_jsonable
from reclaim.api.session import ConfigLike, Session
from reclaim.catalog import Catalog, Journal, Leases, RowArchive, open_catalog
from reclaim.catalog.runs import RunStatus
from reclaim.errors import ReclaimError
from reclaim.lifecycle import RecoverResult, recover_store
from reclaim.lifecycle.rows import RowRecovery, recover_rows
from reclaim.stores import default_mode

__all__ = ["Collector", "close_dead_run", "collector", "open_journal"]

log = logging.getLogger(__name__)


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
    fenced_archive: RowArchive | None = None

    @property
    def archive(self) -> RowArchive:
        """The row archive, its writes fenced by the run's lease (the plain one in a dry run)."""
        return self.fenced_archive if self.fenced_archive is not None else self.catalog.archive

    def mode(self, store: str) -> str:
        """The store's configured mode, or the backend's default."""
        cfg = self.session.config.stores[store]
        return cfg.mode or default_mode(self.session.store(store))


def _no_lease() -> None:
    return None


def _recover_rows(session: Session, archive: RowArchive, run_id: int) -> RowRecovery:
    """Settle archive records in flight; only their collections' tables are reflected."""
    pending = {record.collection for record in archive.in_flight()}
    names = [name for name in session.config.collections if name in pending]
    if not names:
        return RowRecovery()
    tables = {name: session.collection(name) for name in names}
    return recover_rows(tables, archive, run_id=run_id)


@contextmanager
def open_journal(
    config: ConfigLike, *, lock_timeout: float | None = None
) -> Iterator[tuple[Session, Catalog, Journal]]:
    """Session, current catalog and journal, without lease or run record (read-only and ``ensure``).

    ``lock_timeout`` bounds every wait for a catalog lock (``ensure`` passes its own timeout).
    """
    with Session(config) as session:
        require_catalog_file(session.config)
        catalog = open_catalog(session.config.catalog, lock_timeout=lock_timeout)
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
                if lease.previous is not None and lease.previous.run_id is not None:
                    close_dead_run(catalog, journal, lease.previous.run_id, by=run_id)
                # every journal write of the run is fenced by the lease's token
                journal = journal.fenced(lease)
                archive = catalog.archive.fenced(lease)
                recovered = []
                if recover:
                    for name in session.config.stores:
                        result = recover_store(
                            session.store(name),
                            journal,
                            grace=session.config.stores[name].grace,
                            trash_prefix=session.config.stores[name].trash_prefix,
                            run_id=run_id,
                            check_lease=lease.check,
                        )
                        if result.total or result.refused.count:
                            recovered.append(result)
                            counts.setdefault("recovered", {})[name] = to_jsonable(result)
                rows = _recover_rows(session, archive, run_id) if recover else RowRecovery()
                if rows.total:
                    counts["rows_recovered"] = to_jsonable(rows)
                yield Collector(
                    session, catalog, journal, run_id, lease.check, recovered, counts, rows, archive
                )
        except ReclaimError as exc:
            _close(catalog, run_id, "aborted", _with_journal(counts, journal, run_id), str(exc))
            raise
        except KeyboardInterrupt:
            error = "interrupted (Ctrl-C or SIGINT); what it completed is in its counts"
            _close(catalog, run_id, "aborted", _with_journal(counts, journal, run_id), error)
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            _close(catalog, run_id, "failed", _with_journal(counts, journal, run_id), error)
            raise
        catalog.finish_run(run_id, "succeeded", counts)


def _close(catalog: Catalog, run_id: int, status: RunStatus, counts: dict[str, Any], error: str) -> None:
    """Record how a run that stopped early ended, unless that is already recorded.

    A collector that took the lease over closes the run it took it from; the
    run itself, stopping after that, must not hide the error that stopped it
    behind "already finished".
    """
    record = catalog.get_run(run_id)
    if record is not None and record.status != "running":
        log.info(
            "run %d was already closed (%s) by the collector that took its lease over", run_id, record.status
        )
        return
    catalog.finish_run(run_id, status, counts, error=error)


def _with_journal(counts: dict[str, Any], journal: Journal, run_id: int) -> dict[str, Any]:
    """``counts`` plus what the journal shows the run did (its own counts stop where it stopped)."""
    try:
        tally = journal.run_tally(run_id)
    except ReclaimError:
        return counts  # ignoring this is safe: the run record only lacks the tally
    return {**counts, "journal": tally} if tally else counts


def close_dead_run(catalog: Catalog, journal: Journal, run_id: int, *, by: int | None) -> bool:
    """Record run ``run_id``, still ``running`` although its collector is gone, as ``aborted``.

    Its counts are taken from the journal (:meth:`Journal.run_tally`). Called
    when a lease is taken over or broken; returns whether the run was still
    open. Safe at that point: the previous holder can no longer act.
    """
    record = catalog.get_run(run_id)
    if record is None or record.status != "running":
        return False
    closer = f"by run {by}" if by is not None else "when its lease was broken"
    error = (
        "the collector ended without closing its run (killed, or stopped after losing its lease); "
        f"closed {closer}; its counts are what the journal shows it did"
    )
    catalog.finish_run(run_id, "aborted", _with_journal({}, journal, run_id), error=error)
    return True
