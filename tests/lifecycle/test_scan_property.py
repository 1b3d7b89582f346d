"""The streaming merge scan equals the set-difference oracle, for every dialect and backend.

Hypothesis draws store contents (keys chosen to collide on prefixes, sidecar
suffixes and byte-order corner cases), their ages, exact / prefix / sidecar /
JSON references spread over several sources, and exclusion globs. The scan's
verdict on every key must equal the oracle written the obvious way with
Python sets, which is what the merge replaces.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim.config import DatabaseConfig, ReferenceConfig
from reclaim.lifecycle import Status, classify
from reclaim.references import ReferenceSource, create_database_engine
from reclaim.stores import Store, open_store

SEGMENTS = ["a", "a-b", "a.b", "a b", "ab", "b", "é", "z", "_trashy"]
TRASH = "_trash/"
SIDECAR = ".m"

segment = st.sampled_from(SEGMENTS)
key_strategy = st.lists(segment, min_size=1, max_size=3).map("/".join)


@st.composite
def archives(draw: st.DrawFn, *, ages: bool, tree: bool) -> dict[str, Any]:
    keys = draw(st.sets(key_strategy, max_size=25))
    if tree:  # a file system cannot hold a file "a" and a file "a/x" at once
        keys = {k for k in keys if not any(other.startswith(k + "/") for other in keys)}
    sidecar_keys = (
        {k + SIDECAR for k in draw(st.sets(st.sampled_from(sorted(keys)), max_size=4))} if keys else set()
    )
    keys = keys | sidecar_keys
    old = {k: draw(st.booleans()) if ages else True for k in sorted(keys)}
    known = sorted(keys)
    ref_pool = st.sampled_from(known) | key_strategy if known else key_strategy
    exact = draw(st.lists(ref_pool, max_size=12))
    prefixes = draw(st.lists(st.lists(segment, min_size=1, max_size=2).map("/".join), max_size=3))
    with_sidecar = draw(st.lists(ref_pool, max_size=4))
    json_refs = draw(st.lists(ref_pool, max_size=6))
    exclude = draw(st.sampled_from([[], ["b/*"], ["*a.b*"], ["z"]]))
    trash = draw(st.sets(st.sampled_from(["x", "a/b"]), max_size=2))
    return {
        "keys": old,
        "exact": exact,
        "prefixes": prefixes,
        "sidecar": with_sidecar,
        "json": json_refs,
        "exclude": exclude,
        "trash": sorted(TRASH + t for t in trash),
    }


def oracle(archive: dict[str, Any]) -> dict[str, Status]:
    """The obvious, set-based answer."""
    exact = set(archive["exact"]) | set(archive["json"]) | set(archive["sidecar"])
    sidecars = {k + SIDECAR for k in archive["sidecar"]}
    verdict = {}
    for key, is_old in archive["keys"].items():
        if any(fnmatch.fnmatchcase(key, p) for p in archive["exclude"]):
            verdict[key] = Status.EXCLUDED
        elif (
            key in exact
            or key in sidecars
            or any(key == p or key.startswith(p + "/") for p in archive["prefixes"])
        ):
            verdict[key] = Status.REFERENCED
        else:
            verdict[key] = Status.CANDIDATE if is_old else Status.YOUNG
    return verdict


def load_references(engine: sa.Engine, archive: dict[str, Any]) -> None:
    with engine.begin() as conn:
        for table in ("refs_exact", "refs_prefix", "refs_sidecar", "refs_json"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            column = "doc TEXT" if table == "refs_json" else "k VARCHAR(200)"
            conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {column})")
        for table, values in (
            ("refs_exact", archive["exact"]),
            ("refs_prefix", archive["prefixes"]),
            ("refs_sidecar", archive["sidecar"]),
        ):
            for i, value in enumerate(values):
                conn.execute(sa.text(f"INSERT INTO {table} (id, k) VALUES (:i, :k)"), {"i": i, "k": value})
        for i, value in enumerate(archive["json"]):
            doc = json.dumps({"path": value, "store": "main"})
            conn.execute(sa.text("INSERT INTO refs_json (id, doc) VALUES (:i, :d)"), {"i": i, "d": doc})


def sources_for(engine: sa.Engine) -> list[ReferenceSource]:
    configs = [
        {"table": "refs_exact", "column": "k"},
        {"table": "refs_prefix", "column": "k", "kind": "prefix"},
        {"table": "refs_sidecar", "column": "k", "sidecars": [SIDECAR]},
        {"table": "refs_json", "column": "doc", "json_path": "path", "json_filter": {"store": "main"}},
    ]
    out = []
    for i, cfg in enumerate(configs):
        ref = ReferenceConfig.model_validate({"database": "db", **cfg})
        out.append(ReferenceSource(name=ref.display_name(i), config=ref, engine=engine, database="db"))
    return out


class Backend:
    """Writes an archive's objects into a fresh location of one store backend."""

    ages = False
    tree = True

    def fresh(self) -> Store:
        raise NotImplementedError

    def put(self, store: Store, key: str, old: bool) -> None:
        store.write(key, b"x")


class LocalBackend(Backend):
    ages = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = itertools.count()

    def fresh(self) -> Store:
        path = self.root / f"s{next(self.counter)}"
        path.mkdir()
        return open_store("main", f"file://{path}")

    def put(self, store: Store, key: str, old: bool) -> None:
        store.write(key, b"x")
        if old:
            path = Path(store.url.removeprefix("file://")) / key
            stamp = time.time() - 10 * 86400
            os.utime(path, (stamp, stamp))


class MemoryBackend(Backend):
    def fresh(self) -> Store:
        return open_store("main", f"memory://reclaim-{secrets.token_hex(6)}")


class S3Backend(Backend):
    tree = False  # object stores hold "a" and "a/x" side by side

    def __init__(self, bucket: str, options: dict[str, Any]) -> None:
        self.bucket = bucket
        self.options = options

    def fresh(self) -> Store:
        return open_store("main", f"s3://{self.bucket}/{secrets.token_hex(6)}/", self.options)


@pytest.fixture(params=["local", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        yield LocalBackend(tmp_path)
    elif request.param == "memory":
        yield MemoryBackend()
    else:
        bucket = request.getfixturevalue("s3_bucket")
        yield S3Backend(bucket, request.getfixturevalue("s3_options"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scan_equals_set_difference_oracle(db_url: str, backend: Backend, data: st.DataObject) -> None:
    archive = data.draw(archives(ages=backend.ages, tree=backend.tree))
    engine = create_database_engine(DatabaseConfig(url=db_url))
    try:
        load_references(engine, archive)
        store = backend.fresh()
        for key, old in archive["keys"].items():
            backend.put(store, key, old)
        for key in archive["trash"]:
            store.write(key, b"quarantined")
        # without ages every object is old: the scan starts a minute after the writes
        scan_start = datetime.now(UTC) + (timedelta(0) if backend.ages else timedelta(minutes=1))
        verdict = {
            item.info.key: item.status
            for item in classify(
                store,
                sources_for(engine),
                scan_start=scan_start,
                min_age=timedelta(days=1) if backend.ages else timedelta(seconds=30),
                trash_prefix=TRASH,
                exclude=archive["exclude"],
            )
        }
    finally:
        engine.dispose()
    assert verdict == oracle(archive)
