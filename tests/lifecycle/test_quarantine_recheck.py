"""Quarantine re-checks every source after recording intent: a reference committed mid-run is kept.

The collector is a real ``reclaim quarantine`` process that stops itself
right after its scan and its intents (``RECLAIM_PAUSE=quarantine.after-intent``),
before anything moves. While it is stopped a writer commits rows referencing
half of the candidates; then it resumes. The scan cannot have seen those rows,
so only the re-check between intent and move keeps the objects live: without
it they would be moved into the trash while referenced.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from reclaim.catalog import Journal, State, open_catalog

from .archive import make_archive
from .processes import in_flight, start, wait_stopped

ORPHANS = [f"blobs/late/{i:02d}" for i in range(8)]


def test_a_reference_committed_between_scan_and_move_keeps_the_object(
    tmp_path: Path, sqlite_url: str
) -> None:
    archive = make_archive(tmp_path, sqlite_url, mode="move")
    try:
        for key in ORPHANS:
            archive.put(key, key.encode())
        paused = start(archive, "quarantine", "--json", pause="quarantine.after-intent")
        try:
            wait_stopped(paused)
            # the scan is over and every candidate has its intent: now the writer commits
            assert sorted(in_flight(archive)) == ORPHANS
            late = ORPHANS[::2]
            for key in late:
                archive.reference(key)
        finally:
            paused.send_signal(signal.SIGCONT)
            out, err = paused.communicate(timeout=180)
        assert paused.returncode == 0, err
        report = json.loads(out)
        assert report["quarantined"][0]["referenced_again"] == len(late), report

        store = archive.store()
        catalog = open_catalog(archive.config.catalog)
        try:
            journal = Journal(catalog)
            for key in ORPHANS:
                entry = journal.latest("main", key)
                assert entry is not None
                if key in late:
                    assert store.exists(key), f"{key} was referenced before the move and was moved anyway"
                    assert store.read(key) == key.encode()
                    assert not store.exists("_trash/" + key)
                    assert (entry.state, entry.note) == (State.RESTORED, "referenced at quarantine")
                else:
                    assert not store.exists(key)
                    assert store.exists("_trash/" + key)
                    assert entry.state is State.QUARANTINED
            assert journal.in_flight("main") == []
        finally:
            catalog.dispose()
    finally:
        archive.dispose()
