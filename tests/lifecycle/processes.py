"""Real ``reclaim`` processes for the lifecycle tests, paused at fault points (``RECLAIM_PAUSE``).

A test starts a command with ``pause="<point>:<n>"``; the process stops
itself (SIGSTOP) at the n-th visit of that point (:mod:`reclaim.lifecycle.faults`),
the test changes the world while it is stopped, then resumes it (SIGCONT).
What happens in between is therefore fixed by construction, not by timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reclaim.catalog import Journal, Leases, open_catalog

from .archive import Archive

LEASE_LOST = 12


def start(archive: Archive, *args: str, pause: str | None = None) -> subprocess.Popen[str]:
    """Start ``reclaim ARGS --config …`` (stopping itself at ``pause`` when given)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RECLAIM_FAULT", "RECLAIM_PAUSE")}
    if pause:
        env["RECLAIM_PAUSE"] = pause
    return subprocess.Popen(
        [sys.executable, "-m", "reclaim", *args, "--config", str(archive.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(archive: Archive, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``reclaim ARGS`` to its end."""
    process = start(archive, *args)
    out, err = process.communicate(timeout=180)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def wait_stopped(process: subprocess.Popen[str]) -> None:
    """Wait until ``process`` has stopped itself (state T); fail if it ended instead."""
    while True:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the collector ended (exit {process.returncode}) before pausing:\n{out}\n{err}")
        stat = Path(f"/proc/{process.pid}/stat").read_text()
        if stat[stat.rindex(")") + 2] == "T":
            return
        time.sleep(0.02)


def wait_until_stale(archive: Archive) -> None:
    """Wait until the paused holder's lease can be taken over: past its expiry and margin.

    By then the holder's own clock is past its self-fencing deadline too
    (``2 * margin`` earlier), so its next lease check fails.
    """
    catalog = open_catalog(archive.config.catalog)
    try:
        leases = Leases(catalog)
        while True:
            info = leases.show()
            if info.token is None or info.past_safe(datetime.now(UTC) - timedelta(milliseconds=200)):
                return
            time.sleep(0.1)
    finally:
        catalog.dispose()


def in_flight(archive: Archive) -> list[str]:
    """The keys of store ``main`` with an in-flight journal entry."""
    catalog = open_catalog(archive.config.catalog)
    try:
        return [entry.key for entry in Journal(catalog).in_flight("main")]
    finally:
        catalog.dispose()


def with_lease_ttl(archive: Archive, ttl: str) -> None:
    """Set ``[catalog] lease_ttl`` in the archive's config (3s, the least, makes takeovers quick)."""
    text = archive.config_path.read_text().replace("[catalog]\n", f'[catalog]\nlease_ttl = "{ttl}"\n', 1)
    archive.config_path.write_text(text)
