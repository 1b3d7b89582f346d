"""S3 Inventory as the listing: reading a Parquet report, and an inventory scan against a LIST scan.

Starts moto's S3 server in a separate process (``bench/moto_server.py``) and
measures two things, each in a fresh child process (seconds and peak RSS from
``wait4``, so the parent's memory never counts):

1. **Reading** (``--read N``): a Parquet report of N keys
   ``blobs/<hh>/<hh>/<uuid>`` (:func:`common.object_keys`, in hash order as
   AWS writes them: unsorted), split into files of 1,000,000 rows, is written
   to the destination bucket by one child; another opens an
   :class:`~reclaim.stores.inventory.InventoryStore` and walks its listing
   page by page (download, MD5 check, Parquet parse, out-of-core sort with
   the default run size, merge), printing keys/s of that walk.
2. **Scan** (``--scan N,N``): the bucket holds N objects, every 1/``--orphans``-th
   unreferenced (references in PostgreSQL, as the other benches load them);
   a Parquet report of exactly those objects is written; then ``reclaim scan
   --json`` runs once with ``listing = "list"`` and once with ``listing =
   "inventory"``, with ``--latency-ms`` added to every S3 request by the
   server. Requests are counted where they arrive (by operation). Both scans
   must find the same candidates.

Run: ``.venv/bin/python bench/inventory_bench.py --read 1000000 --scan 100000,1000000 --latency-ms 20``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import load_references, mb, object_keys, run_child, write_config
from moto_server import CREDENTIALS, MotoServer

SOURCE = "bench"
DEST = "bench-inventory"
LOCATION = f"s3://{DEST}/inventory/{SOURCE}/daily/"
ROWS_PER_FILE = 1_000_000
ETAG_X = hashlib.md5(b"x", usedforsecurity=False).hexdigest()  # populate's objects all hold b"x"
RECLAIM = [sys.executable, "-m", "reclaim"]
HERE = Path(__file__).resolve().parent


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)


def write_report(endpoint: str, n: int, orphans: float, mtime: float, taken: float) -> None:
    """(child) A Parquet report of the ``n`` bench objects, files of :data:`ROWS_PER_FILE` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    client = _client(endpoint)
    buckets = {b["Name"] for b in client.list_buckets().get("Buckets", ())}
    for bucket in (SOURCE, DEST):
        if bucket not in buckets:
            client.create_bucket(Bucket=bucket)
    base = f"inventory/{SOURCE}/daily/"
    keys = (key for key, _ in object_keys(n, orphans))
    files = []
    for index in range((n + ROWS_PER_FILE - 1) // ROWS_PER_FILE):
        part = [next(keys) for _ in range(min(ROWS_PER_FILE, n - index * ROWS_PER_FILE))]
        table = pa.table(
            {
                "bucket": pa.array([SOURCE] * len(part)),
                "key": pa.array(part),
                "size": pa.array([1] * len(part), pa.int64()),
                "last_modified_date": pa.array([int(mtime * 1000)] * len(part), pa.timestamp("ms", tz="UTC")),
                "e_tag": pa.array([ETAG_X] * len(part)),
                "storage_class": pa.array(["STANDARD"] * len(part)),
            }
        )
        with tempfile.TemporaryFile() as sink:
            pq.write_table(table, sink, compression="snappy")
            sink.seek(0)
            body = sink.read()
        key = f"{base}data/{uuid.uuid4()}.parquet"
        client.put_object(Bucket=DEST, Key=key, Body=body)
        files.append(
            {
                "key": key,
                "size": len(body),
                "MD5checksum": hashlib.md5(body, usedforsecurity=False).hexdigest(),
            }
        )
        del table, body, part
    schema = (
        "message s3.inventory {  required binary bucket (STRING);  required binary key (STRING);  "
        "optional int64 size;  optional int64 last_modified_date (TIMESTAMP(MILLIS,true));  "
        "optional binary e_tag (STRING);  optional binary storage_class (STRING);}"
    )
    manifest = {
        "sourceBucket": SOURCE,
        "destinationBucket": f"arn:aws:s3:::{DEST}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(taken * 1000)),
        "fileFormat": "Parquet",
        "fileSchema": schema,
        "files": files,
    }
    body = json.dumps(manifest, indent=2).encode()
    folder = base + datetime.fromtimestamp(taken, UTC).strftime("%Y-%m-%dT%H-%MZ") + "/"
    client.put_object(Bucket=DEST, Key=folder + "manifest.json", Body=body)
    checksum = hashlib.md5(body, usedforsecurity=False).hexdigest().encode()
    client.put_object(Bucket=DEST, Key=folder + "manifest.checksum", Body=checksum)


def read_report(endpoint: str) -> None:
    """(child) Walk the inventory listing page by page; print keys and the seconds of the walk."""
    from reclaim.stores.inventory import InventoryStore
    from reclaim.stores.s3 import S3Store

    options = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": endpoint}}
    store = InventoryStore(S3Store("bench", f"s3://{SOURCE}/", options), LOCATION, max_age=timedelta(days=30))
    started = time.perf_counter()
    keys = 0
    previous = ""
    for page in store.list_pages():
        if page.keys[0] <= previous:
            raise SystemExit("the listing is not in order")
        previous = page.keys[-1]
        keys += len(page.keys)
    print(json.dumps({"keys": keys, "seconds": time.perf_counter() - started}))
    store.close()


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _child(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def bench_read(server: MotoServer, n: int) -> None:
    now = time.time()
    seconds, _, _ = run_child(
        _child("--child-write", server.endpoint, str(n), "0", str(now - 86400), str(now))
    )
    print(f"wrote a Parquet report of {n:,} keys in {seconds:.1f} s", flush=True)
    server.reset_counts()
    wall, rss, output = run_child(_child("--child-read", server.endpoint))
    walk = json.loads(output)
    if walk["keys"] != n:
        raise SystemExit(f"listed {walk['keys']} keys, expected {n}")
    gets = server.counts()["requests"].get("GetObject", 0)
    print("| keys | walk seconds | keys/s | child wall seconds | peak RSS | GetObject |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {n:,} | {walk['seconds']:.1f} | {n / walk['seconds']:,.0f} | {wall:.1f} | {mb(rss)} | {gets} |")


def _settings(endpoint: str, listing: str) -> str:
    lines = []
    if listing == "inventory":
        lines += ['listing = "inventory"', f'inventory = "{LOCATION}"', 'max_inventory_age = "30d"']
    key, secret, region = (
        CREDENTIALS[k] for k in ("aws_access_key_id", "aws_secret_access_key", "region_name")
    )
    lines += [
        "",
        "[stores.bench.storage_options]",
        f'key = "{key}"',
        f'secret = "{secret}"',
        f'client_kwargs = {{ endpoint_url = "{endpoint}", region_name = "{region}" }}',
    ]
    return "\n".join(lines) + "\n"


def bench_scan(
    server: MotoServer,
    n: int,
    orphans: float,
    latency: float,
    workdir: Path,
    listings: list[str],
    db_prefix: str = "reclaim_invbench",
    repeat: int = 1,
) -> None:
    server.set_latency(0)
    started = time.perf_counter()
    server.populate(SOURCE, n, orphans, age=86400)
    print(f"populated {n:,} objects in {time.perf_counter() - started:.0f} s", flush=True)
    database = f"{db_prefix}_{n}_{round(1 / orphans)}"
    load_references(database, [key for key, orphan in object_keys(n, orphans) if not orphan])
    head = _client(server.endpoint).head_object(Bucket=SOURCE, Key=next(object_keys(1, 0))[0])
    mtime = head["LastModified"].timestamp()  # populate gives every object the same mtime
    now = time.time()
    run_child(_child("--child-write", server.endpoint, str(n), str(orphans), str(mtime), str(now)))
    results = {}
    for listing in listings:
        config = workdir / f"{listing}-{n}" / "reclaim.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        write_config(config, database, f"s3://{SOURCE}", _settings(server.endpoint, listing))
        for _ in range(repeat):  # the best of `repeat` (other work on the machine only ever slows a run)
            server.set_latency(latency)
            server.reset_counts()
            seconds, rss, output = run_child([*RECLAIM, "scan", "--config", str(config), "--json"])
            answered = server.counts()
            counts = answered["requests"]
            server_cpu = sum(answered["seconds"].values())
            server.set_latency(0)
            store = json.loads(output)["stores"][0]
            if listing not in results or seconds < results[listing][0]:
                results[listing] = (
                    seconds,
                    rss,
                    counts,
                    server_cpu,
                    store["candidates"]["count"],
                    store["listed"]["count"],
                )
            if (store["candidates"]["count"], store["listed"]["count"]) != results[listing][4:]:
                raise SystemExit(f"the {listing} scans disagree: {store['candidates']} of {store['listed']}")
    expected = sum(1 for _, orphan in object_keys(n, orphans) if orphan)
    seconds_list = results["list"][0] if "list" in results else None

    def speedup(seconds: float) -> str:
        return "-" if seconds_list is None else f"{seconds_list / seconds:.1f}x"

    for listing, (seconds, rss, counts, server_cpu, candidates, listed) in results.items():
        requests = ", ".join(f"{op} {count:,}" for op, count in sorted(counts.items()))
        print(
            f"| {n:,} | {listing} | {seconds:.1f} | {speedup(seconds)} | {sum(counts.values()):,} "
            f"({requests}) | {server_cpu:.1f} | {mb(rss)} | {candidates:,} of {listed:,} |",
            flush=True,
        )
    for listing, result in results.items():
        if result[4:] != (expected, n):
            raise SystemExit(f"the {listing} scan found {result[4:]}, expected {expected} candidates of {n}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-write":
        endpoint, n, orphans, mtime, taken = sys.argv[2:7]
        write_report(endpoint, int(n), float(orphans), float(mtime), float(taken))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-read":
        read_report(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--read", type=int, default=0, help="keys of the Parquet report to read (0: skip)")
    parser.add_argument("--scan", default="", help="comma-separated N of the scan comparison ('': skip)")
    parser.add_argument("--orphans", type=float, default=0.001, help="share of unreferenced objects")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulated round trip per S3 request")
    parser.add_argument(
        "--listings",
        default="list,inventory",
        help="which scans to run (without --index, moto sorts the whole bucket for every LIST page: a "
        "LIST scan of 1,000,000 objects takes hours on it)",
    )
    parser.add_argument(
        "--index",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="answer LIST pages from a sorted index (moto_server's _Index), so that the server's CPU per "
        "page does not grow with the bucket, as S3's does not (--no-index: moto's own listing)",
    )
    parser.add_argument(
        "--render",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --index, the server writes the indexed LIST pages' XML itself (moto_server's "
        "_Index.answer) instead of moto's serializer, which spends 0.13 s or more of CPU per page "
        "that S3 spends on its own machines",
    )
    parser.add_argument("--repeat", type=int, default=1, help="scans of each listing, the fastest kept")
    parser.add_argument("--db-prefix", default="reclaim_invbench", help="PostgreSQL database name prefix")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with MotoServer() as server, tempfile.TemporaryDirectory(prefix="reclaim-invbench-") as workdir:
        server.index_listing(args.index, render=args.index and args.render)
        if args.read:
            bench_read(server, args.read)
        if args.scan:
            loads = os.getloadavg()
            print(f"uptime before: {_uptime()}")
            print(
                f"\nscan, {args.latency_ms:g} ms per request, {args.orphans:.2%} of objects unreferenced, "
                f"{'indexed' if args.index else 'moto'} listing"
                f"{' written by the bench server' if args.index and args.render else ''}; "
                f"best of {args.repeat}; load average {loads[0]:.1f} before "
                f"({os.cpu_count()} cores)"
            )
            print(
                "| objects | listing | seconds | speed-up | S3 requests | server CPU s | peak RSS "
                "| candidates |"
            )
            print("|---:|---|---:|---:|---|---:|---:|---:|")
            for n in (int(part) for part in args.scan.split(",")):
                bench_scan(
                    server,
                    n,
                    args.orphans,
                    args.latency_ms,
                    Path(workdir),
                    args.listings.split(","),
                    args.db_prefix,
                    args.repeat,
                )
            print(f"load average {os.getloadavg()[0]:.1f} after")
            print(f"uptime after: {_uptime()}")
    print(f"\nreproduce: {shlex.join(['python', 'bench/inventory_bench.py', *sys.argv[1:]])}")


if __name__ == "__main__":
    main()
