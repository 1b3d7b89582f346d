"""reclaim side by side with a set-based collector (``bench/baseline.py``), same run, same data.

For each N it builds (or reuses) the data of ``bench/scan_bench.py`` (N objects in
a sharded local directory, 30 % orphaned, the references to the rest in
PostgreSQL), then alternates, each in a fresh child process (wall time, peak
RSS from ``wait4``, best of ``--repeat``):

- scan: ``reclaim scan --json`` vs ``baseline.py scan``;
- collect (quarantine + purge, grace 0): ``reclaim collect --json`` vs
  ``baseline.py collect``, each on a fresh hard-linked copy (``cp -al``) of the
  store and, for reclaim, a fresh catalog.

Both must find the same number of candidates and delete the same number of
objects. Prints one table per N with the ratios, and the command.

Beside collect, the **floor**: ``baseline.py collect --trash _trash/`` on a
fresh copy, the baseline with each orphan renamed into the trash (parents
created) and unlinked there instead of unlinked in place. That is the file
system work of any collector that moves an object aside before deleting it,
with no journal and no checks; ``floor/baseline`` is the most such a
collector can reach against the baseline, and ``reclaim/floor`` what
reclaim's journal, re-checks and process cost on top of it.

With ``--restore-sizes``, for each of those N (N/3 orphans by default) it also
measures reclaim against itself on a fresh copy: ``reclaim quarantine --json``
(grace 7 days, so nothing is purged) and then ``reclaim restore --store bench
--json`` of every quarantined object, each in a fresh child process; both
must count the same objects, and the table gives restored/s against
quarantined/s.

    .venv/bin/python bench/compare_bench.py --sizes 100000 1000000 --collect-sizes 100000
    .venv/bin/python bench/compare_bench.py --sizes 300000 --collect-sizes --restore-sizes 300000
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import SERVERS, dsn, mb, run_child, write_config  # noqa: E402
from scan_bench import config_path, database_name  # noqa: E402

BASELINE = str(BENCH / "baseline.py")
RECLAIM = [sys.executable, "-m", "reclaim"]

Result = tuple[float, int, int]  # seconds, peak RSS bytes, objects (candidates or deleted)


def best(results: list[Result]) -> Result:
    return min(results, key=lambda r: r[0])


def reclaim_scan(config: Path) -> Result:
    seconds, rss, output = run_child([*RECLAIM, "scan", "--config", str(config), "--json"])
    return seconds, rss, json.loads(output)["stores"][0]["candidates"]["count"]


DB_PREFIX = "reclaim_bench"
"""The prefix of the reference databases (``--db-prefix``)."""


def baseline_args(store: Path, n: int, server: str) -> list[str]:
    return ["--root", str(store), "--db", dsn(server, database_name(n, DB_PREFIX)), "--min-age", "0"]


def baseline_scan(store: Path, n: int, server: str) -> Result:
    seconds, rss, output = run_child([sys.executable, BASELINE, "scan", *baseline_args(store, n, server)])
    return seconds, rss, json.loads(output)["candidates"]


def fresh_copy(workdir: Path, n: int) -> Path:
    """A fresh run directory holding a hard-linked copy of the store of size ``n``."""
    run = workdir / f"run-{n}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    subprocess.run(["cp", "-al", str(workdir / f"store-{n}"), str(run / "store")], check=True)
    return run


def reclaim_collect(workdir: Path, n: int, server: str) -> tuple[Result, int]:
    """Quarantine + purge (grace 0) on a fresh copy; returns the result and the candidate count."""
    run = fresh_copy(workdir, n)
    config = run / "reclaim.toml"
    write_config(config, database_name(n, DB_PREFIX), f"file://{run / 'store'}", server=server)
    subprocess.run(
        [sys.executable, "-m", "reclaim", "init", "--config", str(config)], check=True, capture_output=True
    )
    seconds, rss, output = run_child([*RECLAIM, "collect", "--config", str(config), "--json"])
    report = json.loads(output)
    deleted = report["purged"][0]["purged"]["count"]
    shutil.rmtree(run)
    return (seconds, rss, deleted), report["scans"][0]["candidates"]["count"]


def reclaim_quarantine_restore(workdir: Path, n: int, server: str) -> tuple[Result, Result]:
    """Quarantine (grace 7 days), then restore every quarantined object, on a fresh copy."""
    run = fresh_copy(workdir, n)
    config = run / "reclaim.toml"
    database = database_name(n, DB_PREFIX)
    write_config(config, database, f"file://{run / 'store'}", 'grace = "7d"\n', server=server)
    subprocess.run([*RECLAIM, "init", "--config", str(config)], check=True, capture_output=True)
    seconds, rss, output = run_child([*RECLAIM, "quarantine", "--config", str(config), "--json"])
    quarantined = json.loads(output)["quarantined"][0]["quarantined"]["count"]
    quarantine = (seconds, rss, quarantined)
    seconds, rss, output = run_child(
        [*RECLAIM, "restore", "--store", "bench", "--config", str(config), "--json"]
    )
    restored = json.loads(output)["restored"]["bench"]["restored"]
    if restored != quarantined:
        raise SystemExit(f"restore differs: {quarantined:,} quarantined, {restored:,} restored")
    shutil.rmtree(run)
    return quarantine, (seconds, rss, restored)


def baseline_collect(workdir: Path, n: int, server: str, *, trash: bool = False) -> tuple[Result, int]:
    """The baseline's collect on a fresh copy; with ``trash``, the floor (see the module docstring)."""
    run = fresh_copy(workdir, n)
    floor = ["--trash", "_trash/"] if trash else []
    seconds, rss, output = run_child(
        [sys.executable, BASELINE, "collect", *baseline_args(run / "store", n, server), *floor]
    )
    report = json.loads(output)
    shutil.rmtree(run)
    return (seconds, rss, report["deleted"]), report["candidates"]


