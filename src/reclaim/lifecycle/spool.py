"""A temporary, on-disk list of candidates between the scan and the moves.

Quarantine must know how many candidates a store has before it moves the
first one (the ``max_fraction`` guard), without holding them in memory. The
spool is a scratch SQLite file, removed when closed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from types import TracebackType

from reclaim.stores import ObjectInfo

__all__ = ["CandidateSpool"]


class CandidateSpool:
    """Append candidates while scanning; read them back in batches, in key order."""

    def __init__(self, *, tempdir: str | None = None) -> None:
        fd, self.path = tempfile.mkstemp(prefix="reclaim-candidates-", suffix=".sqlite", dir=tempdir)
        os.close(fd)
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute(
            "CREATE TABLE candidate (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, size INTEGER, "
            "mtime REAL, etag TEXT)"
        )
        self._pending: list[tuple[str, int | None, float | None, str | None]] = []
        self.count = 0

    def add(self, info: ObjectInfo) -> None:
        """Append one candidate."""
        self._pending.append((info.key, info.size, info.mtime, info.etag))
        self.count += 1
        if len(self._pending) >= 5000:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._conn.executemany(
                "INSERT INTO candidate (key, size, mtime, etag) VALUES (?, ?, ?, ?)", self._pending
            )
            self._pending.clear()
            self._conn.commit()

    def batches(self, size: int = 500) -> Iterator[list[ObjectInfo]]:
        """Yield the candidates in the order they were added, ``size`` at a time."""
        self._flush()
        last = 0
        while True:
            rows = self._conn.execute(
                "SELECT seq, key, size, mtime, etag FROM candidate WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, size),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [ObjectInfo(key, sz, mt, et) for _, key, sz, mt, et in rows]

    def close(self) -> None:
        """Remove the scratch file."""
        self._conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> CandidateSpool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
