"""Time the reference streams of one store alone: keys, wall seconds and this process's CPU seconds.

Reads every reference source of ``--store`` in the configuration the way a
scan does (:meth:`ReferenceSource.key_pages`, in this thread, no read-ahead),
``--repeat`` times, and prints one line per pass, so that the client's cost
of a stream (the driver's decoding, the key mapping, the order check) is
seen apart from the listing's and the server's:

    .venv/bin/python bench/source_bench.py --config /tmp/rb-maria/reclaim-1000000-mariadb.toml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reclaim.config import load_config
from reclaim.references import ReferenceSource, create_database_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--store", default="bench")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = load_config(args.config)
    store = config.stores[args.store]
    engines = {}
    for index, ref in enumerate(store.references):
        if ref.database not in engines:
            engines[ref.database] = create_database_engine(config.databases[ref.database])
        source = ReferenceSource(ref.display_name(index), ref, engines[ref.database], ref.database)
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            keys = sum(len(page) for page in source.key_pages())
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"{source.name}: {keys:,} keys, {source.counters.rows:,} rows, "
                f"{wall:.2f} s wall, {cpu:.2f} s CPU"
            )
    for engine in engines.values():
        engine.dispose()


if __name__ == "__main__":
    main()