def restore_table(n: int, quarantine: Result, restore: Result) -> None:
    print(f"\nN = {n:,}: restore against quarantine (reclaim, {quarantine[2]:,} objects)")
    print(f"{'':<20} {'restore':>12} {'quarantine':>12}  ratio")
    rate_r, rate_q = restore[2] / restore[0], quarantine[2] / quarantine[0]
    print(f"{'objects/s':<20} {rate_r:>12,.0f} {rate_q:>12,.0f}  {rate_r / rate_q:.2f}x (restore/quarantine)")
    print(f"{'peak RSS':<20} {mb(restore[1]):>12} {mb(quarantine[1]):>12}")
    print(f"{'seconds':<20} {restore[0]:>12.2f} {quarantine[0]:>12.2f}")


def table(n: int, rows: dict[str, tuple[Result, Result]], floor: Result | None = None) -> None:
    print(f"\nN = {n:,}")
    print(f"{'':<20} {'reclaim':>12} {'baseline':>12}  ratio")
    for name, (ours, theirs) in rows.items():
        unit = "objects/s" if name == "scan" else "deleted/s"
        # scan throughput counts listed objects (N); collect counts the orphans deleted
        rate_r = (n if name == "scan" else ours[2]) / ours[0]
        rate_b = (n if name == "scan" else theirs[2]) / theirs[0]
        ratio = f"{rate_r / rate_b:.2f}x (reclaim/baseline)"
        print(f"{name + ' ' + unit:<20} {rate_r:>12,.0f} {rate_b:>12,.0f}  {ratio}")
        ratio = f"{theirs[1] / ours[1]:.2f}x (baseline/reclaim)"
        print(f"{name + ' peak RSS':<20} {mb(ours[1]):>12} {mb(theirs[1]):>12}  {ratio}")
        print(f"{name + ' seconds':<20} {ours[0]:>12.2f} {theirs[0]:>12.2f}  ({ours[2]:,} objects)")
        if name == "collect" and floor is not None:
            rate_f = floor[2] / floor[0]
            ratios = f"{rate_f / rate_b:.2f}x (floor/baseline), {rate_r / rate_f:.2f}x (reclaim/floor)"
            print(f"{'floor deleted/s':<20} {rate_f:>12,.0f} {rate_b:>12,.0f}  {ratios}")
            print(f"{'floor seconds':<20} {floor[0]:>12.2f} {theirs[0]:>12.2f}  (rename into trash + unlink)")


