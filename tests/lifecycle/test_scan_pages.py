"""The page-at-a-time scan equals the naive model, for every way of cutting the listing into pages.

Hypothesis draws keys (byte-order corner cases: ``a-b`` < ``a.b`` < ``a/`` <
``a0``, non-ASCII in one, two, three and four UTF-8 bytes, sidecar-looking
suffixes), exact, prefix and sidecar references spread over several sources,
exclusion globs, ages, and how the listing and each source are cut into pages
(pages of one key, of everything, and anything between). The scan's counts,
its per-source credits and its verdict on every key must equal

- the obvious set-based answer (the verdicts), and
- the key-at-a-time merge the page classifier replaces
  (:class:`~reclaim.references.Coverage`: which source keeps each key).

The stores and sources here are in memory, so that the draws reach every page
boundary; the property test beside ``tests/test_scan_property.py`` runs the same
engine against real databases and store backends.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.errors import StoreError
from reclaim.lifecycle import Status, classify, scan_store
from reclaim.references import Coverage, KeySpan, SourceCounters
from reclaim.stores import ObjectInfo, open_store
from reclaim.stores._pages import InfoPage, KeyPage

SEGMENTS = ["a", "a-b", "a.b", "a b", "ab", "a0", "b", "é", "ä", "€", "\U0001f600", "z", "_trashy", "x.m"]
SIDECARS = (".m", ".m.json")
TRASH = "_trash/"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
OLD = (NOW - timedelta(days=30)).timestamp()
YOUNG = (NOW - timedelta(hours=1)).timestamp()
MIN_AGE = timedelta(days=7)

segment = st.sampled_from(SEGMENTS)
key_strategy = st.lists(segment, min_size=1, max_size=3).map("/".join)


def cut(items: list[str], sizes: list[int]) -> list[list[str]]:
    """``items`` in pages of the drawn sizes (the last size repeats)."""
    pages, start, i = [], 0, 0
    while start < len(items):
        size = sizes[min(i, len(sizes) - 1)]
        pages.append(items[start : start + size])
        start += size
        i += 1
    return pages


class PagedMemory:
    """A store listing given keys in given pages; sizes and mtimes from a table."""

    name = "main"
    url = "memory://pages"

    def __init__(self, pages: list[list[str]], ages: dict[str, float]) -> None:
        self.pages = pages
        self.ages = ages

    def list_pages(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[KeyPage]:
        for page in self.pages:
            infos = [ObjectInfo(k, len(k.encode()), self.ages.get(k, OLD)) for k in page]
            yield InfoPage(infos, self)  # type: ignore[arg-type]

    def list(self, prefix: str = "", *, skip: Sequence[str] = ()) -> Iterator[ObjectInfo]:
        for page in self.list_pages(prefix, skip=skip):
            for key in page.keys:
                info = page.info(key)
                assert info is not None
                yield info

    def stat(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(key.encode()), self.ages.get(key, OLD))


class MemorySource:
    """A reference source over a sorted list of keys, read in pages of the drawn sizes."""

    database = "memory"

    def __init__(self, name: str, keys: list[str], sizes: list[int], prefix: bool, sidecars: tuple[str, ...]):
        self.name = name
        self.refs = sorted(keys)
        self.sizes = sizes
        self.is_prefix = prefix
        self.sidecars = sidecars
        self.counters = SourceCounters()

    def key_pages(self, span: KeySpan | None = None) -> Iterator[list[str]]:
        self.counters = SourceCounters()
        for page in cut(self.refs, self.sizes):
            if span is not None and not span.whole:
                page = span.keep(page, spanning=self.is_prefix or bool(self.sidecars))
            self.counters.rows += len(page)
            if page:
                yield page

    def keys(self) -> Iterator[str]:
        for page in self.key_pages():
            yield from page


@st.composite
def archives(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.sets(key_strategy, max_size=30))
    sidecar_keys = (
        {k + s for k in draw(st.sets(st.sampled_from(sorted(keys)), max_size=5)) for s in SIDECARS}
        if keys
        else set()
    )
    keys = sorted(
        keys | sidecar_keys | set(draw(st.sets(st.sampled_from([TRASH + "x", TRASH + "a/b"]), max_size=2)))
    )
    pool = st.sampled_from(keys) | key_strategy if keys else key_strategy
    sources = []
    for kind in draw(
        st.lists(st.sampled_from(["exact", "prefix", "sidecar", "both"]), min_size=1, max_size=4)
    ):
        refs = draw(
            st.lists(
                pool | st.lists(segment, min_size=1, max_size=2).map(lambda p: "/".join(p) + "/"), max_size=10
            )
        )
        sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
        sources.append((kind, refs, sizes))
    return {
        "keys": keys,
        "young": draw(st.sets(st.sampled_from(keys), max_size=5)) if keys else set(),
        "sources": sources,
        "exclude": draw(st.sampled_from([[], ["b/*"], ["*a.b*"], ["z"], ["*.m"], ["*/ab", "é*"], ["a?b*"]])),
        "pages": [
            *draw(st.lists(st.integers(1, 8), min_size=1, max_size=5)),
            draw(st.sampled_from([1, 1000])),
        ],
    }


def make_sources(archive: dict[str, Any]) -> list[MemorySource]:
    out = []
    for i, (kind, refs, sizes) in enumerate(archive["sources"]):
        prefix = kind in ("prefix", "both")
        sidecars = SIDECARS if kind in ("sidecar", "both") else ()
        out.append(MemorySource(f"s{i}", refs, sizes, prefix, sidecars))
    return out


def oracle(archive: dict[str, Any]) -> dict[str, Status]:
    """The obvious, set-based verdict."""
    exact: set[str] = set()
    prefixes: list[str] = []
    sidecars: set[str] = set()
    for kind, refs, _ in archive["sources"]:
        exact |= set(refs)
        if kind in ("prefix", "both"):
            prefixes += [r if r.endswith("/") else r + "/" for r in refs]
        if kind in ("sidecar", "both"):
            sidecars |= {r + s for r in refs for s in SIDECARS}
    verdict = {}
    for key in archive["keys"]:
        if key.startswith(TRASH):
            continue
        if any(fnmatch.fnmatchcase(key, p) for p in archive["exclude"]):
            verdict[key] = Status.EXCLUDED
        elif key in exact or key in sidecars or any(key.startswith(p) for p in prefixes):
            verdict[key] = Status.REFERENCED
        else:
            verdict[key] = Status.YOUNG if key in archive["young"] else Status.CANDIDATE
    return verdict


def credits_by_key_merge(archive: dict[str, Any]) -> list[int]:
    """Per source, the keys the key-at-a-time merge credits to it (the engine the pages replace)."""
    sources = make_sources(archive)
    coverage = Coverage(sources)  # type: ignore[arg-type]
    credits = [0] * len(sources)
    verdict = oracle(archive)
    for key in archive["keys"]:
        if key.startswith(TRASH) or verdict[key] is Status.EXCLUDED:
            continue
        covering = coverage.covering(key)
        if covering is not None:
            for index in covering.sources:
                credits[index] += 1
    return credits


def listing(archive: dict[str, Any]) -> PagedMemory:
    # byte order of the UTF-8 encodings, which the scan must take as it is
    keys = sorted(archive["keys"], key=lambda k: k.encode())
    assert keys == sorted(keys)  # str order is code point order is UTF-8 byte order
    ages = dict.fromkeys(archive["young"], YOUNG)
    return PagedMemory(cut(keys, archive["pages"]), ages)


@settings(max_examples=400, deadline=None)
@given(archive=archives())
def test_page_scan_equals_the_naive_model(archive: dict[str, Any]) -> None:
    verdict = oracle(archive)
    sources = make_sources(archive)
    report = scan_store(
        listing(archive),  # type: ignore[arg-type]
        sources,  # type: ignore[arg-type]
        action="collect",
        min_age=MIN_AGE,
        max_fraction=1.0,
        trash_prefix=TRASH,
        exclude=archive["exclude"],
        show=1000,
        scan_start=NOW,
    )
    counts = {status: list(verdict.values()).count(status) for status in Status}
    assert report.referenced.count == counts[Status.REFERENCED]
    assert report.candidates.count == counts[Status.CANDIDATE]
    assert report.young.count == counts[Status.YOUNG]
    assert report.excluded.count == counts[Status.EXCLUDED]
    assert report.listed.count == len(verdict)
    assert [s.covers for s in report.sources] == credits_by_key_merge(archive)
    assert [s.rows for s in report.sources] == [len(refs) for _, refs, _ in archive["sources"]]
    candidates = sorted(k for k, v in verdict.items() if v is Status.CANDIDATE)
    assert [info.key for info in report.samples] == candidates
    assert report.candidates.bytes == sum(len(k.encode()) for k in candidates)
    # an object store's listing carries sizes: referenced bytes are counted, and exactly
    referenced = [k for k, v in verdict.items() if v is Status.REFERENCED]
    assert report.referenced_bytes_measured
    assert report.referenced.bytes == sum(len(k.encode()) for k in referenced)
    assert report.listed.bytes == sum(len(k.encode()) for k in verdict)

    per_key = classify(
        listing(archive),  # type: ignore[arg-type]
        make_sources(archive),  # type: ignore[arg-type]
        scan_start=NOW,
        min_age=MIN_AGE,
        trash_prefix=TRASH,
        exclude=archive["exclude"],
    )
    assert {item.info.key: item.status for item in per_key} == verdict


@pytest.mark.parametrize(
    "pages",
    [
        [["a", "c", "b"]],  # backwards inside a page
        [["a", "b"], ["b", "c"]],  # a repeated key across pages
        [["a", "c"], ["b"]],  # backwards across pages
        [["é"], ["z"]],  # é (U+00E9) sorts after z: byte order, not a locale's
    ],
)
def test_a_listing_out_of_byte_order_aborts_the_scan(pages: list[list[str]]) -> None:
    store = PagedMemory(pages, {})
    source = MemorySource("refs", ["a"], [1], prefix=False, sidecars=())
    with pytest.raises(StoreError, match="the listing is not in byte order"):
        scan_store(
            store,  # type: ignore[arg-type]
            [source],  # type: ignore[list-item]
            action="collect",
            min_age=MIN_AGE,
            max_fraction=1.0,
            trash_prefix=TRASH,
            scan_start=NOW,
        )


# -- a local directory: pages, stat only where needed, referenced bytes on request ---------


def _local(tmp_path: Path, files: dict[str, bytes]) -> Any:
    root = tmp_path / "store"
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stamp = time.time() - 30 * 86400
        os.utime(path, (stamp, stamp))
    return open_store("main", f"file://{root}")


def test_local_pages_list_what_list_lists(tmp_path: Path) -> None:
    names = ["a-b", "a.b", "a/x", "a/y/z", "a/y1", "a0", "b/kkk", "é", "\U0001f600/x", "_trash/q", "_trashy"]
    files = dict.fromkeys(names, b"x")
    files |= {f"big/{i:05d}": b"y" for i in range(2500)}  # more than a page in one directory
    files |= {"a/y0/q": b"zz"}  # a/'s files resume after its subdirectories: a/x, [a/y/], a/y0 ...
    store = _local(tmp_path, files)
    for prefix, skip in [("", ()), ("", ("_trash/",)), ("a", ()), ("a/", ("a/y/",)), ("big/0", ())]:
        listed = [i.key for i in store.list(prefix, skip=skip)]
        keys = []
        for page in store.list_pages(prefix, skip=skip):
            assert 0 < len(page.keys) <= 1000
            for key in page.keys:  # each key is stat'ed in its own directory, while the page is current
                info = page.info(key)
                assert info is not None
                assert info.size == len(files[key])
            keys += page.keys
        assert keys == listed


def test_a_local_page_refuses_to_stat_after_the_walk_left_its_directory(tmp_path: Path) -> None:
    files = {f"a/{i:04d}": b"1" for i in range(999)} | {"b/x": b"22", "c/y": b"333"}
    store = _local(tmp_path, files)
    pages = store.list_pages()
    first = next(pages)  # a page spans directories (a/ and b/) up to 1,000 keys
    assert first.keys == [*sorted(files)[:999], "b/x"]
    assert [first.info(k).size for k in ("a/0000", "a/0998", "b/x")] == [1, 1, 2]  # type: ignore[union-attr]
    second = next(pages)
    assert second.keys == ["c/y"]
    assert second.info("c/y").size == 3  # type: ignore[union-attr]
    with pytest.raises(RuntimeError, match="after the walk left its directory"):
        first.info("b/x")  # its descriptor is closed and may be reused: never read through it
    with pytest.raises(StopIteration):
        next(pages)


def test_local_referenced_bytes_are_not_measured_unless_asked(tmp_path: Path, monkeypatch: Any) -> None:
    store = _local(tmp_path, {"kept/a": b"12345", "kept/b": b"123", "gone/c": b"1234567"})
    source = MemorySource("refs", ["kept/a", "kept/b"], [5], prefix=False, sidecars=())
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        stats.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)

    def scan(referenced_bytes: bool) -> Any:
        stats.clear()
        return scan_store(
            store,
            [source],  # type: ignore[list-item]
            action="collect",
            min_age=MIN_AGE,
            max_fraction=1.0,
            trash_prefix=TRASH,
            referenced_bytes=referenced_bytes,
        )

    report = scan(False)
    assert stats == ["c"]  # only the unreferenced key was stat'ed (relative to its open directory)
    assert (report.referenced.count, report.referenced.bytes) == (2, None)
    assert report.listed.bytes is None
    assert not report.referenced_bytes_measured
    assert (report.candidates.count, report.candidates.bytes) == (1, 7)

    report = scan(True)
    assert sorted(stats) == ["a", "b", "c"]
    assert (report.referenced.count, report.referenced.bytes) == (2, 8)
    assert report.listed.bytes == 15
    assert report.referenced_bytes_measured
