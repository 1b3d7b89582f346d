"""Dashboard page render times on a catalog with 1,000,000 journal entries and 10,000 runs.

Not a test: figures for the README. Builds (once, then reuses) a SQLite
catalog of the given size with bulk inserts: journal entries over three
stores (mostly PURGED history, some RESTORED, the rest QUARANTINED, recorded
over the last 90 days), archived rows of two collections, runs with the
counts a cycle records, and one scan and one check observation per run day.
Then renders every page and JSON document in process (Starlette's test
client: routing, the catalog queries, templates, redaction; no network) and
scrapes ``/metrics``, each several times: the first request of each page
(the first of all is the first of the process: the app's startup has compiled
the templates and opened the catalog, and is timed apart) and the median and
worst of the rest; then the pages whose aggregates the dashboard reuses while
the catalog shows no change, recomputing them at every render.

    .venv/bin/python bench/dashboard_bench.py --entries 1000000 --runs 10000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from reclaim.catalog import _run_days, _totals, open_catalog
from reclaim.config import load_config
from reclaim.dashboard import create_app

STORES = ("blobs", "zarr", "uploads")
COLLECTIONS = ("assets", "uploads")
CHUNK = 20_000

PAGES = [
    "/",
    "/api/overview",
    "/history",
    "/history?days=90",
    "/api/history?days=90",
    "/reconciliation",
    "/runs",
    "/runs?before=5000",
    "/runs?command=purge",
    "/runs/9000",
    "/quarantine",
    "/quarantine?store=zarr",
    "/quarantine?state=purged&before=500000",
    "/quarantine?state=&key=blobs/00*",
    "/quarantine?state=&run=4000",
    "/quarantine?state=&since=2026-01-01",
    "/quarantine/{entry}",
    "/archive",
    "/archive?collection=uploads&state=",
    "/archive/{row}",
    "/metrics",
]
#: pages whose aggregates the dashboard reuses (Dashboard.cached): also timed recomputing them
UNCACHED = ["/", "/api/overview", "/history?days=90", "/metrics"]


def _config(root: Path) -> Path:
    stores = "\n".join(
        f'[stores.{name}]\nurl = "file://{root / name}"\n\n[[stores.{name}.references]]\n'
        f'database = "app"\ntable = "t"\ncolumn = "k"\n'
        for name in STORES
    )
    collections = "\n".join(
        f'[collections.{name}]\ndatabase = "app"\ntable = "{name}"\nage_column = "created"\nmin_age = "7d"\n'
        for name in COLLECTIONS
    )
    path = root / "reclaim.toml"
    path.write_text(
        f'[catalog]\nurl = "sqlite:///{root / "catalog.sqlite"}"\n\n'
        f'[databases.app]\nurl = "sqlite:///{root / "app.sqlite"}"\n\n{stores}\n{collections}'
    )
    return path


def _counts(rng: random.Random) -> dict[str, object]:
    purged = {
        s: {"store": s, "purged": {"count": rng.randint(0, 500), "bytes": rng.randint(0, 10**9)}, "due": 0}
        for s in STORES
    }
    quarantined = {
        s: {
            "store": s,
            "mode": "move",
            "quarantined": {"count": rng.randint(0, 500), "bytes": rng.randint(0, 10**9)},
        }
        for s in STORES
    }
    collections = {
        c: {"collection": c, "table": c, "archived": rng.randint(0, 50), "bytes": 4000} for c in COLLECTIONS
    }
    return {
        "purged": purged,
        "quarantined": quarantined,
        "collections": collections,
        "findings": rng.randint(0, 3),
    }


def populate(root: Path, entries: int, runs: int) -> Path:
    """Create the catalog (``reclaim init``'s migrations) and fill it with bulk inserts."""
    config_path = _config(root)
    config = load_config(config_path)
    catalog = open_catalog(config.catalog)
    catalog.upgrade()
    t = catalog.tables
    rng = random.Random(7)
    now = datetime.now(UTC)
    span = timedelta(days=90)
    started = time.perf_counter()
    with catalog.engine.begin() as conn:
        batch = []
        for n in range(runs):
            at = now - span + span * n / runs
            batch.append(
                {
                    "command": rng.choice(("run", "run", "run", "purge", "quarantine", "restore")),
                    "status": "succeeded" if n % 50 else "failed",
                    "dry_run": False,
                    "started_at": at,
                    "finished_at": at + timedelta(seconds=rng.randint(5, 600)),
                    "user": "gc",
                    "host": "collector-1",
                    "pid": 1000 + n,
                    "options": "{}",
                    "counts": json.dumps(_counts(rng)),
                    "error": None if n % 50 else "SourceError: database unreachable",
                }
            )
        conn.execute(t.runs.insert(), batch)
    # bulk load without the journal's indexes, then build them once (as a restore from a dump would)
    indexes = list(t.objects.indexes)
    with catalog.engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    for start in range(0, entries, CHUNK):
        batch = []
        for n in range(start, min(entries, start + CHUNK)):
            store = STORES[n % len(STORES)]
            key = f"{store}/{n % 997:03d}/{hashlib.md5(str(n).encode()).hexdigest()}"  # noqa: S324
            key_hash = hashlib.sha256(key.encode()).hexdigest()
            roll = n / entries
            state = "PURGED" if roll < 0.85 else "RESTORED" if roll < 0.9 else "QUARANTINED"
            created = now - span + span * roll
            batch.append(
                {
                    "store": store,
                    "key": key,
                    "key_hash": key_hash,
                    "state": state,
                    "version": 3,
                    "mode": "move",
                    "trash_key": f"_trash/{key}",
                    "size": rng.randint(1, 10**7),
                    "mtime": created - timedelta(days=30),
                    "etag": None,
                    "run_id": 1 + int(roll * (runs - 1)),
                    "updated_run_id": 1 + int(roll * (runs - 1)),
                    "created_at": created,
                    "updated_at": created + timedelta(days=7) if state != "QUARANTINED" else created,
                    "due_at": created + timedelta(days=7),
                    "active_hash": key_hash if state == "QUARANTINED" else None,
                    "note": None,
                    "mtime_epoch": (created - timedelta(days=30)).timestamp(),
                }
            )
        with catalog.engine.begin() as conn:
            conn.execute(t.objects.insert(), batch)
        print(f"  journal: {start + len(batch):,} entries", file=sys.stderr, end="\r")
    with catalog.engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    rows = []
    for n in range(entries // 10):
        collection = COLLECTIONS[n % 2]
        archived = now - span + span * n / (entries // 10)
        rows.append(
            {
                "collection": collection,
                "table_name": collection,
                "pk": json.dumps([str(n)]),
                "pk_hash": hashlib.sha256(json.dumps([str(n)]).encode()).hexdigest(),
                "row": json.dumps({"id": n, "name": f"row {n}", "blob": f"blobs/{n}"}),
                "run_id": 1 + n % runs,
                "archived_at": archived,
                "expires_at": archived + timedelta(days=30),
                "state": "ARCHIVED" if n % 3 else "RESTORED",
                "version": 1,
                "updated_at": None,
                "updated_run_id": None,
            }
        )
        if len(rows) == CHUNK:
            with catalog.engine.begin() as conn:
                conn.execute(t.rows.insert(), rows)
            rows = []
    observations = []
    for day in range(90):
        at = now - span + timedelta(days=day)
        report = {
            "run_id": None,
            "started_at": at.isoformat(),
            "finished_at": at.isoformat(),
            "stores": [
                {
                    "store": s,
                    "action": "collect",
                    "listed": {"count": 10**6, "bytes": 10**12},
                    "referenced": {"count": 9 * 10**5, "bytes": 9 * 10**11},
                    "candidates": {"count": rng.randint(0, 5000), "bytes": 10**9},
                    "too_young": {"count": 10, "bytes": 1000},
                    "excluded": {"count": 0, "bytes": 0},
                    "samples": [
                        {"key": f"{s}/x/{i}", "size": 100, "mtime": at.timestamp()} for i in range(10)
                    ],
                }
                for s in STORES
            ],
            "collections": [],
        }
        for kind in ("scan", "check"):
            observations.append(
                {
                    "kind": kind,
                    "started_at": at,
                    "finished_at": at,
                    "user": "gc",
                    "host": "collector-1",
                    "scope": "all",
                    "report": json.dumps(report if kind == "scan" else {"stores": [], "dangling": 0}),
                }
            )
    with catalog.engine.begin() as conn:
        if rows:
            conn.execute(t.rows.insert(), rows)
        conn.execute(t.observations.insert(), observations)
        # the bulk inserts bypassed the writers that keep the running totals and the runs' per-day
        # figures: count them once
        _totals.recount(conn, t.objects, t.rows, t.totals)
        _run_days.recount(conn, t)
        conn.exec_driver_sql("ANALYZE")
    catalog.dispose()
    print(f"\npopulated in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return config_path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/reclaim-dashboard-bench"))
    args = parser.parse_args()
    root = args.dir / f"e{args.entries}-r{args.runs}"
    config_path = root / "reclaim.toml"
    if not (root / "catalog.sqlite").exists():
        root.mkdir(parents=True, exist_ok=True)
        config_path = populate(root, args.entries, args.runs)
    size = (root / "catalog.sqlite").stat().st_size
    print(f"catalog: {args.entries:,} journal entries, {args.runs:,} runs, {size / 2**20:,.0f} MiB (SQLite)")
    started = time.perf_counter()
    app = create_app(config_path)
    created = time.perf_counter()
    with TestClient(app) as client:
        ready = time.perf_counter()
        print(
            f"start: {(ready - started) * 1000:.1f} ms (create_app {(created - started) * 1000:.1f} ms, "
            f"startup: templates and catalog {(ready - created) * 1000:.1f} ms)"
        )
        print(f"{'page':<42} {'first ms':>9} {'median ms':>10} {'max ms':>8} {'bytes':>8}")
        worst = 0.0
        for page in (p.format(entry=args.entries // 2, row=args.entries // 20) for p in PAGES):
            times = []
            length = 0
            for _ in range(args.repeat):
                started = time.perf_counter()
                answer = client.get(page)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (page, answer.status_code, answer.text[:500])
                length = len(answer.content)
            rest = times[1:]
            worst = max(worst, max(rest))
            print(
                f"{page:<42} {times[0]:>9.1f} {statistics.median(rest):>10.1f} {max(rest):>8.1f} {length:>8,}"
            )
        # the pages that reuse aggregates while the catalog shows no change, each render recomputing them
        for page in UNCACHED:
            times = []
            for _ in range(args.repeat):
                client.app.state.dashboard.forget()
                started = time.perf_counter()
                answer = client.get(page)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (page, answer.status_code)
            worst = max(worst, max(times))
            label = f"{page} (uncached)"
            print(f"{label:<42} {'':>9} {statistics.median(times):>10.1f} {max(times):>8.1f}")
    print(f"slowest repeated render: {worst:.1f} ms (target: every page under 200 ms)")


if __name__ == "__main__":
    main()
