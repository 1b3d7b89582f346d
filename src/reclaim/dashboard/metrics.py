"""Prometheus metrics: the numbers an admin's monitoring alerts on.

Served at ``/metrics`` by ``reclaim serve`` and written by ``reclaim metrics
--textfile PATH`` for node_exporter's textfile collector when reclaim runs
from cron. Every figure is read from the catalog at scrape time (gauges) or
summed over the audit log (counters: purged and restored bytes and objects
only grow, and a finished run's counts never change). Labels are store,
collection and command names from the configuration; no URL, key or secret
is ever a label or a value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reclaim.dashboard.data import Dashboard
from reclaim.errors import ReclaimError

__all__ = ["ReclaimCollector", "registry_for", "render_metrics", "write_textfile"]

log = logging.getLogger(__name__)


def _ts(moment: Any) -> float:
    return float(moment.timestamp())


class ReclaimCollector(Collector):
    """A custom collector that reads the catalog once per scrape."""

    def __init__(self, dashboard: Dashboard) -> None:
        self._dashboard = dashboard

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("reclaim_catalog_up", "1 when the catalog could be read at this scrape")
        try:
            data = self._dashboard.metrics()
        except ReclaimError as exc:
            log.warning("metrics: cannot read the catalog: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _families(data)


def _families(data: dict[str, Any]) -> Iterator[Metric]:
    report = data["status"]
    now = data["now"]
    store = ["store"]
    quarantined = GaugeMetricFamily("reclaim_quarantined_objects", "Objects quarantined now", labels=store)
    quarantined_bytes = GaugeMetricFamily("reclaim_quarantined_bytes", "Bytes quarantined now", labels=store)
    oldest = GaugeMetricFamily(
        "reclaim_oldest_quarantined_age_seconds", "Age of the oldest quarantined object", labels=store
    )
    in_flight = GaugeMetricFamily("reclaim_in_flight_entries", "Journal entries left in flight", labels=store)
    for s in report.stores:
        summary = s.summary
        quarantined.add_metric([s.store], summary.quarantined)
        quarantined_bytes.add_metric([s.store], summary.quarantined_bytes)
        oldest.add_metric([s.store], 0 if summary.oldest is None else (now - summary.oldest).total_seconds())
        in_flight.add_metric([s.store], summary.in_flight)
    yield from (quarantined, quarantined_bytes, oldest, in_flight)

    candidates = GaugeMetricFamily(
        "reclaim_candidates", "Candidate objects in the last complete scan (or cycle)", labels=store
    )
    for name, count in sorted(data["candidates"].items()):
        candidates.add_metric([name], count)
    yield candidates
    dangling = GaugeMetricFamily(
        "reclaim_dangling_references", "References to missing objects in the last check", labels=store
    )
    for name, count in sorted(data["dangling"].items()):
        dangling.add_metric([name], count)
    yield dangling
    findings = GaugeMetricFamily(
        "reclaim_report_only_findings",
        "Candidates of report-only stores and collections (last cycle or scan)",
    )
    findings.add_metric([], data["findings"] or 0)
    yield findings

    rows = GaugeMetricFamily("reclaim_archived_rows", "Rows archived now", labels=["collection"])
    row_bytes = GaugeMetricFamily(
        "reclaim_archived_bytes", "Bytes of rows archived now", labels=["collection"]
    )
    for c in report.collections:
        rows.add_metric([c.collection], c.summary.archived)
        row_bytes.add_metric([c.collection], c.summary.bytes)
    yield from (rows, row_bytes)

    totals = data["totals"]
    for name, help_text in (
        ("purged_bytes", "Bytes purged, over the whole audit log"),
        ("purged_objects", "Objects purged, over the whole audit log"),
        ("restored_bytes", "Bytes restored, over the whole audit log"),
        ("restored_objects", "Objects restored, over the whole audit log"),
    ):
        counter = CounterMetricFamily(f"reclaim_{name}", help_text, labels=store)
        for store_name in sorted(set(totals) | {s.store for s in report.stores}):
            counter.add_metric([store_name], totals.get(store_name, {}).get(name, 0))
        yield counter

    last_ts = GaugeMetricFamily(
        "reclaim_last_run_timestamp_seconds", "When the last run of each command started", labels=["command"]
    )
    last_ok = GaugeMetricFamily(
        "reclaim_last_run_succeeded", "1 when the last run of each command succeeded", labels=["command"]
    )
    outcome = GaugeMetricFamily(
        "reclaim_last_run_outcome",
        "The outcome of the last run of each command",
        labels=["command", "status"],
    )
    for command, record in sorted(data["last_runs"].items()):
        last_ts.add_metric([command], _ts(record.started_at))
        last_ok.add_metric([command], 1 if record.status == "succeeded" else 0)
        outcome.add_metric([command, record.status], 1)
    yield from (last_ts, last_ok, outcome)
    success = GaugeMetricFamily(
        "reclaim_last_success_timestamp_seconds", "When the last successful cycle (reclaim run) finished"
    )
    if data["last_success"] is not None:
        success.add_metric([], _ts(data["last_success"]))
    yield success

    held = GaugeMetricFamily("reclaim_lease_held", "1 while a collector holds the lease")
    held.add_metric([], 0 if data["lease_age"] is None else 1)
    yield held
    age = GaugeMetricFamily(
        "reclaim_lease_holder_age_seconds", "How long the current holder has held the lease"
    )
    age.add_metric([], data["lease_age"] or 0)
    yield age


def registry_for(dashboard: Dashboard) -> CollectorRegistry:
    """A registry holding only reclaim's metrics (no process or platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReclaimCollector(dashboard))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The text exposition format of ``registry``."""
    return generate_latest(registry)


def write_textfile(dashboard: Dashboard, path: str | os.PathLike[str]) -> Path:
    """Write the metrics for node_exporter's textfile collector (atomically: a temporary file, renamed).

    Raises :class:`~reclaim.errors.ReclaimError` when the catalog cannot be read (a cron job should
    fail loudly rather than leave stale figures), and ``OSError`` when the file cannot be written.
    """
    dashboard.metrics()  # fail here, with the catalog's own error, rather than write catalog_up 0
    target = Path(path)
    write_to_textfile(str(target), registry_for(dashboard))
    return target
