"""``mode = "versioned"`` in distributed runs, on versioned buckets of moto's S3 server.

Twin buckets with the same keys and references: the single-process ``reclaim
run`` works one, the coordinator with real Celery workers (separate
processes, on the Redis broker) the other, key range by key range. What
happened is compared by reading both buckets with boto3 (beside reclaim):
every version and delete marker of every key (and whether each version is the
one first uploaded), every journal entry (state, mode, note, the version and
marker it records) and the run record's counts. The guards are the
single-process run's: the bucket's versioning and lifecycle rules are checked
by the coordinator before any range is sent, and by every worker before its
range is listed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle.archive import Archive, make_archive
from reclaim import api
from reclaim.catalog import Journal, State, open_catalog
from reclaim.distributed import InProcess, RangeTask, run, run_range, split
from reclaim.distributed.worker import ConfigSpec
from reclaim.errors import ConfigError

from .conftest import counts, side_by_side_with_a_kill, workers

pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[dev]'")
boto3 = pytest.importorskip("boto3")

PREFIX = "data/"
KEYS = {f"{letter}/{i:02d}": i % 3 == 0 for letter in "abcdef" for i in range(8)}
ORPHANS = sorted(key for key, referenced in KEYS.items() if not referenced)
SPLITS = {"main": ["b/", "c/04", "e/"]}  # four ranges, one of them cutting a directory in two


class Bucket:
    """A bucket on the test server, read with boto3 (not through reclaim)."""

    def __init__(self, endpoint: str, *, versioning: str | None = "Enabled") -> None:
        self.name = f"reclaim-dv-{secrets.token_hex(4)}"
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.client.create_bucket(Bucket=self.name)
        if versioning is not None:
            self.versioning(versioning)
        self.ids: dict[str, str] = {}
        self.data: dict[str, bytes] = {}

    def versioning(self, status: str) -> None:
        self.client.put_bucket_versioning(Bucket=self.name, VersioningConfiguration={"Status": status})

    def put(self, key: str, data: bytes) -> None:
        response = self.client.put_object(Bucket=self.name, Key=PREFIX + key, Body=data)
        self.ids[key] = str(response.get("VersionId", "null"))
        self.data[key] = data

    def lifecycle(self, days: int) -> None:
        rule = {
            "ID": f"noncurrent-{days}",
            "Status": "Enabled",
            "Filter": {"Prefix": PREFIX},
            "NoncurrentVersionExpiration": {"NoncurrentDays": days},
        }
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.name, LifecycleConfiguration={"Rules": [rule]}
        )

    def all_versions(self) -> dict[str, list[tuple[bool, bool, bool]]]:
        """Per key: each version or marker as ``(marker, latest, the version first uploaded)``."""
        out: dict[str, list[tuple[bool, bool, bool]]] = {}
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.name, Prefix=PREFIX)
        for page in pages:
            for marker, items in ((False, page.get("Versions", ())), (True, page.get("DeleteMarkers", ()))):
                for item in items:
                    key = item["Key"][len(PREFIX) :]
                    first = not marker and item["VersionId"] == self.ids.get(key)
                    out.setdefault(key, []).append((marker, bool(item["IsLatest"]), first))
        return {key: sorted(found) for key, found in sorted(out.items())}

    def served(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.name, Key=PREFIX + key)
        except self.client.exceptions.NoSuchKey:
            return None
        assert str(response.get("VersionId")) == self.ids[key]  # the same version, never a copy
        return bytes(response["Body"].read())


Twin = tuple[Archive, Bucket]


@pytest.fixture
def twin(tmp_path: Path, s3_server: str, s3_options: dict[str, Any]) -> Iterator[Callable[..., Twin]]:
    """An archive on a fresh bucket holding ``KEYS`` (the referenced ones in its table)."""
    made: list[Archive] = []

    def make(
        name: str, *, versioning: str | None = "Enabled", extra: str = "", lifecycle: int | None = None
    ) -> Twin:
        bucket = Bucket(s3_server, versioning=versioning)
        if lifecycle is not None:
            bucket.lifecycle(lifecycle)
        root = tmp_path / name
        root.mkdir()
        archive = make_archive(
            root,
            f"sqlite:///{root / 'app.sqlite'}",
            store_url=f"s3://{bucket.name}/{PREFIX}",
            storage_options=s3_options,
            mode="versioned",
            min_age="0",
            grace="0",
            extra=extra,
        )
        made.append(archive)
        for key, referenced in sorted(KEYS.items()):
            bucket.put(key, f"content of {key}: ".encode() + secrets.token_bytes(32))
            if referenced:
                archive.reference(key)
        return archive, bucket

    yield make
    for archive in made:
        archive.dispose()


def entries(archive: Archive, bucket: Bucket) -> dict[str, list[tuple[str, str, str | None, bool, bool]]]:
    """Per key, every journal entry: state, mode, note, whether it records the first version, a marker."""
    catalog = open_catalog(archive.config.catalog)
    try:
        journal = Journal(catalog)
        out: dict[str, list[tuple[str, str, str | None, bool, bool]]] = {}
        after = 0
        while batch := journal.select(store="main", states=list(State), after_id=after):
            for e in batch:
                row = (
                    e.state.value,
                    e.mode,
                    e.note,
                    e.version_id == bucket.ids[e.key],
                    e.marker_id is not None,
                )
                out.setdefault(e.key, []).append(row)
            after = batch[-1].id
        return out
    finally:
        catalog.dispose()


def outcome(archive: Archive, bucket: Bucket) -> tuple[Any, Any]:
    return bucket.all_versions(), entries(archive, bucket)


class Counting(InProcess):
    """The in-process dispatcher, counting the range tasks it was sent."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.sent: list[RangeTask] = []

    def map(self, tasks: Any, *, check: Callable[[], None]) -> list[dict[str, Any]]:
        self.sent += list(tasks)
        return super().map(tasks, check=check)


