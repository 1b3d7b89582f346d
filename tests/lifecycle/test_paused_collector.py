"""A collector paused past its lease (SIGSTOP) and resumed (SIGCONT) never loses live data.

Each round is the attack that once lost objects: a real ``reclaim`` process
with ``lease_ttl = "3s"`` stops itself at a fault point (``RECLAIM_PAUSE``),
chosen at random among the instants between a lease check and the side effect
it guards (the worst place for a pause); its lease runs out; ``reclaim
recover`` in another process takes the lease over and settles what the first
left in flight; a writer commits rows referencing every key of that batch and
calls ``reclaim.ensure()`` for each; then the first process is resumed.

It must stop with exit 12 (lease lost) without changing anything, and every
key that ``ensure()`` did not answer ``gone`` for must be at its key with its
bytes intact. Rounds run on SQLite, PostgreSQL and MariaDB catalogs, in
``mark`` and ``move`` mode, pausing quarantine, purge and restore. More rounds:
``RECLAIM_PAUSE_ROUNDS=20``; a failing round prints its seed
(``RECLAIM_PAUSE_SEED``) to replay it.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
from pathlib import Path

import pytest

import reclaim
from reclaim.catalog import Journal, State, open_catalog

from .archive import Archive, make_archive
from .processes import LEASE_LOST, in_flight, start, wait_stopped, wait_until_stale, with_lease_ttl

N = 40
ROUNDS = int(os.environ.get("RECLAIM_PAUSE_ROUNDS", "1"))

#: (command paused, mode, fault point, what must be true before the command runs)
SCENARIOS = [
    ("purge", "mark", "purge.checked", "quarantined"),
    ("purge", "move", "purge.checked", "quarantined"),
    ("quarantine", "move", "quarantine.checked", "fresh"),
    ("quarantine", "mark", "quarantine.after-recheck", "fresh"),
    ("restore", "move", "restore.after-claim", "quarantined"),
]


def _world(tmp_path: Path, url: str, mode: str, round_: int) -> tuple[Archive, dict[str, bytes]]:
    archive = make_archive(tmp_path, url, catalog_url=url, mode=mode)
    with_lease_ttl(archive, "3s")
    # keys of their own each round: the catalog (on a server) is shared by the rounds of one test
    orphans = {
        f"blobs/r{round_}/{i % 4}/{i:03d}": f"payload {i} {secrets.token_hex(4)}".encode() for i in range(N)
    }
    for key, data in orphans.items():
        archive.put(key, data)
    return archive, orphans


@pytest.mark.slow
@pytest.mark.parametrize(("command", "mode", "point", "before"), SCENARIOS)
def test_a_collector_resumed_after_its_lease_changes_nothing(
    tmp_path: Path, db_url: str, command: str, mode: str, point: str, before: str
) -> None:
    for round_ in range(ROUNDS):
        seed = int(os.environ.get("RECLAIM_PAUSE_SEED", secrets.randbelow(2**32)))
        _round(tmp_path / f"round{round_}", db_url, round_, (command, mode, point, before), seed)


def _round(tmp_path: Path, url: str, round_: int, scenario: tuple[str, str, str, str], seed: int) -> None:
    command, mode, point, before = scenario
    tmp_path.mkdir()
    visit = random.Random(seed).randint(1, N) if point.endswith(".checked") else 1
    replay = f"RECLAIM_PAUSE_SEED={seed} ({command}, {mode}, pause at {point}:{visit})"
    archive, orphans = _world(tmp_path, url, mode, round_)
    try:
        # only the paused collector needs to be a process; the other runs go through the API here
        if before == "quarantined":
            reclaim.quarantine(archive.config_path)
        args = ["restore", "--store", "main", "--json"] if command == "restore" else [command, "--json"]
        paused = start(archive, *args, pause=f"{point}:{visit}")
        try:
            wait_stopped(paused)
            batch = in_flight(archive)
            assert batch, f"{replay}: nothing was in flight at the pause"
            wait_until_stale(archive)
            reclaim.recover(archive.config_path)
            # the writer: rows for every key of the paused batch, committed, then the claim
            answers = {}
            for key in batch:
                archive.reference(key)
                answers[key] = reclaim.ensure(archive.config_path, "main", key, timeout=30)
        finally:
            paused.send_signal(signal.SIGCONT)
            out, err = paused.communicate(timeout=180)
        assert paused.returncode == LEASE_LOST, f"{replay}: exit {paused.returncode}: {err}"
        assert "lease" in err
        assert json.loads(out)["error"]["type"] == "LeaseLost"  # --json: the error on stdout too

        store = archive.store()
        vouched = [key for key, answer in answers.items() if answer is not reclaim.Ensured.GONE]
        assert vouched, f"{replay}: ensure() answered gone for every key; the round proved nothing"
        lost = [key for key in vouched if not store.exists(key) or store.read(key) != orphans[key]]
        assert not lost, f"{replay}: ensure() vouched for {lost}, which the resumed collector took"
        # the writer uploads what ensure() said is gone; then the next cycles keep every referenced key
        for key, answer in answers.items():
            if answer is reclaim.Ensured.GONE:
                store.write(key, orphans[key])
        reclaim.recover(archive.config_path)
        reclaim.quarantine(archive.config_path)
        reclaim.purge(archive.config_path)
        missing = [key for key in answers if not store.exists(key) or store.read(key) != orphans[key]]
        assert not missing, f"{replay}: referenced keys lost by later cycles: {missing}"
        catalog = open_catalog(archive.config.catalog)
        try:
            journal = Journal(catalog)
            assert journal.in_flight("main") == []
            for key in answers:
                entry = journal.latest("main", key)
                settled = {State.RESTORED} | (
                    {State.PURGED} if answers[key] is reclaim.Ensured.GONE else set()
                )
                assert entry is None or entry.state in settled, f"{replay}: {key}: {entry}"
        finally:
            catalog.dispose()
    finally:
        archive.dispose()
