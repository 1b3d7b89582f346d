"""Restoring purged objects from the noncurrent versions of a versioned S3 bucket (moto's server)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fsspec.asyn import sync

from reclaim import api
from reclaim.catalog import Entry, Journal, State, open_catalog
from reclaim.errors import ConfigError, StoreError
from reclaim.lifecycle import restore_purged
from reclaim.stores import is_versioned

from .archive import Archive, make_archive

pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
boto3 = pytest.importorskip("boto3")

from reclaim.stores.s3 import S3Store  # noqa: E402  (after the skips above)

LIVE = [f"blobs/live/{i:03d}" for i in range(3)]
ORPHANS = [f"blobs/orphan/{i:03d}" for i in range(3)]


def content(key: str) -> bytes:
    return f"content of {key}: ".encode() + secrets.token_bytes(64)


@pytest.fixture
def make_bucket(s3_server: str) -> Callable[..., str]:
    def make(*, versioned: bool = True) -> str:
        name = f"reclaim-v-{secrets.token_hex(4)}"
        client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    return make


def purged_archive(
    tmp_path: Path, sqlite_url: str, bucket: str, s3_options: dict[str, Any]
) -> tuple[Archive, dict[str, bytes], int]:
    """An archive whose orphans were quarantined (the run id is returned) and purged."""
    a = make_archive(
        tmp_path, sqlite_url, store_url=f"s3://{bucket}/data/", storage_options=s3_options, min_age="0"
    )
    data = {key: content(key) for key in LIVE + ORPHANS}
    for key, value in data.items():
        a.put(key, value)
    for key in LIVE:
        a.reference(key)
    quarantined = api.quarantine(a.config_path, grace=timedelta(0))
    assert quarantined.quarantined[0].quarantined.count == len(ORPHANS)
    assert quarantined.run_id is not None
    purge = api.purge(a.config_path)
    assert purge.purged[0].purged.count == len(ORPHANS)
    store = a.store()
    assert not any(store.exists(key) for key in ORPHANS)
    assert all(store.read(key) == data[key] for key in LIVE)
    return a, data, quarantined.run_id


def latest(archive: Archive, key: str) -> Entry:
    catalog = open_catalog(archive.config.catalog)
    try:
        entry = Journal(catalog).latest("main", key)
    finally:
        catalog.dispose()
    assert entry is not None
    return entry


PurgedArchive = tuple[Archive, dict[str, bytes], int]


@pytest.fixture
def purged(
    tmp_path: Path, sqlite_url: str, make_bucket: Callable[..., str], s3_options: dict[str, Any]
) -> Iterator[Callable[..., PurgedArchive]]:
    """Make a purged archive (on a versioned bucket unless told otherwise); dispose it afterwards."""
    made: list[Archive] = []

    def make(*, versioned: bool = True) -> PurgedArchive:
        result = purged_archive(tmp_path, sqlite_url, make_bucket(versioned=versioned), s3_options)
        made.append(result[0])
        return result

    yield make
    for archive in made:
        archive.dispose()


def test_purged_objects_come_back_byte_identical(purged: Callable[..., PurgedArchive]) -> None:
    a, data, _ = purged()
    report = api.restore(a.config_path, keys=ORPHANS[:2], store="main", purged=True)
    result = report.restored["main"]
    assert result.restored == 2
    assert result.restored_bytes == sum(len(data[k]) for k in ORPHANS[:2])
    assert result.missing == []
    assert result.kept_newer == []
    store = a.store()
    assert [store.read(key) for key in ORPHANS[:2]] == [data[key] for key in ORPHANS[:2]]
    assert not store.exists(ORPHANS[2])
    for key in ORPHANS[:2]:
        entry = latest(a, key)
        assert entry.state is State.RESTORED
        assert entry.note == "restored from a noncurrent version"
        assert entry.mode == "mark"
        assert entry.trash_key is None
        assert entry.run_id == report.run_id
    assert latest(a, ORPHANS[2]).state is State.PURGED
    # restored objects are referenced by nothing: the next collection finds them again
    status = api.status(a.config_path)
    assert status.stores[0].summary.restored == 2


def test_restore_by_the_quarantine_run(purged: Callable[..., PurgedArchive]) -> None:
    a, data, run_id = purged()
    dry = api.restore(a.config_path, run_id=run_id, purged=True, dry_run=True)
    assert dry.restored["main"].restored == len(ORPHANS)
    assert not any(a.store().exists(key) for key in ORPHANS)
    report = api.restore(a.config_path, run_id=run_id, purged=True)
    assert report.restored["main"].restored == len(ORPHANS)
    store = a.store()
    assert all(store.read(key) == data[key] for key in ORPHANS)
    assert all(latest(a, key).state is State.RESTORED for key in ORPHANS)
    # a second restore finds every key occupied (by the restored objects) and overwrites nothing
    again = api.restore(a.config_path, run_id=run_id, purged=True)
    assert again.restored["main"].restored == 0
    assert sorted(again.restored["main"].kept_newer) == ORPHANS
    assert all(store.read(key) == data[key] for key in ORPHANS)


def test_restore_by_glob_restores_only_matching_keys(purged: Callable[..., PurgedArchive]) -> None:
    a, data, _ = purged()
    report = api.restore(a.config_path, match="*/001", purged=True)
    assert report.restored["main"].restored == 1
    store = a.store()
    assert store.read(ORPHANS[1]) == data[ORPHANS[1]]
    assert not store.exists(ORPHANS[0])
    assert not store.exists(ORPHANS[2])


def test_unversioned_bucket_reports_missing(purged: Callable[..., PurgedArchive]) -> None:
    a, _, _ = purged(versioned=False)
    report = api.restore(a.config_path, keys=ORPHANS, store="main", purged=True)
    result = report.restored["main"]
    assert result.restored == 0
    assert sorted(result.missing) == ORPHANS
    assert not any(a.store().exists(key) for key in ORPHANS)
    for key in ORPHANS:
        entry = latest(a, key)
        assert entry.state is State.PURGED
        assert entry.note == "no noncurrent version left"


def test_a_key_reuploaded_after_the_purge_is_not_overwritten(purged: Callable[..., PurgedArchive]) -> None:
    a, data, _ = purged()
    a.put(ORPHANS[0], b"uploaded again after the purge")
    report = api.restore(a.config_path, keys=ORPHANS[:2], store="main", purged=True)
    result = report.restored["main"]
    assert result.kept_newer == [ORPHANS[0]]
    assert result.restored == 1
    store = a.store()
    assert store.read(ORPHANS[0]) == b"uploaded again after the purge"
    assert store.read(ORPHANS[1]) == data[ORPHANS[1]]
    entry = latest(a, ORPHANS[0])
    assert entry.state is State.RESTORED
    assert entry.note == "key re-uploaded"


def test_unknown_key_is_refused_before_anything_is_restored(purged: Callable[..., PurgedArchive]) -> None:
    a, _, _ = purged()
    with pytest.raises(api.UnknownItem, match="no purged object"):
        api.restore(a.config_path, keys=[ORPHANS[0], LIVE[0]], store="main", purged=True)
    assert not a.store().exists(ORPHANS[0])


def expire_journal(archive: Archive) -> None:
    """Drop every finished journal entry, as ``retention`` does once it has passed."""
    catalog = open_catalog(archive.config.catalog)
    try:
        Journal(catalog).expire(datetime.now(UTC) + timedelta(days=1))
    finally:
        catalog.dispose()


def test_restore_purged_falls_back_to_the_bucket_once_the_entry_expired(
    purged: Callable[..., PurgedArchive],
) -> None:
    """Issue 13: with its journal entry gone, a purged key still comes back from its noncurrent version."""
    a, data, _ = purged()
    expire_journal(a)
    catalog = open_catalog(a.config.catalog)
    try:
        assert Journal(catalog).latest("main", ORPHANS[0]) is None
    finally:
        catalog.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "reclaim", "restore", "--purged", "--store", "main", "--json",
         "--config", str(a.config_path), ORPHANS[0], ORPHANS[1]],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["restored"]["main"]
    assert result["restored"] == 2
    assert result["restored_bytes"] == sum(len(data[k]) for k in ORPHANS[:2])
    store = a.store()
    assert [store.read(k) for k in ORPHANS[:2]] == [data[k] for k in ORPHANS[:2]]
    assert not store.exists(ORPHANS[2])
    for key in ORPHANS[:2]:
        entry = latest(a, key)
        assert entry.state is State.RESTORED
        assert entry.note == "restored from a noncurrent version"


def test_fallback_reports_a_key_the_bucket_never_kept_as_missing(
    purged: Callable[..., PurgedArchive],
) -> None:
    a, _, _ = purged()
    expire_journal(a)
    report = api.restore(a.config_path, keys=["blobs/never/stored"], store="main", purged=True)
    result = report.restored["main"]
    assert (result.restored, result.missing) == (0, ["blobs/never/stored"])
    assert not a.store().exists("blobs/never/stored")


def test_fallback_never_touches_a_key_that_holds_an_object(purged: Callable[..., PurgedArchive]) -> None:
    """A live key (a current version) is no purged object: refused before anything is restored."""
    a, _, _ = purged()
    expire_journal(a)
    a.put(ORPHANS[0], b"uploaded again after the purge")
    with pytest.raises(api.UnknownItem, match="no purged object"):
        api.restore(a.config_path, keys=[ORPHANS[1], ORPHANS[0]], store="main", purged=True)
    store = a.store()
    assert store.read(ORPHANS[0]) == b"uploaded again after the purge"
    assert not store.exists(ORPHANS[1])


def test_fallback_dry_run_restores_nothing(purged: Callable[..., PurgedArchive]) -> None:
    a, _, _ = purged()
    expire_journal(a)
    report = api.restore(a.config_path, keys=ORPHANS[:1], store="main", purged=True, dry_run=True)
    assert report.restored["main"].restored == 1
    assert not a.store().exists(ORPHANS[0])


def test_local_store_cannot_restore_purged(tmp_path: Path, sqlite_url: str) -> None:
    a = make_archive(tmp_path, sqlite_url)
    try:
        with pytest.raises(ConfigError, match="versioned S3 bucket"):
            api.restore(a.config_path, store="main", purged=True)
    finally:
        a.dispose()


def test_restore_purged_refuses_a_store_that_keeps_no_versions(tmp_path: Path, sqlite_url: str) -> None:
    """The lifecycle step itself refuses a store that is no VersionedStore, before any journal entry."""
    a = make_archive(tmp_path, sqlite_url, min_age="0")
    try:
        for key in [*LIVE, ORPHANS[0]]:
            a.put(key, content(key))
        for key in LIVE:
            a.reference(key)
        api.quarantine(a.config_path, grace=timedelta(0))
        api.purge(a.config_path)
        entry = latest(a, ORPHANS[0])
        assert entry.state is State.PURGED
        store = a.store()
        assert not is_versioned(store)
        catalog = open_catalog(a.config.catalog)
        try:
            with pytest.raises(StoreError, match="keeps no object versions"):
                restore_purged(store, Journal(catalog), [entry], run_id=None, trash_prefix="_trash/")
        finally:
            catalog.dispose()
        assert latest(a, ORPHANS[0]) == entry  # nothing was journaled
    finally:
        a.dispose()


# -- S3Store.restore_version ------------------------------------------------------------


@pytest.fixture
def versioned_store(
    make_bucket: Callable[..., str], s3_server: str, s3_options: dict[str, Any]
) -> Iterator[tuple[S3Store, Any, str]]:
    bucket = make_bucket()
    store = S3Store("blobs", f"s3://{bucket}/root", s3_options)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    yield store, client, bucket
    store.close()


def test_restore_version_takes_the_newest_version_past_a_delete_marker(
    versioned_store: tuple[S3Store, Any, str],
) -> None:
    store, client, bucket = versioned_store
    store.write("a/key", b"first")
    store.write("a/key", b"second")
    store.write("a/key-longer", b"another key sharing the prefix")  # newer, must be ignored
    store.delete(["a/key"])  # a delete marker on top
    markers = client.list_object_versions(Bucket=bucket, Prefix="root/a/key")["DeleteMarkers"]
    assert [m["Key"] for m in markers] == ["root/a/key"]
    assert not store.exists("a/key")
    assert store.restore_version("a/key") is True
    assert store.read("a/key") == b"second"
    assert store.read("a/key-longer") == b"another key sharing the prefix"
    with pytest.raises(FileExistsError):
        store.restore_version("a/key")
    assert store.read("a/key") == b"second"
    # only delete markers of exactly "a/k": the versions of "a/key..." after it are not its own
    client.delete_object(Bucket=bucket, Key="root/a/k")
    assert store.restore_version("a/k") is False
    assert not store.exists("a/k")


def test_restore_version_pages_through_many_delete_markers(
    make_bucket: Callable[..., str], s3_server: str, s3_options: dict[str, Any]
) -> None:
    bucket = make_bucket()
    store = S3Store("blobs", f"s3://{bucket}/root", s3_options, max_keys=2)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    try:
        store.write("k", b"old")
        store.write("k", b"")
        for _ in range(5):  # each delete of a deleted key adds one more marker
            client.delete_object(Bucket=bucket, Key="root/k")
        listing = client.list_object_versions(Bucket=bucket, Prefix="root/k")
        assert len(listing["DeleteMarkers"]) == 5
        pages = [0]

        def hook(**_: Any) -> None:
            pages[0] += 1

        s3 = sync(store.fs.loop, store.fs.set_session)
        s3.meta.events.register("before-call.s3.ListObjectVersions", hook)
        assert store.restore_version("k") is True
        assert pages[0] >= 3  # two markers a page: the version is on the third
        assert store.read("k") == b""  # the newest version, even when empty
    finally:
        store.close()


def test_restore_version_without_versions(
    make_bucket: Callable[..., str], s3_options: dict[str, Any]
) -> None:
    bucket = make_bucket(versioned=False)
    store = S3Store("blobs", f"s3://{bucket}/root", s3_options)
    try:
        store.write("gone", b"x")
        store.delete(["gone"])
        assert store.restore_version("gone") is False
        assert store.restore_version("never/there") is False
        assert not store.exists("gone")
        store.write("present", b"y")
        with pytest.raises(FileExistsError):
            store.restore_version("present")
        with pytest.raises(ValueError, match="invalid key"):
            store.restore_version("../escape")
    finally:
        store.close()


def test_restore_version_on_a_missing_bucket_is_a_store_error(
    s3_options: dict[str, Any],
) -> None:
    options = {**s3_options, "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}}}
    store = S3Store("blobs", f"s3://reclaim-missing-{secrets.token_hex(4)}/root", options)
    try:
        with pytest.raises(StoreError):
            store.restore_version("key")
    finally:
        store.close()


def test_adaptive_retries_are_the_default_and_user_values_win(s3_options: dict[str, Any]) -> None:
    def client_config(options: dict[str, Any]) -> Any:
        store = S3Store("blobs", "s3://bucket/root", options)
        try:
            return sync(store.fs.loop, store.fs.set_session).meta.config
        finally:
            store.close()

    for _ in range(2):  # botocore rewrites the retries it is given: the defaults must survive
        config = client_config(s3_options)
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    given = {**s3_options, "config_kwargs": {"retries": {"max_attempts": 3}, "read_timeout": 7}}
    config = client_config(given)
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    assert config.read_timeout == 7
    assert given["config_kwargs"] == {"retries": {"max_attempts": 3}, "read_timeout": 7}  # not modified
    config = client_config({**s3_options, "config_kwargs": {"retries": {"mode": "standard"}}})
    assert config.retries == {"mode": "standard", "total_max_attempts": 11}


def _rule(prefix: str, days: int, **extra: Any) -> dict[str, Any]:
    return {
        "ID": f"expire-{prefix or 'all'}-{days}",
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "NoncurrentVersionExpiration": {"NoncurrentDays": days, **extra},
    }


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        (None, "no lifecycle configuration"),
        ([_rule("data/", 30)], None),
        ([_rule("", 30)], None),
        ([_rule("data/", 3)], "before the grace of 7 days ends"),
        ([_rule("data/", 30), _rule("data/sub/", 2)], "before the grace of 7 days ends"),
        ([_rule("other/", 30)], "no enabled rule"),
        ([_rule("data/sub/", 30)], "no enabled rule"),
        ([{**_rule("data/", 30), "Status": "Disabled"}], "no enabled rule"),
    ],
)
def test_noncurrent_expiry_must_cover_the_prefix_and_outlast_grace(
    make_bucket: Callable[..., str],
    s3_server: str,
    s3_options: dict[str, Any],
    rules: list[dict[str, Any]] | None,
    problem: str | None,
) -> None:
    """The check ``purge = "lifecycle"`` will rely on, against the S3 server's own lifecycle configuration."""
    bucket = make_bucket()
    if rules is not None:
        client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    store = S3Store("blobs", f"s3://{bucket}/data", s3_options)
    try:
        found = store.noncurrent_expiry_problem(timedelta(days=6, hours=1))  # rounds up to 7 days
        if problem is None:
            assert found is None
        else:
            assert found is not None
            assert problem in found
    finally:
        store.close()


def test_versioning_status_of_the_bucket(make_bucket: Callable[..., str], s3_options: dict[str, Any]) -> None:
    stores = [S3Store("blobs", f"s3://{make_bucket(versioned=v)}/data", s3_options) for v in (True, False)]
    try:
        assert [store.versioning_status() for store in stores] == ["Enabled", ""]
    finally:
        for store in stores:
            store.close()
