"""The coordinator: one ``reclaim run`` whose stores are worked range by range, by workers.

The coordinator is an ordinary collector (:class:`~reclaim.lifecycle.Collector`):
it records the run, takes the lease and keeps it with its heartbeat thread,
recovers what a killed run left in flight, and closes the run. In between it
does what :func:`reclaim.api.run` does, in the same order, except that each
store's purge and quarantine are split into key ranges sent to workers:

1. every collection is reflected and every store's sources checked, and the
   bucket of every ``collect`` store in ``versioned`` mode (or with ``purge =
   "lifecycle"``) gets the single-process purge's and quarantine's checks,
   before the first range is sent (each worker checks again for its range);
2. **purge**: one ``purge`` task per range of every ``collect`` store; each
   worker purges the due entries of its range (re-checked, as always);
3. row collections, on the coordinator (they are SQL, not listings);
4. **guard**: for every ``collect`` store with ``max_fraction`` below 1, one
   read-only ``scan`` task per range; the store's candidates over its listing
   are checked against ``max_fraction`` here, over the whole store, before
   anything of any store moves (as the single-process run does), and each
   range is given its share of what ``max_fraction`` still allows (its
   candidates plus an equal part of the slack);
5. **quarantine**: one ``quarantine`` task per range of every store (report-only
   stores are only scanned), all with one ``scan_start``, so the whole store
   has one age threshold; with ``age = "unreferenced"`` each range records its
   sightings, and the coordinator finishes the store's clock once every range
   was scanned (a range's scan is not a complete scan of the store);
6. expiry of archived rows and finished journal entries, on the coordinator.

Each range's results come back as JSON and are summed per store
(:mod:`reclaim.distributed.results`) into the run record, under the same names
and with the same values the single-process run records. While it waits, the
coordinator checks its lease; once the lease is lost it stops waiting and the
run fails with :class:`~reclaim.errors.LeaseLost`, and its workers, whose every
write is fenced by the lease's token, change nothing more.

Key ranges come from the store's first-level delimiter listing
(:func:`~reclaim.stores.partitioned.default_boundaries`, ``partitions`` groups
of about equal size), or from split points given by the caller (for example
quantiles of an S3 Inventory report's keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from reclaim.api.cycle import CycleReport, observe_listing, record_findings
from reclaim.api.inspection import ScanReport
from reclaim.config import Config
from reclaim.distributed.results import (
    read_purge,
    read_quarantine,
    read_recover,
    read_scan,
    sum_purges,
    sum_quarantines,
    sum_recovers,
    sum_scans,
)
from reclaim.distributed.worker import ConfigSpec, Phase, RangeTask, run_range
from reclaim.errors import ConfigError, UnsafeToProceed
from reclaim.lifecycle import (
    Collector,
    ConfigLike,
    ProgressCallback,
    PurgeResult,
    QuarantineResult,
    StoreScan,
    resolve_config,
)
from reclaim.lifecycle.versioned import require_purgeable, require_quarantinable
from reclaim.stores import Store
from reclaim.stores.partitioned import KeyRange, default_boundaries

__all__ = ["Dispatcher", "InProcess", "run", "scan", "split"]


class Dispatcher(Protocol):
    """Where range tasks run: Celery's workers (:class:`~reclaim.distributed.app.CeleryDispatcher`)
    or this process (:class:`InProcess`)."""

    def describe(self) -> str:
        """What the run record names as its workers."""
        ...

    def map(self, tasks: Sequence[RangeTask], *, check: Callable[[], None]) -> list[dict[str, Any]]:
        """The result of each task, in order; ``check`` (the lease check) runs while waiting."""
        ...


class InProcess:
    """Runs each range task in this process, one after the other: the workers' own function.

    For tests and small stores; ``config`` saves loading the config again for each range.
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config

    def describe(self) -> str:
        """``in-process``."""
        return "in-process"

    def map(self, tasks: Sequence[RangeTask], *, check: Callable[[], None]) -> list[dict[str, Any]]:
        """Run the tasks in order (the lease checked before each)."""
        out = []
        for task in tasks:
            check()
            out.append(run_range(task, config=self.config))
        return out


