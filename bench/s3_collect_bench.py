"""Quarantine + purge on S3: reclaim beside the set-based baseline, requests counted at the server.

Starts moto's S3 server in a separate process on 127.0.0.1 (``bench/moto_server.py``:
a middleware in the server process counts every S3 request by operation), and
loads the references to all but the orphans of N objects (every third one by
default, ``--orphans``) into PostgreSQL (127.0.0.1:5432, database
``reclaim_s3bench_<N>_<k>`` for every k-th orphaned, table ``assets``; the keys
of ``common.object_keys``, as the other benches use). Then, ``--repeat`` times,
alternating, each on a bucket freshly populated with the same N objects
``s3://bench/blobs/<hh>/<hh>/<uuid>`` (put straight into moto's backend, last
modified a day ago) and each in a fresh child process (wall time and peak RSS
from ``wait4``):

- reclaim: ``reclaim collect --json`` (quarantine + purge, grace 0,
  ``min_age = "0"``, ``max_fraction = 1.0``) on the store ``s3://bench``,
  quarantine mode as configured by ``--mode`` (default: reclaim's default for
  S3, ``mark``), with a fresh SQLite catalog made by ``reclaim init`` (not timed);
- baseline: ``bench/baseline.py collect --s3 s3://bench`` (every reference in a
  set, the whole bucket listed into memory, one ``DeleteObject`` per orphan).

After each run the server's own view of the bucket is checked: exactly the
referenced objects are left (so both deleted the same keys, every orphan). The
table shows deleted/s and its ratio, seconds, peak RSS, the S3 requests of
each run by operation, DELETE requests (``DeleteObject`` + ``DeleteObjects``)
per 1,000 deleted keys and the CPU seconds moto spent answering them. With
``--profile PATH`` one more reclaim run goes under cProfile (every thread, see
``bench/cprofile_threads.py``) and its top lines are printed.

    .venv/bin/python bench/s3_collect_bench.py --objects 100000

Issue 5's target counts 100,000 *orphans*: ``--objects 300000`` (a third
orphaned) or ``--objects 200000 --orphans 0.5``.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import PG, load_references, mb, object_keys, run_child, write_config
from moto_server import CREDENTIALS, MotoServer

BENCH = Path(__file__).resolve().parent
BUCKET = "bench"
RECLAIM = [sys.executable, "-m", "reclaim"]
# how the table groups the server's operations; anything else is "other", named below the table
GROUPS = {
    "LIST": ("ListObjectsV2", "ListObjects"),
    "HEAD": ("HeadObject",),
    "GET": ("GetObject",),
    "PUT": ("PutObject",),
    "COPY": ("CopyObject",),
    "DELETE": ("DeleteObject",),
    "DeleteObjects": ("DeleteObjects",),
    "tagging": ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
}


@dataclass
class Run:
    """One measured collection: what the child reported and what the server saw."""

    seconds: float
    rss: int
    deleted: int
    candidates: int
    requests: dict[str, int]
    server_seconds: dict[str, float]
    left: str
    """SHA-256 of the keys left in the bucket, sorted."""
    mode: str = ""

    @property
    def rate(self) -> float:
        return self.deleted / self.seconds

    def group(self, name: str) -> int:
        """Requests of one group of :data:`GROUPS`, or of ``other``."""
        if name != "other":
            return sum(self.requests.get(op, 0) for op in GROUPS[name])
        return sum(self.others().values())

    def others(self) -> dict[str, int]:
        grouped = {op for ops in GROUPS.values() for op in ops}
        return {op: count for op, count in sorted(self.requests.items()) if op not in grouped}

    @property
    def deletes_per_1000(self) -> float:
        return 1000 * (self.group("DELETE") + self.group("DeleteObjects")) / max(self.deleted, 1)


def store_settings(endpoint: str, mode: str | None) -> str:
    """The TOML lines of the store ``s3://bench`` on ``endpoint`` beyond those of ``common.write_config``."""
    mode_line = f'mode = "{mode}"' if mode else "# mode: reclaim's default for the store"
    key, secret, region = (
        CREDENTIALS[name] for name in ("aws_access_key_id", "aws_secret_access_key", "region_name")
    )
    return f"""grace = "0"
{mode_line}

[stores.bench.storage_options]
key = "{key}"
secret = "{secret}"
client_kwargs = {{ endpoint_url = "{endpoint}", region_name = "{region}" }}
"""


