"""Scan throughput of a distributed run: 1, 2 and 4 Celery workers against one process, on S3.

Starts moto's S3 server in a separate process (``bench/moto_server.py``) with
N objects ``s3://bench/blobs/<hh>/<hh>/<uuid>`` (put straight into moto's
backend, every third one an orphan) and an emulated round trip of
``--latency-ms`` added to every S3 request by the server's middleware (a real
S3 LIST page takes tens of milliseconds; this is what makes a listing
latency-bound, as it is against S3). The references to the others are loaded
into PostgreSQL (database ``reclaim_distbench_<N>``, table ``assets``).

Then, ``--repeat`` times each (best kept):

- one process: ``reclaim scan --json`` (one LIST stream);
- W workers for W in ``--workers`` (default 1, 2, 4): W Celery worker
  processes (``celery -A reclaim.distributed.app worker --concurrency 1``, on
  the Redis broker at 127.0.0.1:6379, started before the clock starts and
  warmed up by scanning a small bucket) and ``reclaim distributed scan --partitions W
  --json`` (the coordinator, cutting the store into W key ranges from its
  first-level listing, one range per worker).

Each run's listing must equal the one process's (objects listed, candidates).
The table gives seconds, keys listed per second, the ratio to one process and
to one worker, the LIST requests the server answered, the CPU seconds the
server spent on them and the scanning processes spent (the one process, or
the workers and the coordinator), and peak RSS. By default the server answers
LIST pages from a sorted index of the bucket (``--no-index``: moto's own
listing, which sorts the whole bucket for every page, so that at 50,000 keys
its CPU, not the round trip, limits every listing). The workers and the
server share this machine's cores, so a ratio below W says where CPU, not
latency, was the limit.

    .venv/bin/python bench/distributed_bench.py --objects 100000 --latency-ms 50
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from common import load_references, object_keys, run_child, write_config
from moto_server import CREDENTIALS, MotoServer

BUCKET = "bench"
WARM = "warm"
"""A bucket of 4,000 objects the workers scan once before the clock starts (imports, connections)."""
ROOT = Path(__file__).resolve().parents[1]
RECLAIM = [sys.executable, "-m", "reclaim"]


@dataclass
class Measured:
    """One way of scanning: best seconds, what it listed, LIST requests, CPU and memory."""

    name: str
    seconds: float
    listed: int
    candidates: int
    lists: int
    server_cpu: float
    """CPU seconds moto spent answering the LIST requests (its one process serves every worker)."""
    client_cpu: float
    """CPU seconds of the scanning processes: the one process, or the workers and the coordinator."""
    rss: int
    """Peak RSS in bytes: of the one process, or of the largest worker process (coordinator apart)."""
    coordinator_rss: int = 0
    server_cpu_all: float = 0.0
    """CPU seconds of the whole server process (every thread: HTTP parsing, moto, the middleware)."""
    worker_cpu: tuple[float, ...] = ()
    """CPU seconds of each worker (its Celery main process and pool child)."""
    coordinator_cpu: float = 0.0
    """CPU seconds of the coordinator (``reclaim distributed scan``), or of the one process."""
    task_seconds: tuple[float, ...] = ()
    """Wall seconds of each range task, as the workers logged them (``succeeded in``)."""
    requests: dict[str, int] | None = None
    """Every S3 request the server answered, by operation."""


def _tree(processes: list[subprocess.Popen[bytes]]) -> list[psutil.Process]:
    found = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(process.pid)
            found += [parent, *parent.children(recursive=True)]
    return found


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _peak_rss(processes: list[psutil.Process]) -> int:
    """The largest peak resident set (``VmHWM``) of ``processes``."""
    peak = 0
    for process in processes:
        with contextlib.suppress(OSError, psutil.NoSuchProcess):
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def store_settings(endpoint: str) -> str:
    key, secret, region = (
        CREDENTIALS[name] for name in ("aws_access_key_id", "aws_secret_access_key", "region_name")
    )
    return f"""