def split(store: Store, *, partitions: int, boundaries: Sequence[str] | None = None) -> list[KeyRange]:
    """The key ranges of ``store``: cut at ``boundaries``, else at its first-level listing's.

    A store that cannot be split (not partitionable, fewer than two
    first-level entries) is one range. Raises :class:`ConfigError` for
    ``partitions`` below 1 or an invalid boundary.
    """
    if partitions < 1:
        raise ConfigError(f"partitions must be at least 1, not {partitions}", field="--partitions")
    try:
        bounds = (
            sorted(set(boundaries)) if boundaries is not None else default_boundaries(store, "", partitions)
        )
        return KeyRange.split(bounds)
    except ValueError as exc:
        raise ConfigError(f"store {store.name!r}: bad split point: {exc}", field="--split") from None


@dataclass
class _Ranges:
    """Every store's ranges, cut once per run."""

    by_store: dict[str, list[KeyRange]]

    def tasks(
        self,
        phase: Phase,
        stores: Sequence[str],
        spec: ConfigSpec,
        c: Collector | None,
        options: Callable[[str, int], dict[str, Any]],
    ) -> list[RangeTask]:
        lease = c.lease if c is not None else None
        return [
            RangeTask(
                phase=phase,
                store=name,
                first=key_range.first,
                end_before=key_range.end_before,
                config=spec,
                run_id=c.run_id if c is not None else None,
                token=lease.token if lease is not None else None,
                fence=lease.fence if lease is not None else 0,
                index=index,
                options=options(name, index),
            )
            for name in stores
            for index, key_range in enumerate(self.by_store[name])
        ]


def _grouped(
    tasks: Sequence[RangeTask], results: Sequence[Mapping[str, Any]]
) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for task, result in sorted(zip(tasks, results, strict=True), key=lambda pair: pair[0].index):
        if result.get("store") != task.store or result.get("index") != task.index:
            raise UnsafeToProceed(
                f"{task.describe()}: a worker answered for another range: {dict(result)!r:.200}"
            )
        grouped.setdefault(task.store, []).append(result)
    return grouped


def _load(config: ConfigLike) -> Config:
    return resolve_config(config if isinstance(config, Config) else Path(config))


def run(
    config: ConfigLike,
    *,
    dispatcher: Dispatcher | None = None,
    partitions: int = 4,
    boundaries: Mapping[str, Sequence[str]] | None = None,
    show: int = 0,
    dry_run: bool = False,
    inline: bool = False,
    progress: ProgressCallback | None = None,
) -> CycleReport:
    """One scheduled cycle, its stores worked range by range (see the module docstring).

    ``dispatcher`` defaults to Celery's workers; ``boundaries`` gives split
    points per store name (other stores are cut into ``partitions`` ranges);
    ``inline`` sends the config's text instead of its path. A dry run previews
    the purge here and scans the ranges on the workers. Raises what
    :func:`reclaim.api.run` raises; a failed range fails the run with its
    error, the range named in the message.
    """
    loaded = _load(config)
    spec = ConfigSpec.of(loaded, inline=inline)
    chosen = dispatcher if dispatcher is not None else _celery()
    options = {"show": show, "workers": chosen.describe(), "partitions": partitions}
    with Collector.open(loaded, command="run", options=options, dry_run=dry_run) as c:
        started = datetime.now(UTC)
        report = CycleReport(dry_run, c.run_id, recovered=c.recovered, rows_recovered=c.rows_recovered)
        c.validate()
        names = c.session.store_names(None)
        ranges = _Ranges(
            {
                name: split(
                    c.session.store(name), partitions=partitions, boundaries=(boundaries or {}).get(name)
                )
                for name in names
            }
        )
        collecting = [name for name in names if c.policy(name).action == "collect"]
        _require_versioning(c, collecting)
        if c.dry_run:
            report.purged = c.carry_out(c.plan_purge(skip_report_only=True, progress=progress))
        else:
            report.purged = _purge(c, chosen, ranges, collecting, spec)
        rows = c.carry_out(c.plan_rows(now=datetime.now(UTC), show=show, progress=progress))
        report.collections, report.collection_scans = rows.collections, rows.scans
        report.scans, report.quarantined = _quarantine(c, chosen, ranges, names, spec, show)
        record_findings(c, report.scans)
        expired = c.carry_out(c.plan_expire())
        report.expired_rows, report.expired_entries = expired.rows, expired.entries
        report.expired_objects = expired.objects
        c.counts["findings"] = report.findings
        if not c.dry_run:
            observe_listing(c, report, started)
        return report


