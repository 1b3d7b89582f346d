"""A set-based orphan collector, written the way peers write it: the baseline reclaim is measured against.

It loads every reference into a Python ``set``, lists the whole local store into
memory (every key with its ``os.stat`` mtime), computes ``listing - references``
with sets (keeping objects at least ``--min-age`` seconds older than the scan
start) and, for ``collect``, deletes the orphans one ``os.unlink`` at a time.

    .venv/bin/python bench/baseline.py scan --root /tmp/reclaim-bench/store-100000 \\
        --db postgresql://postgres@127.0.0.1:5432/reclaim_bench_100000

Prints the counts as JSON. Not part of reclaim: no safety checks, no journal.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import psycopg


def load_references(dsn: str, table: str, column: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT {column} FROM {table}").fetchall()
    return {row[0] for row in rows}


def list_store(root: str) -> dict[str, float]:
    """Every key under ``root`` with its mtime."""
    listing: dict[str, float] = {}
    prefix = len(root.rstrip("/")) + 1
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            listing[path[prefix:]] = os.stat(path).st_mtime
    return listing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["scan", "collect"])
    parser.add_argument("--root", required=True, help="the local store directory")
    parser.add_argument("--db", required=True, help="PostgreSQL DSN of the referencing database")
    parser.add_argument("--table", default="assets")
    parser.add_argument("--column", default="blob_key")
    parser.add_argument("--min-age", type=float, default=0.0, help="seconds")
    args = parser.parse_args()

    start = time.time()
    references = load_references(args.db, args.table, args.column)
    listing = list_store(args.root)
    cutoff = start - args.min_age
    orphans = set(listing) - references
    candidates = {key for key in orphans if listing[key] <= cutoff}
    report = {
        "listed": len(listing),
        "references": len(references),
        "candidates": len(candidates),
        "young": len(orphans) - len(candidates),
    }
    if args.command == "collect":
        deleted = 0
        for key in candidates:
            os.unlink(os.path.join(args.root, key))
            deleted += 1
        report["deleted"] = deleted
    print(json.dumps(report))


if __name__ == "__main__":
    main()