[stores.bench.storage_options]
key = "{key}"
secret = "{secret}"
client_kwargs = {{ endpoint_url = "{endpoint}", region_name = "{region}" }}
"""


def environment(queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env["PYTHONPATH"]]) if env.get("PYTHONPATH") else src
    env["RECLAIM_QUEUE"] = queue
    return env


def start_workers(count: int, queue: str, log: Path) -> list[subprocess.Popen[bytes]]:
    processes = []
    with log.open("ab") as sink:
        for index in range(count):
            command = [sys.executable, "-m", "celery", "-A", "reclaim.distributed.app", "worker"]
            command += ["--pool=prefork", "--concurrency=1", "-Q", queue, "-n", f"{queue}-{index}@%h"]
            # INFO: each task's "succeeded in N s" line is how the bench learns the ranges' wall times
            command += ["--without-mingle", "--without-gossip", "--loglevel=INFO"]
            processes.append(subprocess.Popen(command, env=environment(queue), stdout=sink, stderr=sink))
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_SUCCEEDED = re.compile(rb"Task reclaim\.distributed\.range\[[^\]]+\] succeeded in ([0-9.]+)s")


def _task_seconds(log: Path | None, offset: int) -> tuple[float, ...]:
    """The wall seconds of every range task the workers logged past ``offset`` of ``log``."""
    if log is None or not log.exists():
        return ()
    with log.open("rb") as source:
        source.seek(offset)
        return tuple(float(m.group(1)) for m in _SUCCEEDED.finditer(source.read()))


def _requests(counts: dict[str, int] | None) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted((counts or {}).items()))


def measure(
    name: str,
    command: list[str],
    server: MotoServer,
    repeat: int,
    env: dict[str, str],
    workers: list[subprocess.Popen[bytes]] | None = None,
    log: Path | None = None,
) -> Measured:
    best: Measured | None = None
    assert server.process is not None
    moto = psutil.Process(server.process.pid)
    for _ in range(repeat):
        server.reset_counts()
        trees = [_tree([worker]) for worker in workers or []]
        before = [_cpu(tree) for tree in trees]
        moto_before = _cpu([moto])
        offset = log.stat().st_size if log is not None and log.exists() else 0
        started = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, rss, output = run_child(command, env=env)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        coordinator_cpu = (usage.ru_utime - started.ru_utime) + (usage.ru_stime - started.ru_stime)
        worker_cpu = tuple(_cpu(tree) - b for tree, b in zip(trees, before, strict=True))
        moto_cpu = _cpu([moto]) - moto_before
        time.sleep(0.5)  # the workers' log lines of the last task
        report = json.loads(output)
        [scan] = report["stores"]
        counts = server.counts()
        lists = int(counts["requests"].get("ListObjectsV2", 0))
        run = Measured(
            name,
            seconds,
            scan["listed"]["count"],
            scan["candidates"]["count"],
            lists,
            server_cpu=float(counts["seconds"].get("ListObjectsV2", 0.0)),
            client_cpu=coordinator_cpu + sum(worker_cpu),
            rss=max((_peak_rss(tree) for tree in trees), default=0) if workers else rss,
            coordinator_rss=rss if workers else 0,
            server_cpu_all=moto_cpu,
            worker_cpu=worker_cpu,
            coordinator_cpu=coordinator_cpu,
            task_seconds=_task_seconds(log, offset) if workers else (),
            requests={str(k): int(v) for k, v in counts["requests"].items()},
        )
        if best is None or run.seconds < best.seconds:
            best = run
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--index",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="answer LIST pages from a sorted index (moto_server's _Index): the server's CPU per page "
        "then does not grow with the bucket, as S3's does not (--no-index: moto's own listing)",
    )
    parser.add_argument(
        "--render",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --index, the server writes the indexed pages' XML itself (moto_server's "
        "_Index.answer): moto's serializer spends 0.15 s or more of CPU per page, on the cores the "
        "workers need, which S3 spends on its own machines (--no-render: moto's serializer)",
    )
    parser.add_argument(
        "--db-prefix",
        default="reclaim_distbench",
        help="PostgreSQL database name prefix (own names per user)",
    )
    args = parser.parse_args()
    loads = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    orphans = 1 / 3
    database = f"{args.db_prefix}_{args.objects}"
    load_references(
        database,
        [key for key, orphan in object_keys(args.objects, orphans) if not orphan],
    )
    work = Path(tempfile.mkdtemp(prefix="reclaim-distbench-"))
    queue = f"reclaim-bench-{secrets.token_hex(4)}"
    try:
        with MotoServer() as server:
            server.populate(BUCKET, args.objects, orphans)
            server.populate(WARM, 4_000, orphans)
            config = work / "reclaim.toml"
            write_config(config, database, f"s3://{BUCKET}", store_settings(server.endpoint))
            warm = work / "warm" / "reclaim.toml"
            warm.parent.mkdir()
            write_config(warm, database, f"s3://{WARM}", store_settings(server.endpoint))
            env = environment(queue)
            for path in (config, warm):
                subprocess.run(
                    [*RECLAIM, "init", "--config", str(path)], check=True, capture_output=True, env=env
                )
            server.set_latency(args.latency_ms)
            server.index_listing(args.index, render=args.index and args.render)
            single = measure(
                "one process", [*RECLAIM, "scan", "--json", "--config", str(config)], server, args.repeat, env
            )
            rows = [single]
            for count in (int(w) for w in args.workers.split(",")):
                processes = start_workers(count, queue, work / "workers.log")
                try:
                    command = [*RECLAIM, "distributed", "scan", "--partitions", str(count), "--json"]
                    command += ["--timeout", "3600", "--config", str(config)]
                    # warm-up: every worker has started and imported what a scan needs (a scan of a
                    # small bucket, twice, so that each worker has surely taken a range)
                    warm_up = [*command[:-1], str(warm)]
                    for _ in range(2):
                        run_child(warm_up, env=env)
                    log = work / "workers.log"
                    rows.append(
                        measure(f"{count} worker(s)", command, server, args.repeat, env, processes, log)
                    )
                finally:
                    stop_workers(processes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one_worker = next((row for row in rows if row.name.startswith("1 worker")), None)
    print(
        f"{args.objects:,} objects, {args.latency_ms:g} ms added to every S3 request, "
        f"{'indexed' if args.index else 'moto'} listing"
        f"{' written by the bench server' if args.index and args.render else ''}, best of {args.repeat}; "
        f"load average {loads[0]:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)"
    )
    print(f"uptime before: {uptime}")
    after = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"uptime after: {after}")
    print(
        "| scan | seconds | keys/s | vs one process | vs one worker | LIST requests "
        "| server CPU s | client CPU s | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if (row.listed, row.candidates) != (single.listed, single.candidates):
            raise SystemExit(
                f"{row.name} listed {row.listed} ({row.candidates} candidates), expected "
                f"{single.listed} ({single.candidates})"
            )
        versus = f"{one_worker.seconds / row.seconds:.2f}x" if one_worker and row is not single else ""
        memory = f"{row.rss / 2**20:.0f}"
        if row.coordinator_rss:
            memory += f" per worker, {row.coordinator_rss / 2**20:.0f} coordinator"
        print(
            f"| {row.name} | {row.seconds:.2f} | {row.listed / row.seconds:,.0f} "
            f"| {single.seconds / row.seconds:.2f}x | {versus} | {row.lists} "
            f"| {row.server_cpu:.1f} | {row.client_cpu:.1f} | {memory} |"
        )
    print(
        "\nwhere the time went (CPU seconds of each process over the scan; a range task's wall "
        "seconds as its worker logged it)"
    )
    print(
        "| scan | seconds | server CPU s (all requests) | coordinator CPU s | CPU s per worker "
        "| range task seconds | S3 requests |"
    )
    print("|---|---:|---:|---:|---|---|---|")
    for row in rows:
        per_worker = ", ".join(f"{cpu:.1f}" for cpu in row.worker_cpu) or "-"
        tasks = ", ".join(f"{t:.1f}" for t in sorted(row.task_seconds)) or "-"
        print(
            f"| {row.name} | {row.seconds:.2f} | {row.server_cpu_all:.1f} | {row.coordinator_cpu:.1f} "
            f"| {per_worker} | {tasks} | {_requests(row.requests)} |"
        )
    print(
        f"\nper LIST page: {args.latency_ms:g} ms added wait, "
        f"{1000 * single.server_cpu / max(1, single.lists):.0f} ms of moto's CPU, "
        f"{1000 * single.client_cpu / max(1, single.lists):.0f} ms of the one process's CPU "
        "(latency-bound when the wait is well above the CPU per page times the processes per core)"
    )
    command = ["python", "bench/distributed_bench.py", *sys.argv[1:]]
    print(f"\nreproduce: {shlex.join(command)}")


if __name__ == "__main__":
    main()