def _require_versioning(c: Collector, names: Sequence[str]) -> None:
    """The bucket checks of the single-process purge and quarantine, for every ``collect`` store, at once.

    The single process makes them as it plans each step (the purge's for
    ``purge = "lifecycle"``, the quarantine's for ``mode = "versioned"``);
    here both are made before the first range is sent, so a bucket that keeps
    no versions (or expires them too soon) refuses the run before any worker
    purges or hides anything. Each worker makes them again for its range.
    """
    for name in names:
        policy = c.policy(name)
        store = c.session.store(name)
        require_purgeable(store, purge=policy.purge, grace=policy.grace)
        require_quarantinable(
            store, mode=c.mode(name), action=policy.action, purge=policy.purge, grace=policy.grace
        )


def _purge(
    c: Collector, dispatcher: Dispatcher, ranges: _Ranges, names: Sequence[str], spec: ConfigSpec
) -> list[PurgeResult]:
    phase_start = datetime.now(UTC).isoformat()
    tasks = ranges.tasks("purge", names, spec, c, lambda _name, _index: {"phase_start": phase_start})
    grouped = _grouped(tasks, dispatcher.map(tasks, check=c.check_lease))
    out = []
    for name in names:
        parts = grouped.get(name, [])
        _note_retried(c, name, parts)
        result = sum_purges(name, [read_purge(part["purged"]) for part in parts])
        out.append(result)
        c.record("purged", name, result)
    return out


def _quarantine(
    c: Collector, dispatcher: Dispatcher, ranges: _Ranges, names: Sequence[str], spec: ConfigSpec, show: int
) -> tuple[list[StoreScan], list[QuarantineResult]]:
    guarded = [
        name
        for name in names
        if not c.dry_run and c.policy(name).action == "collect" and c.policy(name).max_fraction < 1.0
    ]
    budgets = _guard(c, dispatcher, ranges, guarded, spec) if guarded else {}
    scan_start = datetime.now(UTC).isoformat()

    def options(name: str, index: int) -> dict[str, Any]:
        budget = budgets.get(name)
        return {
            "scan_start": scan_start,
            "phase_start": scan_start,
            "show": show,
            **({"budget": budget[index]} if budget is not None else {}),
        }

    phase: Phase = "scan" if c.dry_run else "quarantine"
    tasks = ranges.tasks(phase, names, spec, None if c.dry_run else c, options)
    grouped = _grouped(tasks, dispatcher.map(tasks, check=c.check_lease))
    if not c.dry_run:
        for name in names:
            if c.policy(name).age == "unreferenced":
                # every range of the store was scanned (each recorded its sightings, none finished
                # the clock): the complete scan's finish, forgetting what no range saw, as the single
                # process finishes the clock after its scan
                c.watch("store", name).finish()
    scans: list[StoreScan] = []
    quarantined: list[QuarantineResult] = []
    for name in names:
        parts = grouped.get(name, [])
        _note_retried(c, name, parts)
        scan_ = sum_scans([read_scan(part["scan"]) for part in parts], show=show)
        scans.append(scan_)
        c.record("listed", name, scan_.listed.count)
        if scan_.action == "collect" and scan_.over_max_fraction:
            _refuse(scan_)  # a dry run's guard; a real run was guarded before anything moved
        if c.dry_run or scan_.action != "collect":
            continue
        result = sum_quarantines(name, c.mode(name), [read_quarantine(part["quarantined"]) for part in parts])
        quarantined.append(result)
        c.record("quarantined", name, result)
        # strays = "report": the directories whose release the ranges used, forgotten now that
        # every range of the store was scanned (as the single process forgets them after its scan)
        used = {d for part in parts for d in part.get("released_directories", ())}
        c.archive.consume_directories(name, sorted(used))
    return scans, quarantined


