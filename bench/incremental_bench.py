"""Benchmark a day of 1 % churn: ``reclaim run --incremental`` against the full ``reclaim run``.

For each N it builds (or reuses) a sharded local store of N empty objects
(``blobs/ab/cd/<uuid>``, as ``scan_bench.py``), every one referenced by a
row of ``assets (id, blob_key)`` in PostgreSQL, installs the queue triggers
(``reclaim incremental install``) and runs one full cycle (``reclaim run``:
the safety net the incremental cycle requires, measured as "full, no churn").
Then the day's churn: every ``round(1 / churn)``-th row is deleted, so the
triggers queue N x churn keys. The same day is measured twice, each cycle in a
fresh child process (wall seconds, peak RSS from ``wait4``):

1. ``reclaim run --incremental``: reads the queue, ``stat``s the queued keys,
   re-checks them, quarantines them (moved into ``_trash/``);
2. the objects are put back (``reclaim restore --run``, not measured), so the
   store is as it was before 1; then the full ``reclaim run`` on the same
   churn: lists every key, merges every reference, quarantines the same keys.

Store operations are counted in the child, at the store's interface: keys
listed (one directory entry each), objects ``stat``-ed (by a listing page,
``stat`` or ``stat_many``), moves, deletes. Database work is not counted
(the incremental cycle's is a point lookup per queued key; the full scan's
a read of every reference).

    .venv/bin/python bench/incremental_bench.py --sizes 100000 1000000

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and about
1.5 GB of disk (inodes) for N = 1,000,000. Data is cached under ``--workdir``
between runs (the references are reloaded each time).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import PG, load_references, mb, run_child, write_config
from scan_bench import build_store

_COUNTED = ("listed", "stat", "move", "delete")


class _CountingPage:
    """A listing page whose per-key ``info`` (a ``stat`` on a local directory) is counted."""

    def __init__(self, page: Any, counts: Counter[str]) -> None:
        self._page = page
        self._counts = counts
        counts["listed"] += len(page.keys)

    def info(self, key: str) -> Any:
        self._counts["stat"] += 1
        return self._page.info(key)

    def bytes_of(self, keys: Any) -> Any:
        keys = list(keys)
        self._counts["stat"] += len(keys)
        return self._page.bytes_of(keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._page, name)


class _Counted:
    """A batch mover's or deleter's operation, counted (one per object)."""

    def __init__(
        self, operation: Callable[..., Any], counts: Counter[str], name: str, *, by_length: bool = False
    ) -> None:
        self._operation = operation
        self._counts = counts
        self._name = name
        self._by_length = by_length

    def _call(self, *args: Any) -> Any:
        self._counts[self._name] += len(args[0]) if self._by_length else 1
        return self._operation(*args)

    move = delete = _call


class _CountingStore:
    """A store whose operations are counted (everything else is passed through)."""

    def __init__(self, store: Any, counts: Counter[str]) -> None:
        self._store = store
        self._counts = counts

    def list_pages(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[Any]:
        for page in self._store.list_pages(prefix, skip=skip):
            yield _CountingPage(page, self._counts)

    def list(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for info in self._store.list(*args, **kwargs):
            self._counts["listed"] += 1
            yield info

    def stat(self, key: str) -> Any:
        self._counts["stat"] += 1
        return self._store.stat(key)

    def stat_many(self, keys: Sequence[str]) -> Any:
        self._counts["stat"] += len(keys)
        return self._store.stat_many(keys)

    def move(self, src: str, dst: str) -> None:
        self._counts["move"] += 1
        self._store.move(src, dst)

    @contextmanager
    def moves(self) -> Iterator[_Counted]:
        with self._store.moves() as mover:
            yield _Counted(mover.move, self._counts, "move")

    def delete(self, keys: Sequence[str]) -> None:
        self._counts["delete"] += len(keys)
        self._store.delete(keys)

    @contextmanager
    def deletes(self) -> Iterator[_Counted]:
        with self._store.deletes() as deleter:
            yield _Counted(deleter.delete, self._counts, "delete", by_length=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def child(config: Path, incremental: bool) -> None:
    """One cycle with counted store operations; prints its figures as JSON."""
    import reclaim.lifecycle.session as session
    from reclaim import api

    counts: Counter[str] = Counter()
    opened = session.open_store

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        return _CountingStore(opened(*args, **kwargs), counts)

    session.open_store = counting_open  # type: ignore[assignment]
    report = api.run(config, incremental=incremental)
    quarantined = sum(q.quarantined.count for q in report.quarantined)
    out = {"run_id": report.run_id, "quarantined": quarantined, "ops": {k: counts[k] for k in _COUNTED}}
    print(json.dumps(out))


def build(workdir: Path, n: int) -> Path:
    """The store (cached), every key referenced in a fresh table, a fresh catalog and triggers."""
    store = workdir / f"store-{n}"
    keys = build_store(store, n, 0.0)
    database = f"reclaim_incbench_{n}"
    load_references(database, keys, "postgresql")
    config = workdir / f"reclaim-{n}.toml"
    # the cache's marker file is no object of the archive
    write_config(config, database, f"file://{store}", 'exclude = [".complete"]\n')
    (workdir / "catalog.sqlite").unlink(missing_ok=True)
    reclaim = [sys.executable, "-m", "reclaim"]
    subprocess.run([*reclaim, "init", "--config", str(config)], check=True, capture_output=True)
    subprocess.run(
        [*reclaim, "incremental", "install", "--config", str(config)], check=True, capture_output=True
    )
    return config


def churn(n: int, fraction: float) -> int:
    """Delete every ``round(1 / fraction)``-th reference row (the triggers queue their keys)."""
    import psycopg

    period = round(1 / fraction)
    with psycopg.connect(f"{PG}/reclaim_incbench_{n}") as conn:
        return conn.execute("DELETE FROM assets WHERE id %% %s = 0", (period,)).rowcount


def measure(config: Path, *, incremental: bool) -> tuple[float, int, dict[str, Any]]:
    command = [sys.executable, __file__, "--child", str(config)]
    if incremental:
        command.append("--incremental")
    seconds, rss, output = run_child(command)
    return seconds, rss, json.loads(output.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--churn", type=float, default=0.01, help="fraction of references deleted in the day")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reclaim-incremental-bench"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--incremental", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.incremental)
        return
    if args.build_only is not None:
        build(args.workdir, args.build_only)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    # what every cycle pays before it starts: the interpreter and reclaim's imports
    startup, startup_rss, _ = run_child(
        [sys.executable, "-c", "import reclaim.api, reclaim.lifecycle.session"]
    )
    rows = []
    for n in args.sizes:
        print(f"N={n:,}: building store, references, catalog and triggers ...", file=sys.stderr, flush=True)
        # in a child: a measured child forked from a parent holding N keys would count its pages
        subprocess.run(
            [sys.executable, __file__, "--build-only", str(n), "--workdir", str(args.workdir)], check=True
        )
        config = args.workdir / f"reclaim-{n}.toml"
        print(f"N={n:,}: full cycle, no churn ...", file=sys.stderr, flush=True)
        base = measure(config, incremental=False)
        deleted = churn(n, args.churn)
        print(f"N={n:,}: {deleted:,} references deleted; incremental cycle ...", file=sys.stderr, flush=True)
        inc = measure(config, incremental=True)
        restore = [
            sys.executable,
            "-m",
            "reclaim",
            "restore",
            "--config",
            str(config),
            "--run",
            str(inc[2]["run_id"]),
        ]
        subprocess.run(restore, check=True, capture_output=True)
        print(f"N={n:,}: restored; full cycle on the same churn ...", file=sys.stderr, flush=True)
        full = measure(config, incremental=False)
        if inc[2]["quarantined"] != deleted or full[2]["quarantined"] != deleted:
            raise SystemExit(
                f"N={n}: quarantined {inc[2]['quarantined']} (incremental) and "
                f"{full[2]['quarantined']} (full), expected {deleted} each"
            )
        rows.append((n, deleted, base, inc, full))
        # put the objects back, so that the cached store serves the next run as built
        restore[-1] = str(full[2]["run_id"])
        subprocess.run(restore, check=True, capture_output=True)

    def ops(figures: dict[str, Any]) -> int:
        return sum(figures["ops"].values())

    print()
    header = f"{'N':>10} {'churn':>7} {'cycle':<22} {'seconds':>8} {'store ops':>10} {'listed':>10} "
    print(header + f"{'stat':>8} {'moves':>7} {'peak RSS':>10}")
    for n, deleted, base, inc, full in rows:
        for label, (seconds, rss, figures) in (
            ("full, no churn", base),
            ("incremental", inc),
            ("full", full),
        ):
            o = figures["ops"]
            print(
                f"{n:>10,} {deleted:>7,} {label:<22} {seconds:>8.2f} {ops(figures):>10,} {o['listed']:>10,} "
                f"{o['stat']:>8,} {o['move']:>7,} {mb(rss):>10}"
            )
    print(
        f"{'':>10} {'':>7} {'startup (imports only)':<22} {startup:>8.2f} {'':>10} {'':>10} {'':>8} "
        f"{'':>7} {mb(startup_rss):>10}"
    )
    print()
    for n, _deleted, _base, inc, full in rows:
        print(
            f"N={n:,}, full / incremental: seconds {full[0] / inc[0]:.1f}x, store operations "
            f"{ops(full[2]) / ops(inc[2]):.1f}x, peak RSS {full[1] / inc[1]:.2f}x; "
            f"after startup: seconds {(full[0] - startup) / (inc[0] - startup):.1f}x"
        )
    print("\nreproduce: " + shlex.join([".venv/bin/python", "bench/incremental_bench.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
