"""A store that fails in the middle of a purge: a clear error, nothing lost, state recoverable."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from reclaim import api
from reclaim.catalog import Journal, State, open_catalog
from reclaim.errors import StoreError

from .archive import make_archive

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

LIVE = [f"blobs/live/{i}" for i in range(3)]
ORPHANS = [f"blobs/orphan/{i}" for i in range(5)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def flaky_s3() -> Iterator[tuple[moto_server.ThreadedMotoServer, str]]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_store_failing_mid_purge(
    tmp_path: Path, sqlite_url: str, flaky_s3: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, endpoint = flaky_s3
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"flaky-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1, "read_timeout": 2},
    }
    archive = make_archive(
        tmp_path, sqlite_url, store_url=f"s3://{bucket}/", storage_options=options, min_age="0"
    )
    for key in LIVE + ORPHANS:
        archive.put(key)
    for key in LIVE:
        archive.reference(key)
    api.quarantine(archive.config_path, grace=timedelta(0))

    server.stop()  # the store goes away between quarantine and purge
    with pytest.raises(StoreError, match="store 'main'"):
        api.purge(archive.config_path)
    assert api.runs(archive.config_path)[0].status == "aborted"

    server.start()  # back again (moto keeps its buckets in this process)
    api.recover(archive.config_path)
    catalog = open_catalog(archive.config.catalog)
    try:
        journal = Journal(catalog)
        assert journal.in_flight("main") == []
        assert {journal.latest("main", k).state for k in ORPHANS} == {State.QUARANTINED}  # type: ignore[union-attr]
    finally:
        catalog.dispose()
    store = archive.store()
    assert all(store.exists(k) for k in LIVE + ORPHANS)
    report = api.purge(archive.config_path)
    assert report.purged[0].purged.count == len(ORPHANS)
    assert all(store.exists(k) for k in LIVE)
    assert not any(store.exists(k) for k in ORPHANS)
    archive.dispose()