def _guard(
    c: Collector, dispatcher: Dispatcher, ranges: _Ranges, names: Sequence[str], spec: ConfigSpec
) -> dict[str, list[int]]:
    """Check ``max_fraction`` over each whole store; each range's candidate budget (module docstring)."""
    scan_start = datetime.now(UTC).isoformat()
    tasks = ranges.tasks("scan", names, spec, None, lambda _name, _index: {"scan_start": scan_start})
    grouped = _grouped(tasks, dispatcher.map(tasks, check=c.check_lease))
    budgets: dict[str, list[int]] = {}
    for name in names:
        parts = [read_scan(part["scan"]) for part in grouped.get(name, [])]
        whole = sum_scans(parts, show=0)
        if whole.over_max_fraction:
            _refuse(whole)
        allowed = math.floor(whole.max_fraction * whole.listed.count + 1e-9)
        share = max(0, allowed - whole.candidates.count) // max(1, len(parts))
        budgets[name] = [part.candidates.count + share for part in parts]
    return budgets


def _refuse(whole: StoreScan) -> None:
    """The single-process run's ``max_fraction`` refusal, for a whole store."""
    raise UnsafeToProceed(
        f"store {whole.store!r}: {whole.candidates.count:,} candidates are {whole.fraction:.1%} of "
        f"{whole.listed.count:,} objects, above max_fraction {whole.max_fraction:.1%}; nothing was moved. "
        "If this backlog is expected, rerun with --max-fraction set above that share.",
        store=whole.store,
    )


def _note_retried(c: Collector, name: str, parts: Sequence[Mapping[str, Any]]) -> None:
    """Record under ``retried`` what the retried ranges of ``name`` settled of their killed first attempts.

    Their purge and quarantine counts include those attempts' work already
    (the workers read it from the journal); this says that it happened.
    """
    found = [read_recover(part["retried"]) for part in parts if part.get("retried")]
    if not found:
        return
    earlier = c.counts.get("retried", {}).get(name)
    total = sum_recovers(name, found)
    if earlier:
        total = sum_recovers(name, [read_recover(earlier), total])
    c.record("retried", name, total)


def scan(
    config: ConfigLike,
    *,
    dispatcher: Dispatcher | None = None,
    partitions: int = 4,
    boundaries: Mapping[str, Sequence[str]] | None = None,
    stores: Sequence[str] | None = None,
    show: int = 0,
) -> ScanReport:
    """Read-only: every store (or ``stores``) scanned range by range on the workers; changes nothing.

    The sums equal :func:`reclaim.api.scan`'s per store. Raises what a range raises.
    """
    from reclaim.lifecycle import open_journal

    loaded = _load(config)
    spec = ConfigSpec.of(loaded)
    chosen = dispatcher if dispatcher is not None else _celery()
    started = datetime.now(UTC)
    with open_journal(loaded) as (session, _catalog, _journal):
        names = session.store_names(stores)
        ranges = _Ranges(
            {
                name: split(
                    session.store(name), partitions=partitions, boundaries=(boundaries or {}).get(name)
                )
                for name in names
            }
        )
    scan_start = started.isoformat()
    tasks = ranges.tasks("scan", names, spec, None, lambda _n, _i: {"scan_start": scan_start, "show": show})
    grouped = _grouped(tasks, chosen.map(tasks, check=lambda: None))
    scans = [
        sum_scans([read_scan(part["scan"]) for part in grouped.get(name, [])], show=show) for name in names
    ]
    return ScanReport(started, datetime.now(UTC), stores=scans)


def _celery() -> Dispatcher:
    from reclaim.distributed.app import CeleryDispatcher

    return CeleryDispatcher()
