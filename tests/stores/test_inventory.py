"""The inventory listing against reports written in AWS's formats into moto's S3 server.

Every report here is written as AWS delivers one (see ``inventory_reports``):
dated folder, manifest with its checksum, data files in CSV gzip, Parquet or
ORC, rows shuffled across files. What is checked: the listing equals a LIST of
the same bucket, every kind of bad report is refused naming its file, the
out-of-core sort with a tiny budget still gives sorted output, and split
points cut the report into ranges of about equal size.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.errors import StoreError
from reclaim.stores import validate_key

pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install -e '.[dev]'")
boto3 = pytest.importorskip("boto3")

from reclaim.stores.inventory import InventoryStore  # noqa: E402  (after the skips above)
from reclaim.stores.inventory._read import SCHEMA, KeyFilter, _key_filter  # noqa: E402
from reclaim.stores.inventory._sort import DuplicateKey, sorted_rows  # noqa: E402
from reclaim.stores.s3 import S3Store  # noqa: E402

from .inventory_reports import Row, rows_of, write_report  # noqa: E402

FORMATS = ["CSV", "Parquet", "ORC"]
KEYS = [
    "root/a",
    "root/a b+c",  # a space and a plus: URL-encoded differently in CSV
    "root/p%20q",  # a literal percent sign
    "root/dir/ü/x",
    "root/dir/x-y",
    "root/dir/x/y",
    "root/dir0",
    "root/z\u00e9\U0001f600",
    "root/_trash/old",
    "other/outside",  # outside the store prefix: never listed
    *[f"root/shard/{i:03d}" for i in range(40)],
]


@pytest.fixture
def client(s3_server: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")


@pytest.fixture
def world(client: Any, s3_bucket: str) -> dict[str, Any]:
    """The source bucket (``s3_bucket``) holding :data:`KEYS` and an empty destination bucket."""
    dest = f"reclaim-inv-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=dest)
    for key in KEYS:
        client.put_object(Bucket=s3_bucket, Key=key, Body=key.encode())
    return {"source": s3_bucket, "dest": dest}


@pytest.fixture
def make(s3_options: dict[str, Any], world: dict[str, Any]) -> Iterator[Callable[..., InventoryStore]]:
    made: list[InventoryStore] = []

    def factory(location: str, **kwargs: Any) -> InventoryStore:
        live = S3Store("blobs", f"s3://{world['source']}/root", s3_options)
        store = InventoryStore(live, location, **kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


def soon() -> datetime:
    """A report's date just after everything the test wrote (its folder is named to the minute)."""
    return (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)


