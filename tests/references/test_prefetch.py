"""A reference stream read ahead in a thread: the same pages, its error where it failed, closed when left."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from reclaim.errors import SourceError
from reclaim.references import PageCoverage
from reclaim.references.prefetch import prefetched
from references.test_sources import ENGINES, dispose_engines, make_source  # noqa: F401 (autouse)


def _stream(
    pages: int, *, fail_at: int | None = None, closed: list[str] | None = None
) -> Iterator[list[str]]:
    try:
        for i in range(pages):
            if i == fail_at:
                raise SourceError("s", f"failed at page {i}")
            yield [f"k{i:04d}a", f"k{i:04d}b"]
    finally:
        if closed is not None:
            closed.append(threading.current_thread().name)


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("reclaim-prefetch-")]


def test_the_pages_come_in_order_and_whole() -> None:
    assert list(prefetched(_stream(50), name="s", depth=2)) == list(_stream(50))
    assert _prefetch_threads() == []


def test_the_streams_error_is_raised_after_the_pages_before_it() -> None:
    pages = prefetched(_stream(20, fail_at=7), name="s", depth=3)
    got = [next(pages) for _ in range(7)]
    assert got == list(_stream(7))
    with pytest.raises(SourceError, match="failed at page 7"):
        next(pages)
    assert _prefetch_threads() == []


def test_a_reader_that_stops_early_closes_the_stream_in_its_thread() -> None:
    closed: list[str] = []
    pages = prefetched(_stream(1_000, closed=closed), name="s", depth=2)
    assert next(pages) == ["k0000a", "k0000b"]
    pages.close()
    assert closed == ["reclaim-prefetch-s"]
    assert _prefetch_threads() == []


def test_a_reader_that_never_asks_starts_no_thread() -> None:
    closed: list[str] = []
    pages = prefetched(_stream(3, closed=closed), name="s")
    del pages
    assert _prefetch_threads() == []


def test_a_server_source_is_read_ahead_and_its_counts_and_checks_hold(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    ENGINES.append(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE assets (id INTEGER PRIMARY KEY, blob_key VARCHAR(64))")
        conn.execute(
            sa.text("INSERT INTO assets (id, blob_key) VALUES (:i, :k)"),
            [{"i": i, "k": f"k/{i:06d}"} for i in range(0, 30_000, 3)],
        )
    source = make_source(db_url, name="assets", table="assets", column="blob_key")
    coverage = PageCoverage([source])
    keys = [f"k/{i:06d}" for i in range(30_000)]
    left = [
        k for start in range(0, len(keys), 1_000) for k in coverage.unreferenced(keys[start : start + 1_000])
    ]
    coverage.drain()
    assert left == [k for i, k in enumerate(keys) if i % 3]
    assert source.counters.rows == 10_000
    assert _prefetch_threads() == []
    # an empty source over a table with rows still fails closed, raised to the reader
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE assets SET blob_key = NULL")
    coverage = PageCoverage([source])
    with pytest.raises(SourceError, match="returned no references"):
        coverage.unreferenced(keys[:10])
    assert _prefetch_threads() == []