def database(n: int, orphans: float) -> str:
    """The PostgreSQL database holding the references of ``n`` objects with that orphan fraction."""
    return f"reclaim_s3bench_{n}_{round(1 / orphans)}"


@dataclass
class Bench:
    """One size on one running server: N objects, every ``round(1 / orphans)``-th orphaned."""

    server: MotoServer
    workdir: Path
    n: int
    orphans: float
    mode: str | None

    def measured(self, command: list[str]) -> tuple[float, int, bytes, dict[str, Any]]:
        """Populate the bucket afresh, run ``command`` in a child, check the bucket.

        Returns the child's seconds, peak RSS and stdout, and the server's counts
        (with the digest of the keys left under ``"left"``). Raises ``SystemExit``
        unless exactly the referenced objects are left.
        """
        self.server.populate(BUCKET, self.n, self.orphans)
        self.server.reset_counts()
        seconds, rss, output = run_child(command)
        counts = self.server.counts()
        check = self.server.check(BUCKET)
        referenced = sum(1 for _, orphan in object_keys(self.n, self.orphans) if not orphan)
        wanted = {"objects": referenced, "orphans_left": 0, "referenced_missing": 0, "unexpected": 0}
        if {name: check[name] for name in wanted} != wanted:
            raise SystemExit(f"{shlex.join(command)} left the bucket wrong: {check}")
        return seconds, rss, output, {**counts, "left": check["sha256"]}

    def reclaim_config(self) -> Path:
        """A fresh run directory with its config and an initialised catalog; returns the config."""
        run = self.workdir / f"s3-run-{self.n}"
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        config = run / "reclaim.toml"
        settings = store_settings(self.server.endpoint, self.mode)
        write_config(config, database(self.n, self.orphans), f"s3://{BUCKET}", settings)
        subprocess.run([*RECLAIM, "init", "--config", str(config)], check=True, capture_output=True)
        return config

    def reclaim(self) -> Run:
        """``reclaim collect`` on a fresh bucket and catalog."""
        command = [*RECLAIM, "collect", "--config", str(self.reclaim_config()), "--json"]
        seconds, rss, output, counts = self.measured(command)
        report = json.loads(output)
        return Run(
            seconds,
            rss,
            report["purged"][0]["purged"]["count"],
            report["scans"][0]["candidates"]["count"],
            counts["requests"],
            counts["seconds"],
            counts["left"],
            report["quarantined"][0]["mode"],
        )

    def baseline(self) -> Run:
        """``baseline.py collect --s3`` on a fresh bucket."""
        command = [sys.executable, str(BENCH / "baseline.py"), "collect", "--s3", f"s3://{BUCKET}"]
        command += ["--endpoint", self.server.endpoint, "--min-age", "0"]
        command += ["--db", f"{PG}/{database(self.n, self.orphans)}"]
        seconds, rss, output, counts = self.measured(command)
        report = json.loads(output)
        requests, server_seconds, left = counts["requests"], counts["seconds"], counts["left"]
        return Run(seconds, rss, report["deleted"], report["candidates"], requests, server_seconds, left)

    def side_by_side(self, repeat: int) -> tuple[Run, Run]:
        """Alternate reclaim and the baseline ``repeat`` times; the fastest run of each.

        Raises ``SystemExit`` if they did not delete the same keys.
        """
        ours: list[Run] = []
        theirs: list[Run] = []
        for _ in range(repeat):
            print(f"N={self.n:,}: reclaim collect ...", file=sys.stderr, flush=True)
            ours.append(self.reclaim())
            print(f"N={self.n:,}: baseline collect ...", file=sys.stderr, flush=True)
            theirs.append(self.baseline())
            mine, peer = ours[-1], theirs[-1]
            if (mine.candidates, mine.deleted, mine.left) != (peer.candidates, peer.deleted, peer.left):
                raise SystemExit(f"the collections differ: reclaim {mine}, baseline {peer}")
        return min(ours, key=lambda r: r.seconds), min(theirs, key=lambda r: r.seconds)

    def profile(self, output: Path, lines: int) -> None:
        """One more reclaim collect under cProfile (every thread); prints the top lines by own, total time."""
        command = [sys.executable, str(BENCH / "cprofile_threads.py"), str(output), "reclaim"]
        command += ["collect", "--config", str(self.reclaim_config()), "--json"]
        seconds, _, _, counts = self.measured(command)
        n = self.n
        print(f"\nprofile of reclaim collect at N = {n:,}: {seconds:.1f} s under cProfile, saved to {output}")
        print(f"reproduce (on a freshly populated bucket): {shlex.join(command)}")
        print("requests: " + ", ".join(f"{op} {c:,}" for op, c in sorted(counts["requests"].items())))
        for order in ("tottime", "cumulative"):
            stats = pstats.Stats(str(output))
            stats.strip_dirs().sort_stats(order).print_stats(lines)