def report(client: Any, world: dict[str, Any], fmt: str, **kwargs: Any) -> str:
    rows = kwargs.pop("rows", None) or rows_of(client, world["source"])
    taken = kwargs.pop("taken", None) or soon()
    return write_report(
        client,
        dest=world["dest"],
        prefix="inventories",
        source=world["source"],
        config_id="daily",
        rows=rows,
        fmt=fmt,
        taken=taken,
        **kwargs,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_listing_equals_a_list_of_the_bucket(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore], fmt: str
) -> None:
    store = make(report(client, world, fmt))
    listed = list(store.list())
    live = list(store.live.list())
    assert [i.key for i in listed] == [i.key for i in live]
    assert "other/outside" not in {i.key for i in listed}
    for got, want in zip(listed, live, strict=True):
        assert (got.size, got.etag) == (want.size, want.etag)
        assert got.mtime is not None
        assert want.mtime is not None
        assert abs(got.mtime - want.mtime) < 1
    # the same through pages, with the trash skipped as the scan asks
    pages = [key for page in store.list_pages("", skip=("_trash/",)) for key in page.keys]
    assert pages == [i.key for i in live if not i.key.startswith("_trash/")]
    # prefix and range arguments as for any store
    assert [i.key for i in store.list("dir/")] == [i.key for i in live if i.key.startswith("dir/")]
    bounded = [i.key for i in store.list(start_after="dir/x-y", end_before="shard/010")]
    assert bounded == [i.key for i in live if "dir/x-y" < i.key < "shard/010"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_all_versions_report_lists_only_live_latest_versions(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore], fmt: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for key in ["root/kept", "root/gone", "root/noncurrent-only"]:
        rows.append(Row(key, 3, now, "etag-old", "v1", is_latest=False))
    rows.append(Row("root/kept", 4, now, "etag-new", "v2", is_latest=True))
    rows.append(Row("root/gone", None, now, None, "v3", is_latest=True, is_delete_marker=True))
    store = make(report(client, world, fmt, rows=rows, versions=True))
    listed = list(store.list())
    assert [(i.key, i.size, i.etag) for i in listed] == [("kept", 4, "etag-new")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_tiny_sort_budget_spills_runs_and_still_lists_in_order(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore], fmt: str
) -> None:
    store = make(report(client, world, fmt, files=5), run_rows=3)
    assert [i.key for i in store.list()] == [i.key for i in store.live.list()]


def test_out_of_core_sort_with_a_tiny_budget_gives_sorted_output(tmp_path: Path) -> None:
    rng = random.Random(7)
    keys = list({"".join(rng.choices("ab/é\U0001f600z0", k=rng.randint(1, 8))) for _ in range(3000)})
    rng.shuffle(keys)
    batches = [
        pa.RecordBatch.from_pydict(
            {"key": part, "size": [len(k) for k in part], "mtime": [1.0] * len(part), "etag": part},
            schema=SCHEMA,
        )
        for part in (keys[i : i + 97] for i in range(0, len(keys), 97))
    ]
    spilled: list[int] = []
    out: list[str] = []
    for chunk in sorted_rows(batches, chunk_rows=50, run_rows=200, tempdir=str(tmp_path)):
        if not spilled:
            spilled.append(sum(len(files) for _, _, files in os.walk(tmp_path)))
        out.extend(chunk[0])
        assert chunk[1] == [len(k) for k in chunk[0]]  # rows stay whole through the merge
    assert spilled[0] >= len(keys) // 300  # runs of about 200 rows (whole batches) were on disk
    assert out == sorted(keys)
    assert not any(files for _, _, files in os.walk(tmp_path))  # and removed afterwards
    duplicated = [*batches, batches[0]]
    with pytest.raises(DuplicateKey):
        list(sorted_rows(duplicated, chunk_rows=50, run_rows=200))


# ---- refusals: fail closed, naming the file


def test_a_bad_manifest_checksum_is_refused(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    store = make(report(client, world, "Parquet", corrupt_checksum=True))
    with pytest.raises(StoreError, match=r"manifest\.json: its MD5 is"):
        list(store.list())


def test_a_data_file_whose_md5_does_not_match_is_refused(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    store = make(report(client, world, "CSV", corrupt_file=True))
    with pytest.raises(StoreError, match=r"data file s3://.*/data/[0-9a-f-]+\.csv\.gz .*its MD5 is"):
        list(store.list())


def test_a_report_of_another_bucket_is_refused(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    store = make(report(client, world, "ORC", manifest_source="someone-elses-bucket"))
    with pytest.raises(StoreError, match=r"manifest\.json: it is a report of bucket 'someone-elses-bucket'"):
        list(store.list())


def test_a_data_file_listing_another_bucket_is_refused(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    store = make(report(client, world, "Parquet", rows_bucket="someone-elses-bucket"))
    with pytest.raises(StoreError, match=r"data file .* lists objects of bucket 'someone-elses-bucket'"):
        list(store.list())


def test_a_data_file_without_a_column_of_the_schema_is_refused(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    # Parquet reads the columns a file has (ORC's reader refuses to select a missing one itself)
    store = make(report(client, world, "Parquet", missing_column="e_tag"))
    with pytest.raises(StoreError, match=r"data file .* has no column 'e_tag' though fileSchema names it"):
        list(store.list())


def test_a_location_of_another_bucket_is_refused(
    world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    with pytest.raises(StoreError, match="is not of bucket"):
        make(f"s3://{world['dest']}/inventories/another-bucket/daily/")


def test_a_stale_report_is_refused(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    taken = (datetime.now(UTC) - timedelta(hours=50)).replace(second=0, microsecond=0)
    store = make(report(client, world, "Parquet", taken=taken))
    with pytest.raises(StoreError, match=r"report s3://.*manifest\.json was taken 5\d\.\d h ago"):
        list(store.list())
    # the same report within a longer max_inventory_age is used
    patient = make(store.location, max_age=timedelta(days=3))
    assert len(list(patient.list())) == len(list(patient.live.list()))


def test_a_schema_without_key_is_refused(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    store = make(report(client, world, "CSV", schema=["Bucket", "Size", "LastModifiedDate", "ETag"]))
    with pytest.raises(StoreError, match=r"manifest\.json: its fileSchema has no Key column"):
        list(store.list())


def test_no_report_is_refused(world: dict[str, Any], make: Callable[..., InventoryStore]) -> None:
    store = make(f"s3://{world['dest']}/inventories/{world['source']}/daily/")
    with pytest.raises(StoreError, match="no complete inventory report under s3://"):
        list(store.list())


def test_a_report_still_being_delivered_is_passed_over(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    older = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    location = report(client, world, "Parquet", taken=older, rows=[Row("root/a", 1, older, "e")])
    report(client, world, "Parquet", with_checksum=False, seed=1)  # the newest: no checksum yet
    store = make(location)
    assert [i.key for i in store.list()] == ["a"]
    assert store.listed_as_of() == older


# ---- split points


def test_split_points_cut_the_report_into_even_ranges(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    store = make(report(client, world, "Parquet"))
    keys = [i.key for i in store.list()]
    points = store.split_points(4)
    assert points == sorted(set(points))
    assert len(points) == 3
    bounds = [None, *points, None]
    sizes = [
        sum(1 for k in keys if (low is None or k >= low) and (high is None or k < high))
        for low, high in itertools.pairwise(bounds)
    ]
    assert sum(sizes) == len(keys)
    assert max(sizes) - min(sizes) <= 2
    assert store.split_points(1) == []


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet="ab./\x00é", max_size=8))
def test_the_report_s_key_filter_agrees_with_validate_key(key: str) -> None:
    """Invariant 8 in Arrow compute: a report key is listed exactly when it is a valid store key."""
    listed = _key_filter(pa.array([key]), KeyFilter("")).to_pylist() == [True]
    try:
        validate_key(key)
    except ValueError:
        valid = False
    else:
        valid = True
    assert listed == valid


def test_include_limits_the_listing_to_its_prefixes(
    client: Any, world: dict[str, Any], make: Callable[..., InventoryStore]
) -> None:
    store = make(report(client, world, "CSV"), include=["dir/", "shard/00"])
    listed = [i.key for i in store.list()]
    assert listed == [i.key for i in store.live.list() if i.key.startswith(("dir/", "shard/00"))]
    assert listed
