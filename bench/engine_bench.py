"""The scan engine alone: ``scan_store`` over an in-memory sorted listing, no I/O.

A listing of N keys ``d/<dir>/<j>.bin`` (10 per directory, every 1,000th key
``.tmp``) is generated lazily in byte order, in pages of 1,000 keys (an S3
page); sizes and mtimes come from arithmetic, not from a ``stat``. Two
reference sources, generated lazily in order too: a prefix source naming every
15th directory (a directory object covering its keys; about 1 % of the
references) and an exact source naming 5 of every 7 keys of the other
directories (about 6,700,000 references at N = 10,000,000). The store excludes
``*.tmp``; every 50th unreferenced key is too young.

The run checks every count against the numbers the same rules give by
arithmetic, then prints keys/s (listed keys over the wall time of
``scan_store``, and over its CPU time, which a shared machine's load does not
stretch) and the peak RSS of the process (``ru_maxrss``). The time includes
generating the listing and the references (about 40 % of it).

    .venv/bin/python bench/engine_bench.py            # N = 10,000,000
    .venv/bin/python bench/engine_bench.py --keys 1000000
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from reclaim.lifecycle import scan_store
from reclaim.references import SourceCounters
from reclaim.stores import ObjectInfo
from reclaim.stores._pages import PAGE_SIZE, KeyPage

PER_DIR = 10
PREFIX_EVERY = 15  # every 15th directory is a directory object (one prefix reference)
EXCLUDED_EVERY = 1000  # every 1,000th key is a .tmp file, excluded
YOUNG_EVERY = 50  # every 50th unreferenced key was modified after the threshold
SIZE = 100
NOW = datetime(2026, 12, 1, tzinfo=UTC)
OLD = (NOW - timedelta(days=30)).timestamp()
NEW = NOW.timestamp()


def key_of(i: int) -> str:
    return f"d/{i // PER_DIR:07d}/{i % PER_DIR}.{'tmp' if i % EXCLUDED_EVERY == 0 else 'bin'}"


def exact(i: int) -> bool:
    return (i // PER_DIR) % PREFIX_EVERY != 0 and i % 7 not in (0, 3)


NAMES = [f"{j}.bin" for j in range(PER_DIR)]
# the names of a directory's exactly referenced keys, by the residue of its first index mod 7
EXACT_NAMES = [[NAMES[j] for j in range(PER_DIR) if (r + j) % 7 not in (0, 3)] for r in range(7)]


def directory(d: int) -> str:
    return f"d/{d:07d}/"


def listing_page(first: int, end: int) -> list[str]:
    """The keys ``first`` (a multiple of 1,000) to ``end``, made a directory at a time."""
    keys = [base + name for base in map(directory, range(first // PER_DIR, end // PER_DIR)) for name in NAMES]
    keys[0] = key_of(first)  # every 1,000th key is a .tmp file
    return keys


def exact_references(n: int) -> Iterator[list[str]]:
    """The exact references in order, about 5,000 at a time (700 directories)."""
    for first in range(0, n // PER_DIR, 700):
        dirs = [d for d in range(first, min(first + 700, n // PER_DIR)) if d % PREFIX_EVERY]
        yield [
            base + name
            for d, base in zip(dirs, map(directory, dirs), strict=True)
            for name in EXACT_NAMES[d * PER_DIR % 7]
        ]


class Page(KeyPage):
    """A page of generated keys; ``info`` is arithmetic (every key's index is known)."""

    __slots__ = ("_first",)

    def __init__(self, keys: list[str], first: int) -> None:
        super().__init__(keys)
        self._first = first

    def info(self, key: str) -> ObjectInfo:
        # index % 50 == 0: the directory's number ends in 0 or 5 and the name is 0.bin
        young = key[10] == "0" and key[8] in "05"
        return ObjectInfo(key, SIZE, NEW if young else OLD)


class Listing:
    """A store whose listing is generated in pages (the engine's only view of a store)."""

    name = "engine"
    url = "memory://engine"

    def __init__(self, n: int) -> None:
        if n % PAGE_SIZE:
            raise SystemExit(f"--keys must be a multiple of {PAGE_SIZE:,}")
        self.n = n

    def list_pages(self, prefix: str = "", *, skip: Any = ()) -> Iterator[KeyPage]:
        for first in range(0, self.n, PAGE_SIZE):
            yield Page(listing_page(first, min(first + PAGE_SIZE, self.n)), first)

    def list(self, prefix: str = "", *, skip: Any = ()) -> Iterator[ObjectInfo]:  # pragma: no cover
        raise NotImplementedError


class Source:
    """A reference source whose stream is generated in pages of 5,000 (a server-side fetch)."""

    database = "memory"
    sidecars: tuple[str, ...] = ()

    def __init__(self, name: str, n: int, prefix: bool) -> None:
        self.name = name
        self.n = n
        self.is_prefix = prefix
        self.counters = SourceCounters()

    def pages(self) -> Iterator[list[str]]:
        if self.is_prefix:
            refs = (f"d/{d:07d}" for d in range(0, self.n // PER_DIR, PREFIX_EVERY))
            while page := list(islice(refs, 5000)):
                yield page
        else:
            yield from exact_references(self.n)

    def key_pages(self) -> Iterator[list[str]]:
        self.counters = SourceCounters()
        for page in self.pages():
            self.counters.rows += len(page)
            yield page


def expected(n: int) -> dict[str, int]:
    """The counts the rules give, key by key (a loop, not the engine)."""
    counts = {"referenced": 0, "candidates": 0, "young": 0, "excluded": 0}
    for i in range(n):
        if i % EXCLUDED_EVERY == 0:
            counts["excluded"] += 1
        elif (i // PER_DIR) % PREFIX_EVERY == 0 or exact(i):
            counts["referenced"] += 1
        elif i % YOUNG_EVERY == 0:
            counts["young"] += 1
        else:
            counts["candidates"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--no-check", action="store_true", help="skip the arithmetic check of the counts")
    args = parser.parse_args()
    n = args.keys
    sources = [Source("exact", n, prefix=False), Source("prefix", n, prefix=True)]
    started = time.perf_counter()
    cpu = time.process_time()
    report = scan_store(
        Listing(n),  # type: ignore[arg-type]
        sources,  # type: ignore[arg-type]
        action="collect",
        min_age=timedelta(days=7),
        max_fraction=1.0,
        trash_prefix="_trash/",
        exclude=["*.tmp"],
        show=5,
        scan_start=NOW,
    )
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    got = {
        "referenced": report.referenced.count,
        "candidates": report.candidates.count,
        "young": report.young.count,
        "excluded": report.excluded.count,
    }
    if not args.no_check and got != (want := expected(n)):
        raise SystemExit(f"counts differ: engine {got}, rules {want}")
    print(f"keys              {report.listed.count:>14,}")
    print(f"references        {report.references:>14,} ({sources[1].counters.rows:,} prefix references)")
    for name, value in got.items():
        print(f"{name:<18}{value:>14,}")
    print(f"seconds           {seconds:>14.2f} (CPU {cpu:.2f})")
    listed = report.listed.count
    print(f"keys/s            {listed / seconds:>14,.0f} (per CPU second {listed / cpu:,.0f})")
    print(f"peak RSS          {rss / 2**20:>11.1f} MB")
    print("\nreproduce: " + shlex.join([".venv/bin/python", "bench/engine_bench.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
