"""Scanning, quarantining and checking an S3 store through its S3 Inventory report (moto's server).

A report is a snapshot: these tests change the bucket after the report was
taken and check that nothing the report no longer describes is quarantined
(deleted: vanished; overwritten: changed; created: never listed), that the
report's date caps the age threshold, and that a scan through the report
equals a LIST scan of the same bucket, in all three formats.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim import api
from reclaim.catalog import Journal, State, open_catalog
from reclaim.lifecycle import Status, classify, scan_store

from .archive import Archive, make_archive

pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install -e '.[dev]'")
boto3 = pytest.importorskip("boto3")

from reclaim.stores.inventory import InventoryStore  # noqa: E402  (after the skips above)
from reclaim.stores.s3 import S3Store  # noqa: E402
from stores.inventory_reports import rows_of, write_report  # noqa: E402  (tests/ is on the path)

LIVE = [f"blobs/live/{i:03d}" for i in range(6)]
ORPHANS = [f"blobs/orphan/{i:03d}" for i in range(6)]


def soon() -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)


@pytest.fixture
def client(s3_server: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")


@pytest.fixture
def buckets(client: Any) -> tuple[str, str]:
    source, dest = f"reclaim-src-{secrets.token_hex(4)}", f"reclaim-dst-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=source)
    client.create_bucket(Bucket=dest)
    return source, dest


@pytest.fixture
def archive(
    tmp_path: Path, sqlite_url: str, s3_options: dict[str, Any], client: Any, buckets: tuple[str, str]
) -> Callable[..., Archive]:
    """An archive on the source bucket whose store lists from a report in ``fmt`` taken now."""
    source, dest = buckets

    def make(fmt: str = "Parquet", *, listing: str = "inventory", taken: datetime | None = None) -> Archive:
        for key in LIVE + ORPHANS:
            client.put_object(Bucket=source, Key=key, Body=key.encode())
        location = write_report(
            client,
            dest=dest,
            prefix="inv",
            source=source,
            config_id="daily",
            rows=rows_of(client, source),
            fmt=fmt,
            taken=taken or soon(),
        )
        extra = f'listing = "inventory"\ninventory = "{location}"' if listing == "inventory" else ""
        a = make_archive(
            tmp_path,
            sqlite_url,
            store_url=f"s3://{source}/",
            storage_options=s3_options,
            min_age="0",
            extra=extra,
        )
        for key in LIVE:
            a.reference(key)
        return a

    return make


def candidates_of(a: Archive) -> list[str]:
    report = api.scan(a.config_path, show=100)
    return sorted(info.key for info in report.stores[0].samples)


@pytest.mark.parametrize("fmt", ["CSV", "Parquet", "ORC"])
def test_a_scan_through_the_inventory_equals_the_list_scan(archive: Callable[..., Archive], fmt: str) -> None:
    a = archive(fmt)
    through = api.scan(a.config_path, show=100).stores[0]
    assert through.listed_as_of is not None
    text = a.config_path.read_text()
    kept = [line for line in text.splitlines() if not line.startswith(("listing =", "inventory ="))]
    a.config_path.write_text("\n".join(kept) + "\n")
    listed = api.scan(a.config_path, show=100).stores[0]
    assert listed.listed_as_of is None
    for name in ("listed", "referenced", "candidates", "young", "excluded", "vanished", "changed"):
        assert getattr(through, name) == getattr(listed, name), name
    assert [(i.key, i.size, i.etag) for i in through.samples] == [
        (i.key, i.size, i.etag) for i in listed.samples
    ]
    assert sorted(i.key for i in through.samples) == ORPHANS


def test_objects_deleted_or_overwritten_after_the_report_are_never_quarantined(
    archive: Callable[..., Archive], client: Any, buckets: tuple[str, str]
) -> None:
    a = archive("Parquet")
    source, _ = buckets
    deleted, overwritten = ORPHANS[0], ORPHANS[1]
    client.delete_object(Bucket=source, Key=deleted)
    client.put_object(Bucket=source, Key=overwritten, Body=b"a writer's new content, longer than before")
    scan = api.scan(a.config_path, show=100).stores[0]
    assert (scan.vanished.count, scan.changed.count) == (1, 1)
    assert sorted(i.key for i in scan.samples) == ORPHANS[2:]
    result = api.quarantine(a.config_path, grace=timedelta(0))
    assert result.quarantined[0].quarantined.count == len(ORPHANS) - 2
    catalog = open_catalog(a.config.catalog)
    try:
        journal = Journal(catalog)
        # not even an intent was recorded for them: they were never candidates
        assert journal.active("main", deleted) is None
        assert journal.active("main", overwritten) is None
        assert not journal.select(store="main", states=tuple(State), keys=[deleted, overwritten])
        quarantined = {e.key for e in journal.select(store="main", states=(State.QUARANTINED,))}
    finally:
        catalog.dispose()
    assert quarantined == set(ORPHANS[2:])
    assert client.get_object(Bucket=source, Key=overwritten)["Body"].read().startswith(b"a writer's")


def test_an_object_created_after_the_report_is_never_a_candidate(
    archive: Callable[..., Archive], client: Any, buckets: tuple[str, str]
) -> None:
    a = archive("CSV")
    source, _ = buckets
    client.put_object(Bucket=source, Key="blobs/orphan/new", Body=b"written after the report")
    assert "blobs/orphan/new" not in candidates_of(a)
    result = api.quarantine(a.config_path, grace=timedelta(0))
    assert result.quarantined[0].quarantined.count == len(ORPHANS)
    assert client.head_object(Bucket=source, Key="blobs/orphan/new")


def test_the_report_date_caps_the_age_threshold(
    s3_options: dict[str, Any], client: Any, buckets: tuple[str, str]
) -> None:
    source, dest = buckets
    for key in ORPHANS:
        client.put_object(Bucket=source, Key=key, Body=b"x")
    taken = soon()
    location = write_report(
        client,
        dest=dest,
        prefix="",
        source=source,
        config_id="c",
        rows=rows_of(client, source),
        fmt="ORC",
        taken=taken,
    )
    store = InventoryStore(S3Store("main", f"s3://{source}/", s3_options), location)
    try:
        later = taken + timedelta(hours=2)  # the scan runs two hours after the report
        kwargs: dict[str, Any] = {
            "trash_prefix": "_trash/",
            "scan_start": later,
            "min_age": timedelta(hours=1),
        }
        statuses = {c.status for c in classify(store, [], **kwargs)}
        # an hour old now, but minutes old when the report was taken: too young
        assert statuses == {Status.YOUNG}
        report = scan_store(store, [], action="collect", max_fraction=1.0, **kwargs)
        assert (report.candidates.count, report.young.count) == (0, len(ORPHANS))
        assert report.threshold == taken - timedelta(hours=1)
        # the LIST scan of the same bucket at the same instant calls them candidates
        live = scan_store(store.live, [], action="collect", max_fraction=1.0, **kwargs)
        assert live.candidates.count == len(ORPHANS)
    finally:
        store.close()


def test_check_through_the_inventory_asks_the_bucket_before_calling_a_reference_dangling(
    archive: Callable[..., Archive], client: Any, buckets: tuple[str, str]
) -> None:
    a = archive("Parquet")
    source, _ = buckets
    client.put_object(Bucket=source, Key="blobs/live/new", Body=b"uploaded after the report")
    a.reference("blobs/live/new")
    a.reference("blobs/live/never-uploaded")
    report = api.check(a.config_path)
    assert report.stores[0].dangling == 1
    assert [d.key for d in report.stores[0].sources[0].samples] == ["blobs/live/never-uploaded"]


def test_an_object_modified_after_the_report_was_taken_is_never_a_candidate(
    s3_options: dict[str, Any], client: Any, buckets: tuple[str, str]
) -> None:
    """Rows AWS wrote for objects modified after the report began (a rolling snapshot) are not trusted."""
    source, dest = buckets
    taken = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    for key in ORPHANS:
        client.put_object(Bucket=source, Key=key, Body=b"x")
    # the rows match the bucket exactly (size, ETag, mtime): only their dates are after `taken`
    rows = rows_of(client, source)
    location = write_report(
        client, dest=dest, prefix="", source=source, config_id="c", rows=rows, fmt="Parquet", taken=taken
    )
    store = InventoryStore(S3Store("main", f"s3://{source}/", s3_options), location)
    try:
        report = scan_store(
            store, [], action="collect", max_fraction=1.0, trash_prefix="_trash/", min_age=timedelta(0)
        )
    finally:
        store.close()
    assert (report.candidates.count, report.changed.count) == (0, len(ORPHANS))
