"""Temporary, on-disk lists of a plan's work: candidates between the scan and the moves, due entries.

Quarantine must know how many candidates a store has before it moves the
first one (the ``max_fraction`` guard), without holding them in memory
(:class:`CandidateSpool`). A purge plan holds the due entries it will act on
and, once previewed, what the re-check found for each (:class:`EntrySpool`),
so that a dry run shows exactly the list a real run executes. Each spool is
a scratch SQLite file, removed when closed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, TypeVar

from reclaim.catalog import Entry, State
from reclaim.stores import ObjectInfo

__all__ = ["CandidateSpool", "Discardable", "EntrySpool", "discard_on_error"]


class Discardable(Protocol):
    """A plan that holds spools until it is executed or discarded."""

    def discard(self) -> None:
        """Remove what the plan holds; it is never executed after."""
        ...


_Plan = TypeVar("_Plan", bound=Discardable)


@contextlib.contextmanager
def discard_on_error(plans: list[_Plan]) -> Iterator[list[_Plan]]:
    """Plan a step's stores into ``plans``: on any error, every plan appended so far is discarded.

    The error is raised again: a step is planned for every store or for none,
    and a store planned before the failing one leaves no scratch file behind.
    """
    try:
        yield plans
    except BaseException:
        for plan in plans:
            plan.discard()
        raise


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


_ENTRY_COLUMNS = (
    "id, store, key, state, version, mode, trash_key, size, mtime, etag, run_id, updated_run_id, "
    "created_at, updated_at, due_at, note, version_id, marker_id"
)


class EntrySpool:
    """Journal entries in id order, each with what a re-check found (``None`` until one ran)."""

    def __init__(self, *, tempdir: str | None = None) -> None:
        fd, path = tempfile.mkstemp(prefix="reclaim-due-", suffix=".sqlite", dir=tempdir)
        os.close(fd)
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False)
        finally:
            # the open connection keeps the file; removing it now means nothing is left
            # behind even by a plan that is never executed nor discarded
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute(
            # numbers as text: a hand-edited catalog may hold integers no SQLite INTEGER holds
            "CREATE TABLE entry (id INTEGER PRIMARY KEY, store TEXT, key TEXT, state TEXT, version TEXT, "
            "mode TEXT, trash_key TEXT, size TEXT, mtime REAL, etag TEXT, run_id TEXT, "
            "updated_run_id TEXT, created_at TEXT, updated_at TEXT, due_at TEXT, note TEXT, "
            "version_id TEXT, marker_id TEXT, referenced INTEGER)"
        )
        self.count = 0

    def add(self, entries: Iterable[Entry]) -> None:
        """Append ``entries`` (ids above every id added so far)."""
        rows = [
            (
                e.id, e.store, e.key, e.state.value, str(e.version), e.mode, e.trash_key, _text(e.size),
                e.mtime, e.etag, _text(e.run_id), _text(e.updated_run_id), e.created_at.isoformat(),
                e.updated_at.isoformat(), None if e.due_at is None else e.due_at.isoformat(), e.note,
                e.version_id, e.marker_id,
            )
            for e in entries
        ]  # fmt: skip
        self._conn.executemany(f"INSERT INTO entry ({_ENTRY_COLUMNS}) VALUES ({', '.join('?' * 18)})", rows)
        self._conn.commit()
        self.count += len(rows)

    def batches(self, size: int) -> Iterator[list[tuple[Entry, bool | None]]]:
        """Yield the entries by id, ``size`` at a time, each with its re-check result."""
        last = 0
        while True:
            rows = self._conn.execute(
                f"SELECT {_ENTRY_COLUMNS}, referenced FROM entry WHERE id > ? ORDER BY id LIMIT ?",
                (last, size),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(_entry(row), None if row[18] is None else bool(row[18])) for row in rows]

    def mark_referenced(self, ids: Iterable[int], referenced: bool) -> None:
        """Record a re-check's result for the entries ``ids``."""
        rows = [(int(referenced), entry_id) for entry_id in ids]
        self._conn.executemany("UPDATE entry SET referenced = ? WHERE id = ?", rows)
        self._conn.commit()

    def close(self) -> None:
        """Drop the spool (its file is gone already)."""
        self._conn.close()


def _entry(row: tuple[Any, ...]) -> Entry:
    (id_, store, key, state, version, mode, trash_key, size, mtime, etag, run_id, updated_run_id,
     created_at, updated_at, due_at, note, version_id, marker_id) = row[:18]  # fmt: skip
    return Entry(
        id=int(id_),
        store=str(store),
        key=str(key),
        state=State(state),
        version=int(version),
        mode=str(mode),
        trash_key=trash_key,
        size=_int(size),
        mtime=mtime,
        etag=etag,
        run_id=_int(run_id),
        updated_run_id=_int(updated_run_id),
        created_at=datetime.fromisoformat(str(created_at)),
        updated_at=datetime.fromisoformat(str(updated_at)),
        due_at=None if due_at is None else datetime.fromisoformat(str(due_at)),
        note=note,
        version_id=version_id,
        marker_id=marker_id,
    )


def _text(number: int | None) -> str | None:
    return None if number is None else str(number)


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)
