"""Partitioned vs single-stream S3 listing on moto's server.

Starts moto's S3 server in a **separate process** (``bench/moto_server.py``, so
listing and server do not share a GIL) on 127.0.0.1 at a free port, uploads N objects
``blobs/<hh>/<hh>/<uuid>`` (256 first-level prefixes under the store root, as
content-addressed blob stores lay them out), then lists the store
``s3://bench/blobs`` with one stream and with 2, 4, 8, 16 partitions (best of
``--repeat`` runs each), first as the server answers, then with an emulated
round trip of ``--latency-ms`` added to every request by the WSGI middleware in
the server process (a real S3 LIST page takes tens of milliseconds). LIST
requests are counted with a botocore event hook on the store's client.

Run: ``.venv/bin/python bench/s3_list_bench.py --objects 100000 --latency-ms 20``
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto_server import CREDENTIALS, MotoServer


def upload(endpoint: str, n: int) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=16), **CREDENTIALS)
    client.create_bucket(Bucket="bench")

    def put(_: int) -> None:
        name = uuid.uuid4().hex
        client.put_object(Bucket="bench", Key=f"blobs/{name[:2]}/{name[2:4]}/{name}", Body=b"x")

    with ThreadPoolExecutor(16) as pool:
        for _ in pool.map(put, range(n), chunksize=256):
            pass


def time_listing(endpoint: str, partitions: int, repeat: int, n: int) -> tuple[float, int]:
    """Best wall time of a full listing over ``repeat`` runs, and the LIST requests of one run."""
    from fsspec.asyn import sync

    from reclaim.stores.s3 import S3Store

    options = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": endpoint}}
    best, requests = float("inf"), 0
    for _ in range(repeat):
        store = S3Store("bench", "s3://bench/blobs", options, partitions=partitions)
        client = sync(store.fs.loop, store.fs.set_session)
        counter = [0]
        client.meta.events.register("before-call.s3.ListObjectsV2", _counting(counter))
        started = time.perf_counter()
        count = sum(1 for _ in store.list())
        elapsed = time.perf_counter() - started
        store.close()
        if count != n:
            raise SystemExit(f"listed {count} objects, expected {n}")
        best, requests = min(best, elapsed), counter[0]
    return best, requests


def _counting(counter: list[int]) -> Callable[..., None]:
    def hook(**_: Any) -> None:
        counter[0] += 1

    return hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--partitions", default="2,4,8,16")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulated round trip (also runs 0)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with MotoServer() as server:
        endpoint = server.endpoint
        started = time.perf_counter()
        upload(endpoint, args.objects)
        print(f"uploaded {args.objects} objects in {time.perf_counter() - started:.1f} s", flush=True)
        counts = [1, *(int(p) for p in args.partitions.split(","))]
        latencies = sorted({0.0, args.latency_ms})
        print("| latency/request | streams | seconds | objects/s | speed-up | LIST requests |")
        print("|---:|---:|---:|---:|---:|---:|")
        for latency in latencies:
            server.set_latency(latency)
            single = 0.0
            for partitions in counts:
                seconds, requests = time_listing(endpoint, partitions, args.repeat, args.objects)
                single = single or seconds
                print(
                    f"| {latency:g} ms | {partitions} | {seconds:.2f} | {args.objects / seconds:,.0f} "
                    f"| {single / seconds:.2f}x | {requests} |",
                    flush=True,
                )
    command = ["python", "bench/s3_list_bench.py", *sys.argv[1:]]
    print(f"\nreproduce: {shlex.join(command)}")


if __name__ == "__main__":
    main()
