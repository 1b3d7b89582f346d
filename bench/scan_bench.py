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
import json
import shlex
import subprocess
import sys
from pathlib import Path

from common import SERVERS, load_references, object_keys, run_child, write_config


def build_store(root: Path, n: int, orphan_fraction: float) -> list[str]:
    """Create the ``n`` objects of ``object_keys`` under ``root``, empty; return the keys to reference."""
    marker = root / ".complete"
    keys_file = root.parent / f"{root.name}.refs"
    if marker.exists() and keys_file.exists():
        return keys_file.read_text().splitlines()
    root.mkdir(parents=True, exist_ok=True)
    referenced: list[str] = []
    made_dirs: set[str] = set()
    for key, orphan in object_keys(n, orphan_fraction):
        directory = key.rpartition("/")[0]
        if directory not in made_dirs:
            (root / directory).mkdir(parents=True, exist_ok=True)
            made_dirs.add(directory)
        with open(root / key, "wb"):
            pass
        if not orphan:
            referenced.append(key)
    keys_file.write_text("\n".join(referenced) + "\n")
    marker.touch()
    return referenced


def config_path(workdir: Path, n: int, server: str) -> Path:
    """The reclaim.toml of size ``n`` with its references on ``server``."""
    return workdir / (f"reclaim-{n}.toml" if server == "postgresql" else f"reclaim-{n}-{server}.toml")


def database_name(n: int, prefix: str = "reclaim_bench") -> str:
    """The database holding the references of size ``n`` (a prefix of its own keeps parallel runs apart)."""
    return f"{prefix}_{n}"


def build(
    workdir: Path, n: int, orphans: float, server: str = "postgresql", db_prefix: str = "reclaim_bench"
) -> None:
    """Build the store, the references (in database ``<db_prefix>_<n>`` on ``server``) and the config."""
    store = workdir / f"store-{n}"
    keys = build_store(store, n, orphans)
    database = database_name(n, db_prefix)
    load_references(database, keys, server)
    write_config(config_path(workdir, n, server), database, f"file://{store}", server=server)


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
    parser.add_argument("--server", choices=SERVERS, default="postgresql", help="where the references are")
    parser.add_argument("--db-prefix", default="reclaim_bench", help="databases are named <prefix>_<N>")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        for n in args.sizes:
            build(args.workdir, n, args.orphans, args.server, args.db_prefix)
        return
    rows = []
    for n in args.sizes:
        print(f"N={n:,}: building store and references ...", file=sys.stderr, flush=True)
        # built in a child process: a scan child forked from a parent holding N keys
        # would inherit that parent's resident pages in its ru_maxrss
        build_command = [sys.executable, __file__, "--build-only", "--sizes", str(n)]
        build_command += ["--orphans", str(args.orphans), "--workdir", str(args.workdir)]
        build_command += ["--server", args.server, "--db-prefix", args.db_prefix]
        subprocess.run(build_command, check=True)
        config = config_path(args.workdir, n, args.server)
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
