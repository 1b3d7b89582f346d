"""What every page and the metrics show, as JSON-ready data built from :mod:`reclaim.api`.

The figures of the overview and the runs pages are the reports of
:func:`reclaim.api.status` and :func:`reclaim.api.runs`, unchanged (``status``
and ``runs`` in the JSON are what ``reclaim status --json`` and ``reclaim runs
--json`` print); the browsers and charts add paged, read-only catalog queries
(:mod:`reclaim.catalog.browse`) and the observations recorded by ``scan``,
``check`` and ``run``. Nothing here lists a store or reads an application
database: when one is unreachable the dashboard still shows what the catalog
knows.

When the catalog itself cannot be read, each page shows the last state it
could read, with the error and when that state was read
(:class:`LastKnown`).
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from reclaim.api import ConfigLike, resolve_config, to_jsonable
from reclaim.api.inspection import status_of
from reclaim.catalog import (
    Catalog,
    Entry,
    Journal,
    RowState,
    RunRecord,
    State,
    browse,
    latest_observation,
    open_catalog,
)
from reclaim.config import Config, format_duration, redact
from reclaim.dashboard.readonly import catalog_path, read_only_config
from reclaim.errors import CatalogError, ReclaimError

__all__ = ["Dashboard", "LastKnown", "PageError"]

#: how many days the history charts cover by default
HISTORY_DAYS: Final = 30
#: how many recent runs the overview lists
OVERVIEW_RUNS: Final = 10
#: how many days (UTC, today included) the overview's "purged" and "restored" figures cover
RECENT_DAYS: Final = 30
#: how long an aggregate over the catalog's history is reused at most (see :meth:`Dashboard.cached`)
CACHE_SECONDS: Final = 60.0
#: the commands whose counts hold purged or restored objects
_MUTATING: Final = ("run", "purge", "collect", "restore", "quarantine")


class PageError(Exception):
    """A page cannot be shown (unknown item, bad filter): a 404 or 400 with this message."""

    def __init__(self, message: str, *, status_code: int = 404) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class LastKnown:
    """A page's data, when it was read, and the error that stopped a fresher read (if any)."""

    data: dict[str, Any]
    read_at: datetime
    error: str | None = None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PageError(f"{name}: {value!r} is not a date or ISO time", status_code=400) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Dashboard:
    """The read model of one configuration's catalog, opened read-only."""

    def __init__(self, config: ConfigLike) -> None:
        self.config: Config = resolve_config(config)
        self._read_only = read_only_config(self.config)
        self._catalog: Catalog | None = None
        self._failed: tuple[float, ReclaimError] | None = None
        self._lock = threading.Lock()
        self._last: dict[str, LastKnown] = {}
        self._cache: dict[str, tuple[tuple[Any, ...], float, Any]] = {}

    # -- plumbing -------------------------------------------------------------------

    @property
    def config_path(self) -> str:
        """The configuration file as the restore commands shown on pages name it."""
        return self.config.source_path or "reclaim.toml"

    def catalog(self) -> Catalog:
        """The catalog, opened read-only (once); :class:`CatalogError` when it does not exist."""
        path = catalog_path(self.config)
        if path is not None and not path.exists():
            raise CatalogError(
                f"the catalog {path} does not exist; "
                f"create it with 'reclaim init --config {self.config_path}'"
            )
        asked = time.monotonic()
        with self._lock:
            if self._catalog is None:
                failed = self._failed
                if failed is not None and failed[0] >= asked:
                    # an attempt ended while this one waited for it (the startup's, on a server that
                    # does not answer): its answer, not a second wait as long
                    raise failed[1]
                catalog = open_catalog(self._read_only.catalog)
                try:
                    catalog.require_current()
                except ReclaimError as exc:
                    catalog.dispose()
                    self._failed = (time.monotonic(), exc)
                    raise
                self._catalog = catalog
            return self._catalog

    def open_early(self) -> str | None:
        """Open the catalog and check its revision now (at startup), so that no page waits for it.

        The overview is then read once and dropped: what a process compiles once
        (SQLAlchemy's statements, on first use) is compiled now, and the first
        page still reads every figure afresh (nothing read here is shown or
        reused). Returns the error, redacted, when the catalog cannot be read yet
        (missing, unreachable, behind): nothing is kept, and each page tries
        again and shows that error, as it would have without this.
        """
        try:
            self.catalog()
            self.overview()
        except ReclaimError as exc:
            return redact(str(exc))
        finally:
            self.forget()
        return None

    def close(self) -> None:
        """Release the catalog's connections."""
        with self._lock:
            if self._catalog is not None:
                self._catalog.dispose()
                self._catalog = None

    def last_known(self, page: str, read: Callable[[], dict[str, Any]]) -> LastKnown:
        """``read()``; when the catalog cannot be read, the last state read for ``page`` and the error.

        Raises the error when there is no earlier state.
        """
        try:
            data = read()
        except ReclaimError as exc:
            error = redact(str(exc))
            if isinstance(exc, CatalogError):
                self.close()  # the next request reconnects (the file may be back)
            known = self._last.get(page)
            if known is None:
                raise
            return LastKnown(known.data, known.read_at, error)
        known = LastKnown(data, datetime.now(UTC))
        self._last[page] = known
        return known

    def cached(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, reused while the catalog shows no change (and for at most :data:`CACHE_SECONDS`).

        What the catalog aggregates over its whole history (status's journal
        summary: every entry of every store) costs a second at a million entries;
        between runs nothing it sums changes. A change is seen by a cheap probe
        (newest run, its end, the lease row, the newest observation, journal
        entry and archived row); a writer's ``ensure()`` changes none of those,
        so the cache also expires after :data:`CACHE_SECONDS`.
        """
        probe = browse.change_probe(self.catalog())
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and hit[0] == probe and now - hit[1] < CACHE_SECONDS:
            return hit[2]
        value = compute()
        self._cache[name] = (probe, now, value)
        return value

    def forget(self) -> None:
        """Drop the reused aggregates (:meth:`cached`): the next read computes them (the benchmark's
        uncached renders)."""
        self._cache.clear()

    def restore_command(self, *, store: str | None = None, key: str | None = None, **row: str) -> str:
        """The exact ``reclaim restore`` command that brings an object (or collection and pk: a row) back."""
        words = ["reclaim", "restore", "--config", self.config_path]
        if store is not None and key is not None:
            words += ["--store", store, "--", key]
        else:
            words += ["--collection", row["collection"], "--", row["pk"]]
        return shlex.join(words)

    # -- overview ---------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Per store and collection: status, the last cycle's listing, 30 days of purges; lease; runs."""
        catalog = self.catalog()  # first: a missing SQLite catalog is named, never created
        report = self.cached("status", lambda: status_of(self.config, catalog, last_runs=OVERVIEW_RUNS))
        now = datetime.now(UTC)
        stale_after = self.config.dashboard.stale_after
        succeeded = browse.page_runs(catalog, command="run", status="succeeded", limit=1)
        last_success = succeeded[0].finished_at if succeeded else None
        if last_success is None:
            red, reason = True, "no cycle (reclaim run) has succeeded yet"
        elif now - last_success > stale_after:
            red = True
            reason = (
                f"no cycle has succeeded for {format_duration(now - last_success)} "
                f"(over {format_duration(stale_after)})"
            )
        else:
            red, reason = False, f"last cycle succeeded {format_duration(now - last_success)} ago"
        # what the runs of the last RECENT_DAYS UTC days purged and restored: the history chart's
        # days (a row per store, day and command, however many entries they changed)
        first = now.date() - timedelta(days=RECENT_DAYS - 1)
        recent: dict[str, dict[str, dict[str, int]]] = {
            name: {"purged": {"count": 0, "bytes": 0}, "restored": {"count": 0, "bytes": 0}}
            for name in self.config.stores
        }
        for figures in browse.day_figures(catalog, list(self.config.stores), _MUTATING, first):
            for key, (count, size) in (("purged", figures.purged), ("restored", figures.restored)):
                counted = recent.setdefault(figures.store, {}).setdefault(key, {"count": 0, "bytes": 0})
                counted["count"] += count
                counted["bytes"] += size
        return {
            "generated_at": now.isoformat(),
            "status": report.to_dict(),
            "health": {
                "red": red,
                "reason": reason,
                "last_success": _iso(last_success),
                "stale_after": format_duration(stale_after),
            },
            "cycle": self._last_listing(catalog),
            "recent": {"days": RECENT_DAYS, "since": first.isoformat(), "stores": recent},
            "progress": report.lease.progress if report.lease.holder is not None else None,
            **_run_lines(report.runs),
        }

    def _last_listing(self, catalog: Catalog) -> dict[str, Any] | None:
        """The newest complete scan (the last cycle's or a ``reclaim scan``): listed, kept, candidates."""
        seen = latest_observation(catalog, "scan", complete=True)
        if seen is None:
            return None
        stores = [
            {
                "store": s.get("store"),
                "action": s.get("action"),
                **{part: s.get(part, {"count": 0, "bytes": 0}) for part in _LISTING},
            }
            for s in seen.report.get("stores", [])
            if isinstance(s, dict)
        ]
        return {
            "observed_at": _iso(seen.finished_at),
            "run_id": seen.report.get("run_id"),
            "by": "reclaim run" if seen.report.get("run_id") is not None else "reclaim scan",
            "stores": stores,
        }

    # -- reconciliation ---------------------------------------------------------------

    def reconciliation(self) -> dict[str, Any]:
        """Both directions from the last scan and the last check: unreferenced objects, dangling rows."""
        catalog = self.catalog()
        now = datetime.now(UTC)
        scan = latest_observation(catalog, "scan")
        check = latest_observation(catalog, "check")
        unreferenced = []
        sampled = self._samples(catalog, now)
        if scan is not None:
            for s in scan.report.get("stores", []):
                samples = s.get("samples", [])
                samples_at = scan.finished_at
                if not samples and s.get("store") in sampled:
                    # the last cycle recorded none: show those of the newest scan that did
                    samples_at, samples = sampled[s.get("store")]
                samples = [{**sample, "age": _age(now, sample.get("mtime"))} for sample in samples]
                unreferenced.append(
                    {
                        "store": s.get("store"),
                        "action": s.get("action"),
                        "candidates": s.get("candidates", {}),
                        "too_young": s.get("too_young", {}),
                        "report_only": s.get("action") == "report",
                        "samples": samples,
                        "samples_at": _iso(samples_at) if samples else None,
                    }
                )
        rows = [
            {
                "collection": c.get("collection"),
                "table": c.get("table"),
                "action": c.get("action"),
                "candidates": c.get("candidates", 0),
                "bytes": c.get("row_bytes", c.get("bytes", 0)),
                "data_bytes": c.get("data_bytes"),
                "report_only": c.get("action") == "report",
                "samples": c.get("samples", []),
            }
            for c in (scan.report.get("collections", []) if scan is not None else [])
        ]
        dangling = []
        if check is not None:
            for s in check.report.get("stores", []):
                for source in s.get("sources", []):
                    dangling.append(
                        {
                            "store": s.get("store"),
                            "source": source.get("name"),
                            "database": source.get("database"),
                            "dangling": source.get("dangling", 0),
                            "samples": source.get("samples", []),
                        }
                    )
        return {
            "generated_at": now.isoformat(),
            "scan": None if scan is None else _observed(scan),
            "check": None if check is None else _observed(check),
            "unreferenced": unreferenced,
            "rows": rows,
            "findings": sum(u["candidates"].get("count", 0) for u in unreferenced if u["report_only"])
            + sum(r["candidates"] for r in rows if r["report_only"])
            + _strays(scan.report if scan is not None else {}),
            "dangling": dangling,
            "dangling_total": sum(d["dangling"] for d in dangling),
        }

    def _samples(self, catalog: Catalog, now: datetime) -> dict[str, tuple[datetime, list[Any]]]:
        """Per store, the sample candidates of the newest scan of the last 30 days that recorded some."""
        found: dict[str, tuple[datetime, list[Any]]] = {}
        for seen in reversed(browse.observations_since(catalog, "scan", now - timedelta(days=30), limit=50)):
            for s in seen.report.get("stores", []):
                if isinstance(s, dict) and s.get("samples") and s.get("store") not in found:
                    found[str(s.get("store"))] = (seen.finished_at, list(s["samples"]))
        return found

    # -- history ----------------------------------------------------------------------

    def history(self, days: int = HISTORY_DAYS) -> dict[str, Any]:
        """Per day: bytes purged, quarantined bytes standing; candidates per store at each scan."""
        if not 1 <= days <= 366:
            raise PageError("days: between 1 and 366", status_code=400)
        self.catalog()
        today = datetime.now(UTC).date().isoformat()  # a new day is a new chart
        return dict(self.cached(f"history:{days}:{today}", lambda: self._history(days)))

    def _history(self, days: int) -> dict[str, Any]:
        catalog = self.catalog()
        today = datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        stores = list(self.config.stores)
        days_list = [first + timedelta(days=n) for n in range(days)]
        purged = {name: dict.fromkeys(days_list, 0) for name in stores}
        inflow = dict.fromkeys(days_list, 0)
        # a row per store and day (kept by the run writer), however many runs the days hold
        for figures in browse.day_figures(catalog, stores, _MUTATING, first):
            if figures.day not in inflow:
                continue
            size = figures.purged[1]
            purged[figures.store][figures.day] += size
            inflow[figures.day] += figures.quarantined[1] - size - figures.restored[1]
        # quarantined bytes at the end of each day: today's standing figure, walked back through the log
        report = self.cached("status", lambda: status_of(self.config, catalog, last_runs=OVERVIEW_RUNS))
        standing = sum(s.summary.quarantined_bytes for s in report.stores)
        quarantined: dict[date, int] = {}
        level = standing
        for day in reversed(days_list):
            quarantined[day] = max(0, level)
            level -= inflow[day]
        scanned_at: list[str] = []
        candidates: dict[str, list[int]] = {name: [] for name in stores}
        for seen in browse.observations_since(catalog, "scan", start):
            counted = {
                s.get("store"): _int(s.get("candidates", {}).get("count"))
                for s in seen.report.get("stores", [])
                if isinstance(s, dict)
            }
            if not any(name in counted for name in stores):
                continue
            scanned_at.append(seen.finished_at.isoformat())
            for name in stores:
                candidates[name].append(counted.get(name, 0))
        return {
            "days": [d.isoformat() for d in days_list],
            "purged_bytes": {name: [series[d] for d in days_list] for name, series in purged.items()},
            "purged_total": [sum(purged[name][d] for name in purged) for d in days_list],
            "quarantined_bytes": [quarantined[d] for d in days_list],
            "candidates": {"at": scanned_at, "series": candidates},
        }

    # -- runs ---------------------------------------------------------------------------

    def runs_page(
        self,
        *,
        before: int | None = None,
        command: str | None = None,
        status_: str | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """A page of the audit log, newest first; the first unfiltered page is :func:`reclaim.api.runs`."""
        catalog = self.catalog()
        if before is None and command is None and status_ is None:
            # what reclaim.api.runs reads, from the dashboard's open catalog
            records = self.cached(f"runs:{limit}", lambda: catalog.list_runs(limit))
        else:
            records = browse.page_runs(
                self.catalog(), command=command, status=status_, before=before, limit=limit
            )
        more = bool(records) and bool(
            browse.page_runs(self.catalog(), command=command, status=status_, before=records[-1].id, limit=1)
        )
        return {
            "runs": to_jsonable(records),
            **_run_lines(records),
            "next_before": records[-1].id if records and more else None,
            "filters": {"command": command, "status": status_},
        }

    def run(self, run_id: int) -> dict[str, Any]:
        """One run: :func:`reclaim.api.runs` of its id, with its duration and counts per store."""
        catalog = self.catalog()
        record = self.cached(f"run:{run_id}", lambda: catalog.get_run(run_id))  # as reclaim.api.runs
        if record is None:
            raise PageError(f"run {run_id} does not exist")
        took = (
            None if record.finished_at is None else (record.finished_at - record.started_at).total_seconds()
        )
        return {
            "run": to_jsonable(record),
            "seconds": took,
            "summary": run_summary(record),
            "stores": _run_stores(record),
        }

    # -- browsers -------------------------------------------------------------------------

    def quarantine_page(
        self,
        *,
        store: str | None = None,
        state: str | None = "quarantined",
        key: str | None = None,
        run_id: int | None = None,
        since: str | None = None,
        until: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Journal entries (quarantined by default) by store, key glob, run and date; newest first."""
        states = None
        if state:
            try:
                states = [State(state.upper())]
            except ValueError:
                known = ", ".join(s.value.lower() for s in State)
                raise PageError(f"state: {state!r} is not one of {known}", status_code=400) from None
        entries = browse.page_entries(
            self.catalog(),
            store=store or None,
            states=states,
            key_glob=key or None,
            run_id=run_id,
            since=_parse_time(since, "since"),
            until=_parse_time(until, "until"),
            before=before,
            limit=limit + 1,
        )
        shown = entries[:limit]
        return {
            "entries": [self._entry(e) for e in shown],
            "next_before": shown[-1].id if len(entries) > limit else None,
            "filters": {
                "store": store,
                "state": state,
                "key": key,
                "run": run_id,
                "since": since,
                "until": until,
            },
            "stores": list(self.config.stores),
            "states": [s.value.lower() for s in State],
        }

    def entry(self, entry_id: int) -> dict[str, Any]:
        """One journal entry and every episode of its key."""
        catalog = self.catalog()
        found = Journal(catalog).get(entry_id)
        if found is None:
            raise PageError(f"journal entry {entry_id} does not exist")
        history = browse.entry_history(catalog, found.store, found.key)
        return {"entry": self._entry(found), "history": [self._entry(e) for e in history]}

    def _entry(self, entry: Entry) -> dict[str, Any]:
        out = dict(to_jsonable(entry))
        out["restore"] = (
            self.restore_command(store=entry.store, key=entry.key)
            if entry.state == State.QUARANTINED
            else None
        )
        return out

    def archive_page(
        self,
        *,
        collection: str | None = None,
        state: str | None = "archived",
        pk: str | None = None,
        run_id: int | None = None,
        since: str | None = None,
        until: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Archived rows by collection, primary-key glob, run and date; newest first."""
        states = None
        if state:
            try:
                states = [RowState(state.upper())]
            except ValueError:
                known = ", ".join(s.value.lower() for s in RowState)
                raise PageError(f"state: {state!r} is not one of {known}", status_code=400) from None
        rows = browse.page_rows(
            self.catalog(),
            collection=collection or None,
            states=states,
            pk_glob=_pk_glob(pk),
            run_id=run_id,
            since=_parse_time(since, "since"),
            until=_parse_time(until, "until"),
            before=before,
            limit=limit + 1,
        )
        shown = rows[:limit]
        return {
            "rows": [self._row(r, with_data=False) for r in shown],
            "next_before": shown[-1].id if len(rows) > limit else None,
            "filters": {
                "collection": collection,
                "state": state,
                "pk": pk,
                "run": run_id,
                "since": since,
                "until": until,
            },
            "collections": list(self.config.collections),
            "states": [s.value.lower() for s in RowState],
        }

    def archived(self, row_id: int) -> dict[str, Any]:
        """One archived row, its values, and every archive record of its primary key."""
        catalog = self.catalog()
        found = browse.page_rows(catalog, before=row_id + 1, limit=1)
        if not found or found[0].id != row_id:
            raise PageError(f"archived row {row_id} does not exist")
        row = found[0]
        history = browse.row_history(catalog, row.collection, row.pk)
        return {
            "row": self._row(row, with_data=True),
            "history": [self._row(r, with_data=False) for r in history],
        }

    def _row(self, row: Any, *, with_data: bool) -> dict[str, Any]:
        out = {k: v for k, v in dict(to_jsonable(row)).items() if k != "row"}
        out["bytes"] = len(row.row)
        if with_data:
            try:
                out["data"] = row.data
            except CatalogError as exc:
                out["data"] = None
                out["data_error"] = str(exc)
        out["restore"] = (
            self.restore_command(collection=row.collection, pk=row.pk)
            if row.state == RowState.ARCHIVED
            else None
        )
        return out

    # -- metrics ----------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """Everything the Prometheus metrics expose, read once (see :mod:`reclaim.dashboard.metrics`)."""
        catalog = self.catalog()
        report = self.cached("status", lambda: status_of(self.config, catalog, last_runs=OVERVIEW_RUNS))
        now = datetime.now(UTC)
        last: dict[str, RunRecord] = {}
        for command in ("run", "quarantine", "purge", "collect", "restore", "recover"):
            found = browse.page_runs(catalog, command=command, limit=1)
            if found:
                last[command] = found[0]
        succeeded = browse.page_runs(catalog, command="run", status="succeeded", limit=1)
        scan = latest_observation(catalog, "scan", complete=True)
        check = latest_observation(catalog, "check")
        candidates: dict[str, int] = {}
        findings = 0
        if scan is not None:
            for s in scan.report.get("stores", []):
                candidates[str(s.get("store"))] = _int(s.get("candidates", {}).get("count"))
                if s.get("action") == "report":
                    findings += _int(s.get("candidates", {}).get("count"))
            findings += sum(
                _int(c.get("candidates"))
                for c in scan.report.get("collections", [])
                if c.get("action") == "report"
            )
            findings += _strays(scan.report)
        dangling: dict[str, int] = {}
        if check is not None:
            for s in check.report.get("stores", []):
                dangling[str(s.get("store"))] = _int(s.get("dangling"))
        lease = report.lease
        return {
            "now": now,
            "status": report,
            "last_runs": last,
            "last_success": succeeded[0].finished_at if succeeded else None,
            "candidates": candidates,
            "findings": report.findings if report.findings is not None else findings,
            "dangling": dangling,
            "totals": browse.run_totals(catalog, list(self.config.stores)),
            "lease_age": None
            if lease.holder is None or lease.acquired_at is None
            else (now - lease.acquired_at).total_seconds(),
        }


_LISTING: Final = ("listed", "referenced", "candidates", "too_young", "excluded")


def _pk_glob(pk: str | None) -> str | None:
    """A primary-key search as a glob over the archive's spelling: ``4*`` matches ``["42"]``.

    A search that starts with ``[`` is taken as a glob over that spelling as it is.
    """
    if not pk:
        return None
    if pk.startswith("["):
        return pk
    return '[[]"' + pk + '"[]]'  # [[] and []] are a literal [ and ] in a glob


def _run_lines(records: list[RunRecord]) -> dict[str, dict[str, str]]:
    """For a table of runs: each run's one-line summary and duration, by id."""
    return {
        "summaries": {str(r.id): run_summary(r) for r in records},
        "durations": {
            str(r.id): "-" if r.finished_at is None else _took(r.finished_at - r.started_at) for r in records
        },
    }


def _took(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(delta)


def _observed(seen: Any) -> dict[str, Any]:
    return {
        "id": seen.id,
        "at": _iso(seen.finished_at),
        "by": f"{seen.user or '?'}@{seen.host or '?'}",
        "scope": seen.scope,
        "run_id": seen.report.get("run_id"),
    }


def _age(now: datetime, mtime: Any) -> str | None:
    if not isinstance(mtime, (int, float)):
        return None
    return format_duration(max(timedelta(0), now - datetime.fromtimestamp(mtime, UTC)))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _bytes(counted: Any) -> int:
    return _int(counted.get("bytes")) if isinstance(counted, dict) else 0


def _by_store(counts: dict[str, Any], part: str) -> list[tuple[str, dict[str, Any]]]:
    section = counts.get(part)
    if not isinstance(section, dict):
        return []
    return [(str(name), result) for name, result in section.items() if isinstance(result, dict)]


def _run_stores(record: RunRecord) -> list[dict[str, Any]]:
    """Per store, what a run quarantined, purged and restored (count and bytes)."""
    stores: dict[str, dict[str, Any]] = {}
    for name, result in _by_store(record.counts, "quarantined"):
        counted = result.get("quarantined", {})
        stores.setdefault(name, {})["quarantined"] = {
            "count": _int(counted.get("count")),
            "bytes": _bytes(counted),
        }
    for name, result in _by_store(record.counts, "purged"):
        counted = result.get("purged", {})
        stores.setdefault(name, {})["purged"] = {
            "count": _int(counted.get("count")),
            "bytes": _bytes(counted),
        }
    for name, result in _by_store(record.counts, "restored"):
        stores.setdefault(name, {})["restored"] = {
            "count": _int(result.get("restored")),
            "bytes": _int(result.get("restored_bytes")),
        }
    return [{"store": name, **parts} for name, parts in sorted(stores.items())]


def _data(result: dict[str, Any]) -> str:
    """``, data 1.2 GB`` when the run measured the data the rows stand for."""
    data = result.get("data_bytes")
    return f", data {_size(_int(data))}" if isinstance(data, int) else ""


def run_summary(record: RunRecord) -> str:
    """One line: what a run did, per store and collection."""
    parts = []
    for row in _run_stores(record):
        for verb in ("quarantined", "purged", "restored"):
            if verb in row and row[verb]["count"]:
                parts.append(f"{row['store']}: {verb} {row[verb]['count']} ({_size(row[verb]['bytes'])})")
    for name, result in _by_store(record.counts, "collections"):
        if _int(result.get("archived")):
            parts.append(
                f"{name}: archived {_int(result.get('archived'))} rows "
                f"({_size(_int(result.get('row_bytes', result.get('bytes'))))}{_data(result)})"
            )
    findings = _int(record.counts.get("findings"))
    if findings:
        parts.append(f"{findings} report-only finding{'s' if findings != 1 else ''}")
    if not parts:
        parts.append("nothing to do" if record.status == "succeeded" else record.status)
    return "; ".join(parts)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    """``work()`` and the seconds it took (for the benchmark)."""
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def _strays(report: dict[str, Any]) -> int:
    """The strays a scan report counted (stores with ``strays = "report"``): findings too."""
    total = 0
    for store in report.get("stores", []):
        strays = store.get("strays") if isinstance(store, dict) else None
        if isinstance(strays, dict):
            total += _int(strays.get("count"))
    return total