def main() -> None:
    global DB_PREFIX  # one setting of the whole run, read by the helpers above
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--collect-sizes", type=int, nargs="*", default=None, help="sizes to collect at (default: --sizes)"
    )
    parser.add_argument(
        "--restore-sizes", type=int, nargs="*", default=[], help="sizes to quarantine and restore at"
    )
    parser.add_argument("--orphans", type=float, default=0.3, help="fraction of objects nothing references")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reclaim-bench"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best time is kept")
    parser.add_argument("--server", choices=SERVERS, default="postgresql", help="where the references are")
    parser.add_argument("--collect-repeat", type=int, default=None, help="collect runs (default: --repeat)")
    parser.add_argument("--db-prefix", default=DB_PREFIX, help="databases are named <prefix>_<N>")
    args = parser.parse_args()
    DB_PREFIX = args.db_prefix
    collect_sizes = args.sizes if args.collect_sizes is None else args.collect_sizes
    results: dict[int, dict[str, tuple[Result, Result]]] = {}
    for n in args.sizes:
        print(f"N={n:,}: building store and references ...", file=sys.stderr, flush=True)
        # built in a child process, so that no measured child is forked from a parent holding N keys
        build = [sys.executable, str(BENCH / "scan_bench.py"), "--build-only", "--sizes", str(n)]
        build += ["--orphans", str(args.orphans), "--workdir", str(args.workdir), "--server", args.server]
        build += ["--db-prefix", args.db_prefix]
        subprocess.run(build, check=True)
        config = config_path(args.workdir, n, args.server)
        store = args.workdir / f"store-{n}"
        ours: list[Result] = []
        theirs: list[Result] = []
        for _ in range(args.repeat):
            print(f"N={n:,}: scan ...", file=sys.stderr, flush=True)
            ours.append(reclaim_scan(config))
            theirs.append(baseline_scan(store, n, args.server))
            if ours[-1][2] != theirs[-1][2]:
                raise SystemExit(f"candidates differ: reclaim {ours[-1][2]:,}, baseline {theirs[-1][2]:,}")
        rows = {"scan": (best(ours), best(theirs))}
        floor: Result | None = None
        if n in collect_sizes:
            ours, theirs, floors = [], [], []
            for _ in range(args.collect_repeat or args.repeat):
                print(f"N={n:,}: collect ...", file=sys.stderr, flush=True)
                result, candidates = reclaim_collect(args.workdir, n, args.server)
                ours.append(result)
                result, baseline_candidates = baseline_collect(args.workdir, n, args.server)
                theirs.append(result)
                result, floor_candidates = baseline_collect(args.workdir, n, args.server, trash=True)
                floors.append(result)
                if (floor_candidates, floors[-1][2]) != (baseline_candidates, theirs[-1][2]):
                    raise SystemExit("the floor's collect differs from the baseline's")
                if (candidates, ours[-1][2]) != (baseline_candidates, theirs[-1][2]):
                    raise SystemExit(
                        f"collect differs: reclaim {candidates:,} candidates, {ours[-1][2]:,} deleted; "
                        f"baseline {baseline_candidates:,} candidates, {theirs[-1][2]:,} deleted"
                    )
            rows["collect"] = (best(ours), best(theirs))
            floor = best(floors)
        results[n] = rows
        table(n, rows, floor)
        if n in args.restore_sizes:
            print(f"N={n:,}: quarantine, then restore ...", file=sys.stderr, flush=True)
            runs = [reclaim_quarantine_restore(args.workdir, n, args.server) for _ in range(args.repeat)]
            restore_table(n, best([q for q, _ in runs]), best([r for _, r in runs]))
    if len(results) > 1:
        small, large = min(results), max(results)
        for name in ("scan", "collect"):
            if name in results[small] and name in results[large]:
                delta = (results[large][name][0][1] - results[small][name][0][1]) / 2**20
                print(f"\nreclaim {name} peak RSS at N={large:,} minus N={small:,}: {delta:+.1f} MB")
    print("\nreproduce: " + shlex.join([".venv/bin/python", "bench/compare_bench.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
