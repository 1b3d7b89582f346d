"""The audit log stays true after a crash: a killed or interrupted run is closed with what it did."""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reclaim import api
from reclaim.catalog import Journal, State, open_catalog
from reclaim.lifecycle import quarantine as quarantine_step
from reclaim.lifecycle.faults import POINTS

from .archive import Archive, make_archive

N = 12


def _archive(tmp_path: Path, url: str, count: int = N) -> Archive:
    archive = make_archive(tmp_path, url, catalog_url=url)
    for i in range(count):
        archive.put(f"blobs/{i:04d}")
    return archive


def _reclaim(archive: Archive, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("RECLAIM_FAULT", "RECLAIM_PAUSE")}
    return subprocess.Popen(
        [sys.executable, "-m", "reclaim", *args, "--config", str(archive.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environ, **env},
    )


def _run(archive: Archive, *args: str) -> tuple[int, str]:
    process = _reclaim(archive, *args)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def _entries_of(archive: Archive, run_id: int) -> list[tuple[str, State]]:
    catalog = open_catalog(archive.config.catalog)
    try:
        entries = Journal(catalog).select(store="main", states=list(State), run_id=run_id, limit=100_000)
        return [(entry.key, entry.state) for entry in entries]
    finally:
        catalog.dispose()


@pytest.mark.parametrize("attempt", range(3))
def test_a_killed_run_is_closed_by_the_next_with_what_the_journal_shows(
    tmp_path: Path, db_url: str, attempt: int
) -> None:
    archive = _archive(tmp_path, db_url)
    rng = random.Random(secrets.randbits(32))
    try:
        if rng.random() < 0.5:
            command, points = "quarantine", [p for p in POINTS if p.startswith("quarantine.")]
        else:
            assert _run(archive, "quarantine")[0] == 0
            command, points = "purge", [p for p in POINTS if p.startswith("purge.")]
        point = rng.choice(points)
        killed = _reclaim(archive, command, RECLAIM_FAULT=f"{point}:1")
        _, err = killed.communicate(timeout=120)
        assert killed.returncode == -signal.SIGKILL, f"{command} at {point}: {err}"
        dead = api.runs(archive.config_path)[0]
        assert (dead.command, dead.status) == (command, "running")
        # what the journal shows the dead run did, before anything settles it
        touched = _entries_of(archive, dead.id) if command == "quarantine" else None

        code, err = _run(archive, "recover")
        assert code == 0, err

        record = api.runs(archive.config_path, run_id=dead.id)[0]
        assert record.status == "aborted", (command, point)
        assert record.error is not None
        assert "closed by run" in record.error
        tally = record.counts.get("journal", {}).get("main", {})
        if touched is not None:  # every entry the dead quarantine created, by the state it left it in
            expected: dict[str, int] = {}
            for _, state in touched:
                expected[state.value] = expected.get(state.value, 0) + 1
            assert {state: counts["count"] for state, counts in tally.items()} == expected
        else:
            assert sum(counts["count"] for counts in tally.values()) == N  # the purge claimed them all
        # no run stays "running" once nobody holds the lease
        assert all(run.status != "running" for run in api.runs(archive.config_path))
    finally:
        archive.dispose()


def test_an_interrupted_run_records_what_it_completed(tmp_path: Path, sqlite_url: str) -> None:
    batch = quarantine_step.BATCH
    archive = _archive(tmp_path, sqlite_url, count=2 * batch + 200)  # three batches
    try:
        paused = _reclaim(archive, "quarantine", RECLAIM_PAUSE="quarantine.after-confirm:1")
        while Path(f"/proc/{paused.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert paused.poll() is None, paused.communicate()[1]
            time.sleep(0.02)
        paused.send_signal(signal.SIGINT)  # Ctrl-C, delivered once it goes on
        paused.send_signal(signal.SIGCONT)
        paused.communicate(timeout=120)
        assert paused.returncode != 0

        record = api.runs(archive.config_path)[0]
        assert record.command == "quarantine"
        assert record.status == "aborted"
        assert record.error is not None
        assert "interrupted" in record.error
        assert record.counts["journal"]["main"]["QUARANTINED"]["count"] == batch
        assert record.counts["journal"]["main"]["QUARANTINED"]["bytes"] == batch * len(b"payload")
    finally:
        archive.dispose()
