"""The journal writes of quarantine + purge alone, on any catalog: no store, no references.

For ``--objects`` keys (those of :func:`common.object_keys`' orphans) it does
what a collect writes to the journal, batch by batch, through
:class:`reclaim.catalog.Journal`: ``record_intents`` and the confirm to
QUARANTINED per quarantine batch, then per purge batch of the due entries
the claim (PURGING) and the confirm (PURGED); every change a compare-and-set,
as in a run. Prints the seconds of each phase and per object.

    .venv/bin/python bench/journal_bench.py --catalog sqlite:////tmp/journal-bench.sqlite
    .venv/bin/python bench/journal_bench.py --catalog postgresql+psycopg://postgres@127.0.0.1:5432/jb

The catalog must be empty (a fresh SQLite file, or a fresh database); its tables are created.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import object_keys  # noqa: E402

from reclaim.catalog import Intent, Journal, State  # noqa: E402
from reclaim.catalog.catalog import open_catalog  # noqa: E402
from reclaim.config.model import CatalogConfig  # noqa: E402
from reclaim.lifecycle import purge, quarantine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", required=True, help="the SQLAlchemy URL of an empty catalog")
    parser.add_argument("--objects", type=int, default=33_335)
    parser.add_argument("--quarantine-batch", type=int, default=quarantine.BATCH)
    parser.add_argument("--purge-batch", type=int, default=purge.BATCH)
    args = parser.parse_args()
    catalog = open_catalog(CatalogConfig(url=args.catalog))
    catalog.upgrade()
    journal = Journal(catalog)
    keys = sorted(key for key, orphan in object_keys(args.objects * 3, 1 / 3) if orphan)[: args.objects]
    start = time.perf_counter()
    for first in range(0, len(keys), args.quarantine_batch):
        batch = keys[first : first + args.quarantine_batch]
        intents = [Intent(key, 0, 1.7e9, None, "_trash/" + key) for key in batch]
        recorded = journal.record_intents("bench", intents, mode="move", run_id=1)
        pending = [entry for entry in recorded if entry is not None]
        journal.transition_many(pending, State.QUARANTINED, run_id=1, due_at=datetime.now(UTC))
    quarantined = time.perf_counter()
    after = 0
    due = datetime.now(UTC) + timedelta(days=1)
    while entries := journal.due("bench", due, limit=args.purge_batch, after_id=after):
        after = entries[-1].id
        claimed = journal.transition_many(entries, State.PURGING, run_id=1)
        journal.transition_many([entry for entry in claimed if entry is not None], State.PURGED, run_id=1)
    purged = time.perf_counter()
    catalog.dispose()
    n = len(keys)
    batches = f"{args.quarantine_batch:,} / {args.purge_batch:,}"
    print(f"catalog {catalog.url.split(':')[0]}, {n:,} objects, batches of {batches}")
    print(f"quarantine journal  {quarantined - start:8.2f} s")
    print(f"purge journal       {purged - quarantined:8.2f} s")
    print(f"total               {purged - start:8.2f} s  ({1e6 * (purged - start) / n:,.0f} us per object)")
    print("\nreproduce: " + shlex.join([".venv/bin/python", "bench/journal_bench.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
