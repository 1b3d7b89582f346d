"""Benchmark the out-of-core sort of reference keys (``order = "sort"`` sources).

For each N, a fresh child process generates N keys shaped like the scan
benchmark's (``blobs/ab/cd/<uuid>``) in pseudo-random order, streams them
through ``reclaim.references.extsort.sort_externally`` and checks that they
come out in byte order. The same is done with Python's ``sorted()`` on a list,
the in-memory way, for comparison. Each child reports its wall time, keys/s and
peak RSS (``ru_maxrss``); memory of the out-of-core sort should not grow with N.

    .venv/bin/python bench/sort_bench.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator

from common import object_keys

from reclaim.references.extsort import sort_externally  # both methods' children import it: same base


def keys(n: int) -> Iterator[str]:
    """The ``n`` keys of the benchmark stores, in an order unrelated to byte order (md5 of the index)."""
    return (key for key, _orphan in object_keys(n, 0.0))


def child(method: str, n: int) -> None:
    """Sort ``n`` keys with ``method``; print seconds, count and peak RSS as JSON."""
    start = time.perf_counter()
    ordered = sort_externally(keys(n)) if method == "external" else iter(sorted(keys(n)))
    count = 0
    previous = ""
    for key in ordered:
        if key <= previous:
            raise SystemExit(f"out of order: {key!r} after {previous!r}")
        previous = key
        count += 1
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "count": count, "rss": rss}))


def run(method: str, n: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", method, "--sizes", str(n)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    if result["count"] != n:
        raise SystemExit(f"{method} sort of {n:,} keys returned {result['count']:,}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", choices=["external", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.sizes[0])
        return
    results = {(method, n): run(method, n) for n in args.sizes for method in ("external", "memory")}
    print(f"\n{'N':>10} {'method':>10} {'seconds':>8} {'keys/s':>10} {'peak RSS':>10}")
    for (method, n), result in results.items():
        rate, mib = n / result["seconds"], result["rss"] / 2**20
        print(f"{n:>10,} {method:>10} {result['seconds']:>8.2f} {rate:>10,.0f} {mib:>7.1f} MB")
    if len(args.sizes) > 1:
        low, high = min(args.sizes), max(args.sizes)
        for method in ("external", "memory"):
            delta = (results[method, high]["rss"] - results[method, low]["rss"]) / 2**20
            print(f"{method} peak RSS at N={high:,} minus N={low:,}: {delta:+.1f} MB")
    print("\nreproduce: " + shlex.join([".venv/bin/python", "bench/sort_bench.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