# -- the result equals the single-process run's -------------------------------------------


@pytest.mark.parametrize("purge", ["delete", "lifecycle"])
def test_a_distributed_run_on_real_workers_equals_the_single_process_run(
    tmp_path: Path, twin: Callable[..., Twin], queue: str, purge: str
) -> None:
    """Cycle 1 hides every orphan under a delete marker, cycle 2 purges (grace 0): both runs alike.

    With ``purge = "delete"`` the version and the marker are deleted; with ``"lifecycle"`` they
    are left to the bucket's noncurrent-version expiry (fails if a worker purges without the
    single process's ``lifecycle`` argument: it would delete the versions).
    """
    from reclaim.distributed.app import CeleryDispatcher, make_app

    extra, rule = (f'purge = "{purge}"', 1) if purge == "lifecycle" else ("", None)
    single, single_bucket = twin("single", extra=extra, lifecycle=rule)
    spread, spread_bucket = twin("spread", extra=extra, lifecycle=rule)
    assert len(split(spread.store(), partitions=4, boundaries=SPLITS["main"])) == 4
    dispatcher = CeleryDispatcher(make_app(queue=queue), timeout=180)
    try:
        with workers(queue, tmp_path / "workers.log", count=2):
            for cycle in range(2):
                expected = api.run(single.config_path)
                got = run(spread.config_path, dispatcher=dispatcher, boundaries=SPLITS)
                assert counts(spread, got.run_id) == counts(single, expected.run_id)
                assert outcome(spread, spread_bucket) == outcome(single, single_bucket)
                if cycle == 0:
                    assert got.quarantined[0].quarantined.count == len(ORPHANS)
                    assert all(spread_bucket.served(key) is None for key in ORPHANS)
    finally:
        dispatcher.close()
    assert got.purged[0].purged.count == len(ORPHANS)
    versions = spread_bucket.all_versions()
    for key in ORPHANS:
        if purge == "delete":
            assert key not in versions  # the version and its marker deleted
        else:
            assert versions[key] == [(False, False, True), (True, True, False)]  # left to the bucket
    for key, referenced in KEYS.items():
        if referenced:
            assert spread_bucket.served(key) == spread_bucket.data[key]


