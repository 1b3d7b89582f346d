"""Sorting a report out of core: sorted runs spilled to temporary files, merged with a heap.

A report's data files are not in key order, and a report of a billion objects
does not fit in memory. :func:`sorted_rows` reads normalized batches
(:data:`~reclaim.stores.inventory._read.SCHEMA`) into a buffer of at most
``run_rows`` rows; each full buffer is sorted by key (Arrow's sort compares
the UTF-8 bytes, which is the order of Python ``str`` and of an S3 listing)
and written to a temporary Arrow IPC file, a *run*. At the end the runs are
merged with :func:`heapq.merge`, each read a batch at a time, so memory is one
buffer while reading and one batch per run while merging, whatever the size
of the report. A report that fits in one buffer is sorted in memory and never
touches the disk.

The output is a stream of *chunks*, each four parallel lists (keys, sizes,
mtimes, ETags) in strictly increasing key order; a key that appears twice
(a report no S3 bucket can produce) fails closed.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from operator import itemgetter
from typing import Any, Final

import pyarrow as pa
import pyarrow.ipc as ipc

from reclaim.stores.inventory._read import SCHEMA

__all__ = ["RUN_ROWS", "Chunk", "DuplicateKey", "sorted_rows"]

RUN_ROWS: Final = 500_000
"""Rows held in memory before a sorted run is spilled to disk (about 100 bytes each)."""

Chunk = tuple[list[str], list[int | None], list[float | None], list[str | None]]
"""Keys, sizes, mtimes and ETags of consecutive rows, in key order."""


class DuplicateKey(ValueError):
    """The same key came twice out of the sort (the report lists one object twice)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the report lists key {key!r} more than once")


def sorted_rows(
    batches: Iterable[pa.RecordBatch],
    *,
    chunk_rows: int,
    run_rows: int = RUN_ROWS,
    tempdir: str | None = None,
) -> Iterator[Chunk]:
    """Yield the rows of ``batches`` sorted by key, ``chunk_rows`` at a time (see the module docstring).

    Raises :class:`DuplicateKey` when a key repeats, and what reading
    ``batches`` raises.
    """
    if run_rows < 1 or chunk_rows < 1:
        raise ValueError("run_rows and chunk_rows must be positive")
    with tempfile.TemporaryDirectory(prefix="reclaim-sort-", dir=tempdir) as scratch:
        runs: list[str] = []
        buffer: list[pa.RecordBatch] = []
        held = 0
        for batch in batches:
            buffer.append(batch)
            held += batch.num_rows
            if held >= run_rows:
                runs.append(_spill(_sorted(buffer), scratch, len(runs), chunk_rows))
                buffer, held = [], 0
        if not runs:
            yield from _checked(_chunks_of(_sorted(buffer), chunk_rows))
            return
        if held:
            runs.append(_spill(_sorted(buffer), scratch, len(runs), chunk_rows))
        del buffer
        yield from _checked(_merged(runs, chunk_rows))


def _sorted(batches: list[pa.RecordBatch]) -> pa.Table:
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    return table.sort_by([("key", "ascending")])


def _spill(table: pa.Table, scratch: str, index: int, chunk_rows: int) -> str:
    path = os.path.join(scratch, f"run-{index:06d}.arrow")
    with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, SCHEMA) as writer:
        for batch in table.to_batches(max_chunksize=chunk_rows):
            writer.write_batch(batch)
    return path


def _chunks_of(table: pa.Table, chunk_rows: int) -> Iterator[Chunk]:
    for batch in table.to_batches(max_chunksize=chunk_rows):
        yield _lists(batch)


def _lists(batch: pa.RecordBatch) -> Chunk:
    columns: Any = [batch.column(i).to_pylist() for i in range(4)]
    return columns[0], columns[1], columns[2], columns[3]


def _run(path: str) -> Iterator[tuple[str, int | None, float | None, str | None]]:
    """The rows of one run, a batch at a time (memory: one batch).

    Read with plain reads, never memory-mapped: the pages of a mapped run stay
    resident once touched, so a merge over mapped runs would hold the whole
    report in memory after all.
    """
    with pa.OSFile(path, "rb") as source:
        reader = ipc.open_file(source)
        for index in range(reader.num_record_batches):
            yield from zip(*_lists(reader.get_batch(index)), strict=True)


def _merged(runs: list[str], chunk_rows: int) -> Iterator[Chunk]:
    rows = heapq.merge(*(_run(path) for path in runs), key=itemgetter(0))
    while chunk := list(islice(rows, chunk_rows)):
        keys, sizes, mtimes, etags = (list(column) for column in zip(*chunk, strict=True))
        yield keys, sizes, mtimes, etags


def _checked(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Pass the chunks on, raising :class:`DuplicateKey` where a key repeats (also across chunks)."""
    previous: str | None = None
    for chunk in chunks:
        keys = chunk[0]
        if not keys:
            continue
        if previous is not None and keys[0] <= previous:
            raise DuplicateKey(keys[0])
        if len(set(keys)) != len(keys):
            seen: set[str] = set()
            for key in keys:
                if key in seen:
                    raise DuplicateKey(key)
                seen.add(key)
        previous = keys[-1]
        yield chunk
