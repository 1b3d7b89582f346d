"""Out-of-core sorting for reference streams the database cannot order.

Keys are spooled into a temporary SQLite file and read back ``ORDER BY key``
with the BINARY collation (``memcmp`` of UTF-8, i.e. byte order, the order
stores list in). SQLite's sorter spills to temporary files beyond its small
cache, so memory stays flat however many keys there are; no Python set or
list of all keys is ever built.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice

__all__ = ["sort_externally"]

_BATCH = 10_000


def sort_externally(
    keys: Iterable[str], *, tempdir: str | None = None, unique: bool = False
) -> Iterator[str]:
    """Yield ``keys`` in byte order, using a temporary file instead of memory.

    With ``unique`` equal keys are yielded once. The temporary file is removed
    when the generator is exhausted or closed.
    """
    fd, path = tempfile.mkstemp(prefix="reclaim-sort-", suffix=".sqlite", dir=tempdir)
    os.close(fd)
    conn = sqlite3.connect(path)
    try:
        # the file is scratch space: durability settings would only cost time
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-4096")  # 4 MiB of page cache; the sorter spills past it
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute("CREATE TABLE spool (key TEXT NOT NULL)")
        iterator = iter(keys)
        while batch := list(islice(iterator, _BATCH)):
            conn.executemany("INSERT INTO spool (key) VALUES (?)", ((k,) for k in batch))
        conn.commit()
        distinct = "DISTINCT " if unique else ""
        cursor = conn.execute(f"SELECT {distinct}key FROM spool ORDER BY key COLLATE BINARY")
        while rows := cursor.fetchmany(_BATCH):
            for (key,) in rows:
                yield key
    finally:
        conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
