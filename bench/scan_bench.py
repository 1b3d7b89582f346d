"""Benchmark ``reclaim scan``: N references in PostgreSQL, N objects in a local directory.

For each N it builds (or reuses) a sharded local store (``blobs/ab/cd/<uuid>``,
like content-addressed archives lay out their objects) of which a given
fraction is orphaned, loads the references of the others into a PostgreSQL
table, then runs ``reclaim scan --json`` in a fresh process and reports its
wall time, objects/s and peak RSS (``ru_maxrss`` of the child, from ``wait4``).

    .venv/bin/python bench/scan_bench.py --sizes 100000 1000000

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and a few GB of
free disk for N = 1,000,000 (empty files; inodes, not bytes). Data is cached
under ``--workdir`` between runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

PG = "postgresql://postgres@127.0.0.1:5432"


def build_store(root: Path, n: int, orphan_fraction: float) -> list[str]:
    """Create ``n`` empty objects under ``root``; return the keys to reference (sorted not needed)."""
    marker = root / ".complete"
    keys_file = root.parent / f"{root.name}.refs"
    if marker.exists() and keys_file.exists():
        return keys_file.read_text().splitlines()
    root.mkdir(parents=True, exist_ok=True)
    referenced: list[str] = []
    period = round(1 / orphan_fraction) if orphan_fraction else 0
    made_dirs: set[str] = set()
    for i in range(n):
        u = uuid.UUID(bytes=hashlib.md5(i.to_bytes(8, "big"), usedforsecurity=False).digest()).hex
        directory = f"blobs/{u[:2]}/{u[2:4]}"
        if directory not in made_dirs:
            (root / directory).mkdir(parents=True, exist_ok=True)
            made_dirs.add(directory)
        key = f"{directory}/{u}"
        with open(root / key, "wb"):
            pass
        if not (period and i % period == 0):
            referenced.append(key)
    keys_file.write_text("\n".join(referenced) + "\n")
    marker.touch()
    return referenced


def load_references(database: str, keys: list[str]) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            admin.execute(f"CREATE DATABASE {database}")
    with psycopg.connect(f"{PG}/{database}") as conn:
        conn.execute("DROP TABLE IF EXISTS assets")
        conn.execute("CREATE TABLE assets (id bigserial PRIMARY KEY, blob_key text NOT NULL)")
        with conn.cursor().copy("COPY assets (blob_key) FROM STDIN") as copy:
            for key in keys:
                copy.write_row((key,))
        conn.execute("ANALYZE assets")


def write_config(path: Path, database: str, store: Path) -> None:
    path.write_text(
        f"""
[catalog]
url = "sqlite:///{path.parent / "catalog.sqlite"}"

[databases.pg]
url = "postgresql+psycopg://postgres@127.0.0.1:5432/{database}"

[stores.bench]
url = "file://{store}"
min_age = "0"
max_fraction = 1.0

[[stores.bench.references]]
database = "pg"
table = "assets"
column = "blob_key"
"""
    )


def build(workdir: Path, n: int, orphans: float) -> None:
    """Build the store, the references and the config for size ``n``."""
    store = workdir / f"store-{n}"
    keys = build_store(store, n, orphans)
    database = f"reclaim_bench_{n}"
    load_references(database, keys)
    write_config(workdir / f"reclaim-{n}.toml", database, store)


def run_child(command: list[str]) -> tuple[float, int, bytes]:
    """Run ``command`` in a child process; return (seconds, peak RSS bytes, stdout)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stderr is not None
    output = child.stdout.read()
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({status}): {errors.decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, output


def run_scan(config: Path) -> tuple[float, int, dict[str, object]]:
    """Run ``reclaim scan --json`` in a child process; return (seconds, peak RSS bytes, report)."""
    command = [sys.executable, "-m", "reclaim", "scan", "--config", str(config), "--json"]
    seconds, rss, output = run_child(command)
    return seconds, rss, json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--orphans", type=float, default=0.3, help="fraction of objects nothing references")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reclaim-bench"))
    parser.add_argument("--repeat", type=int, default=1, help="scans per size; the best time is kept")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        for n in args.sizes:
            build(args.workdir, n, args.orphans)
        return
    rows = []
    for n in args.sizes:
        print(f"N={n:,}: building store and references ...", file=sys.stderr, flush=True)
        # built in a child process: a scan child forked from a parent holding N keys
        # would inherit that parent's resident pages in its ru_maxrss
        build_command = [sys.executable, __file__, "--build-only", "--sizes", str(n)]
        build_command += ["--orphans", str(args.orphans), "--workdir", str(args.workdir)]
        subprocess.run(build_command, check=True)
        config = args.workdir / f"reclaim-{n}.toml"
        best: tuple[float, int, dict[str, object]] | None = None
        for _ in range(args.repeat):
            result = run_scan(config)
            if best is None or result[0] < best[0]:
                best = result
        assert best is not None
        seconds, rss, report = best
        scanned = report["stores"][0]  # type: ignore[index]
        rows.append((n, seconds, rss, scanned["listed"]["count"], scanned["candidates"]["count"]))
    print()
    print(f"{'N':>10} {'listed':>10} {'candidates':>10} {'seconds':>8} {'objects/s':>10} {'peak RSS':>10}")
    for n, seconds, rss, listed, candidates in rows:
        rate, mib = n / seconds, rss / 2**20
        print(f"{n:>10,} {listed:>10,} {candidates:>10,} {seconds:>8.2f} {rate:>10,.0f} {mib:>8.1f} MB")
    if len(rows) > 1:
        delta = (rows[-1][2] - rows[0][2]) / 2**20
        print(f"\npeak RSS at N={rows[-1][0]:,} minus N={rows[0][0]:,}: {delta:+.1f} MB")
    print("\nreproduce: " + shlex.join([".venv/bin/python", "bench/scan_bench.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