def table(n: int, ours: Run, theirs: Run) -> str:
    """The markdown table of one size."""
    rows = [
        "| | reclaim | baseline | ratio |",
        "|---|---:|---:|---:|",
        f"| deleted/s | {ours.rate:,.0f} | {theirs.rate:,.0f} "
        f"| {ours.rate / theirs.rate:.2f}x (reclaim/baseline) |",
        f"| seconds | {ours.seconds:.2f} | {theirs.seconds:.2f} | ({ours.deleted:,} objects deleted) |",
        f"| peak RSS | {mb(ours.rss)} | {mb(theirs.rss)} | {theirs.rss / ours.rss:.2f}x (baseline/reclaim) |",
    ]
    for name in [*GROUPS, "other"]:
        rows.append(f"| {name} requests | {ours.group(name):,} | {theirs.group(name):,} | |")
    rows.append(
        f"| DELETE requests per 1,000 deleted keys | {ours.deletes_per_1000:.1f} "
        f"| {theirs.deletes_per_1000:.1f} | |"
    )
    busy = [sum(run.server_seconds.values()) for run in (ours, theirs)]
    rows.append(f"| moto's CPU seconds in S3 requests | {busy[0]:.1f} | {busy[1]:.1f} | |")
    notes = [
        f"N = {n:,}; reclaim's quarantine mode: {ours.mode}; both left the same "
        f"{n - ours.deleted:,} referenced objects (SHA-256 of the keys {ours.left[:12]}...)"
    ]
    for who, run in (("reclaim", ours), ("baseline", theirs)):
        others = ", ".join(f"{op} {count:,}" for op, count in run.others().items())
        if others:
            notes.append(f"other requests, {who}: {others}")
        top = sorted(run.server_seconds.items(), key=lambda item: -item[1])[:4]
        notes.append(
            f"moto's CPU seconds by operation, {who}: " + ", ".join(f"{op} {s:.1f}" for op, s in top)
        )
    return "\n".join([*notes, "", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, nargs="+", default=[100_000], help="N, one table each")
    parser.add_argument(
        "--orphans", type=float, default=1 / 3, help="fraction orphaned, 1/k (default 1/3: every third)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each, best time kept; 0: none (--profile only)"
    )
    parser.add_argument(
        "--mode", choices=["move", "mark"], help="reclaim's quarantine mode (default: its own)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="added to each S3 request by the server"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reclaim-bench"))
    parser.add_argument("--profile", type=Path, help="also profile one reclaim run at the last N; stats here")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--load-references", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_references:
        n, orphans = args.load_references, args.orphans
        load_references(database(n, orphans), [key for key, orphan in object_keys(n, orphans) if not orphan])
        return
    # the baseline's boto3 finds its credentials in the environment, as peers' collectors do
    os.environ["AWS_ACCESS_KEY_ID"] = CREDENTIALS["aws_access_key_id"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = CREDENTIALS["aws_secret_access_key"]
    os.environ["AWS_DEFAULT_REGION"] = CREDENTIALS["region_name"]
    print("load average at the start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    with MotoServer() as server:
        server.set_latency(args.latency_ms)
        for n in args.objects:
            print(f"N={n:,}: loading references ...", file=sys.stderr, flush=True)
            # in a child, so that no measured child is forked from a parent holding N keys
            load = [sys.executable, __file__, "--load-references", str(n), "--orphans", str(args.orphans)]
            subprocess.run(load, check=True)
            bench = Bench(server, args.workdir, n, args.orphans, args.mode)
            if args.repeat:
                print("\n" + table(n, *bench.side_by_side(args.repeat)))
            if args.profile and n == args.objects[-1]:
                bench.profile(args.profile, args.profile_lines)
    print("\nload average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("reproduce: " + shlex.join([".venv/bin/python", "bench/s3_collect_bench.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
