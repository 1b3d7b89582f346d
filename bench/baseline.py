"""A set-based orphan collector, written the way peers write it: the baseline reclaim is measured against.

It loads every reference into a Python ``set``, lists the whole store into
memory (every key with its mtime), computes ``listing - references`` with sets
(keeping objects at least ``--min-age`` seconds older than the scan start) and,
for ``collect``, deletes the orphans one at a time. The store is either

- a local directory (``--root``): ``os.walk`` + ``os.stat``, one ``os.unlink``
  per orphan; or
- an S3 bucket (``--s3 s3://bucket[/prefix]``, ``--endpoint`` for an
  S3-compatible server, credentials from the environment as boto3 finds them):
  ``ListObjectsV2`` pages through boto3's paginator, one ``DeleteObject``
  request per orphan. Keys are relative to the prefix, as references are.

With ``--trash PREFIX`` (local directory only), ``collect`` renames each orphan
to ``PREFIX + key`` (creating its parent directories, as reclaim's trash
does) and then unlinks it there: the file system work any collector that
moves an object into a trash before deleting it pays at least, with no
journal and no checks. ``compare_bench.py`` measures it as the floor.

    .venv/bin/python bench/baseline.py scan --root /tmp/reclaim-bench/store-100000 \\
        --db postgresql://postgres@127.0.0.1:5432/reclaim_bench_100000

Prints the counts as JSON. Not part of reclaim: no safety checks, no journal.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psycopg


def load_references(dsn: str, table: str, column: str) -> set[str]:
    """Every value of ``table.column``: PostgreSQL (``postgresql://``) or MariaDB (``mysql://``)."""
    query = f"SELECT {column} FROM {table}"
    if dsn.startswith("mysql://"):
        import pymysql  # type: ignore[import-untyped]

        url = urlsplit(dsn)
        conn = pymysql.connect(
            host=url.hostname,
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
            database=url.path.lstrip("/"),
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(query)
                rows = cursor.fetchall()
        finally:
            conn.close()
    else:
        with psycopg.connect(dsn) as pg:
            rows = pg.execute(query).fetchall()
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


def open_bucket(url: str, endpoint: str | None) -> tuple[Any, str, str]:
    """A boto3 client, the bucket and the key prefix (``""`` or ending in ``/``) of ``s3://bucket/prefix``."""
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return boto3.client("s3", endpoint_url=endpoint), bucket, f"{prefix}/" if prefix else ""


def list_bucket(client: Any, bucket: str, prefix: str) -> dict[str, float]:
    """Every key under ``prefix`` (without it) with its LastModified."""
    listing: dict[str, float] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            listing[obj["Key"][len(prefix) :]] = obj["LastModified"].timestamp()
    return listing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["scan", "collect"])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", help="the local store directory")
    where.add_argument("--s3", help="the S3 store: s3://bucket or s3://bucket/prefix")
    parser.add_argument("--endpoint", help="S3 endpoint URL (an S3-compatible server)")
    parser.add_argument(
        "--db", required=True, help="DSN of the referencing database: postgresql://… or mysql://…"
    )
    parser.add_argument("--table", default="assets")
    parser.add_argument("--column", default="blob_key")
    parser.add_argument("--min-age", type=float, default=0.0, help="seconds")
    parser.add_argument(
        "--trash", help="collect: rename each orphan to TRASH + key, then unlink it (local directory only)"
    )
    args = parser.parse_args()
    if args.trash and not args.root:
        parser.error("--trash needs --root")

    start = time.time()
    references = load_references(args.db, args.table, args.column)
    delete: Callable[[str], None]
    if args.s3:
        client, bucket, prefix = open_bucket(args.s3, args.endpoint)
        listing = list_bucket(client, bucket, prefix)

        def delete(key: str) -> None:
            client.delete_object(Bucket=bucket, Key=prefix + key)
    else:
        listing = list_store(args.root)
        if args.trash:
            trash = os.path.join(args.root, args.trash)

            def delete(key: str) -> None:
                target = os.path.join(trash, key)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.rename(os.path.join(args.root, key), target)
                os.unlink(target)
        else:

            def delete(key: str) -> None:
                os.unlink(os.path.join(args.root, key))

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
            delete(key)
            deleted += 1
        report["deleted"] = deleted
    print(json.dumps(report))


if __name__ == "__main__":
    main()
