"""The collector: the one frame every mutating command runs in, and the plans it makes.

Order of events (each step refuses to go on if the one before failed):

1. validate the config, open the catalog and require it to be current;
2. record the run (who, when, options) in the audit log;
3. take the lease (one collector at a time); a heartbeat thread keeps it, and
   every side effect is preceded by a check that it is still held; every
   journal and archive write is fenced by the lease's token;
4. recover whatever a killed run left in flight (objects of every store,
   archived rows of the collections that have records in flight, and the
   objects of ``follow`` rows whose quarantine was pending);
5. the command's own work, as plans: ``plan_quarantine``, ``plan_incremental``, ``plan_purge``,
   ``plan_rows``, ``plan_restore``, ``plan_row_restore``, ``plan_expire``
   (see :mod:`reclaim.lifecycle.steps`); :meth:`Collector.carry_out` is the
   one place a dry run stops: it previews a plan instead of executing it;
6. record the outcome and counts; release the lease.

A dry run takes no lease and records no run: it changes nothing.

The collector also holds the complete source set of every store: the
configured sources *and* the references of archived rows (invariant 6), so a
step planned through it cannot leave them out.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from reclaim.catalog import Catalog, Journal, Lease, Leases, RowArchive, Sightings, open_catalog
from reclaim.catalog.files import require_catalog_file
from reclaim.catalog.runs import RunStatus
from reclaim.catalog.sightings import Kind
from reclaim.config import StoreConfig
from reclaim.config.jsonable import to_jsonable
from reclaim.errors import ReclaimError
from reclaim.lifecycle.follow import follow_pending
from reclaim.lifecycle.incremental import IncrementalStep
from reclaim.lifecycle.progress import ProgressLike, Reporter, tee
from reclaim.lifecycle.recover import RecoverResult, recover_store
from reclaim.lifecycle.rows import RowRecovery, recover_rows
from reclaim.lifecycle.session import ConfigLike, Session
from reclaim.lifecycle.steps import (
    ExpireStep,
    ProgressCallback,
    PurgeStep,
    QuarantineStep,
    RestoreStep,
    RowRestoreStep,
    RowsStep,
)
from reclaim.lifecycle.unreferenced import Watch
from reclaim.references import ReferenceSource
from reclaim.stores import default_mode

__all__ = ["Collector", "Plan", "close_dead_run", "open_journal"]

log = logging.getLogger(__name__)

#: seconds between two progress snapshots handed to the lease (each heartbeat writes the latest)
_HEARTBEAT_PROGRESS = 5.0

R_co = TypeVar("R_co", covariant=True)


class Plan(Protocol[R_co]):
    """Concrete work worked out once: ``preview`` shows it, ``execute`` carries it out, each once."""

    def preview(self) -> R_co:
        """What executing the plan would do; changes nothing."""
        ...

    def execute(self) -> R_co:
        """Carry the plan out."""
        ...


def _holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return user  # the lease adds host and pid


class Collector:
    """A run's frame: session, catalog, journal, lease, run record, recovery; the plans of its steps.

    Made by :meth:`Collector.open`. ``counts`` is what the run record ends with;
    each executed plan adds its results to it.
    """

    def __init__(
        self,
        session: Session,
        catalog: Catalog,
        journal: Journal,
        *,
        dry_run: bool,
        run_id: int | None = None,
        lease: Lease | None = None,
        archive: RowArchive | None = None,
    ) -> None:
        self.session = session
        self.config = session.config
        self.catalog = catalog
        self.journal = journal
        self.dry_run = dry_run
        self.run_id = run_id
        self._lease = lease
        self.lease = lease
        """The run's lease (``None`` in a dry run)."""
        self.archive = archive if archive is not None else catalog.archive
        """The row archive, its writes fenced by the run's lease (the plain one in a dry run)."""
        self.sightings: Sightings = catalog.sightings if lease is None else catalog.sightings.fenced(lease)
        """When items of ``age = "unreferenced"`` were first seen so (written by real runs only)."""
        self.counts: dict[str, Any] = {}
        self._heartbeat: Reporter | None = None
        if lease is not None:
            # what the run is doing rides on the lease's heartbeats (the dashboard shows it)
            self._heartbeat = Reporter(sink=lease.report_progress, sink_interval=_HEARTBEAT_PROGRESS)
        self.recovered: list[RecoverResult] = []
        self.rows_recovered = RowRecovery()

    # -- the frame ------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def open(
        cls,
        config: ConfigLike,
        *,
        command: str,
        options: Mapping[str, Any],
        dry_run: bool,
        recover: bool = True,
        user: str | None = None,
    ) -> Iterator[Collector]:
        """Run a mutating command inside the frame described in the module docstring.

        ``user`` is who the run is recorded as (an admin's name); default: the OS user.
        """
        with open_journal(config) as (session, catalog, journal):
            if dry_run:
                yield cls(session, catalog, journal, dry_run=True)
                return
            run_id = catalog.start_run(command, to_jsonable(dict(options)), dry_run=False, user=user)
            collector: Collector | None = None
            try:
                leases = Leases(catalog, ttl=session.config.catalog.lease_ttl)
                with leases.keep(_holder(), run_id=run_id) as lease:
                    if lease.previous is not None and lease.previous.run_id is not None:
                        close_dead_run(catalog, journal, lease.previous.run_id, by=run_id)
                    # every journal and archive write of the run is fenced by the lease's token
                    collector = cls(
                        session,
                        catalog,
                        journal.fenced(lease),
                        dry_run=False,
                        run_id=run_id,
                        lease=lease,
                        archive=catalog.archive.fenced(lease),
                    )
                    if recover:
                        collector._recover()
                    try:
                        yield collector
                    finally:
                        collector.close_progress()
            except ReclaimError as exc:
                _close(catalog, run_id, "aborted", _tally(collector, journal, run_id), str(exc))
                raise
            except KeyboardInterrupt:
                error = "interrupted (Ctrl-C or SIGINT); what it completed is in its counts"
                _close(catalog, run_id, "aborted", _tally(collector, journal, run_id), error)
                raise
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
                _close(catalog, run_id, "failed", _tally(collector, journal, run_id), error)
                raise
            catalog.finish_run(run_id, "succeeded", collector.counts)

    def check_lease(self) -> None:
        """Raise :class:`~reclaim.errors.LeaseLost` unless the run's lease holds (no-op in a dry run)."""
        if self._lease is not None:
            self._lease.check()

    def progress(self, progress: ProgressLike) -> ProgressLike:
        """``progress`` and, under a lease, the heartbeat: every plan reports to both."""
        return tee(progress, self._heartbeat) if self._heartbeat is not None else progress

    def close_progress(self) -> None:
        """Hand the heartbeat the last snapshot (releasing the lease then clears it)."""
        if self._heartbeat is not None:
            self._heartbeat.close()

    def carry_out(self, plan: Plan[Any]) -> Any:
        """The one place a dry run stops: ``plan.preview()`` in a dry run, else ``plan.execute()``."""
        return plan.preview() if self.dry_run else plan.execute()

    def record(self, section: str, name: str, value: object) -> None:
        """Add ``value`` (JSON-ready after conversion) to the run record's counts under ``section.name``."""
        self.counts.setdefault(section, {})[name] = to_jsonable(value)

    def _recover(self) -> None:
        for name in self.config.stores:
            policy = self.policy(name)
            result = recover_store(
                self.session.store(name),
                self.journal,
                grace=policy.grace,
                trash_prefix=policy.trash_prefix,
                run_id=self.run_id,
                check_lease=self.check_lease,
            )
            if result.total or result.refused.count:
                self.recovered.append(result)
                self.record("recovered", name, result)
        pending = {record.collection for record in self.archive.in_flight()}
        names = [name for name in self.config.collections if name in pending]
        if names:
            assert self.run_id is not None
            tables = {name: self.session.collection(name) for name in names}
            self.rows_recovered = recover_rows(tables, self.archive, run_id=self.run_id)
        if self.rows_recovered.total:
            self.counts["rows_recovered"] = to_jsonable(self.rows_recovered)
        if self.archive.links.count(pending=True):
            # a killed run archived rows but did not quarantine (or link) their objects: finish it
            followed = follow_pending(self)
            if followed:
                self.counts["follow_recovered"] = to_jsonable(followed)

    # -- what every step works with -------------------------------------------------------

    def policy(self, store: str) -> StoreConfig:
        """The configuration of ``store``: its policy travels as this one object."""
        return self.config.stores[store]

    def mode(self, store: str) -> str:
        """The store's configured mode, or the backend's default."""
        return self.policy(store).mode or default_mode(self.session.store(store))

    def sources(self, store: str) -> list[ReferenceSource]:
        """Every reference source of ``store``: the configured ones and archived rows' references."""
        return self.session.sources(store)

    def watch(self, kind: Kind, name: str, *, now: datetime | None = None) -> Watch:
        """The ``age = "unreferenced"`` clock of store or collection ``name``: recorded by a real
        run (fenced by its lease), only read by a dry run."""
        if kind == "store":
            min_age = self.config.stores[name].min_age
        else:
            min_age = self.config.collections[name].min_age
        return Watch(
            self.sightings,
            kind,
            name,
            now or datetime.now(UTC),
            min_age,
            run_id=None if self.dry_run else self.run_id,
            check_lease=self.check_lease,
        )

    def validate(self) -> None:
        """Reflect every collection and check every store's sources, before anything changes."""
        self.session.collections()
        for name in self.config.stores:
            self.sources(name)

    # -- the plans ------------------------------------------------------------------------

    def plan_quarantine(
        self,
        stores: Sequence[str] | None = None,
        *,
        grace: timedelta | None = None,
        max_fraction: float | None = None,
        show: int = 0,
        progress: ProgressCallback | None = None,
    ) -> QuarantineStep:
        """Scan and guard every store (or ``stores``) now; the step quarantines their candidates."""
        return QuarantineStep.plan(
            self, self.session.store_names(stores), grace, max_fraction, show, self.progress(progress)
        )

    def plan_incremental(
        self, stores: Sequence[str] | None = None, *, progress: ProgressCallback | None = None
    ) -> IncrementalStep:
        """The keys the triggers queued for every ``collect`` store (or ``stores``), checked and guarded.

        See :mod:`reclaim.lifecycle.incremental`: refuses without current triggers or a recent
        full scan; the step quarantines the candidates through the normal quarantine.
        """
        names = self.session.store_names(stores)
        return IncrementalStep.plan(self, names, datetime.now(UTC), self.progress(progress))

    def plan_purge(
        self,
        stores: Sequence[str] | None = None,
        *,
        due_before: datetime | None = None,
        quarantined_before: datetime | None = None,
        skip_report_only: bool = False,
        progress: ProgressCallback | None = None,
    ) -> PurgeStep:
        """The entries due for purge in every store (or ``stores``), re-checked when carried out."""
        names = self.session.store_names(stores)
        if skip_report_only:
            names = [name for name in names if self.policy(name).action == "collect"]
        return PurgeStep.plan(self, names, due_before, quarantined_before, self.progress(progress))

    def plan_rows(
        self, *, now: datetime, show: int = 0, progress: ProgressCallback | None = None
    ) -> RowsStep:
        """Every collection in dependency order (referencing tables first), reflected and validated."""
        step = RowsStep.plan(self, now, show)
        step.progress = self.progress(progress)
        return step

    def plan_restore(
        self,
        *,
        keys: Sequence[str] = (),
        store: str | None = None,
        run_id: int | None = None,
        since: datetime | None = None,
        match: str | None = None,
        purged: bool = False,
        progress: ProgressCallback | None = None,
    ) -> RestoreStep:
        """The quarantined (or, with ``purged``, purged) entries selected; unknown keys and runs refused."""
        step = RestoreStep.plan(self, keys, store, run_id, since, match, purged)
        step.progress = self.progress(progress)
        return step

    def plan_row_restore(
        self,
        *,
        collection: str | None = None,
        pks: Sequence[str] = (),
        run_id: int | None = None,
        since: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> RowRestoreStep:
        """The archived rows selected and the rows they depend on, in order; conflicts refused."""
        step = RowRestoreStep.plan(self, collection, pks, run_id, since)
        step.progress = self.progress(progress)
        return step

    def plan_expire(self) -> ExpireStep:
        """Archived rows past their retention and finished journal entries past their store's."""
        return ExpireStep(self)


@contextmanager
def open_journal(
    config: ConfigLike, *, lock_timeout: float | None = None
) -> Iterator[tuple[Session, Catalog, Journal]]:
    """Session, current catalog and journal, without lease or run record (read-only and ``ensure``).

    Archived rows' references count in the session's sources. ``lock_timeout``
    bounds every wait for a catalog lock (``ensure`` passes its own timeout).
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


def _close(catalog: Catalog, run_id: int, status: RunStatus, counts: dict[str, Any], error: str) -> None:
    """Record how a run that stopped early ended, unless the collector that took its lease over did."""
    if not catalog.finish_run(run_id, status, counts, error=error, if_running=True):
        log.info("run %d was already closed by the collector that took its lease over", run_id)


def _tally(collector: Collector | None, journal: Journal, run_id: int) -> dict[str, Any]:
    """The run's counts plus what the journal shows it did (its own counts stop where it stopped)."""
    counts = collector.counts if collector is not None else {}
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
    return catalog.finish_run(run_id, "aborted", _tally(None, journal, run_id), error=error, if_running=True)