def test_a_worker_killed_after_its_hide_is_retried_and_the_result_still_equals(
    tmp_path: Path, twin: Callable[..., Twin], queue: str
) -> None:
    """A pool process SIGKILLed between its range's delete markers and their confirmation.

    The retry's recovery confirms the hidden keys (a marker over the recorded version); they are
    no longer listed, so the retry counts them as listed and quarantined by its first attempt, as
    the single process, which listed them, does (fails if the retry counts them as a ``mark``
    range's: the run record's ``listed`` and ``quarantined`` would fall short).
    """
    single, single_bucket = twin("single")
    spread, spread_bucket = twin("spread")
    expected, got = side_by_side_with_a_kill(
        single, spread, queue, tmp_path, "quarantine.after-hide:1", SPLITS
    )
    assert counts(spread, got.run_id) == counts(single, expected.run_id)
    assert spread_bucket.all_versions() == single_bucket.all_versions()
    final = {key: rows[-1][0] for key, rows in entries(spread, spread_bucket).items()}
    assert final == {key: rows[-1][0] for key, rows in entries(single, single_bucket).items()}
    assert set(final.values()) == {"QUARANTINED"}
    assert got.run_id is not None
    catalog = open_catalog(spread.config.catalog)
    try:
        record = catalog.get_run(got.run_id)
        assert record is not None
        assert record.counts["retried"]["main"]["confirmed"] > 0, record.counts
    finally:
        catalog.dispose()


def test_a_distributed_run_in_process_equals_on_a_partitioning_of_every_size(
    twin: Callable[..., Twin],
) -> None:
    """One range, a range per first-level directory, and ranges cutting directories: all alike."""
    for index, boundaries in enumerate([[], ["a/", "b/", "c/", "d/", "e/", "f/"], ["a/03", "c/", "c/05"]]):
        single, single_bucket = twin(f"single{index}")
        spread, spread_bucket = twin(f"spread{index}")
        expected = api.run(single.config_path)
        dispatcher = Counting(spread.config)
        got = run(spread.config_path, dispatcher=dispatcher, boundaries={"main": boundaries})
        assert counts(spread, got.run_id) == counts(single, expected.run_id)
        assert outcome(spread, spread_bucket) == outcome(single, single_bucket)
        assert {task.index for task in dispatcher.sent} == set(range(len(boundaries) + 1))


def test_restore_after_a_distributed_quarantine_brings_back_the_same_versions(
    twin: Callable[..., Twin],
) -> None:
    spread, bucket = twin("spread")
    got = run(spread.config_path, dispatcher=InProcess(spread.config), boundaries=SPLITS)
    assert got.quarantined[0].quarantined.count == len(ORPHANS)
    assert all(bucket.served(key) is None for key in ORPHANS)
    report = api.restore(spread.config_path, run_id=got.run_id)
    assert report.restored["main"].restored == len(ORPHANS)
    for key in KEYS:
        assert bucket.served(key) == bucket.data[key]  # the version first uploaded, current again
    versions = bucket.all_versions()
    assert all(versions[key] == [(False, True, True)] for key in KEYS)  # every marker deleted
    assert {rows[-1][0] for key, rows in entries(spread, bucket).items()} == {"RESTORED"}


def test_split_and_a_range_listing_on_a_versioned_bucket(twin: Callable[..., Twin]) -> None:
    """The first-level listing splits a versioned bucket; each range lists only its served keys."""
    spread, bucket = twin("spread")
    hidden = ["a/01", "c/04", "c/05", "f/07"]
    bucket.client.delete_objects(
        Bucket=bucket.name, Delete={"Objects": [{"Key": PREFIX + key} for key in hidden]}
    )
    store = spread.store()
    ranges = split(store, partitions=3)
    assert len(ranges) == 3
    served = sorted(set(KEYS) - set(hidden))
    listed: list[str] = []
    for key_range in ranges:
        part = [
            info.key
            for info in store.list(start_after=key_range.start_after, end_before=key_range.end_before)
        ]
        part = [key for key in part if key in key_range]
        assert part == [key for key in served if key in key_range]
        listed += part
    assert listed == served


# -- the single-process run's guards ------------------------------------------------------


