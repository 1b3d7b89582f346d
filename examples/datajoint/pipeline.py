"""The DataJoint example's pipeline, declared and filled by the real ``datajoint`` package.

Two schemas share store ``main`` (a local directory): ``ephys`` (sessions and
recordings: a hash-addressed ``<blob@main>`` that many recordings share, an
``<attach@main>`` parameter file, an ``<npy@main>`` trace and an
``<object@main>`` report) and ``imaging`` (scans: a Zarr directory as
``<object@main>`` with its manifest, and ``<blob@main>`` masks). Then a third
of the recordings and scans are deleted, as a lab deletes a bad session: their
files stay in the store, and those are what reclaim collects.

Everything comes from DataJoint's own configuration: ``DJ_HOST``, ``DJ_USER``,
``DJ_PASS``, ``DJ_PORT``, ``DJ_BACKEND``, ``DJ_DATABASE_NAME`` and ``DJ_STORES``
(or a ``datajoint.json``), exactly what ``reclaim datajoint`` reads::

    export DJ_BACKEND=postgresql DJ_HOST=127.0.0.1 DJ_PORT=5432 DJ_USER=postgres DJ_PASS=
    export DJ_DATABASE_NAME=dj_example
    export DJ_STORES='{"default": "main", "main": {"protocol": "file", "location": "/tmp/dj-example/store"}}'
    python examples/datajoint/pipeline.py --rows 30

``--prefix`` names the schemas ``<prefix>ephys`` and ``<prefix>imaging`` (the
tests give each run its own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "No datajoint.json found": the DJ_* variables are the configuration
    import datajoint as dj


def declare(prefix: str = "") -> dict[str, Any]:
    """The two schemas and their tables (created if missing)."""
    ephys = dj.Schema(f"{prefix}ephys")
    imaging = dj.Schema(f"{prefix}imaging")

    @ephys
    class Session(dj.Manual):
        definition = """
        session_id : int32
        ---
        subject : varchar(32)
        """

    @ephys
    class Recording(dj.Manual):
        definition = """
        -> Session
        recording_id : int32
        ---
        raw : <blob@main>        # hash-addressed: equal arrays are stored once
        params : <attach@main>   # a parameter file, hash-addressed
        trace : <npy@main>       # a path-addressed .npy file
        report : <object@main>   # a path-addressed single file
        """

    @imaging
    class Scan(dj.Manual):
        definition = """
        scan_id : int32
        ---
        movie : <object@main>    # a Zarr directory, with its .manifest.json
        masks : <blob@main>
        """

    return {"ephys": ephys, "imaging": imaging, "Session": Session, "Recording": Recording, "Scan": Scan}


def fill(tables: dict[str, Any], rows: int) -> dict[str, int]:
    """Insert ``rows`` recordings and scans, then delete a third of each; how many rows of each are left."""
    session, recording, scan = tables["Session"], tables["Recording"], tables["Scan"]
    sessions = max(1, rows // 10)
    session.insert({"session_id": s, "subject": f"mouse-{s}"} for s in range(sessions))
    shared = np.zeros(256)  # every third recording stores this same array: one file
    with tempfile.TemporaryDirectory() as work:
        params = Path(work) / "params.json"
        params.write_text(json.dumps({"sorter": "kilosort4", "threshold": 6}))
        for r in range(rows):
            recording.insert1(
                {
                    "session_id": r % sessions,
                    "recording_id": r,
                    "raw": shared if r % 3 == 0 else np.arange(256) + r,
                    "params": str(params),
                    "trace": np.arange(16) * r,
                    "report": f"<html>recording {r}</html>".encode(),
                }
            )
            movie = Path(work) / f"scan{r}.zarr"
            (movie / "0").mkdir(parents=True)
            (movie / ".zgroup").write_text('{"zarr_format": 2}')
            (movie / "0" / ".zarray").write_text('{"shape": [2, 2]}')
            (movie / "0" / "0.0").write_bytes(os.urandom(64))
            scan.insert1({"scan_id": r, "movie": str(movie), "masks": np.ones(32) * (r % 4)})
    (recording & [{"recording_id": r} for r in range(rows) if r % 3 == 1]).delete()
    (scan & [{"scan_id": r} for r in range(rows) if r % 3 == 2]).delete()
    return {"recordings": len(recording()), "scans": len(scan())}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=30, help="recordings and scans to insert (default 30)")
    parser.add_argument("--prefix", default="", help="schema name prefix (default: none)")
    parser.add_argument("--reset", action="store_true", help="drop the schemas and empty the store first")
    args = parser.parse_args()
    dj.config["safemode"] = False
    for spec in dict(dj.config["stores"]).values():
        if isinstance(spec, dict) and spec.get("protocol") == "file":
            location = Path(spec["location"])
            if args.reset and location.exists():
                shutil.rmtree(location)
            location.mkdir(parents=True, exist_ok=True)  # DataJoint wants the directory to exist
    if args.reset:
        for name in ("imaging", "ephys"):
            dj.Schema(f"{args.prefix}{name}").drop(prompt=False)
    left = fill(declare(args.prefix), args.rows)
    print(json.dumps(left))


if __name__ == "__main__":
    main()