@pytest.mark.parametrize("versioning", [None, "Suspended"])
def test_a_bucket_without_versioning_is_refused_before_any_range_is_sent(
    twin: Callable[..., Twin], versioning: str | None
) -> None:
    """Fails without the coordinator's check: the workers' purge would delete the due versions first."""
    spread, bucket = twin("spread")
    run(spread.config_path, dispatcher=InProcess(spread.config), boundaries=SPLITS)  # hides the orphans
    if versioning is None:
        bucket = _copy_unversioned(bucket, spread)
    else:
        bucket.versioning(versioning)
    before = outcome(spread, bucket)
    dispatcher = Counting(spread.config)
    with pytest.raises(ConfigError, match="versioning is Enabled") as raised:
        run(spread.config_path, dispatcher=dispatcher, boundaries=SPLITS)
    assert raised.value.field == "stores.main.mode"
    assert dispatcher.sent == []
    assert outcome(spread, bucket) == before  # due entries not purged, nothing hidden


def _copy_unversioned(bucket: Bucket, archive: Archive) -> Bucket:
    """A bucket that never had versioning, holding what ``bucket`` serves, in place of it in the config."""
    endpoint = bucket.client.meta.endpoint_url
    fresh = Bucket(endpoint, versioning=None)
    for key in KEYS:
        data = bucket.served(key)
        if data is not None:
            fresh.put(key, data)
    fresh.ids = {**bucket.ids, **fresh.ids}  # the journal's versions are the first bucket's
    text = archive.config_path.read_text()
    archive.config_path.write_text(text.replace(bucket.name, fresh.name))
    return fresh


def test_a_lifecycle_purge_without_a_rule_is_refused_before_any_range_is_sent(
    twin: Callable[..., Twin],
) -> None:
    """Fails without the coordinator's check: the purge would count as purged what nothing expires."""
    spread, bucket = twin("spread", extra='purge = "lifecycle"', lifecycle=1)
    run(spread.config_path, dispatcher=InProcess(spread.config), boundaries=SPLITS)  # hides the orphans
    bucket.client.delete_bucket_lifecycle(Bucket=bucket.name)
    before = outcome(spread, bucket)
    dispatcher = Counting(spread.config)
    with pytest.raises(ConfigError, match="no lifecycle configuration") as raised:
        run(spread.config_path, dispatcher=dispatcher, boundaries=SPLITS)
    assert raised.value.field == "stores.main.purge"
    assert dispatcher.sent == []
    assert outcome(spread, bucket) == before
    assert {rows[-1][0] for key, rows in entries(spread, bucket).items()} == {"QUARANTINED"}


def _task(archive: Archive, phase: str, run_id: int, token: str, fence: int) -> RangeTask:
    return RangeTask(
        phase=phase,  # type: ignore[arg-type]
        store="main",
        first="b/",
        end_before="e/",
        config=ConfigSpec(path=str(archive.config_path)),
        run_id=run_id,
        token=token,
        fence=fence,
        index=1,
        options={"phase_start": "2000-01-01T00:00:00+00:00", "scan_start": None},
    )


def _leased(archive: Archive) -> Iterator[tuple[int, str, int]]:
    from reclaim.catalog import Leases

    catalog = open_catalog(archive.config.catalog)
    try:
        run_id = catalog.start_run("run", {}, dry_run=False)
        leases = Leases(catalog)
        lease = leases.acquire("test coordinator", run_id=run_id)
        try:
            yield run_id, lease.token, lease.fence
        finally:
            leases.release(lease)
    finally:
        catalog.dispose()


def test_a_worker_checks_the_bucket_again_before_its_range(twin: Callable[..., Twin]) -> None:
    """The bucket changed after the coordinator's check: each worker refuses its range, nothing moves.

    Quarantine with ``purge = "lifecycle"`` and no rule left fails without the worker's check (the
    plan's own check before hiding is the ``purge = "delete"`` one); the purge likewise (it would
    leave the versions to an expiry that no rule makes).
    """
    spread, bucket = twin("spread", extra='purge = "lifecycle"', lifecycle=1)
    for phase in ("quarantine", "purge"):
        if phase == "purge":
            bucket.lifecycle(1)
            run(spread.config_path, dispatcher=InProcess(spread.config), boundaries=SPLITS)
        bucket.client.delete_bucket_lifecycle(Bucket=bucket.name)
        before = outcome(spread, bucket)
        for run_id, token, fence in _leased(spread):
            with pytest.raises(ConfigError, match="no lifecycle configuration"):
                run_range(_task(spread, phase, run_id, token, fence))
        assert outcome(spread, bucket) == before, phase
